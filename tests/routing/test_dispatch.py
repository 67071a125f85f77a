"""The retry loop with scripted providers and an injected clock, sleep and jitter (no network)."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from PIL import Image

from imagegate.catalog.catalog import Catalog
from imagegate.core.errors import (
    ContentPolicyViolation,
    GatewayError,
    InvalidRequest,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from imagegate.core.request import EditRequest
from imagegate.core.result import EditResult, ResultImage, Usage
from imagegate.hooks import RequestContext
from imagegate.providers.base import (
    Deployment,
    DiscardEvents,
    EditJob,
    EventSink,
    ProviderRegistry,
)
from imagegate.routing.cooldown import Cooldowns
from imagegate.routing.dispatch import Dispatcher, RetryPolicy
from imagegate.routing.plan import Route, RoutingPlan
from imagegate.routing.router import Router
from imagegate.service import EditService
from tests.support.requests import edit_request, image_input


def card(model_id: str, *, mask: bool) -> dict[str, object]:
    return {
        "id": model_id,
        "edit": {"max_reference_images": 2, "mask": mask},
        "sizing": {"style": "openai_size", "sizes": ["1024x1024", "auto"]},
        "pricing": {"per_image": 0.04},
    }


CARDS = [card("p1/masked", mask=True), card("p2/plain", mask=False), card("p3/masked", mask=True)]
OK = "ok"
Outcome = GatewayError | str


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, format="PNG")
    return out.getvalue()


@dataclass
class Scripted:
    """A provider whose deployments answer from a script (then OK); every call recorded."""

    name: str
    script: dict[str, list[Outcome]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    partial_first: bool = False

    def check(self, job: EditJob) -> None:
        return None

    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        self.calls.append(deployment.name)
        image = ResultImage("png", 8, 8, data=png())
        if self.partial_first:
            await events.partial(image, 0)
        queue = self.script.get(deployment.name, [])
        outcome = queue.pop(0) if queue else OK
        if isinstance(outcome, GatewayError):
            raise outcome
        return EditResult(images=[image], model=job.card.id, provider=self.name, usage=Usage())

    async def aclose(self) -> None:
        return None


class Clock:
    """Time that moves only when the dispatcher sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class Setup:
    service: EditService
    providers: dict[str, Scripted]
    clock: Clock
    router: Router

    def run(self, request: EditRequest, events: EventSink | None = None) -> EditResult:
        job = self.service.prepare(request, "req_test")
        return asyncio.run(self.service.run(job, events or DiscardEvents(), self.ctx))

    @property
    def ctx(self) -> RequestContext:
        return self._ctx

    def __post_init__(self) -> None:
        self._ctx = RequestContext("req_test")


def setup(
    deployments: Sequence[tuple[str, str]],
    *,
    routes: dict[str, Route] | None = None,
    fallbacks: dict[str, tuple[str, ...]] | None = None,
    retries: int = 2,
    timeout: float = 60.0,
    cooldown_failures: int = 3,
) -> Setup:
    clock = Clock()
    providers = {name: Scripted(name) for name in ("p1", "p2", "p3")}
    registry = ProviderRegistry()
    for provider in providers.values():
        registry.register(provider)
    plan = RoutingPlan(routes=routes or {}, fallbacks=fallbacks or {})
    router = Router(
        [Deployment(provider=p, name=n) for p, n in deployments],
        plan,
        cooldowns=Cooldowns(cooldown_failures, 30, 300, clock=clock),
    )
    service = EditService(
        Catalog.build(CARDS, shipped=[]), registry, router, timeout_seconds=timeout
    )
    service.dispatcher = Dispatcher(
        router,
        RetryPolicy(retries, 0.5, 8.0),
        timeout_seconds=timeout,
        sleep=clock.sleep,
        clock=clock,
        rand=lambda: 1.0,  # the full backoff ceiling, so waits are known
    )
    return Setup(service, providers, clock, router)


def server_error() -> UpstreamError:
    return UpstreamError("p1 failed (HTTP 500)", origin="provider")


def rate_limited(seconds: int) -> RateLimited:
    return RateLimited("slow down", origin="provider", headers={"Retry-After": str(seconds)})


def test_a_retry_goes_to_the_other_deployment_and_backs_off() -> None:
    s = setup([("p1", "a"), ("p1", "b")])
    s.providers["p1"].script = {"a": [server_error()]}
    result = s.run(edit_request("p1/masked"))
    assert result.provider == "p1"
    assert s.providers["p1"].calls == ["a", "b"]
    assert s.clock.slept == [0.5]  # one backoff: base * 2**0 at full jitter
    assert (s.ctx.attempts, s.ctx.retries, s.ctx.deployment) == (2, 1, "b")


def test_one_deployment_is_retried_with_growing_backoff_then_gives_the_error() -> None:
    s = setup([("p1", "a")], retries=2)
    s.providers["p1"].script = {"a": [server_error(), server_error(), server_error()]}
    with pytest.raises(UpstreamError):
        s.run(edit_request("p1/masked"))
    assert s.providers["p1"].calls == ["a", "a", "a"]
    assert s.clock.slept == [0.5, 1.0]


@pytest.mark.parametrize(
    "error",
    [
        InvalidRequest("bad size", origin="provider"),
        ContentPolicyViolation("refused", origin="provider"),
        UpstreamError("key refused", code="provider_auth_failed", retryable=False),
    ],
    ids=["invalid", "moderation", "auth"],
)
def test_errors_that_say_no_retry_are_not_retried(error: GatewayError) -> None:
    s = setup([("p1", "a"), ("p1", "b")], fallbacks={"p1/masked": ("p3/masked",)})
    s.providers["p1"].script = {"a": [error]}
    with pytest.raises(type(error)):
        s.run(edit_request("p1/masked"))
    assert s.providers["p1"].calls == ["a"] and s.providers["p3"].calls == []
    # A refused key rests the deployment (the next request goes elsewhere); a bad request not.
    assert s.router.cooldowns.cooling("p1:a") == (error.code == "provider_auth_failed")


def test_retry_after_is_waited_for_on_the_only_deployment() -> None:
    s = setup([("p1", "a")])
    s.providers["p1"].script = {"a": [rate_limited(7)]}
    s.run(edit_request("p1/masked"))
    assert s.clock.slept == [7.0]  # at least Retry-After, more than the 0.5 s backoff
    assert s.providers["p1"].calls == ["a", "a"]


def test_retry_after_past_the_deadline_is_not_waited_for() -> None:
    s = setup([("p1", "a")], timeout=5)
    s.providers["p1"].script = {"a": [rate_limited(30)]}
    with pytest.raises(RateLimited) as caught:
        s.run(edit_request("p1/masked"))
    assert caught.value.headers["Retry-After"] == "30"  # the client learns when to come back
    assert s.clock.slept == [] and s.providers["p1"].calls == ["a"]


def test_retry_after_moves_on_to_another_deployment_at_once_and_rests_the_first() -> None:
    s = setup([("p1", "a"), ("p1", "b")])
    s.providers["p1"].script = {"a": [rate_limited(20)]}
    s.run(edit_request("p1/masked"))
    assert s.providers["p1"].calls == ["a", "b"] and s.clock.slept == [0.5]
    for _ in range(3):  # a rests for 20 s: the next requests all go to b
        s.run(edit_request("p1/masked"))
    assert s.providers["p1"].calls == ["a", "b", "b", "b", "b"]
    s.clock.now += 21
    s.run(edit_request("p1/masked"))
    s.run(edit_request("p1/masked"))
    assert set(s.providers["p1"].calls[-2:]) == {"a", "b"}


def test_a_failing_deployment_cools_down_alone_and_never_locks_the_model_out() -> None:
    s = setup([("p1", "a"), ("p1", "b")], retries=0, cooldown_failures=1)
    s.providers["p1"].script = {"a": [server_error()] * 5}
    with pytest.raises(UpstreamError):
        s.run(edit_request("p1/masked"))  # no retries: the request fails, a cools down
    assert s.router.cooldowns.cooling("p1:a") and not s.router.cooldowns.cooling("p1:b")
    s.run(edit_request("p1/masked"))
    s.run(edit_request("p1/masked"))
    assert s.providers["p1"].calls == ["a", "b", "b"]
    s.providers["p1"].script = {"b": [server_error()]}
    with pytest.raises(UpstreamError):
        s.run(edit_request("p1/masked"))  # now both rest...
    s.providers["p1"].script = {}
    result = s.run(edit_request("p1/masked"))  # ...and the one whose rest ends first is tried
    assert result.provider == "p1" and s.providers["p1"].calls[-1] == "a"


def test_fallback_only_to_a_model_that_can_honour_the_request() -> None:
    s = setup(
        [("p1", "a"), ("p2", "a"), ("p3", "a")],
        retries=0,
        fallbacks={"p1/masked": ("p2/plain", "p3/masked")},
    )
    masked = edit_request("p1/masked", mask=image_input())
    job = s.service.prepare(masked)
    assert [candidate.card.id for candidate in job.fallbacks] == ["p3/masked"]
    assert job.unfit and job.unfit[0].startswith("p2/plain: ")
    s.providers["p1"].script = {"a": [server_error()]}
    result = s.run(masked)
    assert result.model == "p3/masked" and s.providers["p2"].calls == []
    assert s.ctx.fallback_from == "p1/masked" and s.ctx.model == "p3/masked"
    # Without a mask the first fallback can take it, and is tried first.
    s.providers["p1"].script = {"a": [server_error()]}
    assert s.run(edit_request("p1/masked")).model == "p2/plain"


def test_no_fitting_fallback_gives_the_original_error() -> None:
    s = setup([("p1", "a"), ("p2", "a")], retries=0, fallbacks={"p1/masked": ("p2/plain",)})
    s.providers["p1"].script = {"a": [rate_limited(3)]}
    with pytest.raises(RateLimited):
        s.run(edit_request("p1/masked", mask=image_input()))
    assert s.providers["p2"].calls == []


def test_every_fallback_failing_gives_the_primarys_error() -> None:
    s = setup([("p1", "a"), ("p3", "a")], retries=0, fallbacks={"p1/masked": ("p3/masked",)})
    s.providers["p1"].script = {"a": [rate_limited(3)]}
    s.providers["p3"].script = {"a": [server_error()]}
    with pytest.raises(RateLimited):
        s.run(edit_request("p1/masked"))
    assert s.providers["p3"].calls == ["a"]


def test_no_retry_once_a_partial_image_went_out() -> None:
    s = setup([("p1", "a"), ("p1", "b")], fallbacks={"p1/masked": ("p3/masked",)})
    s.providers["p1"].partial_first = True
    s.providers["p1"].script = {"a": [server_error()]}
    with pytest.raises(UpstreamError):
        s.run(edit_request("p1/masked"))
    assert s.providers["p1"].calls == ["a"] and s.providers["p3"].calls == []


def test_a_route_round_robins_over_its_targets_and_checks_each() -> None:
    route = Route("any", "round_robin", (("p1/masked", 1), ("p2/plain", 1), ("p3/masked", 1)), ())
    s = setup([("p1", "a"), ("p2", "a"), ("p3", "a")], routes={"any": route})
    served = [s.run(edit_request("any")).model for _ in range(6)]
    assert served == ["p1/masked", "p2/plain", "p3/masked"] * 2
    masked = [s.run(edit_request("any", mask=image_input())).model for _ in range(4)]
    assert set(masked) == {"p1/masked", "p3/masked"}  # p2/plain takes no mask


def test_the_deadline_covers_every_attempt_and_wait() -> None:
    s = setup([("p1", "a")], retries=5, timeout=2.0)
    s.providers["p1"].script = {"a": [server_error()] * 6}
    with pytest.raises(UpstreamError):
        s.run(edit_request("p1/masked"))
    assert sum(s.clock.slept) < 2.0  # waits of 0.5 and 1 fit; the next (2 s) would not


def test_each_attempt_is_cut_at_its_deployments_timeout() -> None:
    class Slow(Scripted):
        async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
            if deployment.name == "slow":
                self.calls.append("slow")
                await asyncio.sleep(10)
            return await super().edit(job, deployment, events)

    registry = ProviderRegistry()
    slow = Slow("p1")
    registry.register(slow)
    deployments = [Deployment(provider="p1", name="slow", timeout_seconds=0.05)]
    deployments.append(Deployment(provider="p1", name="b"))
    router = Router(deployments, RoutingPlan())
    service = EditService(
        Catalog.build(CARDS, shipped=[]),
        registry,
        router,
        timeout_seconds=5,
        retry=RetryPolicy(1, 0.0, 0.0),
    )
    ctx = RequestContext("r")
    job = service.prepare(edit_request("p1/masked"))
    result = asyncio.run(service.run(job, DiscardEvents(), ctx))
    assert result.provider == "p1" and slow.calls == ["slow", "b"] and ctx.attempts == 2


def test_a_deadline_hit_is_a_504() -> None:
    s = setup([("p1", "a")], retries=0, timeout=0.05)
    s.service.dispatcher.clock = time.monotonic
    s.service.dispatcher.sleep = asyncio.sleep

    async def slow(*_: object) -> EditResult:
        await asyncio.sleep(5)
        raise AssertionError

    s.service._attempt = slow  # type: ignore[method-assign]
    with pytest.raises(UpstreamTimeout):
        s.run(edit_request("p1/masked"))


def test_a_deployment_at_its_max_in_flight_is_passed_over() -> None:
    s = setup([("p1", "a"), ("p1", "b")], retries=1)
    capped = [Deployment(provider="p1", name=n, max_in_flight=1) for n in ("a", "b")]
    router = Router(capped, RoutingPlan(), cooldowns=s.router.cooldowns)
    job = s.service.prepare(edit_request("p1/masked"))
    slots = router.slots([job])
    router.balancer.started("p1:a")
    assert router.choose("g", "round_robin", slots, ()).deployment.name == "b"
    router.balancer.started("p1:b")
    with pytest.raises(ServiceUnavailable):
        router.choose("g", "round_robin", slots, ())
    s.service.dispatcher.router = router
    with pytest.raises(ServiceUnavailable) as caught:
        s.run(edit_request("p1/masked"))
    assert caught.value.status == 503 and caught.value.headers["Retry-After"] == "1"
    assert s.providers["p1"].calls == [] and s.clock.slept == [0.5, 1.0]  # waited, then gave up
    router.balancer.ended("p1:b")
    assert s.run(edit_request("p1/masked")).provider == "p1"
    assert s.providers["p1"].calls == ["b"]
