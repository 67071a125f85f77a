"""Gemini end to end: the official OpenAI SDK -> the gateway -> the strict Gemini fake.

Every canonical model id: a single image, references up to the card's limit and one past it, a
mask, ``n``, each way of asking for a size, the faults in Gemini's shapes, a stream, thought
parts, the exact cost, and the key kept out of logs and answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI

from imagegate.testing.fake import Fault
from imagegate.testing.gemini import GeminiFake
from tests import imaging
from tests.server import Gateway
from tests.support import sdk
from tests.support.envelope import error_of
from tests.upstream.conftest import KEYS, RunningFake

FLASH = "gemini/gemini-2.5-flash-image"
PRO = "gemini/gemini-3-pro-image-preview"
FLASH_31 = "gemini/gemini-3.1-flash-image-preview"
MODELS = (FLASH, PRO, FLASH_31)
UPSTREAM = {model: model.split("/", 1)[1] for model in MODELS}
MAX_REFS = {FLASH: 3, PRO: 14, FLASH_31: 14}
THINKING = {FLASH: False, PRO: True, FLASH_31: True}
SOURCE = imaging.png()  # 64x48: 4:3, so the model "follows" it to 4:3
SIZE_4_3 = (1184, 864)  # 4:3 at 1K


@pytest.fixture()
def gemini(fakes: dict[str, RunningFake]) -> Iterator[GeminiFake]:
    running = fakes["gemini"]
    running.reset()
    fake = running.fake
    assert isinstance(fake, GeminiFake)
    fake.urlsafe_answers = False
    yield fake
    running.reset()
    fake.urlsafe_answers = False


def edit(client: OpenAI, model: str, images: int = 1, **params: Any) -> Any:
    image: Any = (
        ("cat.png", SOURCE) if images == 1 else [(f"{i}.png", SOURCE) for i in range(images)]
    )
    return sdk.edit(
        client, model=model, image=image, prompt=params.pop("prompt", "invert"), **params
    )


def refused(client: OpenAI, status: int, model: str = FLASH, **params: Any) -> dict[str, Any]:
    """The gateway's own 400 for an edit it will not send upstream."""
    with pytest.raises(openai.APIStatusError) as raised:
        edit(client, model, **params)
    return error_of(raised.value.response, status)


def the_call(fake: GeminiFake) -> dict[str, Any]:
    (call,) = fake.calls
    return call.summary


def decoded(result: Any, index: int = 0) -> Any:
    return imaging.decode_b64(result.data[index].b64_json).convert("RGB")


def inverted(pixel: tuple[int, ...], source: tuple[int, ...] = imaging.RED) -> bool:
    return pixel[:3] == tuple(255 - c for c in source)


def fault(fake: GeminiFake, name: Any, **options: Any) -> None:
    fake.faults.append(Fault(name, **options))


# -- a plain edit --------------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_single_image(upstream_client: OpenAI, gemini: GeminiFake, model: str) -> None:
    result = edit(upstream_client, model)
    assert result.model == model and result.size == "1184x864"
    out = decoded(result)
    assert out.size == SIZE_4_3
    assert inverted(out.getpixel((2, 2)))  # the fake's edit, and the final image, not a draft
    call = the_call(gemini)
    assert call["model"] == UPSTREAM[model] and call["api_version"] == "v1beta"
    assert call["auth"] == "header"
    assert call["top_level"] == ["contents", "generationConfig"]
    assert call["generation_config"] == {"responseModalities": ["TEXT", "IMAGE"]}
    text, image = call["parts"]
    assert text == {"kind": "text", "chars": len("invert")}
    assert image["spelling"] == "inline_data" and image["alphabet"] == "standard"
    assert (image["mime_type"], image["bytes"]) == ("image/png", len(SOURCE))
    (sent,) = gemini.calls
    assert sent.path == f"/v1beta/models/{UPSTREAM[model]}:generateContent" and not sent.query


def test_an_alias_and_other_formats(upstream_client: OpenAI, gemini: GeminiFake) -> None:
    jpeg, webp = imaging.jpeg(), imaging.webp()
    result = sdk.edit(
        upstream_client,
        model="nano-banana",
        image=[("a.jpg", jpeg), ("b.webp", webp)],
        prompt="combine",
    )
    assert result.model == FLASH
    parts = the_call(gemini)["parts"][1:]
    assert [(p["mime_type"], p["bytes"]) for p in parts] == [
        ("image/jpeg", len(jpeg)),
        ("image/webp", len(webp)),
    ]


@pytest.mark.parametrize("model", MODELS)
def test_thought_parts_are_skipped(upstream_client: OpenAI, gemini: GeminiFake, model: str) -> None:
    result = edit(upstream_client, model, extra_body={"aspect_ratio": "1:1"})
    out = decoded(result)
    # Thinking models answer with a draft first: the input NOT inverted, at a quarter size.
    assert out.size == (1024, 1024) and inverted(out.getpixel((2, 2)))
    assert THINKING[model] == (result.usage.output_tokens_details.text_tokens == 212)


def test_output_format_is_honoured_by_the_gateway(
    upstream_client: OpenAI, gemini: GeminiFake
) -> None:
    result = edit(upstream_client, FLASH_31, output_format="webp")  # Gemini answers PNG
    assert result.output_format == "webp"
    assert imaging.decode_b64(result.data[0].b64_json).format == "WEBP"


def test_url_safe_answers(upstream_client: OpenAI, gemini: GeminiFake) -> None:
    gemini.urlsafe_answers = True
    assert inverted(decoded(edit(upstream_client, PRO)).getpixel((2, 2)))


# -- references, mask, n -------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_references_up_to_the_card_limit(
    upstream_client: OpenAI, gemini: GeminiFake, model: str
) -> None:
    limit = MAX_REFS[model]
    edit(upstream_client, model, images=limit)
    assert the_call(gemini)["image_count"] == limit
    gemini.calls.clear()
    error = refused(upstream_client, 400, model, images=limit + 1)
    assert error["code"] == "too_many_images" and error["param"] == "image"
    assert gemini.calls == []


@pytest.mark.parametrize("model", MODELS)
def test_a_mask_is_refused(upstream_client: OpenAI, gemini: GeminiFake, model: str) -> None:
    error = refused(upstream_client, 400, model, mask=("m.png", imaging.mask_left_half()))
    assert error["code"] == "mask_not_supported" and error["param"] == "mask"
    assert gemini.calls == []


@pytest.mark.parametrize("model", MODELS)
def test_n_is_fanned_out(upstream_client: OpenAI, gemini: GeminiFake, model: str) -> None:
    one = edit(upstream_client, model).usage
    gemini.calls.clear()
    result = edit(upstream_client, model, n=2)
    assert len(gemini.calls) == 2 and len(result.data) == 2
    assert all(decoded(result, i).size == SIZE_4_3 for i in range(2))
    usage = result.usage
    assert usage.input_tokens == 2 * one.input_tokens
    assert usage.output_tokens == 2 * one.output_tokens
    assert usage.input_tokens_details.image_tokens == 2 * one.input_tokens_details.image_tokens
    assert usage.output_tokens_details.image_tokens == 2 * one.output_tokens_details.image_tokens
    assert usage.model_extra["cost"]["total_cost"] == pytest.approx(
        2 * one.model_extra["cost"]["total_cost"], abs=1e-8
    )
    error = refused(upstream_client, 400, model, n=5)
    assert error["param"] == "n"


def test_a_seed_is_refused(upstream_client: OpenAI, gemini: GeminiFake) -> None:
    error = refused(upstream_client, 400, PRO, extra_body={"seed": 42})
    assert error["param"] == "seed" and gemini.calls == []


# -- sizing --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "params", "image_config", "size"),
    [
        (FLASH, {"extra_body": {"aspect_ratio": "16:9"}}, {"aspectRatio": "16:9"}, (1344, 768)),
        (FLASH, {"size": "1536x1024"}, {"aspectRatio": "3:2"}, (1248, 832)),
        (FLASH, {"size": "1024x1536"}, {"aspectRatio": "2:3"}, (832, 1248)),
        (FLASH, {"extra_body": {"resolution": "1K"}}, None, SIZE_4_3),  # never imageSize
        (FLASH, {"size": "auto"}, None, SIZE_4_3),
        (PRO, {"size": "1536x1024"}, {"aspectRatio": "3:2", "imageSize": "1K"}, (1248, 832)),
        (PRO, {"extra_body": {"resolution": "2K"}}, {"imageSize": "2K"}, (2368, 1728)),
        (
            PRO,
            {"extra_body": {"image_size": "2K", "aspect_ratio": "21:9"}},
            {"aspectRatio": "21:9", "imageSize": "2K"},
            (3072, 1344),
        ),
        (PRO, {"size": "2048x2048"}, {"aspectRatio": "1:1", "imageSize": "2K"}, (2048, 2048)),
        (PRO, {"size": "1920x1080"}, {"aspectRatio": "16:9", "imageSize": "1K"}, (1344, 768)),
        (PRO, {"extra_body": {"aspect_ratio": "auto"}}, None, SIZE_4_3),
        (
            FLASH_31,
            {"extra_body": {"resolution": "512", "aspect_ratio": "1:8"}},
            {"aspectRatio": "1:8", "imageSize": "512"},
            (192, 1536),
        ),
        (FLASH_31, {"size": "1024x1024"}, {"aspectRatio": "1:1", "imageSize": "1K"}, (1024, 1024)),
        (FLASH_31, {"extra_body": {"image_size": "512"}}, {"imageSize": "512"}, (592, 432)),
    ],
)
def test_sizing_reaches_gemini(
    upstream_client: OpenAI,
    gemini: GeminiFake,
    model: str,
    params: dict[str, Any],
    image_config: dict[str, str] | None,
    size: tuple[int, int],
) -> None:
    result = edit(upstream_client, model, **params)
    assert the_call(gemini)["generation_config"].get("imageConfig") == image_config
    assert decoded(result).size == size and result.size == f"{size[0]}x{size[1]}"


@pytest.mark.parametrize(
    ("model", "params", "param"),
    [
        (FLASH, {"size": "1000x700"}, "size"),  # 10:7: no ratio, and never 1:1
        (FLASH, {"size": "2048x2048"}, "size"),  # 4x the pixels 2.5 Flash Image can make
        (FLASH, {"extra_body": {"resolution": "2K"}}, "resolution"),
        (PRO, {"extra_body": {"aspect_ratio": "1:8"}}, "aspect_ratio"),
        (FLASH_31, {"extra_body": {"resolution": "8K"}}, "resolution"),
    ],
)
def test_untranslatable_sizes_are_refused(
    upstream_client: OpenAI, gemini: GeminiFake, model: str, params: dict[str, Any], param: str
) -> None:
    error = refused(upstream_client, 400, model, **params)
    assert error["param"] == param and error["code"] == "unsupported_size"
    assert gemini.calls == []


# -- faults --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "options", "status", "code", "needle"),
    [
        ("rate_limit", {"retry_after": 17}, 429, "rate_limit_exceeded", "quota"),
        ("rate_limit", {}, 429, "rate_limit_exceeded", "quota"),
        ("server_error", {}, 502, "upstream_error", "internal error"),
        ("unavailable", {}, 502, "upstream_error", "overloaded"),
        ("timeout", {"delay": 4}, 504, "upstream_timeout", "did not answer in time"),
        ("timeout", {"variant": "deadline"}, 504, "upstream_timeout", "Deadline expired"),
        ("malformed", {}, 502, "upstream_malformed", "not JSON"),
        ("truncated", {}, 502, "upstream_malformed", "not JSON"),
        ("no_image", {}, 502, "upstream_error", "text-only answer"),
        ("no_image", {"variant": "NO_IMAGE"}, 502, "upstream_error", "NO_IMAGE"),
        ("no_image", {"variant": "MAX_TOKENS"}, 502, "upstream_error", "MAX_TOKENS"),
        ("moderation", {}, 400, "content_policy_violation", "IMAGE_SAFETY"),
        (
            "moderation",
            {"variant": "PROHIBITED_CONTENT"},
            400,
            "content_policy_violation",
            "PROHIBITED_CONTENT",
        ),
        ("moderation", {"variant": "blocked"}, 400, "content_policy_violation", "blockReason"),
        ("bad_key", {}, 502, "provider_auth_failed", "credential"),
    ],
)
def test_faults(
    upstream_client: OpenAI,
    upstream_gateway: Gateway,
    gemini: GeminiFake,
    name: str,
    options: dict[str, Any],
    status: int,
    code: str,
    needle: str,
) -> None:
    fault(gemini, name, **options)
    with pytest.raises(openai.APIStatusError) as raised:
        edit(upstream_client, FLASH)
    error = error_of(raised.value.response, status, origin="provider")
    assert error["code"] == code and needle in error["message"], error
    assert KEYS["gemini"] not in error["message"]
    retry_after = raised.value.response.headers.get("retry-after")
    assert retry_after == ("17" if options.get("retry_after") else None)
    assert len(gemini.calls) == 1
    edit(upstream_client, FLASH)  # the fault is spent; the next edit goes through


def test_the_key_never_reaches_the_log(
    upstream_client: OpenAI, upstream_gateway: Gateway, gemini: GeminiFake
) -> None:
    for name in ("bad_key", "rate_limit", "server_error", "moderation"):
        fault(gemini, name)
        with pytest.raises(openai.APIStatusError):
            edit(upstream_client, FLASH)
    edit(upstream_client, FLASH)
    upstream_gateway.log_lines(lambda line: line.get("failure") == "auth")
    logs = upstream_gateway.logs()
    assert "provider_auth_failed" in logs or "credential" in logs
    assert KEYS["gemini"] not in logs


# -- stream and cost -----------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_stream(upstream_client: OpenAI, gemini: GeminiFake, model: str) -> None:
    events = sdk.stream(
        upstream_client,
        model=model,
        image=("cat.png", SOURCE),
        prompt="invert",
        n=2,
        partial_images=2,
    )
    assert [event.type for event in events] == ["image_edit.completed"] * 2
    for event in events:
        image = imaging.decode_b64(event.b64_json).convert("RGB")
        assert image.size == SIZE_4_3 and inverted(image.getpixel((2, 2)))
    assert len(gemini.calls) == 2


@pytest.mark.parametrize(
    ("model", "params", "cost"),
    [
        # prompt "invert": 2 text tokens; one 64x48 input image.
        # 2.5 Flash: 2 x $0.30 + 258 x $0.30 + 6 x $2.50 + 1290 x $30 (per 1M).
        (FLASH, {}, 0.038793),
        # 3 Pro: 2 x $2 + 560 x $2 + 212 thought tokens x $12 + 1120 x $120.
        (PRO, {}, 0.138068),
        # 3 Pro at 4K: 2000 image tokens.
        (PRO, {"extra_body": {"resolution": "4K"}}, (4 + 1120 + 212 * 12 + 2000 * 120) / 1e6),
        # 3.1 Flash: 2 x $0.25 + 1120 x $0.25 + 212 x $1.50 + 1120 x $60.
        (FLASH_31, {}, 0.0677985),
        # 3.1 Flash at 512: 747 image tokens.
        (FLASH_31, {"extra_body": {"resolution": "512"}}, (0.5 + 280 + 318 + 747 * 60) / 1e6),
    ],
)
def test_exact_cost(
    upstream_client: OpenAI, gemini: GeminiFake, model: str, params: dict[str, Any], cost: float
) -> None:
    result = edit(upstream_client, model, **params)
    assert result.usage.model_extra["cost"]["total_cost"] == round(cost, 8)
