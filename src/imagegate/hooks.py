"""The seam around every dispatch: a hook before it and a record after the answer.

The edit service calls each ``DispatchHook`` on both the JSON and the streaming path, never the
routes: ``before_dispatch`` once the request has passed its card (where identity, access, rate
limits and budget holds attach: raise a ``GatewayError`` -- 401, 402, 403, 429 -- to refuse), and
``after_answer`` once the edit has ended, with the priced result or the error (where usage,
spend, budget settling and metrics attach). A ``RequestContext`` carries who is asking and what
the request cost in time through both.

A hook that fails after the answer is logged and never changes what the client gets.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from imagegate.core.errors import GatewayError
from imagegate.core.result import EditResult
from imagegate.providers.base import EditJob

if TYPE_CHECKING:
    from imagegate.accounts.keys import KeyInfo
    from imagegate.accounts.store import Hold


@dataclass(slots=True)
class RequestContext:
    request_id: str
    key: KeyInfo | None = None  # the key that authenticated the request (None: no auth)
    user: str | None = None  # the client's `user` field
    started: float = field(default_factory=time.perf_counter)
    upstream_seconds: float = 0.0  # time spent waiting on the provider (all attempts)
    attempts: int = 0
    provider: str | None = None  # who served it, once known
    metadata: Mapping[str, str] | None = None  # the client's `metadata` object
    hold: Hold | None = None  # the budget hold taken before dispatch, until it is settled

    # Routing: the deployment and card that served (or last tried) it, how many attempts were
    # retries, and the model it fell back from (None: it did not fall back).
    deployment: str | None = None
    model: str | None = None
    retries: int = 0
    fallback_from: str | None = None

    @property
    def key_name(self) -> str | None:
        return self.key.name if self.key is not None else None

    def overhead_ms(self, now: float | None = None) -> float:
        """What the gateway itself added so far: elapsed time minus time upstream."""
        elapsed = (now if now is not None else time.perf_counter()) - self.started
        return round(max(0.0, elapsed - self.upstream_seconds) * 1000, 2)


class DispatchHook(Protocol):
    async def before_dispatch(self, ctx: RequestContext, job: EditJob) -> None: ...

    async def after_answer(
        self, ctx: RequestContext, job: EditJob, outcome: EditResult | GatewayError
    ) -> None: ...
