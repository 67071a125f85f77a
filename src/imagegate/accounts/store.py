"""Where rate windows, budget holds, spend and usage live: the ``StateStore`` protocol.

Two implementations: ``memory.MemoryStore`` (one process; bounded maps) and
``redis.RedisStore`` (shared by every replica; Lua scripts, one round trip to admit and one to
finish). A store that cannot answer raises ``StateUnavailable``; the hook decides what the
client gets (``IMAGEGATE_REDIS_FAILURE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol

from imagegate.accounts.budgets import PeriodWindow

Refusal = Literal["rpm", "images", "budget"]
OTHER_USER = "(other)"  # users past the per-period row cap are counted together
MAX_USAGE_ROWS = 10_000  # (key, model, user) rows kept per period
DAY_TTL_SECONDS = 100 * 86_400  # daily aggregates: start/end reach back 100 days
MONTH_TTL_SECONDS = 400 * 86_400


class StateUnavailable(Exception):
    """The shared state could not be read or written (Redis down, timed out)."""


@dataclass(frozen=True, slots=True)
class Admission:
    """What one request asks of its key's limits and budget."""

    key: str
    rpm: int | None
    images_per_minute: int | None
    images: int  # n: what the images-per-minute rate counts
    budget_usd: float | None
    window: PeriodWindow
    hold_usd: float
    hold_seconds: float  # the hold stops counting after this long
    hold_id: str


@dataclass(frozen=True, slots=True)
class Hold:
    key: str
    window: PeriodWindow
    hold_id: str
    amount: float


@dataclass(frozen=True, slots=True)
class Verdict:
    hold: Hold | None = None  # admitted with a budget: settle this
    refused: Refusal | None = None
    retry_after: float = 0.0
    spent: float = 0.0
    held: float = 0.0

    @property
    def admitted(self) -> bool:
        return self.refused is None


@dataclass(frozen=True, slots=True)
class UsageEvent:
    key: str
    model: str
    user: str
    images: int  # returned to the client (0 on failure)
    cost_usd: float  # what the key was charged
    error: bool
    day: date


@dataclass(slots=True)
class UsageRow:
    key: str
    model: str
    user: str
    requests: int = 0
    images: int = 0
    errors: int = 0
    cost_usd: float = 0.0

    def add(self, other: UsageRow) -> None:
        self.requests += other.requests
        self.images += other.images
        self.errors += other.errors
        self.cost_usd += other.cost_usd


@dataclass(frozen=True, slots=True)
class UsageQuery:
    period_ids: tuple[str, ...]  # one or more aggregates to add up (days of a start/end range)
    key: str | None = None


def usage_ids(day: date) -> tuple[str, str, str]:
    """The aggregates one request adds to: its day, its month, and the total."""
    return f"day:{day:%Y-%m-%d}", f"month:{day:%Y-%m}", "total"


def clean_user(user: str | None) -> str:
    """A user as a row label: tabs and line breaks out (they separate fields), or ``-``."""
    if not user:
        return "-"
    return "".join(" " if ch in "\t\r\n" else ch for ch in user)[:256]


class StateStore(Protocol):
    async def admit(self, admission: Admission) -> Verdict:
        """Check the rates and the budget, and take them, atomically: all or nothing."""
        ...

    async def finish(self, hold: Hold | None, cost_usd: float, event: UsageEvent) -> None:
        """Settle the hold to the true cost (0 releases it all) and record the usage."""
        ...

    async def spent(self, key: str, window: PeriodWindow) -> tuple[float, float]:
        """A budget's (spent, held) now."""
        ...

    async def usage(self, query: UsageQuery) -> list[UsageRow]: ...

    async def aclose(self) -> None: ...
