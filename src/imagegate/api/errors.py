"""Rendering every refusal as OpenAI's error envelope, FastAPI's own errors included."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from imagegate.api.deps import require_key
from imagegate.api.middleware import request_log
from imagegate.core.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    NotFound,
)


class JsonBytes(Response):
    media_type = "application/json"


def error_response(error: GatewayError) -> Response:
    return JsonBytes(error.to_json(), status_code=error.status, headers=error.headers or None)


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    fields = request_log(request.scope)
    fields["error_code"] = exc.code
    fields["error_origin"] = exc.origin
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query"))
    message = f"{where}: {first.get('msg', 'invalid value')}" if where else "Invalid request."
    return error_response(InvalidRequest(message, param=where or None))


class _StatusError(GatewayError):
    """A routing-level refusal (unknown path, wrong method) with Starlette's status."""

    error_type = "invalid_request_error"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    path = request.url.path
    if path == "/v1" or path.startswith("/v1/"):
        # The key comes first under /v1, on paths no route matched too: without it a caller
        # learns nothing, not even which paths exist.
        try:
            await require_key(request, request.app.state.settings)
        except AuthenticationFailed as refused:
            return await _gateway_error(request, refused)
    if exc.status_code == 404:
        error: GatewayError = NotFound(
            f"There is no {request.method} {request.url.path} on this gateway; the API is "
            "under /v1 (POST /v1/images/edits, GET /v1/models).",
            code="unknown_url",
        )
    else:
        error = _StatusError(str(exc.detail), code=f"http_{exc.status_code}")
    response = error_response(error)
    response.status_code = exc.status_code
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
