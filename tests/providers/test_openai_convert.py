"""The OpenAI / Azure OpenAI converters on the reference fixtures: no network at all."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from imagegate.catalog.catalog import Catalog
from imagegate.catalog.validate import validate_request
from imagegate.core.errors import InvalidRequest
from imagegate.core.pricing import compute_cost
from imagegate.core.request import EditRequest, OutputOptions, SizingRequest
from imagegate.core.result import ResultImage
from imagegate.providers.base import EditJob
from imagegate.providers.openai import convert, errors, events
from imagegate.providers.openai.convert import Malformed
from imagegate.providers.openai.events import CompletedImage, PartialImage, StreamError
from imagegate.providers.openai.spec import shipped_cards
from tests import imaging
from tests.support.requests import image_input

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
PNG = imaging.png(32, 32)
PNG_B64 = base64.b64encode(PNG).decode()
CATALOG = Catalog.build(shipped=shipped_cards())


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().replace(b"<BASE64_PNG_PLACEHOLDER>", PNG_B64.encode())


def doc(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(fixture(name))
    return loaded


def job(
    model: str,
    *images: bytes,
    mask: bytes | None = None,
    output: OutputOptions | None = None,
    **fields: Any,
) -> EditJob:
    inputs = tuple(
        image_input(data, f"image[{i}]") for i, data in enumerate(images or (imaging.png(),))
    )
    if "size" in fields:
        fields["sizing"] = SizingRequest(size=fields.pop("size"))
    request = EditRequest(
        model=model,
        prompt=fields.pop("prompt", "make it blue"),
        images=inputs,
        mask=image_input(mask, "mask") if mask is not None else None,
        output=output or OutputOptions(),
        **fields,
    )
    card = CATALOG.resolve(model)
    return EditJob(request, card, validate_request(request, card))


# -- answers ---------------------------------------------------------------------------------


def test_gpt_image_answer_keeps_the_base64_and_splits_the_tokens() -> None:
    answer = convert.parse_answer(doc("openai_edit_response_gpt_image.json"), gpt_image=True)
    assert [image.b64 for image in answer.images] == [PNG_B64]
    image = ResultImage.from_base64(answer.images[0].b64 or "")
    assert image.b64 == PNG_B64 and image.data is None  # passed on untouched
    assert (answer.quality, answer.background, answer.size) == ("medium", "opaque", "1024x1024")
    usage = answer.usage
    assert (usage.input_tokens, usage.output_tokens) == (1372, 1056)
    assert (usage.input_text_tokens, usage.input_image_tokens) == (49, 1323)
    assert (usage.output_image_tokens, usage.output_text_tokens) == (1056, 0)


def test_output_tokens_without_details_are_image_tokens_and_priced_so() -> None:
    raw = doc("openai_edit_response_gpt_image.json")
    del raw["usage"]["output_tokens_details"]  # as gpt-image-1.5 and 2 answer
    usage = convert.parse_answer(raw, gpt_image=True).usage
    assert usage.output_image_tokens == 1056 and usage.output_text_tokens == 0
    card = CATALOG.resolve("gpt-image-1.5")
    cost = compute_cost(
        card.pricing, usage, output_sizes=[(1024, 1024)], input_images=1, tier="medium"
    )
    # text in x $5 + image in x $8 + image out x $32, per 1M tokens (never the text rate).
    assert cost == round((49 * 5 + 1323 * 8 + 1056 * 32) / 1_000_000, 8)


def test_dall_e_2_answer_is_a_url_without_usage() -> None:
    answer = convert.parse_answer(doc("openai_edit_response_dalle2_url.json"), gpt_image=False)
    assert answer.images[0].url is not None
    assert answer.images[0].url.startswith("https://oaidalleapiprodscus.blob.core.windows.net/")
    assert answer.images[0].b64 is None
    assert not answer.usage.has_tokens
    card = CATALOG.resolve("dall-e-2")
    cost = compute_cost(
        card.pricing, answer.usage, output_sizes=[(512, 512)], input_images=1, tier="512x512"
    )
    assert cost == 0.018


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b'{"created": 1, "data": [{"b64_json": "iVBOR', "cut short"),
        (b"<html>502</html>", "not JSON"),
        (b"[1, 2]", "not an object"),
    ],
)
def test_bodies_that_are_not_an_answer(body: bytes, what: str) -> None:
    with pytest.raises(Malformed, match=what):
        convert.load_json(body)


@pytest.mark.parametrize(
    "raw",
    [{"created": 1}, {"created": 1, "data": []}, {"created": 1, "data": [{"revised_prompt": "x"}]}],
)
def test_a_success_without_an_image_is_malformed(raw: dict[str, Any]) -> None:
    with pytest.raises(Malformed):
        convert.parse_answer(raw, gpt_image=True)


# -- streams ---------------------------------------------------------------------------------


def test_the_stream_fixture_gives_a_partial_then_the_completed_image() -> None:
    lines = fixture("openai_edit_stream_events.sse.txt").decode().splitlines()
    items = [events.stream_item(event) for event in events.sse_events(lines)]
    partial, completed = [item for item in items if item is not None]
    assert partial == PartialImage(PNG_B64, 0)
    assert isinstance(completed, CompletedImage)
    assert completed.b64 == PNG_B64
    assert (completed.quality, completed.background) == ("medium", "opaque")
    # The completed event's usage has no output_tokens_details: all image tokens.
    assert completed.usage.output_image_tokens == 1056
    assert completed.usage.input_image_tokens == 1323


def test_sse_decoding_as_the_sdks_do() -> None:
    lines = [
        ": keepalive",
        "event: image_edit.partial_image\r",
        'data: {"type": "image_edit.partial_image",',
        'data:  "b64_json": "QQ==", "partial_image_index": 2}',
        "",
        "data: [DONE]",
        "",
        "event: error",
        'data: {"type": "error", "error": {"code": "moderation_blocked", "message": "no"}}',
    ]
    parsed = list(events.sse_events(lines))
    assert [event.name for event in parsed] == ["image_edit.partial_image", "", "error"]
    assert events.stream_item(parsed[0]) == PartialImage("QQ==", 2)
    assert events.stream_item(parsed[1]) is None
    error = events.stream_item(parsed[2])
    assert isinstance(error, StreamError) and error.error["code"] == "moderation_blocked"
    assert events.stream_error_status(error.error) == 400


@pytest.mark.parametrize(
    "data",
    [
        "{not json",
        '{"type": "image_edit.completed", "b64_json": ""}',
        '{"type": "image_edit.partial_image"}',
    ],
)
def test_broken_stream_events_are_malformed(data: str) -> None:
    with pytest.raises(Malformed):
        events.stream_item(events.SseEvent("image_edit.completed", data))


def test_unknown_stream_events_are_skipped() -> None:
    event = events.SseEvent("image_edit.something_new", '{"type": "image_edit.something_new"}')
    assert events.stream_item(event) is None


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ({"type": "invalid_request_error", "code": "invalid_value"}, 400),
        ({"type": "requests", "code": "rate_limit_exceeded"}, 429),
        ({"type": "server_error", "code": None}, 500),
    ],
)
def test_stream_error_status(error: dict[str, Any], status: int) -> None:
    assert events.stream_error_status(error) == status


# -- errors ----------------------------------------------------------------------------------


def test_invalid_request_keeps_openai_words_code_and_param() -> None:
    failure = errors.read_error(400, fixture("openai_error_invalid_request.json"))
    assert failure.kind is None  # judged by the status: a 400
    assert (failure.code, failure.param) == ("invalid_value", "size")
    assert failure.message.startswith("Invalid value: 'square'.")


def test_moderation_blocked_is_a_content_policy_refusal_with_its_reason() -> None:
    failure = errors.read_error(400, fixture("openai_error_moderation_blocked.json"))
    assert failure.kind == "moderation" and failure.code == "moderation_blocked"
    assert "stage: output" in failure.message and "categories: sexual" in failure.message


def test_image_generation_user_error_is_moderation_too() -> None:
    body = {"error": {"message": "blocked", "type": "image_generation_user_error", "code": None}}
    assert errors.read_error(400, orjson.dumps(body)).kind == "moderation"


def test_a_body_that_is_not_json_is_quoted() -> None:
    failure = errors.read_error(502, b"<html>Bad gateway</html>")
    assert failure.message == "<html>Bad gateway</html>" and failure.kind is None


def test_azure_content_filter_is_moderation_with_the_filtered_categories() -> None:
    failure = errors.read_azure_error(400, fixture("azure_error_content_filter.json"))
    assert failure.kind == "moderation" and failure.code == "content_filter"
    assert "filtered: sexual (medium)" in failure.message
    assert "hate" not in failure.message


@pytest.mark.parametrize(
    "error",
    [
        {"code": "contentFilter", "message": "Your request was rejected."},
        {
            "code": "BadRequest",
            "message": "x",
            "innererror": {"code": "ResponsibleAIPolicyViolation"},
        },
        {"code": "moderation_blocked", "message": "Rejected by the safety system."},
    ],
)
def test_every_azure_spelling_of_a_content_refusal(error: dict[str, Any]) -> None:
    assert errors.read_azure_error(400, orjson.dumps({"error": error})).kind == "moderation"


def test_azure_forbidden_is_the_operators_problem() -> None:
    body = {"error": {"code": "Forbidden", "message": "The resource has been blocked."}}
    assert errors.read_azure_error(403, orjson.dumps(body)).kind == "auth"


def test_azure_rate_limit_is_judged_by_status() -> None:
    body = {"error": {"code": "429", "message": "Please retry after 7 seconds."}}
    failure = errors.read_azure_error(429, orjson.dumps(body))
    assert failure.kind is None and "retry after 7" in failure.message


# -- the request -----------------------------------------------------------------------------


def test_form_matches_the_reference_form_fields() -> None:
    reference = doc("openai_edit_request_form.json")["form"]
    edit = job(
        "gpt-image-1.5",
        imaging.png(64, 64),
        imaging.png(64, 64),
        mask=imaging.mask_left_half(64, 64),
        size="1024x1024",
        output=OutputOptions(quality="medium", output_format="png", background="auto"),
        input_fidelity="high",
    )
    form = convert.edit_form(edit)
    expected = {k: v for k, v in reference.items() if not isinstance(v, dict | list)}
    assert {k: v for k, v in form.fields.items() if k != "prompt"} == {
        k: v for k, v in expected.items() if k != "prompt"
    }
    assert [(p.name, p.content_type) for p in form.files] == [
        ("image[]", "image/png"),
        ("image[]", "image/png"),
        ("mask", "image/png"),
    ]
    assert not form.stream


def test_file_parts_are_typed_by_their_bytes() -> None:
    edit = job("gpt-image-1", imaging.jpeg(), imaging.webp(), imaging.png())
    parts = convert.edit_form(edit).files
    assert [(p.name, p.filename, p.content_type) for p in parts] == [
        ("image[]", "image-0.jpg", "image/jpeg"),
        ("image[]", "image-1.webp", "image/webp"),
        ("image[]", "image-2.png", "image/png"),
    ]
    single = convert.edit_form(job("gpt-image-1", imaging.webp())).files
    assert [(p.name, p.content_type) for p in single] == [("image", "image/webp")]


@pytest.mark.parametrize(
    "model", ["gpt-image-1", "gpt-image-1.5", "gpt-image-1-mini", "gpt-image-2"]
)
def test_response_format_never_reaches_gpt_image_models(model: str) -> None:
    edit = job(model, output=OutputOptions(response_format="url"))
    assert "response_format" not in convert.edit_form(edit).fields


def test_dall_e_2_asks_for_base64_and_gets_no_gpt_field() -> None:
    square = imaging.png(64, 64)
    edit = job(
        "dall-e-2",
        square,
        size="512x512",
        n=3,
        output=OutputOptions(quality="standard", output_format="webp", response_format="url"),
        user="u-1",
    )
    assert convert.edit_form(edit).fields == {
        "model": "dall-e-2",
        "prompt": "make it blue",
        "n": "3",
        "size": "512x512",
        "user": "u-1",
        "response_format": "b64_json",
        "quality": "standard",
    }


def test_gpt_fields_go_as_openai_spells_them() -> None:
    edit = job(
        "gpt-image-1",
        size="1536x1024",
        n=2,
        output=OutputOptions(
            output_format="webp", output_compression=80, background="transparent", quality="high"
        ),
        moderation="low",
        user="u-9",
        input_fidelity="low",
    )
    assert convert.edit_form(edit).fields == {
        "model": "gpt-image-1",
        "prompt": "make it blue",
        "n": "2",
        "size": "1536x1024",
        "user": "u-9",
        "quality": "high",
        "background": "transparent",
        "output_format": "webp",
        "output_compression": "80",
        "moderation": "low",
        "input_fidelity": "low",
    }


def test_only_the_cards_extra_fields_are_forwarded() -> None:
    edit = job("gpt-image-1", extra={"safety_identifier": "hash-1", "svg[model]": "x", "foo": 1})
    fields = convert.edit_form(edit).fields
    assert fields["safety_identifier"] == "hash-1"
    assert "foo" not in fields and "svg[model]" not in fields


def test_stream_upstream_only_for_one_gpt_image() -> None:
    streamed = convert.edit_form(job("gpt-image-2", stream=True, partial_images=2))
    assert streamed.stream
    assert (streamed.fields["stream"], streamed.fields["partial_images"]) == ("true", "2")
    several = convert.edit_form(job("gpt-image-2", stream=True, partial_images=2, n=2))
    assert not several.stream and "stream" not in several.fields
    legacy = convert.edit_form(job("dall-e-2", imaging.png(64, 64), stream=True))
    assert not legacy.stream and "stream" not in legacy.fields


def test_azure_form_names_the_deployment() -> None:
    fields = convert.edit_form(job("gpt-image-1"), model="gpt-image-1-prod").fields
    assert fields["model"] == "gpt-image-1-prod"


def test_custom_gpt_image_2_size_goes_as_is() -> None:
    assert convert.edit_form(job("gpt-image-2", size="1536x864")).fields["size"] == "1536x864"


def test_aspect_ratio_becomes_a_size() -> None:
    edit = job("gpt-image-1", sizing=SizingRequest(aspect_ratio="2:3"))
    assert convert.edit_form(edit).fields["size"] == "1024x1536"


# -- input_fidelity --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "asked", "sent"),
    [
        ("gpt-image-1", "high", "high"),
        ("gpt-image-1.5", "low", "low"),
        ("gpt-image-1-mini", "low", None),  # its only fidelity: omitted, as OpenAI asks
        ("gpt-image-2", "high", None),  # always high: omitted, as OpenAI asks
    ],
)
def test_input_fidelity_sent_or_omitted(model: str, asked: str, sent: str | None) -> None:
    edit = job(model, input_fidelity=asked)
    convert.check(edit)
    assert convert.edit_form(edit).fields.get("input_fidelity") == sent


@pytest.mark.parametrize(("model", "asked"), [("gpt-image-1-mini", "high"), ("gpt-image-2", "low")])
def test_input_fidelity_a_model_cannot_honour_is_refused(model: str, asked: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        convert.check(job(model, input_fidelity=asked))
    assert refused.value.param == "input_fidelity"


# -- check -----------------------------------------------------------------------------------


def refusal(edit: EditJob) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as refused:
        convert.check(edit)
    return refused.value


def test_dall_e_2_takes_square_pngs_only() -> None:
    assert refusal(job("dall-e-2", imaging.jpeg(64, 64))).code == "invalid_image_format"
    assert refusal(job("dall-e-2", imaging.png(64, 48))).code == "invalid_image_dimensions"
    convert.check(job("dall-e-2", imaging.png(64, 64)))


def test_dall_e_2_refuses_gpt_only_choices() -> None:
    square = imaging.png(64, 64)
    assert refusal(job("dall-e-2", square, output=OutputOptions(quality="high"))).param == "quality"
    assert refusal(job("dall-e-2", square, moderation="low")).param == "moderation"
    assert refusal(job("dall-e-2", square, input_fidelity="high")).param == "input_fidelity"


def test_gpt_image_quality_standard_is_refused() -> None:
    assert refusal(job("gpt-image-1", output=OutputOptions(quality="standard"))).param == "quality"


def test_masks_must_be_png_with_alpha_and_the_first_images_size() -> None:
    assert refusal(job("gpt-image-1", mask=imaging.mask_left_half(32, 32))).param == "mask"
    assert refusal(job("gpt-image-1", mask=imaging.png())).code == "invalid_mask"  # no alpha
    convert.check(job("gpt-image-1", mask=imaging.mask_left_half()))


def test_check_names_the_image_that_is_too_big() -> None:
    edit = job("gpt-image-1")
    big = replace(edit.request.images[0], blob=_Sized(convert.MAX_GPT_IMAGE_BYTES))
    assert refusal(replace(edit, request=replace(edit.request, images=(big,)))).code == (
        "image_too_large"
    )


class _Sized:
    """A blob that only claims a size (the check reads nothing else)."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
