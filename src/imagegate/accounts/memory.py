"""The in-process ``StateStore``: one replica needs nothing else.

Every map is bounded: rate arrival times and budgets are per configured key (plus ``master``),
old periods are dropped as new ones begin, holds expire, and usage rows per period are capped
(users past the cap are counted as ``(other)``). One event loop runs it, and no method awaits
between reading and writing, so each admission is atomic without a lock.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from imagegate.accounts.budgets import PeriodWindow
from imagegate.accounts.limits import gcra
from imagegate.accounts.store import (
    MAX_USAGE_ROWS,
    OTHER_USER,
    Admission,
    Hold,
    UsageEvent,
    UsageQuery,
    UsageRow,
    Verdict,
    usage_ids,
)

MAX_PERIODS = 160  # usage aggregates kept: ~100 days, ~40 months, and the total
MAX_BUDGETS = 4_096  # (key, period) budgets: configured keys times the periods they span


class MemoryStore:
    def __init__(self) -> None:
        self._tat: dict[tuple[str, str], float] = {}
        self._spent: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._holds: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
        self._usage: OrderedDict[str, dict[tuple[str, str, str], UsageRow]] = OrderedDict()

    @staticmethod
    def _now() -> float:
        return time.time()

    async def admit(self, admission: Admission) -> Verdict:
        now = self._now()
        key = admission.key
        checks = []
        for name, limit, cost in (
            ("rpm", admission.rpm, 1),
            ("images", admission.images_per_minute, admission.images),
        ):
            if limit is None:
                continue
            check = gcra(self._tat.get((key, name), 0.0), now, cost, limit)
            if not check.allowed:
                return Verdict(refused=name, retry_after=check.retry_after)  # type: ignore[arg-type]
            checks.append((name, check.tat))
        hold = None
        spent = held = 0.0
        if admission.budget_usd is not None:
            budget_id = (key, admission.window.id)
            holds = self._holds.setdefault(budget_id, {})
            for hold_id, (_, expiry) in list(holds.items()):
                if expiry <= now:
                    del holds[hold_id]
            spent = self._spent.get(budget_id, 0.0)
            held = sum(amount for amount, _ in holds.values())
            if over_budget(admission.budget_usd, spent, held, admission.hold_usd):
                return Verdict(refused="budget", spent=spent, held=held)
            holds[admission.hold_id] = (admission.hold_usd, now + admission.hold_seconds)
            hold = Hold(key, admission.window, admission.hold_id, admission.hold_usd)
        for name, tat in checks:
            self._tat[(key, name)] = tat
        return Verdict(hold=hold, spent=spent, held=held)

    async def finish(self, hold: Hold | None, cost_usd: float, event: UsageEvent) -> None:
        if hold is not None:
            budget_id = (hold.key, hold.window.id)
            self._holds.get(budget_id, {}).pop(hold.hold_id, None)
            if cost_usd > 0:
                self._spent[budget_id] = self._spent.get(budget_id, 0.0) + cost_usd
                self._spent.move_to_end(budget_id)
                while len(self._spent) > MAX_BUDGETS:
                    old, _ = self._spent.popitem(last=False)
                    self._holds.pop(old, None)
        for period_id in usage_ids(event.day):
            rows = self._usage.get(period_id)
            if rows is None:
                rows = self._usage[period_id] = {}
                while len(self._usage) > MAX_PERIODS:
                    self._usage.popitem(last=False)
            user = event.user
            if (event.key, event.model, user) not in rows and len(rows) >= MAX_USAGE_ROWS:
                user = OTHER_USER
            row = rows.setdefault(
                (event.key, event.model, user), UsageRow(event.key, event.model, user)
            )
            row.add(
                UsageRow(
                    event.key,
                    event.model,
                    user,
                    requests=1,
                    images=event.images,
                    errors=int(event.error),
                    cost_usd=cost_usd,
                )
            )

    async def spent(self, key: str, window: PeriodWindow) -> tuple[float, float]:
        now = self._now()
        budget_id = (key, window.id)
        held = sum(a for a, expiry in self._holds.get(budget_id, {}).values() if expiry > now)
        return self._spent.get(budget_id, 0.0), held

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        merged: dict[tuple[str, str, str], UsageRow] = {}
        for period_id in query.period_ids:
            for ident, row in self._usage.get(period_id, {}).items():
                if query.key is not None and row.key != query.key:
                    continue
                merged.setdefault(ident, UsageRow(*ident)).add(row)
        return list(merged.values())

    async def aclose(self) -> None:
        return None


def over_budget(budget: float, spent: float, held: float, hold: float) -> bool:
    """Refused when the budget is used up, or this request's hold would go past it."""
    eps = 1e-9
    return spent + held >= budget - eps or spent + held + hold > budget + eps
