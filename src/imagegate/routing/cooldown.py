"""Which deployments are resting after failures, per process.

A deployment cools down alone: after ``failures`` retryable failures in a row, or at once on a
429 that says Retry-After or on a refused key, it is skipped for a while (Retry-After if the
provider gave one, else ``seconds``; never past ``max_seconds``). A success ends the streak.
The state lives in this process only (each worker learns on its own; nothing is shared through
Redis): one dict entry per deployment, so it is bounded by the config.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _State:
    streak: int = 0
    until: float = 0.0


class Cooldowns:
    def __init__(
        self,
        failures: int = 3,
        seconds: float = 30.0,
        max_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.seconds = seconds
        self.max_seconds = max_seconds
        self.clock = clock
        self._states: dict[str, _State] = {}

    def cooling(self, key: str) -> bool:
        state = self._states.get(key)
        return state is not None and state.until > self.clock()

    def remaining(self, key: str) -> float:
        state = self._states.get(key)
        return max(0.0, state.until - self.clock()) if state is not None else 0.0

    def ends(self, key: str) -> float:
        state = self._states.get(key)
        return state.until if state is not None else 0.0

    def failed(
        self, key: str, *, retry_after: float | None = None, at_once: bool = False
    ) -> float | None:
        """Count a failure; the cooldown it started, in seconds, or None."""
        state = self._states.setdefault(key, _State())
        state.streak += 1
        if retry_after is not None and retry_after > 0:
            period = retry_after
        elif at_once or state.streak >= self.failures:
            period = self.seconds
        else:
            return None
        period = min(period, self.max_seconds)
        if period <= 0:
            return None
        state.until = max(state.until, self.clock() + period)
        state.streak = 0  # the next streak starts after the rest
        return period

    def succeeded(self, key: str) -> None:
        state = self._states.get(key)
        if state is not None:
            state.streak = 0
            state.until = 0.0
