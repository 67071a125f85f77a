"""``POST /v1/images/edits``: parse either body shape, run the edit, answer JSON or SSE."""

from __future__ import annotations

import re
import time

from fastapi import APIRouter, Request
from starlette.responses import Response

from imagegate.api.bodies import json_response
from imagegate.api.deps import Authorized, FetcherDep, ServiceDep, SettingsDep
from imagegate.api.disconnect import unless_disconnected
from imagegate.api.errors import JsonBytes
from imagegate.api.middleware import request_context, request_lease, request_log
from imagegate.api.openapi import EDIT_REQUEST_BODY, EDIT_RESPONSES
from imagegate.api.streaming import stream_response
from imagegate.core.errors import GatewayError, InvalidRequest
from imagegate.core.response import images_body
from imagegate.core.result import EditResult
from imagegate.hooks import RequestContext
from imagegate.providers.base import DiscardEvents
from imagegate.wire.body import read_edit_request
from imagegate.wire.pacing import paced

router = APIRouter()
_LENGTH = re.compile(r"[0-9]{1,20}")


@router.post(
    "/v1/images/edits",
    dependencies=[Authorized],
    openapi_extra={"requestBody": EDIT_REQUEST_BODY},
    responses=EDIT_RESPONSES,
    summary="Edit images (OpenAI-compatible)",
    response_class=JsonBytes,
)
async def create_image_edit(
    request: Request, service: ServiceDep, settings: SettingsDep, fetcher: FetcherDep
) -> Response:
    fields = request_log(request.scope)
    edit = await read_edit_request(
        request.headers.get("content-type", ""),
        _content_length(request),
        paced(request.stream(), settings.body_pace),
        limits=settings.limits,
        lease=request_lease(request.scope),
        fetcher=fetcher if settings.fetch_enabled else None,
        default_model=settings.default_model,
        precheck=service.precheck,
    )
    job = service.prepare(edit, request.state.request_id)
    fields.update(
        model=job.card.id,
        images=len(edit.images),
        image_bytes=edit.image_bytes,
        n=edit.n,
        stream=edit.stream,
        user=edit.user,
    )
    if edit.metadata:
        fields["metadata"] = dict(edit.metadata)
    created = int(time.time())
    ctx = request_context(request.scope)
    ctx.user = edit.user
    ctx.metadata = edit.metadata

    def record(outcome: EditResult | GatewayError) -> None:
        if isinstance(outcome, GatewayError):  # a stream that failed after it began
            fields.update(error_code=outcome.code, error_origin=outcome.origin)
            return
        fields.update(
            provider=outcome.provider, cost_usd=outcome.cost_usd, output_images=len(outcome.images)
        )

    if job.route is not None:
        fields["route"] = job.route
    if job.unfit:  # candidates left out because they cannot honour this request
        fields["unfit"] = list(job.unfit)
    if edit.stream:
        await service.admit(job, ctx)  # refused here, it is a 4xx, not an error event
        response = stream_response(
            service, job, created, settings.stream_keepalive_seconds, record, ctx
        )
        # The headers leave before the provider is chosen for good; they are sure only when
        # one provider can serve it. The completed events say who did, in any case.
        providers = {candidate.card.provider for candidate in job.candidates()}
        if len(providers) == 1:
            response.headers["x-imagegate-provider"] = job.card.provider
        if not job.fallbacks:
            response.headers["x-imagegate-model"] = job.card.id
        return response
    result = await unless_disconnected(request.receive, service.run(job, DiscardEvents(), ctx))
    record(result)
    return json_response(images_body(result, edit, created), headers=served_headers(result, ctx))


def served_headers(result: EditResult, ctx: RequestContext) -> dict[str, str]:
    """Which card, provider and deployment (the operator's name for it) served the edit."""
    headers = {"x-imagegate-provider": result.provider, "x-imagegate-model": result.model}
    if ctx.deployment is not None:
        headers["x-imagegate-deployment"] = ctx.deployment
    if ctx.attempts:
        headers["x-imagegate-attempts"] = str(ctx.attempts)
    return headers


def _content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    # ASCII digits only: str.isdigit() takes '²', which int() refuses, and int() refuses
    # strings past 4300 digits; either was a 500.
    if not _LENGTH.fullmatch(raw.strip()):
        raise InvalidRequest(
            "The Content-Length header is not a number.", code="invalid_content_length"
        )
    return int(raw)
