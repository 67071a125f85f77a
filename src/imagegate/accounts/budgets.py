"""Budget periods, what a request holds, and the words of a refusal.

Before dispatch a request HOLDS the most it can cost (``hold_for``); it is admitted only while
``spent + held + hold <= budget``, checked and reserved in one atomic step by the store. After
the answer the hold is settled: the true cost is added to ``spent`` and the hold dropped. A hold
nobody settles (the process was killed) expires at the request's deadline plus a margin.
Periods: ``day`` and ``month`` are UTC calendar periods; ``total`` never resets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from imagegate.accounts.keys import Period
from imagegate.core.ceiling import cost_ceiling
from imagegate.providers.base import EditJob

HOLD_MARGIN_SECONDS = 60.0
_ADJECTIVE = {"day": "daily", "month": "monthly", "total": "total"}


@dataclass(frozen=True, slots=True)
class PeriodWindow:
    period: Period
    id: str  # "day:2026-12-04", "month:2026-12" or "total": part of the store's keys
    resets_at: datetime | None  # None: never

    def seconds_left(self, now: datetime) -> float | None:
        return None if self.resets_at is None else (self.resets_at - now).total_seconds()


def period_window(period: Period, now: datetime | None = None) -> PeriodWindow:
    now = now or datetime.now(UTC)
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        nxt = datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=UTC)
        return PeriodWindow(period, f"day:{start:%Y-%m-%d}", nxt)
    if period == "month":
        year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
        return PeriodWindow(period, f"month:{now:%Y-%m}", datetime(year, month, 1, tzinfo=UTC))
    return PeriodWindow(period, "total", None)


def hold_for(job: EditJob) -> float:
    """What a request holds against its key's budget: the most it can cost, whichever of its
    candidates (a route's targets, fallbacks) ends up serving it."""
    return max(0.0, *(cost_ceiling(candidate) for candidate in job.candidates()))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def budget_message(
    budget: float, window: PeriodWindow, spent: float, held: float, needed: float
) -> str:
    used = f"${spent:,.2f} used"
    if held > 0:
        used += f", ${held:,.2f} held by requests in progress"
    resets = f"; resets {iso(window.resets_at)}" if window.resets_at else "; it does not reset"
    state = "is spent" if spent + held >= budget else "cannot cover this request"
    return (
        f"The key's {_ADJECTIVE[window.period]} budget of ${budget:,.2f} {state} ({used}, "
        f"${needed:,.2f} needed for this request{resets})."
    )
