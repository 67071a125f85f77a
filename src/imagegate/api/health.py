"""``/healthz`` (the process answers) and ``/readyz`` (it can serve edits). No auth on either."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from imagegate.api.errors import JsonBytes

router = APIRouter()


@router.get("/healthz", response_class=JsonBytes, include_in_schema=False)
async def healthz() -> Response:
    return JsonBytes(b'{"status":"ok"}')


@router.get("/readyz", response_class=JsonBytes, include_in_schema=False)
async def readyz(request: Request) -> Response:
    state = request.app.state
    if state.drain.draining:  # SIGTERM came: the balancer should stop sending requests here
        return JsonBytes(b'{"status":"draining"}', status_code=503)
    if not getattr(state, "ready", False):
        return JsonBytes(b'{"status":"starting"}', status_code=503)
    service = state.service
    body = {
        "status": "ready",
        "models": len(service.listed_cards()),
        "providers": sorted(provider.name for provider in service.providers),
    }
    return JsonBytes(orjson.dumps(body))
