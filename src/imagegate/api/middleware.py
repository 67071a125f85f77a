"""The outermost layer of every request: its id, its log line, what it holds, and a last guard
against crashes.

A pure ASGI middleware (not ``BaseHTTPMiddleware``) so streamed bodies pass through untouched.
It owns the request's ``MemoryLease`` (``scope["state"]["lease"]``): the images' blobs and the
memory they hold are given back here, once the whole exchange (a stream included) is over.
It also records every request's metrics (``imagegate.metrics``): count, duration, in flight.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagegate import metrics
from imagegate.core.errors import InternalError
from imagegate.core.memory import MemoryGate, MemoryLease
from imagegate.hooks import RequestContext

log = logging.getLogger("imagegate.access")
crash_log = logging.getLogger("imagegate.error")

_PROBES = frozenset({"/healthz", "/readyz"})
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex


def request_log(scope: Scope) -> dict[str, Any]:
    """Fields a route adds to this request's log line (model, provider, images, cost)."""
    state: dict[str, Any] = scope.setdefault("state", {})
    fields: dict[str, Any] = state.setdefault("log", {})
    return fields


def request_context(scope: Scope) -> RequestContext:
    context: RequestContext = scope["state"]["context"]
    return context


def request_lease(scope: Scope) -> MemoryLease:
    lease: MemoryLease = scope["state"]["lease"]
    return lease


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, memory: MemoryGate) -> None:
        self.app = app
        self.memory = memory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _CLIENT_ID.match(incoming) else new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        lease = state["lease"] = self.memory.lease()
        context = state["context"] = RequestContext(request_id)
        started = context.started
        status = 0
        metrics.IN_FLIGHT.inc()
        metrics.MEMORY_HELD.set(self.memory.held)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                if context.attempts and "text/event-stream" not in headers.get("content-type", ""):
                    # What the gateway added around the provider, as the answer starts (a stream
                    # starts before the provider works, so it has only the log line's figure).
                    headers["x-imagegate-overhead-ms"] = str(context.overhead_ms())
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # The client went away mid-upload: nobody is left to answer. 499 as nginx logs it.
            status = status or 499
        except Exception:
            crash_log.exception("unhandled error", extra={"request_id": request_id})
            if status == 0:
                error = InternalError(
                    "The gateway failed unexpectedly; the error is logged "
                    f"under request id {request_id}."
                )
                body = error.to_json()
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": error.status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
        finally:
            lease.close()
            elapsed = time.perf_counter() - started
            metrics.IN_FLIGHT.dec()
            metrics.MEMORY_HELD.set(self.memory.held)
            metrics.observe_request(scope.get("method"), _template(scope), status, elapsed)
            fields = state.get("log", {})
            if context.key is not None:
                fields["key"] = context.key.name  # the key's name, never the key
            if lease.peak:
                fields["held_bytes"] = lease.peak  # request bytes it kept in memory at most
            if context.attempts:
                fields["upstream_ms"] = round(context.upstream_seconds * 1000, 2)
                fields["overhead_ms"] = context.overhead_ms()
                fields["attempts"] = context.attempts
                fields["retries"] = context.retries
                fields["deployment"] = context.deployment
                fields["provider"] = context.provider
                fields["served_model"] = context.model
                if context.fallback_from is not None:
                    fields["fallback_from"] = context.fallback_from
            client = scope.get("client")
            # Probes come every few seconds from every load balancer; keep them out of info.
            level = logging.DEBUG if scope.get("path") in _PROBES else logging.INFO
            log.log(
                level,
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "client": client[0] if client else None,
                    "status": status,
                    "latency_ms": round(elapsed * 1000, 2),
                    **fields,
                },
            )


def _template(scope: Scope) -> str:
    """The matched route's path template (``/v1/models/{model}``), never the raw path: a client
    cannot mint new label values. Every unmatched path is one value."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else metrics.UNMATCHED


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None
