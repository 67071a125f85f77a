"""Every answer validated against OpenAI's published schemas, as strict clients validate them.

The schemas are vendored from openai/openai-openapi (tests/support/openai_spec/SOURCE.md says
which commit). Each answer is also parsed by the OpenAI SDK's own pydantic models with
validation on (``model_validate``), as a typed client that checks bodies does; the SDK itself
skips that check when it parses, so this is the stricter reading.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from pydantic import ValidationError

from tests import imaging
from tests.imaging import RED
from tests.server import Gateway
from tests.support import schema
from tests.support.requests import post_edit
from tests.support.sse import SseEvent

TOKEN_FIELDS = {"input_tokens", "output_tokens", "total_tokens", "input_tokens_details"}


def edit(gateway: Gateway, **fields: str) -> dict[str, Any]:
    response = post_edit(gateway.base_url, imaging.png(), prompt="invert", **fields)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    doc = schema.assert_images_response(response.content)
    openai.types.ImagesResponse.model_validate(doc)
    assert set(doc["usage"]) >= TOKEN_FIELDS
    assert doc["usage"]["input_tokens_details"] == {"text_tokens": 0, "image_tokens": 0}
    assert doc["usage"]["cost"] == {"total_cost": 0.0, "currency": "USD"}
    return doc


def stream(gateway: Gateway, image: bytes, **fields: str) -> list[SseEvent]:
    with httpx.stream(
        "POST",
        gateway.base_url + "/v1/images/edits",
        data={"model": "local/pillow", "prompt": "invert", "stream": "true", **fields},
        files={"image": ("a.png", image, "image/png")},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read()
    return schema.assert_stream(body)


def test_a_plain_edit(gateway: Gateway) -> None:
    doc = edit(gateway)
    assert len(doc["data"]) == 1 and set(doc["data"][0]) == {"b64_json", "revised_prompt"}
    out = imaging.decode_b64(doc["data"][0]["b64_json"]).convert("RGB")
    assert out.getpixel((2, 2)) == tuple(255 - c for c in RED)


def test_n_2(gateway: Gateway) -> None:
    doc = edit(gateway, n="2")
    assert len(doc["data"]) == 2
    assert all(imaging.decode_b64(item["b64_json"]).size == (64, 48) for item in doc["data"])


def test_response_format_url(gateway: Gateway) -> None:
    doc = edit(gateway, response_format="url")
    (item,) = doc["data"]
    assert set(item) == {"url", "revised_prompt"}
    assert item["url"].startswith("data:image/png;base64,")


@pytest.mark.parametrize(("fmt", "pillow"), [("webp", "WEBP"), ("jpeg", "JPEG")])
def test_output_formats(gateway: Gateway, fmt: str, pillow: str) -> None:
    doc = edit(gateway, output_format=fmt, output_compression="80")
    assert doc["output_format"] == fmt
    assert imaging.decode_b64(doc["data"][0]["b64_json"]).format == pillow


def test_a_stream_with_partial_images(gateway: Gateway) -> None:
    events = stream(gateway, imaging.png(), partial_images="2")
    assert [event.name for event in events] == [
        "image_edit.partial_image",
        "image_edit.partial_image",
        "image_edit.completed",
    ]
    for event in events[:-1]:
        openai.types.ImageEditPartialImageEvent.model_validate(event.data)
    done = openai.types.ImageEditCompletedEvent.model_validate(events[-1].data)
    assert done.usage.total_tokens == 0 and done.usage.input_tokens_details.text_tokens == 0
    assert events[-1].data["usage"]["cost"] == {"total_cost": 0.0, "currency": "USD"}


def test_a_stream_error_event(gateway: Gateway) -> None:
    # The header is valid, the pixels are cut off: decoding fails after the stream began.
    events = stream(gateway, imaging.png(256, 256)[:200])
    (error,) = events
    assert error.name == "error"
    assert error.data["error"]["code"] == "invalid_image"
    assert error.data["error"]["origin"] == "gateway"


# -- the checks themselves refuse what strict clients refuse ----------------------------------


def test_the_checks_refuse_a_usage_without_token_fields(gateway: Gateway) -> None:
    doc = edit(gateway)
    doc["usage"] = {"cost": doc["usage"]["cost"]}  # what the gateway sent before
    with pytest.raises(AssertionError, match="'input_tokens' is a required property"):
        schema.assert_images_response(doc)
    with pytest.raises(ValidationError):
        openai.types.ImagesResponse.model_validate(doc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"output_format": "gif"}, "'gif' is not one of"),
        ({"background": "auto"}, "'auto' is not one of"),  # "auto" is for events only
        ({"size": "big"}, "'big' is not valid"),
        ({"created": "today"}, "'today' is not of type 'integer'"),
    ],
)
def test_the_checks_refuse_values_outside_the_schema(
    gateway: Gateway, change: dict[str, str], message: str
) -> None:
    doc = {**edit(gateway), **change}
    with pytest.raises(AssertionError, match=message):
        schema.assert_images_response(doc)


def test_the_checks_refuse_an_incomplete_event_or_a_bare_error() -> None:
    partial = {"type": "image_edit.partial_image", "b64_json": "", "created_at": 1, "size": "auto"}
    with pytest.raises(AssertionError, match="'quality' is a required property"):
        schema.assert_stream_event(SseEvent("image_edit.partial_image", partial))
    bare = {"type": "error", "message": "x", "code": None, "param": None}  # SDKs would not raise
    with pytest.raises(AssertionError):
        schema.assert_stream_event(SseEvent("error", bare))
