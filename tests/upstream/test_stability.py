"""Stability AI end to end: the official OpenAI SDK -> the gateway -> the strict Stability fake."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from PIL import Image

from imagegate.testing.fake import Fault
from imagegate.testing.stability import FakeStability
from tests import imaging
from tests.server import Gateway
from tests.support import sdk, sse
from tests.support.envelope import error_of
from tests.upstream.conftest import KEYS, RunningFake

W, H = 96, 64  # Stability takes sides of at least 64 pixels
PNG = imaging.png(W, H)
MASK = imaging.mask_left_half(W, H)
EDIT = "/v2beta/stable-image/edit/"
PRICES = {
    "stability/inpaint": 0.05,
    "stability/search-and-replace": 0.05,
    "stability/search-and-recolor": 0.05,
    "stability/erase": 0.05,
    "stability/outpaint": 0.04,
    "stability/remove-background": 0.05,
}
# What each card needs beyond an image and a prompt, to make one good edit.
NEEDS: dict[str, dict[str, Any]] = {
    "stability/inpaint": {"mask": ("mask.png", MASK, "image/png")},
    "stability/search-and-replace": {"extra_body": {"search_prompt": "the green box"}},
    "stability/search-and-recolor": {"extra_body": {"select_prompt": "the green box"}},
    "stability/erase": {"mask": ("mask.png", MASK, "image/png")},
    "stability/outpaint": {"extra_body": {"left": 32}},
    "stability/remove-background": {},
}


@pytest.fixture()
def fake(fakes: dict[str, RunningFake]) -> FakeStability:
    running = fakes["stability"]
    running.reset()
    stability = running.fake
    assert isinstance(stability, FakeStability)
    stability.moderation_style = "filtered"
    return stability


def edit(client: OpenAI, model: str, **params: Any) -> Any:
    params.setdefault("image", ("in.png", PNG, "image/png"))
    params.setdefault("prompt", "a red brick wall")
    return sdk.edit(client, model=model, **params)


def refused(client: OpenAI, status: int, *, origin: str = "gateway", **params: Any) -> Any:
    params.setdefault("image", ("in.png", PNG, "image/png"))
    params.setdefault("prompt", "a red brick wall")
    with pytest.raises(openai.APIStatusError) as caught:
        client.images.edit(**params)
    return error_of(caught.value.response, status, origin=origin)


def decoded(b64: str | None) -> Image.Image:
    assert b64 is not None
    return imaging.decode_b64(b64)


def cost(result: Any) -> float:
    total: float = result.usage.model_extra["cost"]["total_cost"]
    return total


# -- one good edit per card ----------------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(NEEDS))
def test_each_card_edits_one_image(
    upstream_client: OpenAI, fake: FakeStability, model: str
) -> None:
    result = edit(upstream_client, model, **NEEDS[model])
    (call,) = fake.calls
    endpoint = model.split("/")[1]
    assert (call.method, call.path) == ("POST", EDIT + endpoint)
    assert call.content_type.startswith("multipart/form-data")
    summary = call.summary
    assert summary["auth"] == "ok" and summary["accept"] == "image/*"
    assert summary["client_id"] == "imagegate"
    assert summary["files"]["image"]["content_type"] == "image/png"
    assert summary["files"]["image"]["size"] == [W, H]
    assert summary["fields"]["output_format"] == "png"
    prompt_used = endpoint not in ("erase", "remove-background")
    assert ("prompt" in summary["fields"]) is prompt_used  # erase and remove-background take none
    (image,) = result.data
    out = decoded(image.b64_json)
    assert out.size == ((W + 32, H) if endpoint == "outpaint" else (W, H))
    assert result.model_extra["model"] == model
    assert cost(result) == PRICES[model]


def test_the_result_is_the_fakes_edit_of_the_input(
    upstream_client: OpenAI, fake: FakeStability
) -> None:
    result = edit(
        upstream_client, "stability/search-and-replace", extra_body={"search_prompt": "box"}
    )
    out = decoded(result.data[0].b64_json).convert("RGB")
    red = imaging.RED
    assert imaging.is_close(out.getpixel((2, 2)), tuple(255 - c for c in red))  # inverted


def test_remove_background_answers_a_transparent_png(
    upstream_client: OpenAI, fake: FakeStability
) -> None:
    result = edit(upstream_client, "stability/remove-background")
    out = decoded(result.data[0].b64_json)
    assert out.mode == "RGBA"
    assert out.getpixel((1, 1))[3] == 0 and out.getpixel((W // 2, H // 2))[3] == 255
    assert result.background == "transparent"


def test_remove_background_as_jpeg_is_flattened_by_the_gateway(
    upstream_client: OpenAI, fake: FakeStability
) -> None:
    result = edit(upstream_client, "stability/remove-background", output_format="jpeg")
    assert fake.calls[0].summary["fields"]["output_format"] == "png"  # Stability makes no JPEG here
    assert decoded(result.data[0].b64_json).format == "JPEG"
    assert result.background == "opaque"


def test_output_format_is_asked_of_stability(upstream_client: OpenAI, fake: FakeStability) -> None:
    result = edit(upstream_client, "stability/erase", mask=("m.png", MASK), output_format="webp")
    assert fake.calls[0].summary["fields"]["output_format"] == "webp"
    assert decoded(result.data[0].b64_json).format == "WEBP"


def test_output_compression_asks_for_png_and_the_gateway_encodes(
    upstream_client: OpenAI, fake: FakeStability
) -> None:
    result = edit(
        upstream_client,
        "stability/erase",
        mask=("m.png", MASK),
        output_format="jpeg",
        output_compression=20,
    )
    assert fake.calls[0].summary["fields"]["output_format"] == "png"
    assert decoded(result.data[0].b64_json).format == "JPEG"


def test_a_jpeg_input_goes_up_as_a_jpeg(upstream_client: OpenAI, fake: FakeStability) -> None:
    edit(
        upstream_client,
        "stability/remove-background",
        image=("photo.png", imaging.jpeg(W, H), "image/png"),  # the name lies; the bytes don't
    )
    image = fake.calls[0].summary["files"]["image"]
    assert (image["content_type"], image["format"], image["filename"]) == (
        "image/jpeg",
        "JPEG",
        "image.jpg",
    )


def test_the_end_user_is_passed_in_stabilitys_header(
    upstream_client: OpenAI, fake: FakeStability
) -> None:
    edit(upstream_client, "stability/remove-background", user="user-42")
    assert fake.calls[0].summary["user_id"] == "user-42"


# -- references and masks ------------------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(NEEDS))
def test_a_second_image_is_refused_before_any_call(
    upstream_client: OpenAI, fake: FakeStability, model: str
) -> None:
    error = refused(upstream_client, 400, model=model, image=[PNG, PNG], **NEEDS[model])
    assert (error["code"], error["param"]) == ("too_many_images", "image")
    assert fake.calls == []


@pytest.mark.parametrize("model", ["stability/inpaint", "stability/erase"])
def test_the_openai_mask_reaches_stability_as_white_where_to_edit(
    upstream_client: OpenAI, fake: FakeStability, model: str
) -> None:
    edit(upstream_client, model, mask=("mask.png", MASK, "image/png"))
    mask = fake.calls[0].summary["mask"]
    assert mask["mode"] == "L" and mask["size"] == [W, H]
    assert mask["values"] == [0, 255]
    assert mask["white_box"] == [0, 0, W // 2, H]  # the transparent left half, and only it
    assert fake.calls[0].summary["files"]["mask"]["content_type"] == "image/png"


def test_inpaint_without_a_mask_uses_the_images_transparency(
    upstream_client: OpenAI, fake: FakeStability
) -> None:
    holey = Image.new("RGBA", (W, H), (200, 30, 30, 255))
    holey.paste((0, 0, 0, 0), (10, 10, 30, 30))
    edit(upstream_client, "stability/inpaint", image=("holey.png", imaging.encode(holey)))
    assert "mask" not in fake.calls[0].summary["files"]


@pytest.mark.parametrize("model", ["stability/inpaint", "stability/erase"])
def test_no_mask_and_no_transparency_is_refused(
    upstream_client: OpenAI, fake: FakeStability, model: str
) -> None:
    error = refused(upstream_client, 400, model=model)
    assert (error["param"], error["code"]) == ("mask", "missing_required_parameter")
    assert fake.calls == []


@pytest.mark.parametrize("model", ["stability/search-and-replace", "stability/outpaint"])
def test_a_mask_is_refused_where_the_endpoint_takes_none(
    upstream_client: OpenAI, fake: FakeStability, model: str
) -> None:
    error = refused(upstream_client, 400, model=model, mask=("m.png", MASK), **NEEDS[model])
    assert (error["param"], error["code"]) == ("mask", "mask_not_supported")
    assert fake.calls == []


def test_an_image_below_stabilitys_minimum_is_refused(
    upstream_client: OpenAI, fake: FakeStability
) -> None:
    error = refused(
        upstream_client, 400, model="stability/remove-background", image=imaging.png(64, 48)
    )
    assert error["code"] == "unsupported_image_size" and "64 pixels" in error["message"]
    assert fake.calls == []


# -- n -------------------------------------------------------------------------------------------


def test_n_is_fanned_out_one_call_per_image(upstream_client: OpenAI, fake: FakeStability) -> None:
    result = edit(
        upstream_client, "stability/inpaint", mask=("m.png", MASK), n=2, extra_body={"seed": 7}
    )
    assert len(result.data) == 2
    assert len(fake.calls) == 2
    assert sorted(call.summary["fields"]["seed"] for call in fake.calls) == ["7", "8"]
    assert cost(result) == pytest.approx(0.10)


# -- sizing --------------------------------------------------------------------------------------


def test_the_inputs_own_size_is_honoured(upstream_client: OpenAI, fake: FakeStability) -> None:
    result = edit(upstream_client, "stability/remove-background", size=f"{W}x{H}")
    assert result.size == f"{W}x{H}"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"size": "1024x1024"}, "size"),
        ({"extra_body": {"aspect_ratio": "16:9"}}, "aspect_ratio"),
        ({"extra_body": {"resolution": "2K"}}, "resolution"),
    ],
)
def test_sizes_stability_cannot_make_are_refused(
    upstream_client: OpenAI, fake: FakeStability, params: dict[str, Any], param: str
) -> None:
    error = refused(upstream_client, 400, model="stability/remove-background", **params)
    assert (error["param"], error["code"]) == (param, "unsupported_size")
    assert fake.calls == []


def test_outpaint_to_a_larger_size_sends_centred_margins(
    upstream_client: OpenAI, fake: FakeStability
) -> None:
    result = edit(upstream_client, "stability/outpaint", size=f"{W + 41}x{H + 10}")
    fields = fake.calls[0].summary["fields"]
    assert (fields["left"], fields["right"], fields["up"], fields["down"]) == ("20", "21", "5", "5")
    assert decoded(result.data[0].b64_json).size == (W + 41, H + 10)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"size": f"{W - 16}x{H}"}, "unsupported_size"),
        ({"size": f"{W + 10}x{H}", "extra_body": {"left": 4}}, "conflicting_parameters"),
        ({"size": f"{W + 4002}x{H}"}, "unsupported_size"),
    ],
)
def test_outpaint_sizes_it_cannot_reach_are_refused(
    upstream_client: OpenAI, fake: FakeStability, params: dict[str, Any], code: str
) -> None:
    error = refused(upstream_client, 400, model="stability/outpaint", **params)
    assert (error["param"], error["code"]) == ("size", code)
    assert fake.calls == []


# -- Stability's own fields ----------------------------------------------------------------------


def test_inpaint_options_and_seed_are_forwarded(
    upstream_client: OpenAI, fake: FakeStability
) -> None:
    edit(
        upstream_client,
        "stability/inpaint",
        mask=("m.png", MASK),
        extra_body={
            "negative_prompt": "blurry",
            "grow_mask": 5,
            "style_preset": "Photographic",
            "seed": 42,
            "not_a_stability_field": "x",
        },
    )
    fields = fake.calls[0].summary["fields"]
    assert fields == {
        "prompt": "a red brick wall",
        "negative_prompt": "blurry",
        "grow_mask": "5",
        "style_preset": "photographic",
        "seed": "42",
        "output_format": "png",
    }


def test_outpaint_margins_and_creativity_are_forwarded(
    upstream_client: OpenAI, fake: FakeStability
) -> None:
    result = edit(
        upstream_client,
        "stability/outpaint",
        extra_body={"left": 10, "right": 0, "up": 6, "creativity": 0.35, "style_preset": "anime"},
    )
    fields = fake.calls[0].summary["fields"]
    assert {k: fields.get(k) for k in ("left", "right", "up", "down", "creativity")} == {
        "left": "10",
        "right": None,
        "up": "6",
        "down": None,
        "creativity": "0.35",
    }
    assert decoded(result.data[0].b64_json).size == (W + 10, H + 6)


def test_search_prompt_is_forwarded(upstream_client: OpenAI, fake: FakeStability) -> None:
    edit(
        upstream_client,
        "stability/search-and-replace",
        prompt="a blue ball",
        extra_body={"search_prompt": "the green box", "negative_prompt": "red"},
    )
    fields = fake.calls[0].summary["fields"]
    assert (fields["prompt"], fields["search_prompt"], fields["negative_prompt"]) == (
        "a blue ball",
        "the green box",
        "red",
    )


@pytest.mark.parametrize(
    ("model", "extra", "param", "code"),
    [
        ("stability/search-and-replace", {}, "search_prompt", "missing_required_parameter"),
        (
            "stability/search-and-replace",
            {"search_prompt": "  "},
            "search_prompt",
            "missing_required_parameter",
        ),
        ("stability/search-and-recolor", {}, "select_prompt", "missing_required_parameter"),
        ("stability/inpaint", {"style_preset": "watercolour"}, "style_preset", "invalid_value"),
        ("stability/inpaint", {"grow_mask": 101}, "grow_mask", "integer_above_max_value"),
        ("stability/inpaint", {"grow_mask": "five"}, "grow_mask", "invalid_type"),
        (
            "stability/inpaint",
            {"negative_prompt": "x" * 10_001},
            "negative_prompt",
            "string_above_max_length",
        ),
        ("stability/inpaint", {"seed": 4_294_967_295}, "seed", "integer_above_max_value"),
        ("stability/inpaint", {"left": 10}, "left", "unsupported_parameter"),
        ("stability/outpaint", {}, "left", "missing_required_parameter"),
        ("stability/outpaint", {"left": 2001}, "left", "integer_above_max_value"),
        (
            "stability/outpaint",
            {"left": 10, "creativity": 1.5},
            "creativity",
            "integer_above_max_value",
        ),
        ("stability/remove-background", {"grow_mask": 3}, "grow_mask", "unsupported_parameter"),
    ],
)
def test_stability_fields_are_checked_before_any_call(
    upstream_client: OpenAI,
    fake: FakeStability,
    model: str,
    extra: dict[str, Any],
    param: str,
    code: str,
) -> None:
    params = {k: v for k, v in NEEDS[model].items() if k != "extra_body"}
    error = refused(upstream_client, 400, model=model, extra_body=extra, **params)
    assert (error["param"], error["code"]) == (param, code)
    assert fake.calls == []


@pytest.mark.parametrize(
    ("params", "param"),
    [({"quality": "high"}, "quality"), ({"input_fidelity": "high"}, "input_fidelity")],
)
def test_openai_fields_stability_lacks_are_refused(
    upstream_client: OpenAI, fake: FakeStability, params: dict[str, Any], param: str
) -> None:
    error = refused(upstream_client, 400, model="stability/remove-background", **params)
    assert error["param"] == param
    assert fake.calls == []


# -- faults --------------------------------------------------------------------------------------


def queue(running: RunningFake, fault: str, **options: Any) -> None:
    running.fake.faults.clear()
    running.fake.faults.append(Fault(fault, **options))


@pytest.mark.parametrize(
    ("fault", "options", "status", "code", "retry_after"),
    [
        ("rate_limit", {"retry_after": 7}, 429, "rate_limit_exceeded", "7"),
        ("rate_limit", {}, 429, "rate_limit_exceeded", None),
        ("server_error", {}, 502, "upstream_error", None),
        ("unavailable", {}, 502, "upstream_error", None),
        ("timeout", {"delay": 4.0}, 504, "upstream_timeout", None),
        ("malformed", {}, 502, "upstream_malformed", None),
        ("truncated", {}, 502, "upstream_malformed", None),
        ("no_image", {}, 502, "upstream_malformed", None),
        ("moderation", {}, 400, "content_policy_violation", None),
        ("bad_key", {}, 502, "provider_auth_failed", None),
    ],
)
def test_each_fault_in_stabilitys_shape(
    upstream_client: OpenAI,
    fakes: dict[str, RunningFake],
    fake: FakeStability,
    fault: str,
    options: dict[str, Any],
    status: int,
    code: str,
    retry_after: str | None,
) -> None:
    queue(fakes["stability"], fault, **options)
    with pytest.raises(openai.APIStatusError) as caught:
        upstream_client.images.edit(
            model="stability/search-and-replace",
            image=PNG,
            prompt="a cat",
            extra_body={"search_prompt": "box"},
        )
    error = error_of(caught.value.response, status, origin="provider")
    assert error["code"] == code
    assert caught.value.response.headers.get("retry-after") == retry_after
    assert KEYS["stability"] not in error["message"]
    assert len(fake.calls) == 1


def test_a_filtered_result_is_a_content_policy_refusal(
    upstream_client: OpenAI, fakes: dict[str, RunningFake], fake: FakeStability
) -> None:
    queue(fakes["stability"], "moderation")
    error = refused(upstream_client, 400, origin="provider", model="stability/remove-background")
    assert error["code"] == "content_policy_violation" and "CONTENT_FILTERED" in error["message"]


def test_a_refused_prompt_403_is_moderation_not_a_credential_problem(
    upstream_client: OpenAI, fakes: dict[str, RunningFake], fake: FakeStability
) -> None:
    fake.moderation_style = "refused"
    queue(fakes["stability"], "moderation")
    error = refused(upstream_client, 400, origin="provider", model="stability/remove-background")
    assert error["code"] == "content_policy_violation"
    assert "content moderation" in error["message"]


def test_one_failed_call_of_a_fan_out_fails_the_edit(
    upstream_client: OpenAI, fakes: dict[str, RunningFake], fake: FakeStability
) -> None:
    queue(fakes["stability"], "server_error")
    error = refused(
        upstream_client, 502, origin="provider", model="stability/remove-background", n=2
    )
    assert error["code"] == "upstream_error"
    settle(fake, calls=2)  # the cancelled call may still be arriving: not in the next test


def settle(fake: FakeStability, *, calls: int, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while len(fake.calls) < calls and time.monotonic() < deadline:
        time.sleep(0.02)


# -- stream, cost, secrets -----------------------------------------------------------------------


def test_a_stream_sends_one_completed_event_per_image(
    upstream_client: OpenAI, fake: FakeStability
) -> None:
    events = sdk.stream(
        upstream_client,
        model="stability/erase",
        image=PNG,
        mask=MASK,
        prompt="erase it",
        n=2,
    )
    assert [event.type for event in events] == ["image_edit.completed"] * 2
    assert events[-1].usage.model_extra["cost"]["total_cost"] == pytest.approx(0.10)
    assert len(fake.calls) == 2


def test_a_stream_failure_arrives_as_an_error_event(
    upstream_client: OpenAI, fakes: dict[str, RunningFake], fake: FakeStability
) -> None:
    queue(fakes["stability"], "moderation")
    raw = upstream_client.images.with_raw_response.edit(
        model="stability/remove-background", image=PNG, prompt="x", stream=True
    )
    events = sse.events(raw.http_response.read())
    assert events[-1].name == "error"
    assert events[-1].data["error"]["code"] == "content_policy_violation"


def test_the_key_never_reaches_a_log_or_a_message(
    upstream_client: OpenAI,
    upstream_gateway: Gateway,
    fakes: dict[str, RunningFake],
    fake: FakeStability,
) -> None:
    queue(fakes["stability"], "bad_key")
    error = refused(upstream_client, 502, origin="provider", model="stability/remove-background")
    assert error["code"] == "provider_auth_failed"
    edit(upstream_client, "stability/remove-background")
    logs = upstream_gateway.logs()
    assert "stability" in logs
    assert KEYS["stability"] not in logs and KEYS["stability"][8:] not in logs


def test_the_catalog_lists_every_card_with_its_fields(
    upstream_client: OpenAI, upstream_gateway: Gateway
) -> None:
    listed = httpx.get(upstream_gateway.base_url + "/v1/models", timeout=10).json()["data"]
    cards = {card["id"]: card for card in listed if card["id"].startswith("stability/")}
    assert set(cards) == set(PRICES)
    for model, card in cards.items():
        assert card["pricing"]["per_image"] == PRICES[model]
        assert card["edit"]["max_reference_images"] == 1
    assert cards["stability/search-and-replace"]["extra_fields"] == [
        "search_prompt",
        "negative_prompt",
        "grow_mask",
    ]
    assert cards["stability/inpaint"]["edit"]["mask"] is True


def test_a_json_body_with_typed_options(upstream_gateway: Gateway, fake: FakeStability) -> None:
    body = {
        "model": "stability/outpaint",
        "prompt": "more sky",
        "images": [{"image_url": imaging.data_url(PNG)}],
        "left": 16,
        "up": 8,
        "creativity": 0.25,
        "style_preset": "cinematic",
    }
    response = httpx.post(upstream_gateway.base_url + "/v1/images/edits", json=body, timeout=30)
    assert response.status_code == 200, response.text
    fields = fake.calls[0].summary["fields"]
    assert (fields["left"], fields["up"], fields["creativity"]) == ("16", "8", "0.25")
    assert response.json()["size"] == f"{W + 16}x{H + 8}"


def test_a_deeply_nested_extra_field_is_a_400_not_a_crash(upstream_gateway: Gateway) -> None:
    """Extra fields are echoed in refusals: a value nested as deep as JSON parsing allows is
    named by its kind, never repr'd (which would exceed Python's recursion limit: a 500)."""
    image = imaging.data_url(imaging.png(256, 256))
    body = (
        '{"model": "stability/outpaint", "prompt": "a cat", "images": [{"image_url": "'
        + image
        + '"}], "left": '
        + "[" * 1000
        + "1"
        + "]" * 1000
        + "}"
    )
    response = httpx.post(
        upstream_gateway.base_url + "/v1/images/edits",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "left" and "a list" in error["message"]
