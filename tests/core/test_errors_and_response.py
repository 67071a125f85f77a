from __future__ import annotations

import base64

import orjson
import pytest

from imagegate.core import errors
from imagegate.core.pricing import OutputTokens, Pricing, TokenCeiling, TokenPrices, compute_cost
from imagegate.core.request import EditRequest, OutputOptions
from imagegate.core.response import (
    completed_events,
    error_event,
    images_response,
    partial_event,
    usage_dict,
)
from imagegate.core.result import EditResult, ResultImage, Usage
from imagegate.core.units import human_bytes
from tests import imaging
from tests.support import schema, sse
from tests.support.requests import edit_request


@pytest.mark.parametrize(
    ("cls", "status", "kind"),
    [
        (errors.InvalidRequest, 400, "invalid_request_error"),
        (errors.ContentPolicyViolation, 400, "invalid_request_error"),
        (errors.AuthenticationFailed, 401, "authentication_error"),
        (errors.PaymentRequired, 402, "insufficient_quota"),
        (errors.PermissionDenied, 403, "permission_error"),
        (errors.NotFound, 404, "invalid_request_error"),
        (errors.PayloadTooLarge, 413, "invalid_request_error"),
        (errors.RateLimited, 429, "rate_limit_error"),
        (errors.UpstreamError, 502, "upstream_error"),
        (errors.UpstreamTimeout, 504, "timeout_error"),
    ],
)
def test_envelope_has_every_key(cls, status: int, kind: str) -> None:
    err = cls("what to fix", param="n", origin="provider")
    body = orjson.loads(err.to_json())
    assert err.status == status
    assert body == {
        "error": {
            "message": "what to fix",
            "type": kind,
            "param": "n",
            "code": err.code,
            "origin": "provider",
        }
    }
    assert err.code  # every class has a default code


def test_human_bytes() -> None:
    assert human_bytes(50 * 1_048_576) == "50 MiB"
    assert human_bytes(1_500_000) == "1.4 MiB"
    assert human_bytes(300_000) == "293 KiB"
    assert human_bytes(12) == "12 bytes"


def _request(**output) -> EditRequest:
    return edit_request("m/x", output=OutputOptions(**output))


def test_images_response_shape_and_bytes_round_trip() -> None:
    raw = imaging.png(10, 20)
    result = EditResult(
        images=[ResultImage("png", 10, 20, data=raw, revised_prompt="invert")],
        model="local/pillow",
        provider="local",
        background="opaque",
        quality="medium",
        usage=Usage(
            input_tokens=5,
            output_tokens=7,
            input_text_tokens=5,
            input_image_tokens=0,
            output_image_tokens=7,
        ),
        cost_usd=0.25,
    )
    body = schema.assert_images_response(
        images_response(result, _request(quality="high"), 1700000000)
    )
    assert body["created"] == 1700000000
    assert base64.b64decode(body["data"][0]["b64_json"]) == raw
    assert body["data"][0]["revised_prompt"] == "invert"
    assert body["size"] == "10x20" and body["output_format"] == "png"
    # The quality the provider reports, not the one asked for.
    assert body["quality"] == "medium" and body["background"] == "opaque"
    assert body["usage"] == {
        "input_tokens": 5,
        "output_tokens": 7,
        "total_tokens": 12,
        "input_tokens_details": {"text_tokens": 5, "image_tokens": 0},
        "output_tokens_details": {"image_tokens": 7, "text_tokens": 0},
        "cost": {"total_cost": 0.25, "currency": "USD"},
    }


def test_provider_base64_is_passed_through_untouched() -> None:
    b64 = base64.b64encode(imaging.png()).decode()
    result = EditResult(images=[ResultImage("png", 64, 48, b64=b64)], model="m", provider="p")
    body = orjson.loads(images_response(result, _request(quality="high"), 1))
    assert body["data"][0]["b64_json"] == b64
    assert result.images[0].data is None  # never decoded and re-encoded on the way through
    assert "quality" not in body  # asked for, but the provider did not say: not invented


def test_url_response_is_a_data_uri() -> None:
    result = EditResult(images=[ResultImage("webp", 1, 1, data=b"RIFF")], model="m", provider="p")
    body = orjson.loads(images_response(result, _request(response_format="url"), 1))
    assert body["data"][0] == {"url": "data:image/webp;base64,UklGRg=="}


def test_usage_without_tokens_has_zero_token_fields_and_the_cost() -> None:
    # OpenAI's usage schema makes these required: a strict client refuses a usage without them.
    assert usage_dict(Usage(), 0.5) == {
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "input_tokens_details": {"text_tokens": 0, "image_tokens": 0},
        "cost": {"total_cost": 0.5, "currency": "USD"},
    }


def test_usage_with_input_tokens_only_fills_the_rest_with_zeros() -> None:
    usage = usage_dict(Usage(input_tokens=40, input_image_tokens=30), 0.0)
    assert usage["input_tokens"] == 40 and usage["output_tokens"] == 0
    assert usage["total_tokens"] == 40
    assert usage["input_tokens_details"] == {"text_tokens": 0, "image_tokens": 30}
    assert "output_tokens_details" not in usage  # not reported, and optional in the schema


def _sse(raw: bytes) -> tuple[str, dict]:
    event = sse.frame(raw)  # one event line, one data line
    schema.assert_stream_event(event)
    return event.name, event.data


def test_stream_events_carry_every_required_field() -> None:
    image = ResultImage("png", 64, 48, data=imaging.png())
    name, partial = _sse(partial_event(image, 1, _request(quality="standard"), 5))
    assert name == "image_edit.partial_image"
    assert partial["partial_image_index"] == 1
    assert {
        "type",
        "b64_json",
        "created_at",
        "size",
        "quality",
        "background",
        "output_format",
    } <= set(partial)
    assert partial["quality"] == "auto"  # "standard" is not a value the event schema allows

    result = EditResult(images=[image, image], model="m", provider="p", background="opaque")
    frames = completed_events(result, _request(), 5)
    assert len(frames) == 2  # one per output image
    name, done = _sse(frames[0])
    assert name == "image_edit.completed"
    assert done["usage"]["input_tokens_details"] == {"text_tokens": 0, "image_tokens": 0}
    assert done["background"] == "opaque" and done["size"] == "64x48"


def test_error_event_wraps_the_error_object() -> None:
    name, payload = _sse(error_event(errors.UpstreamTimeout("slow").to_dict()))
    assert name == "error"
    assert payload["error"]["code"] == "upstream_timeout"


def test_pricing_order_of_preference() -> None:
    pricing = Pricing(
        per_image=0.04,
        per_input_image=0.002,
        tokens=TokenPrices(text_input=5, image_input=10, image_output=40),
        ceiling=TokenCeiling(output_image={"default": OutputTokens(base=4160)}),
    )
    sizes = [(1024, 1024)] * 2
    # A figure the provider states wins.
    assert (
        compute_cost(
            pricing, Usage(provider_cost_usd=0.123), output_sizes=sizes, input_images=1, tier=None
        )
        == 0.123
    )
    # Then tokens x token prices: 100 text in, 200 image in, 1000 image out.
    usage = Usage(
        input_tokens=300,
        output_tokens=1000,
        input_text_tokens=100,
        input_image_tokens=200,
        output_image_tokens=1000,
    )
    assert compute_cost(
        pricing, usage, output_sizes=sizes, input_images=1, tier=None
    ) == pytest.approx((100 * 5 + 200 * 10 + 1000 * 40) / 1e6)
    # Then the list price per output image plus per input image.
    assert compute_cost(
        pricing, Usage(), output_sizes=sizes, input_images=3, tier=None
    ) == pytest.approx(0.086)


def test_pricing_by_tier_and_megapixel() -> None:
    tiers = Pricing(per_tier={"1K": 0.134, "4K": 0.24}, tier_by="resolution")
    assert (
        compute_cost(tiers, Usage(), output_sizes=[(4096, 4096)], input_images=1, tier="4K") == 0.24
    )
    per_mp = Pricing(per_megapixel=0.03)
    assert compute_cost(
        per_mp, Usage(), output_sizes=[(2000, 1000)], input_images=1, tier=None
    ) == pytest.approx(0.06)
    assert compute_cost(Pricing(), Usage(), output_sizes=[(1, 1)], input_images=1, tier=None) == 0.0
