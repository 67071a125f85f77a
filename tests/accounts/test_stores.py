"""Both state stores, the same contract: the in-process one and Redis (a real redis-server)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from imagegate.accounts.budgets import period_window
from imagegate.accounts.memory import MemoryStore
from imagegate.accounts.redis import RedisStore
from imagegate.accounts.store import Admission, StateStore, StateUnavailable, UsageEvent, UsageQuery
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store(backend: str, redis_server: RedisServer) -> AsyncIterator[StateStore]:
    if backend == "memory":
        yield MemoryStore()
        return
    redis_server.flush()
    redis = RedisStore(redis_server.url, timeout=1.0)
    yield redis
    await redis.aclose()


def ask(
    key: str = "team",
    *,
    rpm: int | None = None,
    ipm: int | None = None,
    n: int = 1,
    budget: float | None = None,
    hold: float = 0.0,
    hold_seconds: float = 600,
) -> Admission:
    return Admission(
        key=key,
        rpm=rpm,
        images_per_minute=ipm,
        images=n,
        budget_usd=budget,
        window=period_window("month"),
        hold_usd=hold,
        hold_seconds=hold_seconds,
        hold_id=uuid.uuid4().hex,
    )


def event(
    key: str = "team", cost: float = 0.0, *, user: str = "-", error: bool = False
) -> UsageEvent:
    return UsageEvent(
        key=key,
        model="local/pillow",
        user=user,
        images=0 if error else 1,
        cost_usd=cost,
        error=error,
        day=datetime.now(UTC).date(),
    )


async def test_requests_per_minute_burst_then_refused_with_a_wait(store: StateStore) -> None:
    verdicts = [await store.admit(ask(rpm=3)) for _ in range(4)]
    assert [v.admitted for v in verdicts] == [True, True, True, False]
    assert verdicts[3].refused == "rpm"
    assert 19 < verdicts[3].retry_after <= 20.5  # one slot of 60/3 s frees up
    assert (await store.admit(ask("other", rpm=3))).admitted  # per key


async def test_images_per_minute_counts_n_and_a_refusal_takes_nothing(store: StateStore) -> None:
    assert (await store.admit(ask(rpm=10, ipm=4, n=3))).admitted
    refused = await store.admit(ask(rpm=10, ipm=4, n=2))
    assert refused.refused == "images" and refused.retry_after > 0
    # The refused request took no request from the rpm window: 9 more fit, not 8.
    assert all([(await store.admit(ask(rpm=10))).admitted for _ in range(9)])
    assert (await store.admit(ask(rpm=10))).refused == "rpm"


async def test_budget_holds_then_settles_to_the_true_cost(store: StateStore) -> None:
    first = await store.admit(ask(budget=1.0, hold=0.6))
    assert first.admitted and first.hold is not None
    # 0.6 held: a second 0.6 does not fit, a 0.4 does.
    second = await store.admit(ask(budget=1.0, hold=0.6))
    assert second.refused == "budget" and second.held == pytest.approx(0.6)
    await store.finish(first.hold, 0.25, event(cost=0.25))
    assert await store.spent("team", period_window("month")) == pytest.approx((0.25, 0.0))
    third = await store.admit(ask(budget=1.0, hold=0.75))
    assert third.admitted and third.hold is not None
    await store.finish(third.hold, 0.75, event(cost=0.75))
    spent_out = await store.admit(ask(budget=1.0, hold=0.0))
    assert spent_out.refused == "budget" and spent_out.spent == pytest.approx(1.0)


async def test_a_failed_edit_releases_its_hold(store: StateStore) -> None:
    held = await store.admit(ask(budget=0.5, hold=0.5))
    assert (await store.admit(ask(budget=0.5, hold=0.1))).refused == "budget"
    await store.finish(held.hold, 0.0, event(error=True))
    assert (await store.admit(ask(budget=0.5, hold=0.5))).admitted


async def test_an_unsettled_hold_expires(store: StateStore) -> None:
    assert (await store.admit(ask(budget=0.5, hold=0.5, hold_seconds=0.3))).admitted
    assert (await store.admit(ask(budget=0.5, hold=0.5))).refused == "budget"
    await asyncio.sleep(0.4)
    assert (await store.admit(ask(budget=0.5, hold=0.5))).admitted


async def test_concurrent_admissions_never_overspend(store: StateStore) -> None:
    verdicts = await asyncio.gather(*(store.admit(ask(budget=0.03, hold=0.01)) for _ in range(20)))
    admitted = [v for v in verdicts if v.admitted]
    assert len(admitted) == 3
    await asyncio.gather(*(store.finish(v.hold, 0.01, event(cost=0.01)) for v in admitted))
    spent, held = await store.spent("team", period_window("month"))
    assert spent == pytest.approx(0.03) and held == 0


async def test_usage_rows_add_up_per_key_model_and_user(store: StateStore) -> None:
    await store.finish(None, 0.02, event("a", 0.02, user="alice"))
    await store.finish(None, 0.03, event("a", 0.03, user="bob"))
    await store.finish(None, 0.0, event("a", 0.0, user="bob", error=True))
    await store.finish(None, 0.5, event("b", 0.5))
    month = period_window("month").id
    rows = {(r.key, r.user): r for r in await store.usage(UsageQuery((month,), "a"))}
    assert set(rows) == {("a", "alice"), ("a", "bob")}
    bob = rows[("a", "bob")]
    assert (bob.requests, bob.images, bob.errors) == (2, 1, 1)
    assert bob.cost_usd == pytest.approx(0.03)
    everything = await store.usage(UsageQuery(("total",)))
    assert sum(r.cost_usd for r in everything) == pytest.approx(0.55)


async def test_redis_down_is_state_unavailable_quickly(redis_server: RedisServer) -> None:
    store = RedisStore("redis://127.0.0.1:1/0", timeout=0.3)  # nothing listens on port 1
    started = asyncio.get_running_loop().time()
    with pytest.raises(StateUnavailable):
        await store.admit(ask(rpm=1))
    assert asyncio.get_running_loop().time() - started < 2
    await store.aclose()
