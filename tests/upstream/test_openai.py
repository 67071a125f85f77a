"""OpenAI end to end: the official SDK -> the gateway -> the strict OpenAI fake, every model."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.catalog import Catalog
from imagegate.providers.openai.spec import shipped_cards
from imagegate.testing.fake import Call, Fault
from imagegate.testing.openai import OpenAIFake, b64_digest, bytes_digest
from tests import imaging
from tests.server import Gateway
from tests.support import envelope, sdk
from tests.support.requests import post_edit
from tests.upstream.conftest import KEYS, RunningFake

CATALOG = Catalog.build(shipped=shipped_cards())
GPT_IMAGE = [
    "openai/gpt-image-1",
    "openai/gpt-image-1.5",
    "openai/gpt-image-1-mini",
    "openai/gpt-image-2",
]
EDITABLE = [*GPT_IMAGE, "openai/dall-e-2"]
SQUARE = imaging.png(64, 64)  # every model takes it (dall-e-2: one square PNG)


@pytest.fixture()
def fake(fakes: dict[str, RunningFake]) -> Iterator[OpenAIFake]:
    running = fakes["openai"]
    running.reset()
    fake = running.fake
    assert isinstance(fake, OpenAIFake)
    yield fake
    running.reset()
    fake.answer_urls = False


def card(model: str) -> ModelCard:
    return CATALOG.resolve(model)


def upstream_name(model: str) -> str:
    return card(model).upstream_model


def only_call(fake: OpenAIFake) -> Call:
    assert len(fake.calls) == 1, fake.calls
    return fake.calls[0]


def token_cost(model: str, usage: dict[str, Any]) -> float:
    """USD for the usage the fake reported, at the card's per-1M prices: text in at the text
    rate, image in at the image-input rate, every output token at the image-output rate."""
    prices = card(model).pricing.tokens
    assert prices is not None
    details = usage["input_tokens_details"]
    total = (
        details["text_tokens"] * prices.text_input
        + details["image_tokens"] * prices.image_input
        + usage["output_tokens"] * prices.image_output
    )
    return round(total / 1_000_000, 8)


def cost_of(result: Any) -> float:
    assert result.usage is not None and result.usage.model_extra is not None
    cost: float = result.usage.model_extra["cost"]["total_cost"]
    return cost


def inverted(pixel: tuple[int, ...], color: tuple[int, int, int]) -> bool:
    return imaging.is_close(pixel, tuple(255 - c for c in color), tolerance=3)


def size_for(model: str) -> str:
    return "256x256" if model == "openai/dall-e-2" else "1024x1024"


# -- one image ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", EDITABLE)
def test_single_image(upstream_client: OpenAI, fake: OpenAIFake, model: str) -> None:
    size = size_for(model)
    result = sdk.edit(
        upstream_client, model=model, image=("photo.png", SQUARE), prompt="invert", size=size
    )

    call = only_call(fake)
    assert (call.method, call.path) == ("POST", "/v1/images/edits")
    assert call.content_type.startswith("multipart/form-data; boundary=")
    summary = call.summary
    assert summary["status"] == 200 and summary["auth"] == "bearer"
    assert summary["model"] == upstream_name(model)
    assert summary["files"] == [["image", "image-0.png", "image/png"]]
    assert summary["values"]["size"] == size and summary["values"]["n"] == "1"
    if model == "openai/dall-e-2":
        assert summary["fields"] == ["model", "n", "prompt", "response_format", "size"]
        assert summary["values"]["response_format"] == "b64_json"
    else:
        assert summary["fields"] == ["model", "n", "prompt", "size"]

    assert result.model == model and result.data is not None and len(result.data) == 1
    b64 = result.data[0].b64_json or ""
    assert b64_digest(b64) == summary["answer"][0]  # the provider's base64, untouched
    out = imaging.decode_b64(b64).convert("RGB")
    assert out.size == tuple(int(side) for side in size.split("x"))
    assert inverted(out.getpixel((out.width // 2, out.height // 2)), imaging.GREEN)
    if model == "openai/dall-e-2":
        assert cost_of(result) == 0.016  # per image, by size
        assert result.usage is not None and result.usage.total_tokens == 0
    else:
        usage = summary["usage"]
        assert result.usage is not None
        assert result.usage.output_tokens == usage["output_tokens"]
        assert (
            result.usage.input_tokens_details.image_tokens
            == (usage["input_tokens_details"]["image_tokens"])
        )
        assert cost_of(result) == token_cost(model, usage)
        assert result.quality == "medium" and result.background == "opaque"


def test_image_output_tokens_are_never_billed_at_the_text_rate(
    upstream_client: OpenAI, fake: OpenAIFake
) -> None:
    # gpt-image-1.5 answers without output_tokens_details, as the real API does.
    result = sdk.edit(
        upstream_client, model="gpt-image-1.5", image=SQUARE, prompt="invert", quality="high"
    )
    usage = only_call(fake).summary["usage"]
    assert "output_tokens_details" not in usage
    assert usage["output_tokens"] == 4160  # high quality, 1024x1024
    assert result.usage is not None and result.usage.output_tokens_details is not None
    assert result.usage.output_tokens_details.image_tokens == 4160
    text = usage["input_tokens_details"]["text_tokens"]
    image_in = usage["input_tokens_details"]["image_tokens"]
    assert cost_of(result) == round((text * 5 + image_in * 8 + 4160 * 32) / 1_000_000, 8)


# -- several references ------------------------------------------------------------------------


@pytest.mark.parametrize("model", GPT_IMAGE)
def test_several_references_are_typed_by_their_bytes(
    upstream_client: OpenAI, fake: OpenAIFake, model: str
) -> None:
    images = [
        ("first.png", imaging.png(), "image/png"),
        ("upload", imaging.jpeg(), "application/octet-stream"),  # as bare bytes arrive
        ("photo.bin", imaging.webp(), "application/octet-stream"),
    ]
    result = sdk.edit(upstream_client, model=model, image=images, prompt="combine them")
    summary = only_call(fake).summary
    assert summary["images"] == 3
    assert summary["files"] == [
        ["image[]", "image-0.png", "image/png"],
        ["image[]", "image-1.jpg", "image/jpeg"],
        ["image[]", "image-2.webp", "image/webp"],
    ]
    # The bytes arrive as the client sent them: streamed, never re-encoded.
    assert summary["digests"] == [bytes_digest(data) for _, data, _ in images]
    assert result.data is not None and len(result.data) == 1
    assert cost_of(result) == token_cost(model, summary["usage"])


@pytest.mark.parametrize("model", EDITABLE)
def test_one_image_more_than_the_card_allows_never_reaches_openai(
    fake: OpenAIFake, upstream_gateway: Gateway, model: str
) -> None:
    count = card(model).edit.max_reference_images + 1
    response = post_edit(upstream_gateway.base_url, *([SQUARE] * count), model=model)
    error = envelope.error_of(response, 400)
    assert error["param"] == "image" and error["code"] == "too_many_images"
    assert fake.calls == []


def test_a_json_edit_reaches_openai_as_multipart_files(
    fake: OpenAIFake, upstream_gateway: Gateway
) -> None:
    body = {
        "model": "gpt-image-1.5",
        "prompt": "combine",
        "images": [{"image_url": imaging.data_url(imaging.webp(), "image/webp")}],
        "mask": {"image_url": imaging.data_url(imaging.mask_left_half())},
    }
    response = httpx.post(upstream_gateway.base_url + "/v1/images/edits", json=body, timeout=30)
    assert response.status_code == 200, response.text
    summary = only_call(fake).summary
    assert summary["files"] == [
        ["image", "image-0.webp", "image/webp"],
        ["mask", "mask.png", "image/png"],
    ]


# -- masks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", EDITABLE)
def test_mask(upstream_client: OpenAI, fake: OpenAIFake, model: str) -> None:
    result = sdk.edit(
        upstream_client,
        model=model,
        image=("photo.png", SQUARE),
        mask=("mask.png", imaging.mask_left_half(64, 64)),
        prompt="a hat on the left",
        size=size_for(model),
    )
    summary = only_call(fake).summary
    assert summary["mask"] is True
    assert summary["files"][-1] == ["mask", "mask.png", "image/png"]
    assert result.data is not None and result.data[0].b64_json


@pytest.mark.parametrize(
    ("mask", "why"),
    [
        (imaging.mask_left_half(32, 32), "same size"),
        (imaging.png(64, 64), "alpha"),
    ],
)
def test_a_mask_openai_would_refuse_is_refused_first(
    fake: OpenAIFake, upstream_gateway: Gateway, mask: bytes, why: str
) -> None:
    response = httpx.post(
        upstream_gateway.base_url + "/v1/images/edits",
        data={"model": "gpt-image-1", "prompt": "hat"},
        files=[("image", ("a.png", SQUARE, "image/png")), ("mask", ("m.png", mask, "image/png"))],
        timeout=30,
    )
    error = envelope.error_of(response, 400)
    assert error["param"] == "mask" and why in error["message"]
    assert fake.calls == []


# -- n -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", EDITABLE)
def test_n_is_sent_to_openai_in_one_call(
    upstream_client: OpenAI, fake: OpenAIFake, model: str
) -> None:
    result = sdk.edit(
        upstream_client, model=model, image=SQUARE, prompt="two takes", n=2, size=size_for(model)
    )
    summary = only_call(fake).summary
    assert summary["values"]["n"] == "2"
    assert result.data is not None and len(result.data) == 2
    if model == "openai/dall-e-2":
        assert cost_of(result) == 2 * 0.016
    else:
        assert summary["usage"]["output_tokens"] == 2 * 1056
        assert cost_of(result) == token_cost(model, summary["usage"])


# -- sizing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "params", "sent", "got"),
    [
        ("gpt-image-1", {"size": "1024x1536"}, "1024x1536", (1024, 1536)),
        ("gpt-image-2", {"size": "1536x864"}, "1536x864", (1536, 864)),  # custom
        ("gpt-image-1.5", {"size": "auto"}, "auto", (1024, 1024)),
        ("gpt-image-1-mini", {"extra_body": {"aspect_ratio": "3:2"}}, "1536x1024", (1536, 1024)),
        ("gpt-image-2", {"extra_body": {"aspect_ratio": "2:3"}}, "1024x1536", (1024, 1536)),
        ("dall-e-2", {"size": "512x512"}, "512x512", (512, 512)),
    ],
)
def test_each_sizing_style(
    upstream_client: OpenAI,
    fake: OpenAIFake,
    model: str,
    params: dict[str, Any],
    sent: str,
    got: tuple[int, int],
) -> None:
    result = sdk.edit(upstream_client, model=model, image=SQUARE, prompt="resize", **params)
    assert only_call(fake).summary["values"]["size"] == sent
    assert result.size == f"{got[0]}x{got[1]}"
    assert result.data is not None
    assert imaging.decode_b64(result.data[0].b64_json or "").size == got


@pytest.mark.parametrize(
    ("model", "size"),
    [
        ("gpt-image-1", "1536x864"),  # custom sizes are gpt-image-2's
        ("gpt-image-2", "1000x1000"),  # not multiples of 16
        ("gpt-image-2", "3840x960"),  # 4:1
        ("gpt-image-2", "4096x2304"),  # past 3840x2160
        ("dall-e-2", "1024x1536"),
    ],
)
def test_a_size_the_model_cannot_make_never_reaches_openai(
    fake: OpenAIFake, upstream_gateway: Gateway, model: str, size: str
) -> None:
    response = post_edit(upstream_gateway.base_url, SQUARE, model=model, size=size)
    error = envelope.error_of(response, 400)
    assert error["param"] == "size" and error["code"] == "unsupported_size"
    assert fake.calls == []


# -- what is forwarded -------------------------------------------------------------------------


def test_gpt_image_options_reach_openai_and_the_answer_honours_them(
    upstream_client: OpenAI, fake: OpenAIFake
) -> None:
    result = sdk.edit(
        upstream_client,
        model="gpt-image-1",
        image=SQUARE,
        prompt="product shot",
        quality="low",
        output_format="webp",
        output_compression=70,
        background="opaque",
        input_fidelity="high",
        user="user-7",
        extra_body={"moderation": "low"},
    )
    values = only_call(fake).summary["values"]
    assert values == {
        "model": "gpt-image-1",
        "n": "1",
        "quality": "low",
        "output_format": "webp",
        "output_compression": "70",
        "background": "opaque",
        "input_fidelity": "high",
        "user": "user-7",
        "moderation": "low",
    }
    assert result.output_format == "webp" and result.quality == "low"
    assert imaging.decode_b64(result.data[0].b64_json or "").format == "WEBP"  # type: ignore[index]


def test_response_format_is_honoured_by_the_gateway_not_forwarded(
    upstream_client: OpenAI, fake: OpenAIFake
) -> None:
    result = sdk.edit(
        upstream_client, model="gpt-image-2", image=SQUARE, prompt="x", response_format="url"
    )
    assert "response_format" not in only_call(fake).summary["fields"]
    assert result.data is not None and (result.data[0].url or "").startswith(
        "data:image/png;base64,"
    )


def test_unknown_extras_are_not_forwarded_but_the_cards_extra_fields_are(
    upstream_client: OpenAI, fake: OpenAIFake
) -> None:
    sdk.edit(
        upstream_client,
        model="gpt-image-1.5",
        image=SQUARE,
        prompt="x",
        extra_body={"safety_identifier": "hash-42", "frame_count": 3, "svg": {"model": "x"}},
    )
    summary = only_call(fake).summary
    assert summary["values"]["safety_identifier"] == "hash-42"
    assert summary["fields"] == ["model", "n", "prompt", "safety_identifier"]


@pytest.mark.parametrize(
    ("model", "fidelity", "status"),
    [("gpt-image-1-mini", "high", 400), ("gpt-image-2", "low", 400)],
)
def test_input_fidelity_a_model_cannot_take_is_refused_before_openai(
    fake: OpenAIFake, upstream_gateway: Gateway, model: str, fidelity: str, status: int
) -> None:
    response = post_edit(upstream_gateway.base_url, SQUARE, model=model, input_fidelity=fidelity)
    assert envelope.error_of(response, status)["param"] == "input_fidelity"
    assert fake.calls == []


def test_mini_at_low_fidelity_omits_the_field(upstream_client: OpenAI, fake: OpenAIFake) -> None:
    sdk.edit(
        upstream_client, model="gpt-image-1-mini", image=SQUARE, prompt="x", input_fidelity="low"
    )
    assert "input_fidelity" not in only_call(fake).summary["fields"]


# -- dall-e-2 and dall-e-3 ---------------------------------------------------------------------


def test_dall_e_2_url_answers_are_downloaded(upstream_client: OpenAI, fake: OpenAIFake) -> None:
    fake.answer_urls = True
    result = sdk.edit(upstream_client, model="dall-e-2", image=SQUARE, prompt="x", size="256x256")
    assert only_call(fake).summary["answer"] == [b64_digest("")]  # it sent a URL, no base64
    assert result.data is not None
    out = imaging.decode_b64(result.data[0].b64_json or "")
    assert out.size == (256, 256)


@pytest.mark.parametrize(
    ("image", "code"),
    [
        (imaging.png(64, 48), "invalid_image_dimensions"),
        (imaging.jpeg(64, 64), "invalid_image_format"),
    ],
)
def test_dall_e_2_refusals_before_any_call(
    fake: OpenAIFake, upstream_gateway: Gateway, image: bytes, code: str
) -> None:
    response = post_edit(upstream_gateway.base_url, image, model="dall-e-2")
    assert envelope.error_of(response, 400)["code"] == code
    assert fake.calls == []


def test_dall_e_3_is_refused_with_no_call(
    upstream_client: OpenAI, fake: OpenAIFake, upstream_gateway: Gateway
) -> None:
    response = post_edit(upstream_gateway.base_url, SQUARE, model="dall-e-3")
    error = envelope.error_of(response, 400)
    assert error["code"] == "model_not_editable" and "openai/dall-e-3" in error["message"]
    with pytest.raises(openai.BadRequestError):
        upstream_client.images.edit(model="openai/dall-e-3", image=SQUARE, prompt="x")
    assert fake.calls == []


# -- streaming ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", GPT_IMAGE)
def test_stream_passes_partial_images_through(
    upstream_client: OpenAI, fake: OpenAIFake, model: str
) -> None:
    events = sdk.stream(upstream_client, model=model, image=SQUARE, prompt="draw", partial_images=2)
    summary = only_call(fake).summary
    assert (summary["values"]["stream"], summary["values"]["partial_images"]) == ("true", "2")
    assert [event.type for event in events] == [
        "image_edit.partial_image",
        "image_edit.partial_image",
        "image_edit.completed",
    ]
    partials = [event for event in events if event.type == "image_edit.partial_image"]
    assert [event.partial_image_index for event in partials] == [0, 1]  # type: ignore[union-attr]
    sent = [event.b64_json for event in events]
    assert [b64_digest(b64) for b64 in sent] == summary["answer"]
    completed = events[-1]
    assert completed.type == "image_edit.completed"
    usage = summary["usage"]
    assert usage["output_tokens"] == 1056 + 2 * 100  # the partials are billed too
    assert completed.usage.output_tokens == usage["output_tokens"]
    extra = completed.usage.model_extra or {}
    assert extra["cost"]["total_cost"] == token_cost(model, usage)


def test_stream_of_dall_e_2_is_made_by_the_gateway(
    upstream_client: OpenAI, fake: OpenAIFake
) -> None:
    events = sdk.stream(upstream_client, model="dall-e-2", image=SQUARE, prompt="x", size="256x256")
    assert [event.type for event in events] == ["image_edit.completed"]
    assert "stream" not in only_call(fake).summary["fields"]


def test_stream_with_n_two_is_one_plain_call(upstream_client: OpenAI, fake: OpenAIFake) -> None:
    events = sdk.stream(upstream_client, model="gpt-image-1", image=SQUARE, prompt="x", n=2)
    assert [event.type for event in events] == ["image_edit.completed"] * 2
    summary = only_call(fake).summary
    assert "stream" not in summary["fields"] and summary["values"]["n"] == "2"


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("moderation", "content_policy_violation"),
        ("truncated", "upstream_malformed"),
        ("rate_limit", "rate_limit_exceeded"),
    ],
)
def test_a_stream_that_fails_ends_with_an_error_event(
    upstream_client: OpenAI, fake: OpenAIFake, fault: str, code: str
) -> None:
    fake.faults.append(Fault(fault))  # type: ignore[arg-type]
    with pytest.raises(openai.APIError) as failed:
        sdk.stream(upstream_client, model="gpt-image-1", image=SQUARE, prompt="x", partial_images=1)
    assert failed.value.code == code
    assert len(fake.calls) == 1


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault("rate_limit", retry_after=7), 429, "rate_limit_exceeded"),
        (Fault("rate_limit"), 429, "rate_limit_exceeded"),
        (Fault("server_error"), 502, "upstream_error"),
        (Fault("unavailable"), 502, "upstream_error"),
        (Fault("timeout", delay=4.0), 504, "upstream_timeout"),
        (Fault("malformed"), 502, "upstream_malformed"),
        (Fault("truncated"), 502, "upstream_malformed"),
        (Fault("no_image"), 502, "upstream_malformed"),
        (Fault("moderation"), 400, "content_policy_violation"),
        (Fault("bad_key"), 502, "provider_auth_failed"),
    ],
    ids=lambda value: value.fault if isinstance(value, Fault) else str(value),
)
def test_each_fault(
    fake: OpenAIFake, upstream_gateway: Gateway, fault: Fault, status: int, code: str
) -> None:
    fake.faults.append(fault)
    response = post_edit(upstream_gateway.base_url, SQUARE, model="gpt-image-1")
    error = envelope.error_of(response, status, origin="provider")
    assert error["code"] == code
    if fault.retry_after:
        assert response.headers["retry-after"] == "7"
    else:
        assert "retry-after" not in response.headers
    if fault.fault == "moderation":
        assert "categories: sexual" in error["message"] and "stage: output" in error["message"]
    assert len(fake.calls) == 1


def test_the_key_never_shows_in_answers_or_logs(
    fake: OpenAIFake, upstream_gateway: Gateway
) -> None:
    messages = []
    for fault in ("bad_key", "moderation", "server_error"):
        fake.faults.append(Fault(fault))  # type: ignore[arg-type]
        response = post_edit(upstream_gateway.base_url, SQUARE, model="gpt-image-1")
        messages.append(response.text)
    key = KEYS["openai"]
    logs = upstream_gateway.logs()
    assert "provider_auth_failed" in messages[0]
    assert "credential of deployment" in logs  # the operator is told, without the key
    for text in [*messages, logs]:
        assert key not in text and key[-12:] not in text


# -- the fake is strict ------------------------------------------------------------------------


def fake_post(fake_url: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {KEYS['openai']}", **kwargs.pop("headers", {})}
    return httpx.post(fake_url + "/v1/images/edits", headers=headers, timeout=30, **kwargs)


PNG_PART = [("image", ("a.png", SQUARE, "image/png"))]
GPT_FORM = {"model": "gpt-image-1", "prompt": "x"}
STRICT_CASES = {
    "string-for-file": (
        {"data": {**GPT_FORM, "image[]": "cat.png"}, "files": PNG_PART},
        400,
        "invalid_type",
    ),
    "octet-stream": (
        {"data": GPT_FORM, "files": [("image", ("a.png", SQUARE, "application/octet-stream"))]},
        400,
        "unsupported_file_mimetype",
    ),
    "response_format": (
        {"data": {**GPT_FORM, "response_format": "b64_json"}, "files": PNG_PART},
        400,
        "unknown_parameter",
    ),
    "gpt-field-to-dall-e-2": (
        {"data": {"model": "dall-e-2", "prompt": "x", "output_format": "png"}, "files": PNG_PART},
        400,
        "unsupported_parameter",
    ),
    "n": ({"data": {**GPT_FORM, "n": "11"}, "files": PNG_PART}, 400, "integer_above_max_value"),
    "key": (
        {"data": GPT_FORM, "files": PNG_PART, "headers": {"Authorization": "Bearer sk-wrong"}},
        401,
        "invalid_api_key",
    ),
    "json": ({"json": GPT_FORM}, 400, "invalid_content_type"),
}


@pytest.mark.parametrize(
    ("kwargs", "status", "code"), list(STRICT_CASES.values()), ids=list(STRICT_CASES)
)
def test_the_fake_refuses_what_openai_refuses(
    fakes: dict[str, RunningFake], fake: OpenAIFake, kwargs: dict[str, Any], status: int, code: str
) -> None:
    response = fake_post(fakes["openai"].base_url, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert only_call(fake).summary["status"] == status


def test_the_fake_serves_dall_e_2_urls(fakes: dict[str, RunningFake], fake: OpenAIFake) -> None:
    response = fake_post(
        fakes["openai"].base_url,
        data={"model": "dall-e-2", "prompt": "x", "size": "256x256"},
        files=[("image", ("a.png", SQUARE, "image/png"))],
    )
    url = response.json()["data"][0]["url"]
    assert url.startswith(fakes["openai"].base_url + "/__fake__/files/")
    image = httpx.get(url, timeout=10)
    assert image.headers["content-type"] == "image/png"
    assert imaging.decode(image.content).size == (256, 256)
    assert "usage" not in response.json()


def test_imagegate_fake_upstream_serves_the_openai_fake() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "imagegate", "fake-upstream", "openai", "--key", "sk-offline-key"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.split(" on ", 1)[1].split(" ", 1)[0]
        files = [("image", ("a.png", SQUARE, "image/png"))]
        data = {"model": "gpt-image-1", "prompt": "x"}
        url = base_url + "/v1/images/edits"
        refused = httpx.post(url, data=data, files=files, timeout=10)
        assert refused.status_code == 401
        answered = httpx.post(
            url, data=data, files=files, headers={"Authorization": "Bearer sk-offline-key"}
        )
        assert answered.status_code == 200 and answered.json()["data"][0]["b64_json"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_request_id_goes_upstream(upstream_client: OpenAI, fake: OpenAIFake) -> None:
    """The client's (or load balancer's) x-request-id is the id OpenAI keeps with the call."""
    raw = upstream_client.images.with_raw_response.edit(
        model="openai/gpt-image-1",
        image=("photo.png", SQUARE),
        prompt="invert",
        extra_headers={"x-request-id": "lb-7f3a.trace-42"},
    )
    assert raw.status_code == 200 and raw.headers["x-request-id"] == "lb-7f3a.trace-42"
    assert only_call(fake).request_id == "lb-7f3a.trace-42"
