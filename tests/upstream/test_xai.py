"""xAI end to end: the official OpenAI SDK -> the gateway -> the strict xAI fake."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from imagegate.testing.fake import Fault
from imagegate.testing.xai import FakeXai
from tests import imaging
from tests.server import Gateway
from tests.support import sdk, sse
from tests.support.envelope import error_of
from tests.upstream.conftest import KEYS, RunningFake

MODEL = "xai/grok-imagine-image"
PNG = imaging.png()  # 64x48
PER_OUTPUT, PER_INPUT = 0.02, 0.002


@pytest.fixture()
def fake(fakes: dict[str, RunningFake]) -> FakeXai:
    running = fakes["xai"]
    running.reset()
    xai = running.fake
    assert isinstance(xai, FakeXai)
    xai.moderation_style = "flagged"
    xai.stated_cost_ticks = None
    xai.answer_with_urls = False
    return xai


def edit(client: OpenAI, **params: Any) -> Any:
    params.setdefault("model", MODEL)
    params.setdefault("image", ("in.png", PNG, "image/png"))
    params.setdefault("prompt", "render it as a pencil sketch")
    return sdk.edit(client, **params)


def refused(client: OpenAI, status: int, *, origin: str = "gateway", **params: Any) -> Any:
    params.setdefault("model", MODEL)
    params.setdefault("image", ("in.png", PNG, "image/png"))
    params.setdefault("prompt", "render it as a pencil sketch")
    with pytest.raises(openai.APIStatusError) as caught:
        client.images.edit(**params)
    return error_of(caught.value.response, status, origin=origin)


def cost(result: Any) -> float:
    total: float = result.usage.model_extra["cost"]["total_cost"]
    return total


def queue(fake: FakeXai, fault: str, **options: Any) -> None:
    fake.faults.clear()
    fake.faults.append(Fault(fault, **options))


# -- one good edit -------------------------------------------------------------------------------


def test_one_image_goes_as_json_with_a_data_uri(upstream_client: OpenAI, fake: FakeXai) -> None:
    result = edit(upstream_client)
    (call,) = fake.calls
    assert (call.method, call.path) == ("POST", "/v1/images/edits")
    assert call.content_type == "application/json"
    summary = call.summary
    assert summary["auth"] == "ok"
    assert summary["keys"] == ["image", "model", "n", "prompt", "response_format"]
    assert summary["model"] == "grok-imagine-image"
    assert summary["image_field"] == "image" and summary["ref_types"] == ["image_url"]
    assert summary["images"] == [{"format": "PNG", "size": [64, 48]}]
    assert (summary["n"], summary["response_format"]) == (1, "b64_json")
    (image,) = result.data
    out = imaging.decode_b64(image.b64_json)
    assert out.format == "JPEG" and out.size == (64, 48)  # auto: the input's shape
    assert image.revised_prompt == "render it as a pencil sketch."
    assert result.model_extra["model"] == MODEL
    assert cost(result) == pytest.approx(PER_OUTPUT + PER_INPUT)


def test_the_alias_reaches_the_same_model(upstream_client: OpenAI, fake: FakeXai) -> None:
    result = edit(upstream_client, model="grok-imagine")
    assert fake.calls[0].summary["model"] == "grok-imagine-image"
    assert result.model_extra["model"] == MODEL


def test_output_format_png_is_converted_by_the_gateway(
    upstream_client: OpenAI, fake: FakeXai
) -> None:
    result = edit(upstream_client, output_format="png")
    assert imaging.decode_b64(result.data[0].b64_json).format == "PNG"
    assert "output_format" not in fake.calls[0].summary["keys"]


def test_output_compression_on_xais_jpeg_is_applied(upstream_client: OpenAI, fake: FakeXai) -> None:
    plain = edit(upstream_client, output_format="jpeg")
    small = edit(upstream_client, output_format="jpeg", output_compression=5)
    assert len(small.data[0].b64_json) < len(plain.data[0].b64_json)


# -- references and masks ------------------------------------------------------------------------


def test_three_images_go_as_an_images_array(upstream_client: OpenAI, fake: FakeXai) -> None:
    images = [PNG, imaging.jpeg(80, 60), imaging.webp(40, 40)]
    result = edit(upstream_client, image=images)
    summary = fake.calls[0].summary
    assert summary["image_field"] == "images" and "image" not in summary["keys"]
    assert [i["format"] for i in summary["images"]] == ["PNG", "JPEG", "WEBP"]
    assert cost(result) == pytest.approx(PER_OUTPUT + 3 * PER_INPUT)


def test_a_fourth_image_is_refused_before_any_call(upstream_client: OpenAI, fake: FakeXai) -> None:
    error = refused(upstream_client, 400, image=[PNG] * 4)
    assert (error["code"], error["param"]) == ("too_many_images", "image")
    assert fake.calls == []


def test_a_mask_is_refused_not_dropped(upstream_client: OpenAI, fake: FakeXai) -> None:
    error = refused(upstream_client, 400, mask=imaging.mask_left_half())
    assert (error["param"], error["code"]) == ("mask", "mask_not_supported")
    assert fake.calls == []


# -- n -------------------------------------------------------------------------------------------


def test_n_is_xais_own_one_call(upstream_client: OpenAI, fake: FakeXai) -> None:
    result = edit(upstream_client, image=[PNG, PNG], n=2)
    assert len(result.data) == 2
    (call,) = fake.calls
    assert call.summary["n"] == 2
    assert cost(result) == pytest.approx(2 * PER_OUTPUT + 2 * PER_INPUT)


# -- sizing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "ratio", "resolution", "size"),
    [
        ({"extra_body": {"aspect_ratio": "16:9"}}, "16:9", None, (128, 72)),
        ({"size": "1536x1024"}, "3:2", None, (128, 85)),
        ({"size": "1024x1024", "extra_body": {"resolution": "2K"}}, "1:1", "2k", (256, 256)),
        ({"extra_body": {"aspect_ratio": "19.5:9"}}, "19.5:9", None, (128, 59)),
        ({"size": "auto"}, "auto", None, (64, 48)),
    ],
)
def test_sizes_reach_xai_as_aspect_ratio_and_resolution(
    upstream_client: OpenAI,
    fake: FakeXai,
    params: dict[str, Any],
    ratio: str,
    resolution: str | None,
    size: tuple[int, int],
) -> None:
    result = edit(upstream_client, **params)
    summary = fake.calls[0].summary
    assert summary["aspect_ratio"] == ratio
    assert summary.get("resolution") == resolution
    assert "size" not in summary["keys"]
    assert imaging.decode_b64(result.data[0].b64_json).size == size


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"size": "1200x1000"}, "size"),
        ({"extra_body": {"aspect_ratio": "5:4"}}, "aspect_ratio"),
        ({"extra_body": {"resolution": "4K"}}, "resolution"),
    ],
)
def test_sizes_xai_cannot_make_are_refused(
    upstream_client: OpenAI, fake: FakeXai, params: dict[str, Any], param: str
) -> None:
    error = refused(upstream_client, 400, **params)
    assert (error["param"], error["code"]) == (param, "unsupported_size")
    assert fake.calls == []


# -- fields xAI refuses or lacks -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"quality": "high"}, "quality"),
        ({"input_fidelity": "high"}, "input_fidelity"),
        ({"extra_body": {"seed": 3}}, "seed"),
        ({"extra_body": {"moderation": "low"}}, "moderation"),
    ],
)
def test_openai_fields_xai_lacks_are_refused(
    upstream_client: OpenAI, fake: FakeXai, params: dict[str, Any], param: str
) -> None:
    error = refused(upstream_client, 400, **params)
    assert error["param"] == param
    assert fake.calls == []


def test_unknown_fields_are_never_forwarded(upstream_client: OpenAI, fake: FakeXai) -> None:
    edit(upstream_client, extra_body={"style": "vivid", "negative_prompt": "x", "quality": "auto"})
    assert fake.calls[0].summary["keys"] == ["image", "model", "n", "prompt", "response_format"]


# -- answers -------------------------------------------------------------------------------------


def test_a_cost_xai_states_wins_over_the_list_price(upstream_client: OpenAI, fake: FakeXai) -> None:
    fake.stated_cost_ticks = 230_000_000  # $0.023
    result = edit(upstream_client)
    assert cost(result) == pytest.approx(0.023)


def test_image_urls_are_downloaded_before_answering(upstream_client: OpenAI, fake: FakeXai) -> None:
    fake.answer_with_urls = True
    result = edit(upstream_client, n=2)
    assert [imaging.decode_b64(d.b64_json).format for d in result.data] == ["JPEG", "JPEG"]


@pytest.mark.parametrize(
    ("fault", "options", "status", "code", "retry_after"),
    [
        ("rate_limit", {"retry_after": 9}, 429, "rate_limit_exceeded", "9"),
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
def test_each_fault_in_xais_shape(
    upstream_client: OpenAI,
    fake: FakeXai,
    fault: str,
    options: dict[str, Any],
    status: int,
    code: str,
    retry_after: str | None,
) -> None:
    queue(fake, fault, **options)
    with pytest.raises(openai.APIStatusError) as caught:
        upstream_client.images.edit(model=MODEL, image=PNG, prompt="x")
    error = error_of(caught.value.response, status, origin="provider")
    assert error["code"] == code
    assert caught.value.response.headers.get("retry-after") == retry_after
    assert len(fake.calls) == 1
    assert KEYS["xai"] not in error["message"]


def test_a_moderation_refusal_with_a_400_is_a_content_policy_error(
    upstream_client: OpenAI, fake: FakeXai
) -> None:
    fake.moderation_style = "refused"
    queue(fake, "moderation")
    error = refused(upstream_client, 400, origin="provider")
    assert error["code"] == "content_policy_violation"
    assert "moderation" in error["message"]


def test_a_refused_key_400_is_the_operators_problem(
    upstream_client: OpenAI, upstream_gateway: Gateway, fake: FakeXai
) -> None:
    queue(fake, "bad_key")
    error = refused(upstream_client, 502, origin="provider")
    assert error["code"] == "provider_auth_failed"
    assert "not about your API key" in error["message"]
    edit(upstream_client)  # and a good call after it, logged too
    logs = upstream_gateway.logs()
    assert '"provider": "xai"' in logs or '"provider":"xai"' in logs
    assert KEYS["xai"] not in logs and KEYS["xai"][6:] not in logs


def test_multipart_is_what_xai_refuses(fakes: dict[str, RunningFake], fake: FakeXai) -> None:
    # What the gateway spares its clients: the OpenAI SDK's multipart, sent to xAI directly.
    response = httpx.post(
        fakes["xai"].base_url + "/v1/images/edits",
        headers={"Authorization": f"Bearer {KEYS['xai']}"},
        data={"model": "grok-imagine-image", "prompt": "x"},
        files={"image": ("a.png", PNG, "image/png")},
        timeout=10,
    )
    assert response.status_code == 415
    assert set(response.json()) == {"code", "error"}


# -- stream --------------------------------------------------------------------------------------


def test_a_stream_sends_one_completed_event_per_image(
    upstream_client: OpenAI, fake: FakeXai
) -> None:
    events = sdk.stream(upstream_client, model=MODEL, image=PNG, prompt="x", n=2)
    assert [event.type for event in events] == ["image_edit.completed"] * 2
    assert events[0].usage.model_extra["cost"]["total_cost"] == pytest.approx(0.042)


def test_a_stream_that_fails_ends_with_an_error_event(
    upstream_client: OpenAI, fake: FakeXai
) -> None:
    queue(fake, "server_error")
    raw = upstream_client.images.with_raw_response.edit(
        model=MODEL, image=PNG, prompt="x", stream=True
    )
    started = time.monotonic()
    events = sse.events(raw.http_response.read())
    assert time.monotonic() - started < 5
    assert events[-1].name == "error"
    assert events[-1].data["error"]["code"] == "upstream_error"
