"""The ``StateStore`` on Redis, shared by every replica: Lua scripts keep each step atomic.

One round trip admits a request (both rates and the budget hold, all or nothing) and one
finishes it (settle the hold, add the spend, count the usage). The scripts read Redis's own
clock (``TIME``), so replicas with skewed clocks still share one rate window. Keys::

    imagegate:{KEY}:rate:rpm | rate:images           GCRA arrival time (expires when idle)
    imagegate:{KEY}:budget:PERIOD:spent              USD settled (TTL past the period's end;
                                                     a total budget's never expires)
    imagegate:{KEY}:budget:PERIOD:holds | :amounts   holds in flight: expiry (zset), USD (hash)
    imagegate:usage:PERIOD                           usage rows (hash, TTL beyond the period)

Every error is ``StateUnavailable``; the client has a short timeout and no retries, so an
outage costs a request at most about one timeout, not a hang.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from imagegate.accounts.budgets import PeriodWindow
from imagegate.accounts.store import (
    DAY_TTL_SECONDS,
    MAX_USAGE_ROWS,
    MONTH_TTL_SECONDS,
    OTHER_USER,
    Admission,
    Hold,
    StateUnavailable,
    UsageEvent,
    UsageQuery,
    UsageRow,
    Verdict,
    usage_ids,
)

PREFIX = "imagegate:"
_SEP = "\t"
_SPENT_GRACE_SECONDS = 2 * 86_400

# KEYS: rpm tat, images tat, holds zset, amounts hash, spent
# ARGV: rpm, images_per_minute, images, budget (-1: none), hold, hold id, hold seconds
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function gcra(key, limit, cost)
  if limit <= 0 then return true, 0, 0 end
  local interval = 60 / limit
  local tat = tonumber(redis.call('GET', key) or '0')
  local new_tat = math.max(tat, now) + cost * interval
  local allow_at = new_tat - 60
  if allow_at <= now then return true, new_tat, 0 end
  return false, tat, allow_at - now
end
local rpm = tonumber(ARGV[1])
local ipm = tonumber(ARGV[2])
local ok1, tat1, wait1 = gcra(KEYS[1], rpm, 1)
if not ok1 then return {'rpm', tostring(wait1), '0', '0'} end
local ok2, tat2, wait2 = gcra(KEYS[2], ipm, tonumber(ARGV[3]))
if not ok2 then return {'images', tostring(wait2), '0', '0'} end
local budget = tonumber(ARGV[4])
local spent = 0
local held = 0
if budget >= 0 then
  local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
  for _, id in ipairs(expired) do redis.call('HDEL', KEYS[4], id) end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) end
  spent = tonumber(redis.call('GET', KEYS[5]) or '0')
  for _, v in ipairs(redis.call('HVALS', KEYS[4])) do held = held + tonumber(v) end
  local hold = tonumber(ARGV[5])
  if spent + held >= budget - 1e-9 or spent + held + hold > budget + 1e-9 then
    return {'budget', '0', tostring(spent), tostring(held)}
  end
  local seconds = tonumber(ARGV[7])
  redis.call('ZADD', KEYS[3], now + seconds, ARGV[6])
  redis.call('HSET', KEYS[4], ARGV[6], ARGV[5])
  local ttl = math.ceil(seconds) + 60
  redis.call('EXPIRE', KEYS[3], ttl)
  redis.call('EXPIRE', KEYS[4], ttl)
end
if rpm > 0 then
  redis.call('SET', KEYS[1], tostring(tat1), 'PX', math.ceil((tat1 - now) * 1000) + 1000)
end
if ipm > 0 then
  redis.call('SET', KEYS[2], tostring(tat2), 'PX', math.ceil((tat2 - now) * 1000) + 1000)
end
return {'ok', '0', tostring(spent), tostring(held)}
"""

# KEYS: holds zset, amounts hash, spent, usage day, usage month, usage total
# ARGV: hold id ('' = none), cost, spent ttl (0 = none), key, model, user, images, error,
#       max rows, day ttl, month ttl
_FINISH = """
local cost = tonumber(ARGV[2])
if ARGV[1] ~= '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  if cost > 0 then redis.call('INCRBYFLOAT', KEYS[3], ARGV[2]) end
  local ttl = tonumber(ARGV[3])
  if ttl > 0 and redis.call('EXISTS', KEYS[3]) == 1 then redis.call('EXPIRE', KEYS[3], ttl) end
end
local ttls = {tonumber(ARGV[10]), tonumber(ARGV[11]), 0}
local max_fields = tonumber(ARGV[9]) * 4
for i = 1, 3 do
  local hk = KEYS[3 + i]
  local row = ARGV[4] .. '\\t' .. ARGV[5] .. '\\t' .. ARGV[6]
  local new = redis.call('HEXISTS', hk, row .. '\\trequests') == 0
  if new and redis.call('HLEN', hk) >= max_fields then
    row = ARGV[4] .. '\\t' .. ARGV[5] .. '\\t' .. ARGV[12]
  end
  redis.call('HINCRBY', hk, row .. '\\trequests', 1)
  redis.call('HINCRBY', hk, row .. '\\timages', tonumber(ARGV[7]))
  redis.call('HINCRBY', hk, row .. '\\terrors', tonumber(ARGV[8]))
  if cost > 0 then redis.call('HINCRBYFLOAT', hk, row .. '\\tcost_usd', ARGV[2]) end
  if ttls[i] > 0 then redis.call('EXPIRE', hk, ttls[i]) end
end
return 1
"""


def _budget_keys(key: str, window: PeriodWindow) -> list[str]:
    base = f"{PREFIX}{{{key}}}:budget:{window.id}"
    return [base + ":holds", base + ":amounts", base + ":spent"]


def _spent_ttl(window: PeriodWindow) -> int:
    if window.resets_at is None:
        return 0  # a total budget is the ledger itself: one key per configured key
    from datetime import UTC, datetime

    left = (window.resets_at - datetime.now(UTC)).total_seconds()
    return max(60, int(left) + _SPENT_GRACE_SECONDS)


class RedisStore:
    def __init__(self, url: str, *, timeout: float) -> None:
        self.client: Redis = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
            health_check_interval=0,
        )
        self._admit = self.client.register_script(_ADMIT)
        self._finish = self.client.register_script(_FINISH)

    async def _call(self, script: Any, keys: list[str], args: list[object]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise StateUnavailable(f"{type(exc).__name__}: {exc}") from None

    async def admit(self, admission: Admission) -> Verdict:
        key = admission.key
        budget = admission.budget_usd
        reply = await self._call(
            self._admit,
            [
                f"{PREFIX}{{{key}}}:rate:rpm",
                f"{PREFIX}{{{key}}}:rate:images",
                *_budget_keys(key, admission.window),
            ],
            [
                admission.rpm or 0,
                admission.images_per_minute or 0,
                admission.images,
                -1 if budget is None else repr(float(budget)),
                repr(float(admission.hold_usd)),
                admission.hold_id,
                repr(float(admission.hold_seconds)),
            ],
        )
        outcome, wait, spent, held = (str(part) for part in reply)
        if outcome != "ok":
            return Verdict(
                refused=outcome,  # type: ignore[arg-type]
                retry_after=float(wait),
                spent=float(spent),
                held=float(held),
            )
        hold = None
        if budget is not None:
            hold = Hold(key, admission.window, admission.hold_id, admission.hold_usd)
        return Verdict(hold=hold, spent=float(spent), held=float(held))

    async def finish(self, hold: Hold | None, cost_usd: float, event: UsageEvent) -> None:
        budget_keys = (
            _budget_keys(hold.key, hold.window)
            if hold
            else [f"{PREFIX}none:holds", f"{PREFIX}none:amounts", f"{PREFIX}none:spent"]
        )
        await self._call(
            self._finish,
            [*budget_keys, *(f"{PREFIX}usage:{pid}" for pid in usage_ids(event.day))],
            [
                hold.hold_id if hold else "",
                repr(float(max(0.0, cost_usd))),
                _spent_ttl(hold.window) if hold else 0,
                event.key,
                event.model,
                event.user,
                event.images,
                int(event.error),
                MAX_USAGE_ROWS,
                DAY_TTL_SECONDS,
                MONTH_TTL_SECONDS,
                OTHER_USER,
            ],
        )

    async def spent(self, key: str, window: PeriodWindow) -> tuple[float, float]:
        holds, amounts, spent_key = _budget_keys(key, window)
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.get(spent_key)
                pipe.time()
                pipe.zrangebyscore(holds, "(0", "+inf", withscores=True)
                pipe.hgetall(amounts)
                spent, (secs, micros), live, amount = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StateUnavailable(f"{type(exc).__name__}: {exc}") from None
        now = secs + micros / 1e6
        held = sum(float(amount.get(member, 0)) for member, expiry in live if expiry > now)
        return float(spent or 0), held

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for pid in query.period_ids:
                    pipe.hgetall(f"{PREFIX}usage:{pid}")
                answers = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StateUnavailable(f"{type(exc).__name__}: {exc}") from None
        merged: dict[tuple[str, str, str], UsageRow] = {}
        for fields in answers:
            for name, value in fields.items():
                parts = name.split(_SEP)
                if len(parts) != 4:
                    continue
                key, model, user, metric = parts
                if query.key is not None and key != query.key:
                    continue
                row = merged.setdefault((key, model, user), UsageRow(key, model, user))
                if metric == "cost_usd":
                    row.cost_usd += float(value)
                elif metric in ("requests", "images", "errors"):
                    setattr(row, metric, getattr(row, metric) + int(value))
        return list(merged.values())

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise StateUnavailable(f"{type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        await self.client.aclose()
