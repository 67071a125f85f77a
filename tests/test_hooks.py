"""The dispatch seam: hooks before the provider and a record after the answer, on every path."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from imagegate.core.errors import GatewayError, PaymentRequired, UpstreamError
from imagegate.core.result import EditResult
from imagegate.hooks import RequestContext
from imagegate.providers.base import DiscardEvents, EditJob
from tests.test_service import Scripted, request, service


@dataclass
class Recorder:
    refuse: GatewayError | None = None
    fail_after: bool = False
    before: list[str] = field(default_factory=list)
    after: list[EditResult | GatewayError] = field(default_factory=list)

    async def before_dispatch(self, ctx: RequestContext, job: EditJob) -> None:
        self.before.append(job.card.id)
        if self.refuse is not None:
            raise self.refuse

    async def after_answer(
        self, ctx: RequestContext, job: EditJob, outcome: EditResult | GatewayError
    ) -> None:
        self.after.append(outcome)
        if self.fail_after:
            raise RuntimeError("the usage store is down")


def with_hooks(provider: Scripted, *hooks: Recorder) -> object:
    svc = service(provider)
    svc.hooks = hooks
    return svc


def test_both_hooks_see_a_priced_result_and_the_context_its_upstream_time() -> None:
    hook = Recorder()
    svc = with_hooks(Scripted(delay=0.05), hook)
    ctx = RequestContext("req_x", user="alice")
    result = asyncio.run(svc.run(svc.prepare(request(n=2)), DiscardEvents(), ctx))  # type: ignore[attr-defined]
    assert hook.before == ["scripted/model"] and hook.after == [result]
    assert result.cost_usd > 0  # the record sees the cost
    assert ctx.attempts == 1 and ctx.provider == "scripted"
    assert ctx.upstream_seconds >= 0.05
    assert ctx.overhead_ms() >= 0


def test_a_hook_refusing_before_dispatch_stops_the_edit_before_the_provider() -> None:
    provider = Scripted()
    hook = Recorder(refuse=PaymentRequired("the team budget is spent"))
    svc = with_hooks(provider, hook)
    with pytest.raises(PaymentRequired):
        asyncio.run(svc.run(svc.prepare(request()), DiscardEvents()))  # type: ignore[attr-defined]
    assert hook.after == []  # nothing was dispatched, nothing to record
    assert provider.calls == 0


def test_the_record_sees_the_error_and_a_failing_record_changes_nothing() -> None:
    hook = Recorder(fail_after=True)
    svc = with_hooks(Scripted(error=UpstreamError("boom")), hook)
    with pytest.raises(UpstreamError):
        asyncio.run(svc.run(svc.prepare(request()), DiscardEvents()))  # type: ignore[attr-defined]
    assert isinstance(hook.after[0], UpstreamError)
    ok = with_hooks(Scripted(), Recorder(fail_after=True))
    assert asyncio.run(ok.run(ok.prepare(request()), DiscardEvents())).images  # type: ignore[attr-defined]


def test_a_cancelled_edit_is_recorded_as_cancelled() -> None:
    hook = Recorder()
    svc = with_hooks(Scripted(delay=5), hook)

    async def scenario() -> None:
        task = asyncio.create_task(svc.run(svc.prepare(request()), DiscardEvents()))  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    (outcome,) = hook.after
    assert isinstance(outcome, GatewayError) and outcome.code == "cancelled"
