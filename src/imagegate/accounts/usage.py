"""Usage reports: the store's (key, model, user) rows for a period, added up per key.

Pure: rows and budgets in, the JSON body of ``GET /v1/usage`` out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from imagegate.accounts.budgets import PeriodWindow, iso, period_window
from imagegate.accounts.keys import Period
from imagegate.accounts.store import DAY_TTL_SECONDS, UsageRow
from imagegate.core.errors import InvalidRequest

MAX_RANGE_DAYS = DAY_TTL_SECONDS // 86_400


def period_ids(
    period: Period, start: str | None, end: str | None, today: date | None = None
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The aggregates to add up, and how the report names its span."""
    today = today or datetime.now(UTC).date()
    if start is None and end is None:
        window = period_window(period, datetime.now(UTC))
        return (window.id,), {"period": period, "period_id": window.id}
    first = _date("start", start) if start else None
    last = _date("end", end) if end else today
    if first is None:
        raise InvalidRequest("end needs a start date too (YYYY-MM-DD).", param="start")
    if last < first:
        raise InvalidRequest("end is before start.", param="end")
    if (today - first).days >= MAX_RANGE_DAYS or (last - first).days >= MAX_RANGE_DAYS:
        raise InvalidRequest(
            f"start reaches back, or the range spans, more than {MAX_RANGE_DAYS} days; daily "
            "usage is kept that long (period=month and period=total cover longer spans).",
            param="start",
        )
    days = (last - first).days + 1
    ids = tuple(f"day:{first + timedelta(days=i):%Y-%m-%d}" for i in range(days))
    return ids, {"start": first.isoformat(), "end": last.isoformat()}


def _date(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(
            f"{name} must be a date as YYYY-MM-DD; got {value[:40]!r}.", param=name
        ) from None


def _counts(row: UsageRow) -> dict[str, Any]:
    return {
        "requests": row.requests,
        "images": row.images,
        "errors": row.errors,
        "cost_usd": round(row.cost_usd, 6),
    }


def _grouped(rows: Iterable[UsageRow], field: str) -> list[dict[str, Any]]:
    groups: dict[str, UsageRow] = {}
    for row in rows:
        name = getattr(row, field)
        groups.setdefault(name, UsageRow(row.key, name, name)).add(row)
    return [
        {field: name, **_counts(total)}
        for name, total in sorted(groups.items(), key=lambda item: -item[1].cost_usd)
    ]


def budget_block(budget: float, window: PeriodWindow, spent: float, held: float) -> dict[str, Any]:
    return {
        "budget_usd": budget,
        "period": window.period,
        "period_id": window.id,
        "spent_usd": round(spent, 6),
        "held_usd": round(held, 6),
        "remaining_usd": round(max(0.0, budget - spent - held), 6),
        "resets_at": iso(window.resets_at) if window.resets_at else None,
    }


def report(
    rows: list[UsageRow], span: Mapping[str, Any], budgets: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    by_key: dict[str, list[UsageRow]] = {}
    for row in rows:
        by_key.setdefault(row.key, []).append(row)
    for name in budgets:
        by_key.setdefault(name, [])
    keys = []
    everything = UsageRow("", "", "")
    for name in sorted(by_key):
        total = UsageRow(name, "", "")
        for row in by_key[name]:
            total.add(row)
        everything.add(total)
        entry: dict[str, Any] = {"key": name, **_counts(total)}
        if name in budgets:
            entry["budget"] = budgets[name]
        entry["models"] = _grouped(by_key[name], "model")
        entry["users"] = _grouped(by_key[name], "user")
        keys.append(entry)
    return {"object": "usage", **span, "total": _counts(everything), "keys": keys}
