"""``GET /v1/usage``: spend and counts per key, model and user for a period.

The master key (or an open gateway) sees any key or all; a virtual key sees itself only.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from imagegate import metrics
from imagegate.accounts.budgets import period_window
from imagegate.accounts.keys import KeyRing
from imagegate.accounts.store import StateStore, StateUnavailable, UsageQuery
from imagegate.accounts.usage import budget_block, period_ids, report
from imagegate.api.deps import Authorized, calling_key
from imagegate.api.errors import JsonBytes
from imagegate.api.openapi import USAGE_RESPONSES
from imagegate.core.errors import NotFound, PermissionDenied, ServiceUnavailable

router = APIRouter()


@router.get(
    "/v1/usage",
    dependencies=[Authorized],
    response_class=JsonBytes,
    responses=USAGE_RESPONSES,
    summary="Spend and counts per key, model and user",
)
async def get_usage(
    request: Request,
    period: Literal["day", "month", "total"] = "month",
    key: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> Response:
    caller = calling_key(request)
    keyring: KeyRing = request.app.state.keyring
    store: StateStore = request.app.state.store
    if caller is not None and not caller.master:
        if key is not None and key != caller.name:
            raise PermissionDenied(
                "A virtual key sees its own usage only; the master key sees every key's.",
                param="key",
                code="usage_not_allowed",
            )
        key = caller.name
    elif key is not None and key not in ("master", "anonymous") and key not in keyring.names:
        raise NotFound(f"There is no key named {key[:64]!r} on this gateway.", param="key")
    ids, span = period_ids(period, start, end)
    try:
        rows = await store.usage(UsageQuery(ids, key))
        budgets: dict[str, dict[str, Any]] = {}
        for name in [key] if key is not None else keyring.names:
            info = keyring.by_name(name)
            if info is not None and info.budget_usd is not None:
                window = period_window(info.period)
                spent, held = await store.spent(name, window)
                budgets[name] = budget_block(info.budget_usd, window, spent, held)
    except StateUnavailable:
        metrics.REDIS_ERRORS.labels("usage").inc()
        raise ServiceUnavailable(
            "The gateway cannot reach its shared state store to read usage; try again shortly.",
            code="state_unavailable",
            headers={"Retry-After": "5"},
        ) from None
    return JsonBytes(orjson.dumps(report(rows, span, budgets)))
