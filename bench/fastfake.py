"""A fast fake upstream for the overhead benchmark: it drains request bodies without parsing
them and answers prebuilt bytes, so the fake itself costs as little as possible.

One process, one loopback port, three provider shapes (what imagegate calls, see each adapter):

* OpenAI: ``POST .../images/edits`` answers a prebuilt ``ImagesResponse`` (a real base64 PNG of
  about 1.5 MB, so ~2 MB of JSON, and gpt-image usage tokens). When the first body chunk carries
  the multipart field ``stream=true``, it answers an event stream instead: one partial image
  and the completed image (the same PNG), as OpenAI's ``image_edit.*`` events.
* Gemini: ``POST /{version}/models/{model}:generateContent`` answers a candidate whose part is
  the same PNG as ``inlineData``, with ``usageMetadata``.
* fal (queued): ``POST /{owner}/{app}/...`` answers a queue handle; the first status poll says
  IN_PROGRESS (202), the next COMPLETED; the result lists ``/files/result.png`` on the origin
  the client called (its ``Host`` header: a proxy in between that keeps ``Host`` is followed).

``--latency-ms`` adds a fixed delay before every answer (a stand-in for the provider's work).

    .venv/bin/python bench/fastfake.py --port 9100 [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import itertools
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

RESULT_SIDE = 1024  # a 1024x1024 noise PNG: about 1.5 MB, 2 MB as base64
_STREAM_MARK = b'name="stream"\r\n\r\ntrue'
_HEAD_BYTES = 4096  # of each body, kept to read the form fields
_MAX_JOBS = 10_000  # queued jobs remembered at once; the oldest are dropped past it


def result_png(side: int = RESULT_SIDE) -> bytes:
    from PIL import Image

    image = Image.effect_noise((side, side), 60).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


class Bodies:
    """Every answer, built once."""

    def __init__(self, png: bytes) -> None:
        b64 = base64.b64encode(png).decode()
        self.png = png
        usage = {
            "input_tokens": 1338,
            "input_tokens_details": {"image_tokens": 1323, "text_tokens": 15},
            "output_tokens": 4160,
            "output_tokens_details": {"image_tokens": 4160, "text_tokens": 0},
            "total_tokens": 5498,
        }
        self.openai = orjson.dumps(
            {
                "created": 1764806400,
                "data": [{"b64_json": b64}],
                "background": "opaque",
                "output_format": "png",
                "quality": "high",
                "size": "1024x1024",
                "usage": usage,
            }
        )
        partial = {"type": "image_edit.partial_image", "b64_json": b64, "partial_image_index": 0}
        completed = {"type": "image_edit.completed", "b64_json": b64, "usage": usage}
        self.openai_sse = (
            b"event: image_edit.partial_image\ndata: "
            + orjson.dumps(partial)
            + b"\n\nevent: image_edit.completed\ndata: "
            + orjson.dumps(completed)
            + b"\n\n"
        )
        self.gemini = orjson.dumps(
            {
                "candidates": [
                    {
                        "content": {
                            "role": "model",
                            "parts": [{"inlineData": {"mimeType": "image/png", "data": b64}}],
                        },
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": 1300,
                    "candidatesTokenCount": 1290,
                    "totalTokenCount": 2590,
                    "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
                },
                "modelVersion": "gemini-2.5-flash-image",
            }
        )


class FastFake:
    """The ASGI app: no framework, no parsing of bodies."""

    def __init__(self, bodies: Bodies, latency: float = 0.0) -> None:
        self.bodies = bodies
        self.latency = latency
        self.polls: dict[str, int] = {}
        self.ids = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        first = await _drain(receive)
        if self.latency:
            await asyncio.sleep(self.latency)
        path: str = scope["path"]
        method: str = scope["method"]
        if method == "POST" and path.endswith("/images/edits"):
            if _STREAM_MARK in first:
                await _answer(send, 200, self.bodies.openai_sse, b"text/event-stream")
            else:
                await _answer(send, 200, self.bodies.openai)
        elif method == "POST" and path.endswith(":generateContent"):
            await _answer(send, 200, self.bodies.gemini)
        elif method == "GET" and path == "/files/result.png":
            await _answer(send, 200, self.bodies.png, b"image/png")
        elif "/requests/" in path and method == "GET":
            await self._queue_read(scope, send, path)
        elif method == "POST" and path.count("/") >= 2:
            await self._submit(scope, send, path)
        else:
            await _answer(send, 404, b'{"detail":"Not Found"}')

    async def _submit(self, scope: Scope, send: Send, path: str) -> None:
        job = f"job-{next(self.ids)}"
        if len(self.polls) >= _MAX_JOBS:
            self.polls.pop(next(iter(self.polls)))
        self.polls[job] = 0
        app = "/".join(path.strip("/").split("/")[:2])
        base = f"{_origin(scope)}/{app}/requests/{job}"
        doc = {
            "status": "IN_QUEUE",
            "request_id": job,
            "response_url": base,
            "status_url": base + "/status",
            "cancel_url": base + "/cancel",
            "queue_position": 0,
        }
        await _answer(send, 200, orjson.dumps(doc))

    async def _queue_read(self, scope: Scope, send: Send, path: str) -> None:
        tail = path.split("/requests/", 1)[1]
        job, _, what = tail.partition("/")
        if job not in self.polls:
            await _answer(send, 404, b'{"detail":"Request not found"}')
            return
        if what == "status":
            self.polls[job] += 1
            if self.polls[job] < 2:
                await _answer(send, 202, b'{"status":"IN_PROGRESS","logs":null}')
            else:
                await _answer(send, 200, b'{"status":"COMPLETED","logs":null}')
            return
        del self.polls[job]
        image = {
            "url": f"{_origin(scope)}/files/result.png",
            "content_type": "image/png",
            "width": RESULT_SIDE,
            "height": RESULT_SIDE,
        }
        await _answer(send, 200, orjson.dumps({"images": [image], "prompt": "bench"}))


def _origin(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"host":
            return "http://" + value.decode("latin-1")
    host, port = scope["server"]
    return f"http://{host}:{port}"


async def _drain(receive: Receive) -> bytes:
    """Read the whole body, keeping only its first 4 KiB (where form fields come first, however
    the sender split them into writes: a client that writes each field apart is not mistaken
    for one that did not ask for a stream)."""
    head = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return head
        if len(head) < _HEAD_BYTES:
            head += bytes(message.get("body", b""))[: _HEAD_BYTES - len(head)]
        if not message.get("more_body", False):
            return head


async def _answer(
    send: Send, status: int, body: bytes, content_type: bytes = b"application/json"
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    app = FastFake(Bodies(result_png()), latency=args.latency_ms / 1000)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="uvloop",
        http="httptools",
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()
