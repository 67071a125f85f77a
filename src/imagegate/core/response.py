"""``EditResult`` -> OpenAI ``ImagesResponse`` JSON and stream events, serialized by orjson.

Image bodies go from bytes to base64 once and into orjson once; they never pass through pydantic
or the stdlib json module.
"""

from __future__ import annotations

from typing import Any

import orjson

from imagegate.core.images import MIME_TYPES
from imagegate.core.request import EditRequest
from imagegate.core.result import EditResult, ResultImage, Usage

# The values the stream events' schema allows; anything else is reported as "auto".
_EVENT_QUALITY = frozenset({"low", "medium", "high", "auto"})


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


def _image_entry(image: ResultImage, response_format: str) -> dict[str, Any]:
    if response_format == "url":
        entry: dict[str, Any] = {"url": f"data:{MIME_TYPES[image.format]};base64,{image.base64()}"}
    else:
        entry = {"b64_json": image.base64()}
    if image.revised_prompt:
        entry["revised_prompt"] = image.revised_prompt
    return entry


def images_response(result: EditResult, request: EditRequest, created: int) -> bytes:
    body: dict[str, Any] = {
        "created": created,
        "data": [_image_entry(image, request.output.response_format) for image in result.images],
        "model": result.model,
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
    return orjson.dumps(body)


def _event_common(
    image: ResultImage, result_quality: str | None, background: str | None, created: int
) -> dict[str, Any]:
    quality = result_quality if result_quality in _EVENT_QUALITY else "auto"
    return {
        "b64_json": image.base64(),
        "created_at": created,
        "size": image.size,
        "quality": quality,
        "background": background or "auto",
        "output_format": image.format,
    }


def sse(event: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def partial_event(image: ResultImage, index: int, request: EditRequest, created: int) -> bytes:
    payload = {
        "type": "image_edit.partial_image",
        **_event_common(image, request.output.quality, request.output.background, created),
        "partial_image_index": index,
    }
    return sse("image_edit.partial_image", payload)


def completed_events(result: EditResult, request: EditRequest, created: int) -> list[bytes]:
    quality = result.quality
    usage = usage_dict(result.usage, result.cost_usd)
    return [
        sse(
            "image_edit.completed",
            {
                "type": "image_edit.completed",
                **_event_common(image, quality, result.background, created),
                "usage": usage,
            },
        )
        for image in result.images
    ]


def error_event(error: dict[str, Any]) -> bytes:
    return sse("error", {"type": "error", **error})
