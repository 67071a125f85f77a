"""The retry loop around the provider call: attempts, backoff, cooldowns, fallbacks.

A request's candidates come in groups, tried in order::

    the primary group   the card's deployments, or every deployment of every route target,
                        balanced by the strategy
    each fallback       its card's deployments (a route's fallbacks, or the card's in the
                        config file's ``fallbacks``), only those that passed their own card

Each group gets up to ``1 + retries`` attempts. After a failure that says trying again could help
(``GatewayError.retryable``: 429, 5xx, unreachable, timeouts) the next attempt waits a backoff
with full jitter and goes to a deployment this request has not tried when there is one. A
Retry-After is honoured by resting that deployment for as long as asked: the next attempt goes
elsewhere, or, if that deployment is the only one, waits for it -- unless the wait would end past
the request's deadline, then the group is given up at once. A non-retryable failure (the
request's own fault, a content-policy refusal, the provider refusing the gateway's key) ends the
dispatch with that error; so does any failure once a stream has sent the client a partial image
(the client holds part of one answer; a second answer from elsewhere cannot follow it).

When every group has failed, the client gets the primary group's last error (what its model
said), not a fallback's. All attempts and waits happen inside ``request_timeout_seconds``; each
attempt also inside its deployment's ``timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from imagegate import metrics
from imagegate.core.errors import (
    GatewayError,
    InternalError,
    RateLimited,
    ServiceUnavailable,
    UpstreamTimeout,
)
from imagegate.core.result import EditResult, ResultImage
from imagegate.hooks import RequestContext
from imagegate.providers.base import Deployment, EditJob, EventSink
from imagegate.providers.upstream import retry_after
from imagegate.routing.backoff import backoff_delay
from imagegate.routing.balance import Strategy
from imagegate.routing.router import Router, Slot

log = logging.getLogger("imagegate.routing")

Attempt = Callable[[EditJob, Deployment, EventSink], Awaitable[EditResult]]
AUTH_FAILED = "provider_auth_failed"
ATTEMPT_GRACE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 2
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 8.0


class WatchedEvents:
    """Passes partial images on, remembering whether any reached the client's stream."""

    def __init__(self, inner: EventSink) -> None:
        self._inner = inner
        self.sent = False

    async def partial(self, image: ResultImage, index: int) -> None:
        self.sent = True
        await self._inner.partial(image, index)


@dataclass(frozen=True, slots=True)
class Group:
    key: str  # where the strategy keeps its state: the route or the card
    model: str  # what the metrics and the log call it
    strategy: Strategy
    slots: tuple[Slot, ...]


class Dispatcher:
    def __init__(
        self,
        router: Router,
        policy: RetryPolicy,
        *,
        timeout_seconds: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.router = router
        self.policy = policy
        self.timeout_seconds = timeout_seconds
        self.sleep = sleep
        self.clock = clock
        self.rand = rand

    def groups(self, job: EditJob) -> list[Group]:
        jobs = {candidate.card.id: candidate for candidate in job.candidates()}
        route = self.router.route(job.route) if job.route else None
        if route is not None:
            targets = [jobs[card] for card, _ in route.targets if card in jobs]
            slots = self.router.slots(targets, dict(route.targets))
            groups = [Group(f"route:{route.name}", route.name, route.strategy, tuple(slots))]
            fallback_ids = route.fallbacks
        else:
            slots = self.router.slots([job])
            groups = [Group(job.card.id, job.card.id, self.router.strategy, tuple(slots))]
            fallback_ids = self.router.fallbacks_of(job.card.id)
        for card in fallback_ids:
            if card in jobs:
                slots = self.router.slots([jobs[card]])
                groups.append(Group(card, card, self.router.strategy, tuple(slots)))
        return [group for group in groups if group.slots]

    async def run(
        self, job: EditJob, events: EventSink, ctx: RequestContext, attempt: Attempt
    ) -> tuple[EditResult, EditJob]:
        """The result and the candidate job that produced it (priced and finished by its card)."""
        watched = WatchedEvents(events)
        deadline = self.clock() + self.timeout_seconds
        first_error: GatewayError | None = None
        groups = self.groups(job)
        for index, group in enumerate(groups):
            if index:
                if self.clock() >= deadline:
                    break
                metrics.FALLBACKS.labels(groups[0].model, group.model).inc()
                ctx.fallback_from = groups[0].model
                log.info(
                    "falling back",
                    extra={
                        "request_id": job.request_id,
                        "from_model": groups[0].model,
                        "to_model": group.model,
                    },
                )
            try:
                return await self._group(group, watched, ctx, attempt, deadline)
            except GatewayError as exc:
                if first_error is None:
                    first_error = exc
                if not exc.retryable or watched.sent:
                    raise
        if first_error is None:  # no group had a deployment (cannot happen past prepare)
            raise InternalError(f"{job.card.id} has no deployment to send the edit to.")
        raise first_error

    async def _group(
        self,
        group: Group,
        events: WatchedEvents,
        ctx: RequestContext,
        attempt: Attempt,
        deadline: float,
    ) -> tuple[EditResult, EditJob]:
        tried: set[str] = set()
        last: GatewayError | None = None
        failed: Slot | None = None  # where ``last`` happened (None: every deployment was busy)
        for number in range(1 + self.policy.retries):
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            try:
                slot = self.router.choose(group.key, group.strategy, group.slots, tried)
            except ServiceUnavailable as busy:  # every deployment at its max_in_flight
                last, failed = busy, None
                wait = self._backoff(number)
                if wait >= remaining:
                    break
                await self._wait(wait, group.slots[0].deployment.provider, busy, ctx)
                continue  # and choose again
            if last is not None and failed is not None:
                wait = self._backoff(number - 1)
                asked = retry_after(last.headers) if isinstance(last, RateLimited) else None
                if asked is not None and slot.deployment_key == failed.deployment_key:
                    wait = max(wait, asked)
                if wait >= remaining:  # no time left to wait for: give this group up now
                    break
                await self._wait(wait, failed.deployment.provider, last, ctx)
            tried.add(slot.deployment_key)
            try:
                return await self._attempt(slot, events, ctx, attempt, deadline), slot.job
            except GatewayError as exc:
                self._count_failure(slot, exc, ctx)
                if not exc.retryable or events.sent:
                    raise
                last, failed = exc, slot
        if last is None:
            raise UpstreamTimeout(
                f"{group.model} did not finish within {self.timeout_seconds:g} s.",
                origin="provider",
            )
        raise last

    def _backoff(self, retry: int) -> float:
        policy = self.policy
        return backoff_delay(
            retry, policy.backoff_base_seconds, policy.backoff_max_seconds, self.rand
        )

    async def _wait(
        self, seconds: float, provider: str, error: GatewayError, ctx: RequestContext
    ) -> None:
        metrics.RETRIES.labels(provider, metrics.error_label(error)).inc()
        ctx.retries += 1
        await self.sleep(seconds)

    async def _attempt(
        self,
        slot: Slot,
        events: WatchedEvents,
        ctx: RequestContext,
        attempt: Attempt,
        deadline: float,
    ) -> EditResult:
        deployment, job = slot.deployment, slot.job
        remaining = deadline - self.clock()
        # Queued providers enforce their deployment's timeout themselves (and cancel the job
        # upstream when it passes): a little grace lets their own, clearer, error come first.
        # This cut is the backstop for the others.
        own = deployment.timeout_seconds
        budget = min(own + min(ATTEMPT_GRACE_SECONDS, own / 4), remaining)
        ctx.attempts += 1
        ctx.provider = deployment.provider
        ctx.deployment = deployment.name
        ctx.model = job.card.id
        balancer = self.router.balancer
        balancer.started(deployment.key)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(budget):
                result = await attempt(job, deployment, events)
        except TimeoutError:
            whose = "the request's" if budget == remaining else f"deployment {deployment.name}'s"
            raise UpstreamTimeout(
                f"{job.card.id} did not finish within {whose} deadline of "
                f"{(self.timeout_seconds if budget == remaining else own):g} s.",
                origin="provider",
            ) from None
        except GatewayError:
            raise
        except Exception:
            log.exception(
                "provider %s failed unexpectedly",
                deployment.provider,
                extra={"request_id": job.request_id},
            )
            raise InternalError(
                f"{job.card.id} failed unexpectedly; the error is logged under request id "
                f"{job.request_id}."
            ) from None
        finally:
            ctx.upstream_seconds += time.perf_counter() - started
            balancer.ended(deployment.key)
        self.router.cooldowns.succeeded(deployment.key)
        return result

    def _count_failure(self, slot: Slot, error: GatewayError, ctx: RequestContext) -> None:
        """A failure that is the deployment's (not the request's) counts toward its cooldown."""
        deployment = slot.deployment
        if error.code == AUTH_FAILED:
            period = self.router.cooldowns.failed(deployment.key, at_once=True)
        elif error.retryable:
            asked = retry_after(error.headers) if isinstance(error, RateLimited) else None
            period = self.router.cooldowns.failed(deployment.key, retry_after=asked)
        else:
            return
        if period is not None:
            metrics.COOLDOWNS.labels(deployment.provider, deployment.name).inc()
            log.warning(
                "deployment cooling down",
                extra={
                    "request_id": slot.job.request_id,
                    "provider": deployment.provider,
                    "deployment": deployment.name,
                    "cooldown_seconds": round(period, 3),
                    "error_code": error.code,
                },
            )
