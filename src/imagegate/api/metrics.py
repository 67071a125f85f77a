"""``GET /metrics``: Prometheus' text exposition format, outside ``/v1`` like the probes.

With ``IMAGEGATE_MASTER_KEY`` set it takes the same bearer key as ``/v1`` (give it to the
scraper; a virtual key is refused, 403), unless ``IMAGEGATE_METRICS_PUBLIC`` opens it; without a
master key it is open, as the whole gateway is (which then serves loopback only unless told
otherwise).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.responses import Response

from imagegate import metrics
from imagegate.api.deps import SettingsDep, require_master

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics_text(request: Request, settings: SettingsDep) -> Response:
    if not settings.metrics_public:
        await require_master(request, settings)
    # Multiprocess mode reads every worker's files: off the event loop.
    if metrics.multiprocess_dir():
        body = await asyncio.to_thread(metrics.render)
    else:
        body = metrics.render()
    return Response(body, media_type=metrics.CONTENT_TYPE)
