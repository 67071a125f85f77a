"""``EditResult`` -> OpenAI ``ImagesResponse`` JSON and stream events, serialized by orjson.

A body is a ``Body``: its length, known up front, and its pieces. Everything but the images is
serialized by orjson at once (a few hundred bytes); each image's base64 is produced in pieces of
about 1 MiB as the body is sent, straight from the provider's bytes (or sliced from the base64
string a provider handed over). So a response of four 40 MB images never exists in memory as
one 200 MB string, and no single step holds the event loop for more than a millisecond or so.
Images never pass through pydantic or the stdlib json module.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import orjson
import pybase64

from imagegate.core.images import MIME_TYPES
from imagegate.core.request import EditRequest
from imagegate.core.result import EditResult, ResultImage, Usage

# The values the stream events' schema allows; anything else is reported as "auto".
_EVENT_QUALITY = frozenset({"low", "medium", "high", "auto"})

_RAW_PIECE = 3 * 256 * 1024  # bytes of image per piece (a multiple of 3: no padding mid-way)
_TEXT_PIECE = _RAW_PIECE // 3 * 4  # the same piece as base64 text
# Stands where an image's base64 goes while the rest is serialized; random, so no text a
# client or provider wrote can be mistaken for it.
_SLOT = "@imagegate-b64-" + secrets.token_hex(8) + "-{}@"


def base64_length(image: ResultImage) -> int:
    if image.b64 is not None:
        return len(image.b64)
    assert image.data is not None
    return (len(image.data) + 2) // 3 * 4


def base64_pieces(image: ResultImage) -> Iterator[bytes]:
    """The image's base64, about 1 MiB at a time."""
    if isinstance(image.b64, memoryview):  # ASCII already, as the provider sent it
        view = image.b64
        for start in range(0, len(view), _TEXT_PIECE):
            yield cast(bytes, view[start : start + _TEXT_PIECE])  # sent as is, never copied
        return
    if image.b64 is not None:
        text = image.b64
        for start in range(0, len(text), _TEXT_PIECE):
            yield text[start : start + _TEXT_PIECE].encode("ascii")
        return
    assert image.data is not None
    view = memoryview(image.data)
    for start in range(0, len(view), _RAW_PIECE):
        yield pybase64.b64encode(view[start : start + _RAW_PIECE])


@dataclass(frozen=True, slots=True)
class Body:
    """A serialized body: ``length`` bytes, produced piece by piece by ``pieces()``."""

    head: bytes  # the JSON (or SSE frame) with a slot where each image's base64 goes
    images: tuple[ResultImage, ...]
    prefix: bytes = b""
    suffix: bytes = b""

    @property
    def length(self) -> int:
        slots = sum(len(_SLOT.format(i)) for i in range(len(self.images)))
        text = len(self.prefix) + len(self.head) - slots + len(self.suffix)
        return text + sum(base64_length(image) for image in self.images)

    def pieces(self) -> Iterator[bytes]:
        yield self.prefix
        at = 0
        for index, image in enumerate(self.images):
            slot = _SLOT.format(index).encode()
            found = self.head.index(slot, at)
            yield self.head[at:found]
            yield from base64_pieces(image)
            at = found + len(slot)
        yield self.head[at:]
        yield self.suffix

    def join(self) -> bytes:
        """The whole body at once: for small bodies, and tests."""
        return b"".join(self.pieces())


def _serialize(doc: dict[str, Any], images: list[ResultImage], **frame: bytes) -> Body:
    return Body(orjson.dumps(doc), tuple(images), **frame)


def usage_dict(usage: Usage, cost_usd: float) -> dict[str, Any]:
    """OpenAI's usage object plus ``cost`` in USD.

    OpenAI's schemas make the token counts and ``input_tokens_details`` required wherever
    ``usage`` appears, and clients that validate bodies refuse a ``usage`` without them, so
    they are always there: zeros for a provider that counts no tokens.
    """
    out: dict[str, Any] = {
        "input_tokens": usage.input_tokens or 0,
        "output_tokens": usage.output_tokens or 0,
        "total_tokens": usage.total_tokens or 0,
        "input_tokens_details": {
            "text_tokens": usage.input_text_tokens or 0,
            "image_tokens": usage.input_image_tokens or 0,
        },
    }
    if usage.output_image_tokens is not None or usage.output_text_tokens is not None:
        out["output_tokens_details"] = {
            "image_tokens": usage.output_image_tokens or 0,
            "text_tokens": usage.output_text_tokens or 0,
        }
    out["cost"] = {"total_cost": cost_usd, "currency": "USD"}
    return out


def _image_entry(slot: str, image: ResultImage, response_format: str) -> dict[str, Any]:
    if response_format == "url":
        entry: dict[str, Any] = {"url": f"data:{MIME_TYPES[image.format]};base64,{slot}"}
    else:
        entry = {"b64_json": slot}
    if image.revised_prompt:
        entry["revised_prompt"] = image.revised_prompt
    return entry


def images_body(result: EditResult, request: EditRequest, created: int) -> Body:
    response_format = request.output.response_format
    body: dict[str, Any] = {
        "created": created,
        "data": [
            _image_entry(_SLOT.format(index), image, response_format)
            for index, image in enumerate(result.images)
        ],
        "model": result.model,  # the card that served it (a route's target, a fallback)
        "provider": result.provider,
    }
    if result.images:
        sizes = {image.size for image in result.images}
        formats = {image.format for image in result.images}
        if len(sizes) == 1:
            body["size"] = sizes.pop()
        if len(formats) == 1:
            body["output_format"] = formats.pop()
    if result.quality:  # only what the provider says it applied, never the request echoed
        body["quality"] = result.quality
    if result.background:
        body["background"] = result.background
    body["usage"] = usage_dict(result.usage, result.cost_usd)
    return _serialize(body, result.images)


def images_response(result: EditResult, request: EditRequest, created: int) -> bytes:
    return images_body(result, request, created).join()


def _event_common(
    image: ResultImage, result_quality: str | None, background: str | None, created: int
) -> dict[str, Any]:
    quality = result_quality if result_quality in _EVENT_QUALITY else "auto"
    return {
        "b64_json": _SLOT.format(0),
        "created_at": created,
        "size": image.size,
        "quality": quality,
        "background": background or "auto",
        "output_format": image.format,
    }


def _event(event: str, payload: dict[str, Any], images: list[ResultImage]) -> Body:
    return _serialize(
        payload, images, prefix=b"event: " + event.encode() + b"\ndata: ", suffix=b"\n\n"
    )


def sse(event: str, payload: dict[str, Any]) -> bytes:
    return _event(event, payload, []).join()


def partial_event_body(image: ResultImage, index: int, request: EditRequest, created: int) -> Body:
    payload = {
        "type": "image_edit.partial_image",
        **_event_common(image, request.output.quality, request.output.background, created),
        "partial_image_index": index,
    }
    return _event("image_edit.partial_image", payload, [image])


def partial_event(image: ResultImage, index: int, request: EditRequest, created: int) -> bytes:
    return partial_event_body(image, index, request, created).join()


def completed_event_bodies(
    result: EditResult, request: EditRequest, created: int
) -> Iterator[Body]:
    """One ``image_edit.completed`` per image, each built only when it is about to be sent."""
    usage = usage_dict(result.usage, result.cost_usd)
    for image in result.images:
        payload = {
            "type": "image_edit.completed",
            **_event_common(image, result.quality, result.background, created),
            "usage": usage,
            # Who served it: a stream's headers left before the provider was chosen for good.
            "model": result.model,
            "provider": result.provider,
        }
        yield _event("image_edit.completed", payload, [image])


def completed_events(result: EditResult, request: EditRequest, created: int) -> list[bytes]:
    return [body.join() for body in completed_event_bodies(result, request, created)]


def error_event(error: dict[str, Any]) -> bytes:
    return sse("error", {"type": "error", **error})
