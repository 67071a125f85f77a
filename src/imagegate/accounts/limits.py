"""Rate limits as GCRA (the generic cell rate algorithm): one timestamp per key and rate.

A limit of L per minute spaces units ``T = 60/L`` seconds apart and allows a burst of all L at
once. The state is the theoretical arrival time ``tat``; a request of ``cost`` units (1 request,
or n images) is admitted when ``max(tat, now) + cost*T - 60 <= now``, and then ``tat`` moves to
``max(tat, now) + cost*T``. Unlike a fixed window it never admits 2L across a window edge, and
unlike a sliding log it keeps one number, not one entry per request. The same arithmetic runs in
``memory.py`` and in the Redis Lua script.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class RateCheck:
    allowed: bool
    tat: float  # the new arrival time when allowed, the old one otherwise
    retry_after: float  # seconds until the request would be admitted (0 when allowed)


def gcra(
    tat: float, now: float, cost: int, limit: int, window: float = WINDOW_SECONDS
) -> RateCheck:
    interval = window / limit
    base = max(tat, now)
    new_tat = base + cost * interval
    allow_at = new_tat - window
    if allow_at <= now:
        return RateCheck(True, new_tat, 0.0)
    return RateCheck(False, tat, allow_at - now)


def retry_after_header(seconds: float) -> str:
    """An integer Retry-After that is never early: ceil, and at least 1."""
    return str(max(1, math.ceil(seconds - 1e-9)))
