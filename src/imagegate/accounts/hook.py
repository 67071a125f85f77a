"""The accounts ``DispatchHook``: identity -> access (403) -> rates (429) -> budget hold (402).

Before dispatch it checks the key the request authenticated with (``RequestContext.key``, set
by ``api.deps.require_key``) against the model, then asks the store to take one request and n
images from the key's rates and to hold the request's ceiling cost against its budget, all in one
atomic step: a refused request takes nothing. After the answer it settles the hold to the true
cost (a failure releases it, unless the provider billed: ``GatewayError.billed_usd``) and
records the usage.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Literal

from imagegate import metrics
from imagegate.accounts.access import allowed
from imagegate.accounts.budgets import HOLD_MARGIN_SECONDS, budget_message, hold_for, period_window
from imagegate.accounts.keys import ANONYMOUS_KEY, KeyInfo
from imagegate.accounts.limits import retry_after_header
from imagegate.accounts.store import (
    Admission,
    StateStore,
    StateUnavailable,
    UsageEvent,
    clean_user,
)
from imagegate.core.errors import (
    GatewayError,
    InvalidRequest,
    PaymentRequired,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
)
from imagegate.core.result import EditResult
from imagegate.hooks import RequestContext
from imagegate.providers.base import EditJob

log = logging.getLogger("imagegate.accounts")
FailureMode = Literal["closed", "open"]
STATE_RETRY_AFTER_SECONDS = 5


class ThrottledLog:
    """One log line per ``every`` seconds at most, saying how many were held back: an outage
    hit by every request must not flood the logs."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last = -every
        self._suppressed = 0

    def error(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            self._suppressed += 1
            return
        self._last = now
        suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            message += f" ({suppressed} more like it in the last {self.every:g} s)"
        log.error(message, *args)


class AccountsHook:
    def __init__(
        self,
        store: StateStore,
        *,
        hold_seconds: float,
        failure: FailureMode = "closed",
        aliases_of: Callable[[str], Iterable[str]] = lambda model_id: (),
    ) -> None:
        self.store = store
        self.aliases_of = aliases_of
        self.hold_seconds = hold_seconds + HOLD_MARGIN_SECONDS
        self.failure = failure
        self.outage_log = ThrottledLog()

    async def before_dispatch(self, ctx: RequestContext, job: EditJob) -> None:
        key = ctx.key or ANONYMOUS_KEY
        ctx.key = key
        model = job.card.id
        sent = job.route or job.request.model  # a route's jobs carry their target's id
        names = (model, sent, *self.aliases_of(model))
        if not allowed(key.models, *names):
            metrics.EDITS_REFUSED.labels("model_not_allowed").inc()
            raise PermissionDenied(
                f"This key may not use the model {sent!r}"
                + (f" ({model})" if sent != model else "")
                + "; GET /v1/models lists the models it may use.",
                param="model",
                code="model_not_allowed",
            )
        if key.master:
            return  # no rates, no budget: usage is still recorded after the answer
        n = job.request.n
        if key.images_per_minute is not None and n > key.images_per_minute:
            metrics.EDITS_REFUSED.labels("rate_limit_images").inc()
            raise InvalidRequest(
                f"This request asks for {n} images, more than the key's limit of "
                f"{key.images_per_minute} images per minute; ask for fewer.",
                param="n",
                code="n_above_rate_limit",
            )
        window = period_window(key.period)
        hold = hold_for(job) if key.budget_usd is not None else 0.0
        admission = Admission(
            key=key.name,
            rpm=key.rpm,
            images_per_minute=key.images_per_minute,
            images=n,
            budget_usd=key.budget_usd,
            window=window,
            hold_usd=hold,
            hold_seconds=self.hold_seconds,
            hold_id=ctx.request_id + ":" + uuid.uuid4().hex[:8],
        )
        try:
            verdict = await self.store.admit(admission)
        except StateUnavailable as exc:
            metrics.REDIS_ERRORS.labels("admit").inc()
            if self.failure == "open":
                self.outage_log.error(
                    "shared state unavailable, admitting without limits or budget "
                    "(IMAGEGATE_REDIS_FAILURE=open): %s",
                    exc,
                )
                return
            self.outage_log.error("shared state unavailable, refusing edits (503): %s", exc)
            metrics.EDITS_REFUSED.labels("state_unavailable").inc()
            raise ServiceUnavailable(
                "The gateway cannot reach its shared state store, so it cannot check this "
                "key's limits and budget; try again shortly.",
                code="state_unavailable",
                headers={"Retry-After": str(STATE_RETRY_AFTER_SECONDS)},
            ) from None
        if verdict.refused == "budget":
            assert key.budget_usd is not None
            metrics.EDITS_REFUSED.labels("budget_exceeded").inc()
            raise PaymentRequired(
                budget_message(key.budget_usd, window, verdict.spent, verdict.held, hold),
                code="budget_exceeded",
            )
        if verdict.refused is not None:
            metrics.EDITS_REFUSED.labels(f"rate_limit_{verdict.refused}").inc()
            retry = retry_after_header(verdict.retry_after)
            what = (
                f"{key.rpm} requests per minute"
                if verdict.refused == "rpm"
                else f"{key.images_per_minute} images per minute ({n} asked)"
            )
            raise RateLimited(
                f"Rate limit reached for this key: {what}. Try again in {retry} s.",
                code="rate_limit_exceeded",
                headers={"Retry-After": retry},
            )
        ctx.hold = verdict.hold

    async def after_answer(
        self, ctx: RequestContext, job: EditJob, outcome: EditResult | GatewayError
    ) -> None:
        key: KeyInfo = ctx.key or ANONYMOUS_KEY
        if isinstance(outcome, EditResult):
            cost, images, error = max(0.0, outcome.cost_usd), len(outcome.images), False
        else:
            cost, images, error = max(0.0, outcome.billed_usd or 0.0), 0, True
        hold, ctx.hold = ctx.hold, None
        if hold is not None and cost > hold.amount + 1e-9:
            # Only a provider billing past its own published figures gets here (the hold is the
            # most those allow): the budget records what was billed, and this says why it moved.
            log.warning(
                "%s billed $%.8f, above the $%.8f held for it",
                job.card.id,
                cost,
                hold.amount,
                extra={"request_id": job.request_id},
            )
        event = UsageEvent(
            key=key.name,
            model=job.card.id,
            user=clean_user(job.request.user),
            images=images,
            cost_usd=cost,
            error=error,
            day=datetime.now(UTC).date(),
        )
        if cost > 0:
            metrics.KEY_SPEND.labels(key.name).inc(cost)
        try:
            await self.store.finish(hold, cost, event)
        except StateUnavailable as exc:
            metrics.REDIS_ERRORS.labels("finish").inc()
            # The hold expires on its own; this spend is lost to the budget (and logged).
            self.outage_log.error(
                "shared state unavailable, spend of $%.6f for key %s not recorded: %s",
                cost,
                key.name,
                exc,
            )
