"""Stability's converter on the reference fixtures and built requests: no network at all (the one
adapter test answers from an ``httpx.MockTransport``)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.validate import validate_request
from imagegate.config import Settings
from imagegate.core.errors import ContentPolicyViolation, InvalidRequest, UpstreamError
from imagegate.core.request import EditRequest, ImageInput, OutputOptions, SizingRequest
from imagegate.providers.base import Deployment, DiscardEvents, EditJob
from imagegate.providers.stability.adapter import StabilityProvider
from imagegate.providers.stability.convert import (
    ENDPOINTS,
    MAX_SEED,
    Malformed,
    form_fields,
    is_complete,
    plan_edit,
    read_answer,
    read_error,
    seed_for,
    stability_mask,
)
from imagegate.providers.stability.spec import SPEC
from imagegate.providers.upstream import Upstream
from tests import imaging
from tests.support.requests import image_input

FIXTURES = Path(__file__).parent / "fixtures"
CARDS = {card["id"]: ModelCard.model_validate(card) for card in SPEC.cards(Settings())}
PNG = imaging.png(96, 64)


def fixture(name: str) -> Any:
    text = (
        (FIXTURES / name)
        .read_text()
        .replace("<BASE64_PNG_PLACEHOLDER>", base64.b64encode(PNG).decode())
    )
    return json.loads(text)


def job(
    model: str,
    *,
    image: bytes = PNG,
    mask: bytes | None = None,
    prompt: str = "a red brick wall with ivy",
    extra: dict[str, object] | None = None,
    sizing: SizingRequest | None = None,
    output: OutputOptions | None = None,
    **fields: Any,
) -> EditJob:
    card = CARDS[model]
    request = EditRequest(
        model=model,
        prompt=prompt,
        images=(image_input(image),),
        mask=image_input(mask, "mask") if mask is not None else None,
        sizing=sizing or SizingRequest(),
        output=output or OutputOptions(),
        extra=extra or {},
        **fields,
    )
    return EditJob(request, card, validate_request(request, card))


def test_every_card_names_an_endpoint_and_its_options() -> None:
    for card in CARDS.values():
        endpoint = ENDPOINTS[card.upstream_model]
        assert card.extra_fields == [option.name for option in endpoint.options]
        assert card.edit.mask is endpoint.mask
        assert card.edit.max_reference_images == 1


def test_the_reference_inpaint_form_is_what_the_gateway_sends() -> None:
    sample = fixture("stability_inpaint_request_form.json")
    form = sample["form"]
    plan = plan_edit(
        job(
            "stability/inpaint",
            mask=imaging.mask_left_half(96, 64),
            prompt=form["prompt"],
            extra={"negative_prompt": form["negative_prompt"], "grow_mask": form["grow_mask"]},
            seed=int(form["seed"]),
            output=OutputOptions(output_format=form["output_format"]),
        )
    )
    assert plan.path == "/v2beta/stable-image/edit/inpaint"
    text = {k: v for k, v in form.items() if not isinstance(v, dict)}
    assert form_fields(plan) == text
    assert plan.mask is not None and plan.image.mime_type == form["image"]["content_type"]


def test_erase_and_remove_background_send_no_prompt() -> None:
    for model in ("stability/erase", "stability/remove-background"):
        mask = imaging.mask_left_half(96, 64) if model == "stability/erase" else None
        assert "prompt" not in form_fields(plan_edit(job(model, mask=mask)))


def test_multipart_strings_and_json_numbers_are_read_alike() -> None:
    for margins in ({"left": "12", "creativity": "0.5"}, {"left": 12, "creativity": 0.5}):
        fields = form_fields(plan_edit(job("stability/outpaint", extra=dict(margins))))
        assert (fields["left"], fields["creativity"]) == ("12", "0.5")


@pytest.mark.parametrize("raw", [True, 1.5, "1e3", "nan", "five", [5]])
def test_integers_must_be_integers(raw: object) -> None:
    mask = imaging.mask_left_half(96, 64)
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(job("stability/inpaint", mask=mask, extra={"grow_mask": raw}))
    assert (caught.value.param, caught.value.code) == ("grow_mask", "invalid_type")


def test_a_blank_option_is_absent() -> None:
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(job("stability/outpaint", extra={"left": ""}))
    assert (caught.value.param, caught.value.code) == ("left", "missing_required_parameter")


def test_seeds_of_a_fan_out_differ_and_stay_in_range() -> None:
    assert [seed_for(7, i) for i in range(3)] == [7, 8, 9]
    assert [seed_for(MAX_SEED, i) for i in range(3)] == [MAX_SEED, 1, 2]
    assert [seed_for(0, i) for i in range(3)] == [0, 0, 0]  # 0: Stability picks at random


@pytest.mark.parametrize(
    ("output", "asked"),
    [
        (OutputOptions(), "png"),
        (OutputOptions(output_format="jpeg"), "jpeg"),
        (OutputOptions(output_format="webp", output_compression=50), "png"),
    ],
)
def test_the_asked_format(output: OutputOptions, asked: str) -> None:
    assert (
        plan_edit(job("stability/outpaint", extra={"up": 8}, output=output)).output_format == asked
    )


def test_remove_background_is_never_asked_for_jpeg() -> None:
    plan = plan_edit(job("stability/remove-background", output=OutputOptions(output_format="jpeg")))
    assert plan.output_format == "png"
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(job("stability/remove-background", output=OutputOptions(background="opaque")))
    assert caught.value.param == "background"


def test_search_endpoints_refuse_extreme_shapes() -> None:
    wide = imaging.png(400, 64)  # 6.25:1
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(job("stability/search-and-replace", image=wide, extra={"search_prompt": "x"}))
    assert "1:2.5" in caught.value.message
    plan_edit(job("stability/erase", image=wide, mask=imaging.mask_left_half(400, 64)))


def test_a_card_naming_an_unknown_endpoint_is_refused() -> None:
    card = CARDS["stability/erase"].model_copy(update={"upstream_model": "sketch"})
    request = EditRequest(model="x", prompt="p", images=(image_input(PNG),))
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(EditJob(request, card, validate_request(request, card)))
    assert "sketch" in caught.value.message


# -- the mask ------------------------------------------------------------------------------------


def mask_pixels(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(stability_mask(io.BytesIO(data))))
    image.load()
    return image


def test_the_mask_is_white_exactly_where_openai_said_transparent() -> None:
    rgba = Image.new("RGBA", (8, 4), (10, 20, 30, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent: edit
    rgba.putpixel((1, 0), (255, 255, 255, 0))  # transparent whatever its colour: edit
    rgba.putpixel((2, 0), (0, 0, 0, 1))  # nearly transparent: keep (OpenAI: fully only)
    rgba.putpixel((3, 0), (255, 255, 255, 128))  # half: keep
    converted = mask_pixels(imaging.encode(rgba))
    assert converted.mode == "L" and converted.size == (8, 4)
    assert [converted.getpixel((x, 0)) for x in range(4)] == [255, 255, 0, 0]
    assert converted.getcolors() is not None
    assert sorted(v for _n, v in converted.getcolors() or []) == [0, 255]


def test_a_palette_mask_with_a_transparent_index_converts_too() -> None:
    palette = Image.new("P", (4, 2), 1)
    palette.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    palette.putpixel((0, 0), 0)
    data = io.BytesIO()
    palette.save(data, format="PNG", transparency=0)
    converted = mask_pixels(data.getvalue())
    assert converted.getpixel((0, 0)) == 255 and converted.getpixel((1, 0)) == 0


def test_the_left_half_mask_of_the_tests() -> None:
    converted = mask_pixels(imaging.mask_left_half(96, 64))
    assert converted.getbbox() == (0, 0, 48, 64)


# -- the answer ----------------------------------------------------------------------------------


def test_the_json_answer_fixture() -> None:
    body = json.dumps(fixture("stability_edit_response_json.json")).encode()
    answer = read_answer({"content-type": "application/json"}, body)
    assert (answer.image.format, answer.image.width, answer.image.height) == ("png", 96, 64)
    assert answer.seed == 343940597 and answer.transparent is False


def test_the_filtered_fixture_is_a_content_policy_violation() -> None:
    body = json.dumps(fixture("stability_edit_response_filtered.json")).encode()
    with pytest.raises(ContentPolicyViolation) as caught:
        read_answer({"content-type": "application/json"}, body)
    assert caught.value.origin == "provider" and caught.value.status == 400


def test_raw_bytes_with_their_headers() -> None:
    answer = read_answer(
        {"content-type": "image/webp", "finish-reason": "SUCCESS", "seed": "12"}, imaging.webp()
    )
    assert (answer.image.format, answer.seed) == ("webp", 12)
    with pytest.raises(ContentPolicyViolation):
        read_answer({"content-type": "image/png", "finish-reason": "CONTENT_FILTERED"}, PNG)


@pytest.mark.parametrize(
    ("headers", "body", "what"),
    [
        ({"content-type": "text/html"}, b"<html></html>", "text/html"),
        ({"content-type": "image/png"}, b"", "empty"),
        ({"content-type": "image/png"}, PNG[: len(PNG) // 2], "cut short"),
        ({"content-type": "image/png"}, b"GIF89a" + b"\0" * 40, "not a PNG"),
        ({"content-type": "image/png", "finish-reason": "ERROR"}, PNG, "ERROR"),
        ({"content-type": "application/json"}, b'{"image": "', "does not parse"),
        ({"content-type": "application/json"}, b'{"finish_reason": "SUCCESS"}', "no image"),
    ],
)
def test_malformed_answers(headers: dict[str, str], body: bytes, what: str) -> None:
    with pytest.raises(Malformed) as caught:
        read_answer(headers, body)
    assert what in caught.value.what


def test_completeness_by_end_marker() -> None:
    for fmt, data in (("png", PNG), ("jpeg", imaging.jpeg()), ("webp", imaging.webp())):
        assert is_complete(data, fmt)  # type: ignore[arg-type]
        assert not is_complete(data[:-8], fmt)  # type: ignore[arg-type]


# -- errors --------------------------------------------------------------------------------------


def test_the_400_fixture_names_the_field() -> None:
    body = json.dumps(fixture("stability_error_400.json")).encode()
    failure = read_error(400, body)
    assert (failure.message, failure.code, failure.param, failure.kind) == (
        "image: is required",
        "bad_request",
        "image",
        None,
    )


def test_the_403_moderation_fixture_is_moderation_not_auth() -> None:
    body = json.dumps(fixture("stability_error_403_moderation.json")).encode()
    failure = read_error(403, body)
    assert failure.kind == "moderation" and "content moderation" in failure.message
    error = Upstream("stability", read_error).status_error(403, body, {}, Deployment("stability"))
    assert isinstance(error, ContentPolicyViolation) and error.origin == "provider"


@pytest.mark.parametrize(
    ("status", "body", "code", "http"),
    [
        (
            401,
            b'{"id":"a","name":"unauthorized","errors":["bad key"]}',
            "provider_auth_failed",
            502,
        ),
        (
            402,
            b'{"id":"a","name":"payment_required","errors":["no credits"]}',
            "upstream_error",
            502,
        ),
        (
            413,
            b'{"id":"a","name":"payload_too_large","errors":["too big"]}',
            "payload_too_large",
            413,
        ),
        (
            429,
            b'{"id":"a","name":"rate_limit_exceeded","errors":["slow"]}',
            "rate_limit_exceeded",
            429,
        ),
        (500, b"<html>oops</html>", "upstream_error", 502),
    ],
)
def test_statuses_become_gateway_errors(status: int, body: bytes, code: str, http: int) -> None:
    deployment = Deployment("stability", api_key=SecretStr("sk-secret-0123456789"))
    error = Upstream("stability", read_error).status_error(status, body, {}, deployment)
    assert (error.code, error.status, error.origin) == (code, http, "provider")


# -- the adapter, on a mock transport ------------------------------------------------------------


def test_the_adapter_streams_the_image_part_and_reads_raw_bytes() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, content=PNG, headers={"content-type": "image/png", "finish-reason": "SUCCESS"}
        )

    async def run() -> Any:
        client = httpx.AsyncClient(
            base_url="https://stability.test", transport=httpx.MockTransport(answer)
        )
        deployment = Deployment(
            "stability", api_key=SecretStr("sk-test-key-0123456789"), client=client
        )
        try:
            return await StabilityProvider().edit(
                job("stability/remove-background", user="\u00fcu-1\r\n"),
                deployment,
                DiscardEvents(),
            )
        finally:
            await client.aclose()

    result = asyncio.run(run())
    (request,) = seen
    assert str(request.url) == "https://stability.test/v2beta/stable-image/edit/remove-background"
    assert request.headers["authorization"] == "Bearer sk-test-key-0123456789"
    assert request.headers["accept"] == "image/*"
    assert request.headers["stability-client-user-id"] == "u-1"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert int(request.headers["content-length"]) > len(PNG)  # a length, not chunked
    body = request.read()
    assert b'name="image"; filename="image.png"\r\nContent-Type: image/png' in body
    assert PNG in body
    assert (result.images[0].width, result.background) == (96, "opaque")


def test_the_adapter_turns_a_broken_answer_into_a_502() -> None:
    async def run() -> None:
        transport = httpx.MockTransport(
            lambda r: httpx.Response(200, content=b"", headers={"content-type": "image/png"})
        )
        client = httpx.AsyncClient(base_url="https://stability.test", transport=transport)
        deployment = Deployment("stability", api_key=SecretStr("k" * 20), client=client)
        try:
            await StabilityProvider().edit(
                job("stability/remove-background"), deployment, DiscardEvents()
            )
        finally:
            await client.aclose()

    with pytest.raises(UpstreamError) as caught:
        asyncio.run(run())
    assert caught.value.code == "upstream_malformed"


def test_input_image_param_names_the_part() -> None:
    small: ImageInput = image_input(imaging.png(64, 48), "image[0]")
    request = EditRequest(model="stability/remove-background", prompt="p", images=(small,))
    card = CARDS["stability/remove-background"]
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(EditJob(request, card, validate_request(request, card)))
    assert caught.value.param == "image[0]"
