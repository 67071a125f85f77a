"""Waits between attempts: exponential backoff with full jitter (Retry-After is read at the
upstream boundary, ``providers/upstream.retry_after``)."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(
    retry: int, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before retry number ``retry`` (0 for the first): uniformly anywhere between 0
    and ``base * 2**retry`` (at most ``cap``). Full jitter keeps many clients that failed
    together from coming back together."""
    ceiling = min(cap, base * float(2.0 ** min(retry, 30)))
    return rand() * ceiling
