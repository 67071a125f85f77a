"""Waits between attempts: exponential backoff with full jitter, and Retry-After."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping


def backoff_delay(
    retry: int, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before retry number ``retry`` (0 for the first): uniformly anywhere between 0
    and ``base * 2**retry`` (at most ``cap``). Full jitter keeps many clients that failed
    together from coming back together."""
    ceiling = min(cap, base * float(2.0 ** min(retry, 30)))
    return rand() * ceiling


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The seconds an error's Retry-After asks for (its headers as the gateway answers them)."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
