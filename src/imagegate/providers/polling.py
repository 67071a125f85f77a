"""Waiting on a queued upstream job: poll with backoff, under a deadline, and cancel the job
upstream when the wait ends early.

Queued providers (fal, Black Forest Labs, Replicate) answer a submit with a job handle and
settle it later. ``poll_until_settled`` asks ``check`` again and again, sleeping ``first``,
then ``first * factor`` ... up to ``maximum`` seconds between asks, until ``check`` returns the
settled result. It ends early in two ways, and both cancel the upstream job through ``cancel``
(best effort, a few seconds at most, never masking why the wait ended):

- the deployment's deadline passes: ``UpstreamTimeout`` (504);
- the awaiting task is cancelled (the client went away, the service's own deadline, shutdown):
  the cancellation goes on after the job is cancelled, so nothing more is polled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from imagegate.core.errors import UpstreamTimeout

log = logging.getLogger("imagegate.upstream")
T = TypeVar("T")
CANCEL_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Backoff:
    first: float = 0.5
    factor: float = 1.5
    maximum: float = 5.0


async def poll_until_settled(
    check: Callable[[], Awaitable[T | None]],
    *,
    provider: str,
    deadline_seconds: float,
    cancel: Callable[[], Awaitable[object]] | None = None,
    backoff: Backoff = Backoff(),
) -> T:
    """``check()`` until it returns a result (None means "not yet"); see the module docstring."""
    delay = backoff.first
    try:
        async with asyncio.timeout(deadline_seconds):
            while True:
                result = await check()
                if result is not None:
                    return result
                await asyncio.sleep(delay)
                delay = min(delay * backoff.factor, backoff.maximum)
    except TimeoutError:
        await cancel_quietly(cancel, provider)
        raise UpstreamTimeout(
            f"{provider} did not finish the job within {deadline_seconds:g} s; it was cancelled.",
            origin="provider",
        ) from None
    except asyncio.CancelledError:
        await cancel_quietly(cancel, provider)
        raise


async def cancel_quietly(cancel: Callable[[], Awaitable[object]] | None, provider: str) -> None:
    """Ask the provider to drop the job; shielded so a cancelled caller still sends it."""
    if cancel is None:
        return
    try:
        await asyncio.shield(asyncio.wait_for(cancel(), CANCEL_SECONDS))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the job may be done already; the answer does not change
        log.warning(
            "upstream cancel failed", extra={"provider": provider, "error": type(exc).__name__}
        )
