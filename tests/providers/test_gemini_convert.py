"""The Gemini converters on Google's wire bodies (``fixtures/gemini_*.json``), with no network:
the request body, the answer (thoughts skipped), usage and cost, refusals and errors."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.catalog import Catalog
from imagegate.catalog.validate import validate_request
from imagegate.core.errors import (
    ContentPolicyViolation,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from imagegate.core.pricing import compute_cost
from imagegate.core.request import EditRequest, SizingRequest
from imagegate.core.result import EditResult
from imagegate.providers.base import Deployment, EditJob
from imagegate.providers.gemini import convert
from imagegate.providers.gemini.convert import (
    Malformed,
    check_job,
    encode_request,
    generation_config,
    read_answer,
    read_error,
    read_usage,
)
from imagegate.providers.gemini.spec import load_cards
from imagegate.providers.upstream import ProviderFailure, Upstream
from tests import imaging
from tests.support.requests import edit_request, image_input

FIXTURES = Path(__file__).parent / "fixtures"
PLACEHOLDER = "<BASE64_PNG_PLACEHOLDER>"
FLASH = "gemini/gemini-2.5-flash-image"
PRO = "gemini/gemini-3-pro-image-preview"
FLASH_31 = "gemini/gemini-3.1-flash-image-preview"
KEY = "AIzaUnitTestKey0123456789abcdefghij"


def _google(status: int, state: str, message: str = "m", *, retry: str | None = None) -> bytes:
    error: dict[str, Any] = {"code": status, "message": message, "status": state}
    if retry is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry},
        ]
    return orjson.dumps({"error": error})


def _deployment() -> Deployment:
    return Deployment(provider="gemini", api_key=SecretStr(KEY))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def catalog(*overrides: dict[str, Any]) -> Catalog:
    return Catalog.build(list(overrides), shipped=load_cards())


def card(model: str) -> ModelCard:
    return catalog().resolve(model)


def job(model: str, request: EditRequest | None = None, **fields: Any) -> EditJob:
    the_card = card(model)
    request = request or edit_request(model, prompt="invert", **fields)
    return EditJob(request, the_card, validate_request(request, the_card))


def sized(model: str, **sizing: Any) -> EditJob:
    return job(model, sizing=SizingRequest(**sizing))


def fixture(name: str, *pngs: bytes) -> dict[str, Any]:
    """A fixture with each placeholder replaced, in order, by the base64 of ``pngs``."""
    text = (FIXTURES / name).read_text()
    for png in pngs:
        text = text.replace(PLACEHOLDER, base64.b64encode(png).decode(), 1)
    doc: dict[str, Any] = orjson.loads(text)
    return doc


def answered(doc: dict[str, Any], model: str = FLASH) -> EditResult:
    result = read_answer(doc, model)
    assert isinstance(result, EditResult), result
    return result


def refused(doc: dict[str, Any]) -> ProviderFailure:
    result = read_answer(doc, FLASH)
    assert isinstance(result, ProviderFailure), result
    return result


# -- the request ---------------------------------------------------------------------------------
def test_body_has_the_fixture_shape_and_the_bytes_as_received() -> None:
    png, jpeg = imaging.png(), imaging.jpeg()
    request = EditRequest(
        model=PRO,
        prompt='Put the "product" from image 1 on the table in image 2.\nKeep lighting — ok?',
        images=(image_input(png), image_input(jpeg, "image[1]")),
        sizing=SizingRequest(aspect_ratio="16:9", resolution="2K"),
    )
    body = encode_request(job(PRO, request))
    doc = orjson.loads(body.joined())
    assert body.length == len(body.joined())

    reference = fixture("gemini_edit_request.json")
    assert doc.keys() == reference.keys()
    assert doc["generationConfig"] == reference["generationConfig"]
    parts = doc["contents"][0]["parts"]
    assert doc["contents"][0]["role"] == "user"
    assert [list(part) for part in parts] == [
        list(part) for part in reference["contents"][0]["parts"]
    ]
    assert parts[0] == {"text": request.prompt}
    assert parts[1]["inline_data"] == {"mime_type": "image/png", "data": _b64(png)}
    assert parts[2]["inline_data"] == {"mime_type": "image/jpeg", "data": _b64(jpeg)}


def test_images_are_encoded_once_into_shared_pieces() -> None:
    data = imaging.webp()
    body = encode_request(job(FLASH, EditRequest(FLASH, "p", (image_input(data),))))
    assert base64.b64encode(data) in body.chunks  # one piece, spliced as it is
    assert orjson.loads(body.joined())["contents"][0]["parts"][1]["inline_data"]["mime_type"] == (
        "image/webp"
    )


@pytest.mark.parametrize(
    ("model", "sizing", "image_config"),
    [
        (FLASH, {}, None),
        (FLASH, {"aspect_ratio": "auto"}, None),
        (FLASH, {"size": "auto"}, None),
        (FLASH, {"aspect_ratio": "21:9"}, {"aspectRatio": "21:9"}),
        (FLASH, {"size": "1536x1024"}, {"aspectRatio": "3:2"}),
        (FLASH, {"width": 1024, "height": 1536}, {"aspectRatio": "2:3"}),
        # 2.5 Flash Image makes 1K only and takes no imageSize: the tier is never sent.
        (FLASH, {"resolution": "1K"}, None),
        (FLASH, {"aspect_ratio": "1:1", "image_size": "1K"}, {"aspectRatio": "1:1"}),
        (PRO, {"resolution": "4K"}, {"imageSize": "4K"}),
        (PRO, {"image_size": "2k"}, {"imageSize": "2K"}),
        (PRO, {"aspect_ratio": "auto", "resolution": "2K"}, {"imageSize": "2K"}),
        (PRO, {"size": "1536x1024"}, {"aspectRatio": "3:2", "imageSize": "1K"}),
        (PRO, {"size": "2048x2048"}, {"aspectRatio": "1:1", "imageSize": "2K"}),
        (PRO, {"size": "4096x4096"}, {"aspectRatio": "1:1", "imageSize": "4K"}),
        (FLASH_31, {"size": "512x512"}, {"aspectRatio": "1:1", "imageSize": "512"}),
        (
            FLASH_31,
            {"resolution": "512", "aspect_ratio": "1:8"},
            {"aspectRatio": "1:8", "imageSize": "512"},
        ),
        (FLASH_31, {"size": "1024x4096"}, {"aspectRatio": "1:4", "imageSize": "2K"}),
    ],
)
def test_sizing_reaches_gemini_as_ratio_and_tier(
    model: str, sizing: dict[str, Any], image_config: dict[str, str] | None
) -> None:
    config = generation_config(sized(model, **sizing))
    assert config["responseModalities"] == ["TEXT", "IMAGE"]
    assert config.get("imageConfig") == image_config
    assert set(config) <= {"responseModalities", "imageConfig"}  # no seed, no n, no count


@pytest.mark.parametrize(
    ("model", "sizing", "param"),
    [
        (FLASH, {"size": "1000x700"}, "size"),  # 10:7 is no ratio Gemini takes: never 1:1
        (FLASH, {"size": "1024x1023"}, "size"),
        (FLASH, {"aspect_ratio": "1:8"}, "aspect_ratio"),  # 3.1 Flash only
        (PRO, {"aspect_ratio": "8:1"}, "aspect_ratio"),
        (FLASH, {"resolution": "2K"}, "resolution"),
        (PRO, {"resolution": "512"}, "resolution"),
    ],
)
def test_what_the_card_cannot_translate_is_refused(
    model: str, sizing: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as refused_:
        sized(model, **sizing)
    assert refused_.value.param == param
    assert refused_.value.code == "unsupported_size"


def test_a_size_far_beyond_the_model_is_refused_not_answered_smaller() -> None:
    with pytest.raises(InvalidRequest) as too_big:
        check_job(sized(FLASH, size="2048x2048"))  # 4x the pixels of its only tier
    assert too_big.value.param == "size" and "2048x2048" in too_big.value.message
    check_job(sized(FLASH, size="1536x1024"))  # near 1K: made at 1K
    check_job(sized(PRO, size="4096x4096"))


def test_check_refuses_a_seed_and_too_much_inline_data(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidRequest) as seeded:
        check_job(job(FLASH, seed=7))
    assert seeded.value.param == "seed"
    monkeypatch.setattr(convert, "MAX_INLINE_BYTES", 2000)
    big = image_input(imaging.png(400, 300))
    with pytest.raises(InvalidRequest) as heavy:
        check_job(job(PRO, EditRequest(PRO, "p", (big, big))))
    assert heavy.value.code == "image_too_large"


def test_check_refuses_a_ratio_or_tier_the_gemini_api_does_not_take() -> None:
    loose = catalog(
        {"id": FLASH, "sizing": {"aspect_ratios": ["1:1", "7:5"], "resolutions": ["1K", "3K"]}}
    ).resolve(FLASH)
    for sizing, param in (
        (SizingRequest(aspect_ratio="7:5"), "aspect_ratio"),
        (SizingRequest(resolution="3K"), "resolution"),
    ):
        request = edit_request(FLASH, sizing=sizing)
        with pytest.raises(InvalidRequest) as refused_:
            check_job(EditJob(request, loose, validate_request(request, loose)))
        assert refused_.value.param == param


# -- the answer ----------------------------------------------------------------------------------
def test_answer_image_and_usage() -> None:
    png = imaging.png(80, 60)
    result = answered(fixture("gemini_edit_response.json", png))
    (image,) = result.images
    assert (image.format, image.width, image.height) == ("png", 80, 60)
    assert image.b64 == _b64(png)  # passed through untouched
    assert result.provider == "gemini" and result.model == FLASH
    usage = result.usage
    assert (usage.input_text_tokens, usage.input_image_tokens) == (17, 1290)
    assert (usage.output_image_tokens, usage.output_text_tokens) == (1290, 8)
    assert (usage.input_tokens, usage.output_tokens) == (1307, 1298)


def test_thoughts_are_skipped_and_the_last_image_is_the_answer() -> None:
    draft, final = imaging.png(16, 12), imaging.png(96, 72, background=imaging.BLUE)
    result = answered(fixture("gemini_pro_edit_response_with_thoughts.json", draft, final), PRO)
    (image,) = result.images
    assert (image.width, image.height) == (96, 72)
    assert image.b64 == _b64(final)
    usage = result.usage
    assert (usage.input_text_tokens, usage.input_image_tokens) == (11, 560)
    # 1336 candidates - 1120 image = 216 text, plus 212 thought tokens, all at the text rate.
    assert (usage.output_image_tokens, usage.output_text_tokens) == (1120, 216 + 212)
    assert usage.output_tokens == 1336 + 212


def test_cost_is_exact_from_usage_metadata() -> None:
    draft, final = imaging.png(16, 12), imaging.png(96, 72)
    result = answered(fixture("gemini_pro_edit_response_with_thoughts.json", draft, final), PRO)
    cost = compute_cost(
        card(PRO).pricing, result.usage, output_sizes=[(96, 72)], input_images=1, tier=None
    )
    # 11 x $2 + 560 x $2 + 428 x $12 + 1120 x $120, per million tokens.
    assert cost == 0.140678
    flash = answered(fixture("gemini_edit_response.json", final))
    cost = compute_cost(
        card(FLASH).pricing, flash.usage, output_sizes=[(96, 72)], input_images=1, tier=None
    )
    assert cost == round((17 * 0.30 + 1290 * 0.30 + 8 * 2.50 + 1290 * 30) / 1e6, 8)


def test_only_draft_images_is_no_answer() -> None:
    doc = fixture("gemini_pro_edit_response_with_thoughts.json", imaging.png(), imaging.png())
    doc["candidates"][0]["content"]["parts"][2]["thought"] = True
    failure = refused(doc)
    assert failure.kind == "server" and "finishReason STOP" in failure.message


def test_url_safe_base64_is_accepted_and_passed_on_in_the_standard_alphabet() -> None:
    png = next(
        data
        for size in range(40, 200)
        if b"_" in base64.urlsafe_b64encode(data := imaging.png(size, size))
    )
    doc = fixture("gemini_edit_response.json")
    urlsafe = base64.urlsafe_b64encode(png).decode().rstrip("=")
    doc["candidates"][0]["content"]["parts"][1]["inlineData"]["data"] = urlsafe
    (image,) = answered(doc).images
    assert base64.b64decode(image.base64()) == png
    assert "_" not in image.base64() and "-" not in image.base64()


def test_the_bytes_not_the_label_say_what_the_image_is() -> None:
    doc = fixture("gemini_edit_response.json", imaging.jpeg())
    doc["candidates"][0]["content"]["parts"][1]["inlineData"]["mimeType"] = "image/png"
    assert answered(doc).images[0].format == "jpeg"


def test_moderation_with_http_200() -> None:
    failure = refused(fixture("gemini_response_no_image.json"))
    assert failure.kind == "moderation" and failure.code == "image_safety"
    assert "IMAGE_SAFETY" in failure.message and "I can't edit that image." in failure.message
    blocked = refused(fixture("gemini_response_prompt_blocked.json"))
    assert blocked.kind == "moderation" and "PROHIBITED_CONTENT" in blocked.message


@pytest.mark.parametrize(
    ("finish", "kind"),
    [
        *((reason, "moderation") for reason in sorted(convert.MODERATION_FINISH)),
        ("NO_IMAGE", "server"),
        ("IMAGE_OTHER", "server"),
        ("OTHER", "server"),
        ("MAX_TOKENS", "server"),
        ("STOP", "server"),
        ("MALFORMED_FUNCTION_CALL", "server"),
    ],
)
def test_each_finish_reason_without_an_image(finish: str, kind: str) -> None:
    doc = fixture("gemini_response_no_image.json")
    doc["candidates"][0]["finishReason"] = finish
    failure = refused(doc)
    assert failure.kind == kind and finish in failure.message
    del doc["candidates"][0]["content"]  # a reason with no parts at all
    assert refused(doc).kind == kind


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {},
        {"candidates": "x"},
        {"candidates": [{"content": {"parts": {}}}]},
        {"candidates": [{"content": {"parts": ["text"]}}]},
        {"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png"}}]}}]},
        {"candidates": [{"content": {"parts": [{"inlineData": {"data": "aGVsbG8="}}]}}]},
        {
            "candidates": [
                {"content": {"parts": [{"inlineData": {"mimeType": "image/gif", "data": "R0lG"}}]}}
            ]
        },
        {
            "candidates": [
                {"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "@@@@"}}]}}
            ]
        },
    ],
)
def test_malformed_answers(doc: Any) -> None:
    with pytest.raises(Malformed):
        read_answer(doc, FLASH)


def test_usage_without_details() -> None:
    usage = read_usage({"promptTokenCount": 300, "candidatesTokenCount": 1290}, image_returned=True)
    assert (usage.input_text_tokens, usage.input_image_tokens) == (300, 0)
    assert (usage.output_image_tokens, usage.output_text_tokens) == (1290, 0)
    assert read_usage(None, image_returned=True).has_tokens is False


# -- errors --------------------------------------------------------------------------------------
def test_error_envelopes() -> None:
    bad_key = read_error(400, (FIXTURES / "gemini_error_400.json").read_bytes())
    assert bad_key.kind == "auth" and bad_key.code == "api_key_invalid"
    quota = read_error(429, (FIXTURES / "gemini_error_429.json").read_bytes())
    assert quota.kind == "rate_limit" and quota.retry_after is None
    delayed = read_error(429, _google(429, "RESOURCE_EXHAUSTED", retry="17.5s"))
    assert delayed.retry_after == 17.5
    assert read_error(403, _google(403, "PERMISSION_DENIED")).kind == "auth"
    assert read_error(400, _google(400, "FAILED_PRECONDITION")).kind == "server"
    assert read_error(500, _google(500, "INTERNAL")).kind is None  # the status decides
    assert read_error(400, _google(400, "INVALID_ARGUMENT")).code == "invalid_argument"
    too_big = read_error(400, _google(400, "INVALID_ARGUMENT", "Request payload size exceeds"))
    assert too_big.kind == "too_large"
    wrapped = read_error(400, b"[" + _google(400, "INVALID_ARGUMENT", "listed") + b"]")
    assert wrapped.message == "listed"
    assert read_error(502, b"<html>Bad Gateway</html>").message == "<html>Bad Gateway</html>"


BOUNDARY_CASES = [
    (400, (FIXTURES / "gemini_error_400.json").read_bytes(), UpstreamError, "provider_auth_failed"),
    (403, _google(403, "PERMISSION_DENIED"), UpstreamError, "provider_auth_failed"),
    (404, _google(404, "NOT_FOUND", "models/x is not found"), NotFound, "not_found"),
    (400, _google(400, "INVALID_ARGUMENT", "bad ratio"), InvalidRequest, "invalid_argument"),
    (
        400,
        _google(400, "INVALID_ARGUMENT", "Request payload size exceeds the limit"),
        PayloadTooLarge,
        "payload_too_large",
    ),
    (500, _google(500, "INTERNAL"), UpstreamError, "upstream_error"),
    (503, _google(503, "UNAVAILABLE"), UpstreamError, "upstream_error"),
    (504, _google(504, "DEADLINE_EXCEEDED"), UpstreamTimeout, "upstream_timeout"),
    (
        200,
        (FIXTURES / "gemini_response_no_image.json").read_bytes(),
        ContentPolicyViolation,
        "content_policy_violation",
    ),
    (
        200,
        (FIXTURES / "gemini_response_prompt_blocked.json").read_bytes(),
        ContentPolicyViolation,
        "content_policy_violation",
    ),
    (
        200,
        orjson.dumps({"candidates": [{"finishReason": "NO_IMAGE"}]}),
        UpstreamError,
        "upstream_error",
    ),
]


@pytest.mark.parametrize(("status", "body", "error", "code"), BOUNDARY_CASES)
def test_the_boundary_maps_gemini_failures(
    status: int, body: bytes, error: type[Exception], code: str
) -> None:
    raised = Upstream("gemini", read_error).status_error(status, body, {}, _deployment())
    assert type(raised) is error and raised.code == code and raised.origin == "provider"


def test_retry_delay_becomes_retry_after() -> None:
    body = _google(429, "RESOURCE_EXHAUSTED", retry="17s")
    raised = Upstream("gemini", read_error).status_error(429, body, {}, _deployment())
    assert isinstance(raised, RateLimited) and raised.headers == {"Retry-After": "17"}


def test_a_key_echoed_in_a_url_or_a_message_never_leaves() -> None:
    message = (
        f"POST https://generativelanguage.googleapis.com/v1beta/models/x:generateContent?key={KEY}"
        f" failed; x-goog-api-key: {KEY}"
    )
    raised = Upstream("gemini", read_error).status_error(
        400, _google(400, "INVALID_ARGUMENT", message), {}, _deployment()
    )
    assert KEY not in raised.message and "key=[redacted]" in raised.message
