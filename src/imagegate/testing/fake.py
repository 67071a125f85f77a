"""What every strict fake upstream shares: a record of the calls it got, faults it can be told
to answer with, and images that really decode.

A fake is an ASGI app (Starlette) that checks what the real provider checks and, on any
mismatch, answers the way the real provider does. Tests (and a developer working offline) steer
it through a small control API under ``/__fake__`` that the real provider does not have:

    POST   /__fake__/faults   {"fault": "rate_limit", "count": 1, "retry_after": 7}
    GET    /__fake__/calls    what it received: method, path, query, content type, summary
    DELETE /__fake__/calls    forget them (and any pending faults)

Faults every fake speaks, each in its provider's own shapes: ``rate_limit`` (with or without
``retry_after``), ``server_error`` (500), ``unavailable`` (503), ``timeout`` (waits
``delay`` seconds before answering), ``malformed`` (a 200 that is not JSON), ``truncated`` (a
200 whose JSON is cut short), ``no_image`` (a success without an image), ``moderation`` (the
provider's content-policy refusal) and ``bad_key`` (the provider refusing the gateway's key).
A fake whose provider has several shapes of one fault picks one by ``variant`` (Gemini's
``moderation`` is a ``finishReason`` or a ``promptFeedback.blockReason``); without one, it
answers with its most common shape.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson
from PIL import Image, ImageOps
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

FaultName = Literal[
    "rate_limit",
    "server_error",
    "unavailable",
    "timeout",
    "malformed",
    "truncated",
    "no_image",
    "moderation",
    "bad_key",
]
FAULTS: frozenset[str] = frozenset(FaultName.__args__)  # type: ignore[attr-defined]


@dataclass(slots=True)
class Fault:
    fault: FaultName
    count: int = 1
    retry_after: int | None = None
    delay: float = 0.0
    variant: str | None = None  # which of the provider's shapes of this fault


@dataclass(slots=True)
class Call:
    """One request the fake received, as a test wants to check it (never image bytes)."""

    method: str
    path: str
    query: str
    content_type: str
    summary: dict[str, Any] = field(default_factory=dict)
    # The gateway's request id, where the provider takes one (OpenAI's X-Client-Request-Id,
    # Azure's x-ms-client-request-id).
    request_id: str | None = None


def json_response(
    doc: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(doc), status, headers, media_type="application/json")


class FakeUpstream:
    """Base of every provider fake: subclasses add their routes with ``route``."""

    name = "fake"

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.calls: list[Call] = []
        self.faults: deque[Fault] = deque()
        self.app = Starlette(
            routes=[
                Route("/__fake__/faults", self._add_fault, methods=["POST"]),
                Route("/__fake__/calls", self._calls, methods=["GET", "DELETE"]),
                *self.routes(),
            ]
        )

    def routes(self) -> list[Route]:
        return []

    # -- the control API -----------------------------------------------------------------------
    async def _add_fault(self, request: Request) -> Response:
        doc = orjson.loads(await request.body())
        if doc.get("fault") not in FAULTS:
            return json_response({"error": f"unknown fault {doc.get('fault')!r}"}, 400)
        self.faults.append(Fault(**doc))
        return json_response({"queued": len(self.faults)})

    async def _calls(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.calls.clear()
            self.faults.clear()
            return json_response({"cleared": True})
        return json_response([asdict(call) for call in self.calls])

    # -- for subclasses ------------------------------------------------------------------------
    def record(self, request: Request, **summary: Any) -> None:
        self.calls.append(
            Call(
                request.method,
                request.url.path,
                request.url.query,
                request.headers.get("content-type", ""),
                summary,
                request.headers.get("x-client-request-id")
                or request.headers.get("x-ms-client-request-id"),
            )
        )

    def next_fault(self) -> Fault | None:
        if not self.faults:
            return None
        fault = self.faults[0]
        fault.count -= 1
        if fault.count <= 0:
            self.faults.popleft()
        return fault

    async def wait_out(self, fault: Fault) -> None:
        await asyncio.sleep(fault.delay or 30.0)


def decode_image(data: bytes) -> Image.Image | None:
    """The image in ``data``, fully decoded, or None if it is not one a provider would take."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            if opened.format not in ("PNG", "JPEG", "WEBP"):
                return None
            return opened.copy()
    except Exception:
        return None


def result_png(source: Image.Image | None, size: tuple[int, int] | None = None) -> bytes:
    """What the fake 'edits': the first input inverted (so a test can tell it passed through),
    at ``size`` if given; a plain image when there is no input."""
    image = source.convert("RGB") if source is not None else Image.new("RGB", (64, 64), "teal")
    image = ImageOps.invert(image)
    if size is not None and size != image.size:
        image = image.resize(size)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
