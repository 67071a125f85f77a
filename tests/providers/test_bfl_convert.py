"""Black Forest Labs' converter on the reference fixtures and built requests: no network at all
(the adapter tests answer from an ``httpx.MockTransport``)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.validate import validate_request
from imagegate.config import Settings
from imagegate.core.errors import (
    ContentPolicyViolation,
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from imagegate.core.request import EditRequest, OutputOptions, SizingRequest
from imagegate.providers.base import Deployment, DiscardEvents, EditJob
from imagegate.providers.bfl.adapter import BflProvider
from imagegate.providers.bfl.convert import (
    Malformed,
    Ready,
    asked_format,
    encode_images,
    plan_edit,
    read_error,
    read_poll,
    read_submit,
    submit_body,
    trusted_polling_url,
)
from imagegate.providers.bfl.spec import SPEC
from imagegate.providers.upstream import ProviderFailure, Upstream
from tests import imaging
from tests.support.requests import image_input

FIXTURES = Path(__file__).parent / "fixtures"
CARDS = {card["id"]: ModelCard.model_validate(card) for card in SPEC.cards(Settings())}
KONTEXT, KONTEXT_MAX = CARDS["bfl/flux-kontext-pro"], CARDS["bfl/flux-kontext-max"]
FLUX2, FLUX2_MAX = CARDS["bfl/flux-2-pro"], CARDS["bfl/flux-2-max"]
PNG = imaging.png()
KEY = "bfl-test-key-0123456789abcdef"
BASE = "https://api.bfl.ai"
ABOVE, UNSUPPORTED = "integer_above_max_value", "unsupported_parameter"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def raw_fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def job(
    card: ModelCard = KONTEXT,
    *images: bytes,
    sizing: SizingRequest | None = None,
    output: OutputOptions | None = None,
    **fields: Any,
) -> EditJob:
    request = EditRequest(
        model=card.id,
        prompt=fields.pop("prompt", "Change the car color to red"),
        images=tuple(image_input(data, f"image[{i}]") for i, data in enumerate(images or (PNG,))),
        sizing=sizing or SizingRequest(),
        output=output or OutputOptions(),
        **fields,
    )
    return EditJob(request, card, validate_request(request, card))


def body_of(edit_job: EditJob, index: int = 0) -> dict[str, Any]:
    plan = plan_edit(edit_job)
    doc: dict[str, Any] = orjson.loads(submit_body(plan, encode_images(plan), index))
    return doc


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- the request ---------------------------------------------------------------------------------


def test_the_kontext_body_is_the_reference_request() -> None:
    sample = fixture("bfl_submit_request_kontext.json")
    body = body_of(
        job(
            KONTEXT,
            sizing=SizingRequest(aspect_ratio="16:9"),
            output=OutputOptions(output_format="png"),
            seed=42,
            extra={"prompt_upsampling": "false", "safety_tolerance": "2"},
        )
    )
    expected = {key: value for key, value in sample.items() if value is not None}
    expected["input_image"] = b64(PNG)  # raw base64, as BFL's schema asks: no data: prefix
    assert body == expected
    assert list(body) == ["prompt", "input_image", "seed", "aspect_ratio", "output_format",
                          "prompt_upsampling", "safety_tolerance"]  # fmt: skip


def test_the_flux2_body_is_the_reference_request_with_base64_images() -> None:
    sample = fixture("bfl_submit_request_flux2.json")
    second = imaging.jpeg(80, 60)
    body = body_of(
        job(
            FLUX2,
            PNG,
            second,
            prompt=sample["prompt"],
            sizing=SizingRequest(size="1024x1024"),
            output=OutputOptions(output_format="jpeg"),
            seed=42,
            extra={"safety_tolerance": 2},
        )
    )
    assert set(body) == set(sample)
    assert {k: v for k, v in body.items() if not k.startswith("input_image")} == {
        k: v for k, v in sample.items() if not k.startswith("input_image")
    }
    assert (body["input_image"], body["input_image_2"]) == (b64(PNG), b64(second))


def test_images_are_numbered_as_bfl_names_them() -> None:
    images = [imaging.png(), imaging.jpeg(), imaging.webp()] * 3
    body = body_of(job(FLUX2, *images[:8]))
    assert [k for k in body if k.startswith("input_image")] == ["input_image"] + [
        f"input_image_{i}" for i in range(2, 9)
    ]
    assert [base64.b64decode(body[k]) for k in body if k.startswith("input_image")] == images[:8]


def test_each_call_of_a_fan_out_gets_its_own_seed() -> None:
    edit_job = job(KONTEXT, seed=9, n=3)
    assert [body_of(edit_job, index)["seed"] for index in range(3)] == [9, 10, 11]
    assert "seed" not in body_of(job(KONTEXT))  # no seed: BFL picks one per task


def test_the_prompt_is_json_escaped_and_nothing_unasked_is_sent() -> None:
    prompt = 'say "hi" \\ then\nstop @imagegate-bfl-image-0@'
    body = body_of(job(FLUX2, prompt=prompt, extra={"style": "vivid", "negative_prompt": "x"}))
    assert body == {"prompt": prompt, "input_image": b64(PNG)}


@pytest.mark.parametrize(
    ("output", "asked"),
    [
        (OutputOptions(), None),
        (OutputOptions(output_format="png"), "png"),
        (OutputOptions(output_format="jpeg"), "jpeg"),
        (OutputOptions(output_format="webp"), "png"),
        (OutputOptions(output_format="jpeg", output_compression=50), "png"),
    ],
)
def test_the_format_bfl_is_asked_for(output: OutputOptions, asked: str | None) -> None:
    assert asked_format(job(FLUX2, output=output).request) == asked
    assert body_of(job(KONTEXT, output=output)).get("output_format") == asked


@pytest.mark.parametrize(
    ("card", "sizing", "sent"),
    [
        (KONTEXT, SizingRequest(size="1536x1024"), {"aspect_ratio": "3:2"}),
        (KONTEXT, SizingRequest(aspect_ratio="21:9"), {"aspect_ratio": "21:9"}),
        (KONTEXT, SizingRequest(size="1280x800"), {"aspect_ratio": "16:10"}),
        (KONTEXT, SizingRequest(size="auto"), {}),
        (FLUX2, SizingRequest(size="1536x1024"), {"width": 1536, "height": 1024}),
        (FLUX2, SizingRequest(width=2048, height=2048), {"width": 2048, "height": 2048}),
        (FLUX2, SizingRequest(size="auto"), {}),
    ],
)
def test_sizes(card: ModelCard, sizing: SizingRequest, sent: dict[str, Any]) -> None:
    body = body_of(job(card, sizing=sizing))
    assert {k: v for k, v in body.items() if k in ("aspect_ratio", "width", "height")} == sent


@pytest.mark.parametrize(
    ("card", "fields", "param", "code"),
    [
        (KONTEXT, {"extra": {"safety_tolerance": 3}}, "safety_tolerance", ABOVE),
        (KONTEXT, {"extra": {"safety_tolerance": "-1"}}, "safety_tolerance", "invalid_type"),
        (KONTEXT, {"extra": {"safety_tolerance": True}}, "safety_tolerance", "invalid_type"),
        (FLUX2, {"extra": {"safety_tolerance": "6"}}, "safety_tolerance", ABOVE),
        (KONTEXT, {"extra": {"prompt_upsampling": "maybe"}}, "prompt_upsampling", "invalid_type"),
        (FLUX2, {"extra": {"prompt_upsampling": True}}, "prompt_upsampling", UNSUPPORTED),
        (FLUX2, {"extra": {"steps": 30}}, "steps", UNSUPPORTED),
        (FLUX2, {"extra": {"input_image": "x"}}, "input_image", UNSUPPORTED),
        (KONTEXT, {"extra": {"webhook_secret": "s"}}, "webhook_secret", UNSUPPORTED),
        (KONTEXT, {"output": OutputOptions(quality="high")}, "quality", "unsupported_value"),
        (KONTEXT, {"input_fidelity": "high"}, "input_fidelity", UNSUPPORTED),
        (FLUX2, {"moderation": "low"}, "moderation", "unsupported_value"),
    ],
)  # fmt: skip
def test_what_bfl_would_refuse_is_a_400_first(
    card: ModelCard, fields: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(job(card, **fields))
    assert (caught.value.param, caught.value.code) == (param, code)


def test_options_from_multipart_strings_are_typed() -> None:
    body = body_of(job(KONTEXT, extra={"safety_tolerance": "0", "prompt_upsampling": "true"}))
    assert (body["safety_tolerance"], body["prompt_upsampling"]) == (0, True)
    body = body_of(job(FLUX2_MAX, extra={"safety_tolerance": 5, "moderation_note": "x"}))
    assert body["safety_tolerance"] == 5 and "moderation_note" not in body


def test_a_card_overridden_past_what_bfl_takes_is_still_refused() -> None:
    card = KONTEXT.model_copy(
        update={"edit": KONTEXT.edit.model_copy(update={"max_reference_images": 6, "mask": True})}
    )
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(job(card, *[PNG] * 5))
    assert (caught.value.param, caught.value.code) == ("image", "too_many_images")
    request = job(card).request
    masked = EditJob(
        EditRequest(model=card.id, prompt="p", images=request.images, mask=image_input()),
        card,
        job(card).sizing,
    )
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(masked)
    assert caught.value.code == "mask_not_supported"
    unknown = KONTEXT.model_copy(update={"upstream_model": "flux-2-klein-4b"})
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(job(unknown))
    assert caught.value.code == "model_not_available"


# -- the answers ---------------------------------------------------------------------------------


def test_the_reference_submit_answer() -> None:
    submitted = read_submit(raw_fixture("bfl_submit_response.json"))
    assert submitted.id == "d5ba37dc-ba09-4658-852e-deea7e176439"
    assert submitted.polling_url.startswith("https://api.eu2.bfl.ai/v1/get_result?id=")
    assert submitted.cost_usd == 0.045  # 4.5 credits x $0.01


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"<html>", "not JSON"),
        (b"[]", "not an object"),
        (b'{"polling_url": "https://api.bfl.ai/x"}', "task id"),
        (b'{"id": "abc", "webhook_url": "https://example.com"}', "polling_url"),
    ],
)
def test_malformed_submit_answers(body: bytes, what: str) -> None:
    with pytest.raises(Malformed) as caught:
        read_submit(body)
    assert what in caught.value.what


def test_a_submit_without_a_usable_cost_leaves_it_to_the_list_price() -> None:
    for cost in ("null", '"4"', "-1", "true"):
        body = f'{{"id": "a", "polling_url": "https://api.bfl.ai/x", "cost": {cost}}}'.encode()
        assert read_submit(body).cost_usd is None


def test_the_reference_poll_answers() -> None:
    assert read_poll(raw_fixture("bfl_poll_pending.json")) is None
    ready = read_poll(raw_fixture("bfl_poll_ready.json"))
    assert isinstance(ready, Ready)
    assert ready.sample.startswith("https://delivery-eu1.bfl.ai/results/")
    assert ready.prompt == "Change the car color to red"
    for name, kind, words in (
        ("bfl_poll_request_moderated.json", "moderation", "Request Moderated"),
        ("bfl_poll_content_moderated.json", "moderation", "Content Moderated"),
        ("bfl_poll_error.json", "server", "status Error: Error description"),
        ("bfl_poll_task_not_found.json", "server", "not found"),
    ):
        failure = read_poll(raw_fixture(name))
        assert isinstance(failure, ProviderFailure), name
        assert failure.kind == kind and words in failure.message


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"{", "not JSON"),
        (b'{"id": "a"}', "without a status"),
        (b'{"status": "Ready", "result": null}', "without result.sample"),
        (b'{"status": "Ready", "result": {"seed": 1, "sample": ""}}', "without result.sample"),
        (b'{"status": "Thinking"}', "does not document"),
    ],
)
def test_malformed_poll_answers(body: bytes, what: str) -> None:
    with pytest.raises(Malformed) as caught:
        read_poll(body)
    assert what in caught.value.what


def test_failed_and_moderated_tasks_go_through_the_boundary() -> None:
    upstream, deployment = Upstream("bfl", read_error), Deployment("bfl")
    failed = {"id": "a", "status": "Failed", "details": {"reason": "GPU lost"}}
    error = upstream.status_error(200, orjson.dumps(failed), {}, deployment)
    assert isinstance(error, UpstreamError) and error.status == 502
    assert "status Failed" in error.message and "GPU lost" in error.message
    moderated = raw_fixture("bfl_poll_content_moderated.json")
    error = upstream.status_error(200, moderated, {}, deployment)
    assert isinstance(error, ContentPolicyViolation) and error.origin == "provider"
    assert "the output was flagged" in error.message


def test_the_reference_422_names_the_field() -> None:
    failure = read_error(422, raw_fixture("bfl_error_422.json"))
    assert (failure.message, failure.param, failure.kind) == (
        "prompt: Field required",
        "prompt",
        None,
    )
    body = {"detail": [{"loc": ["body", "input_image_3"], "msg": "bad", "type": "value_error"}]}
    assert read_error(422, orjson.dumps(body)).param == "image"
    body = {"detail": [{"loc": ["body", "width"], "msg": "multiple of 16", "type": "value_error"}]}
    assert read_error(422, orjson.dumps(body)).param == "size"


@pytest.mark.parametrize(
    ("status", "body", "error_type", "code"),
    [
        (402, {"detail": "Insufficient credits"}, UpstreamError, "upstream_error"),
        (403, {"detail": "Not authenticated"}, UpstreamError, "provider_auth_failed"),
        (401, {"detail": "Invalid key"}, UpstreamError, "provider_auth_failed"),
        (404, {"detail": "Not Found"}, UpstreamError, "upstream_error"),  # the operator's model
        (429, {"detail": "24 active tasks"}, RateLimited, "rate_limit_exceeded"),
        (400, {"detail": "Your request was moderated"}, ContentPolicyViolation, None),
        (422, {"detail": "bad"}, InvalidRequest, "invalid_value"),
        (500, {"detail": "Internal Server Error"}, UpstreamError, "upstream_error"),
        (503, "<html>busy</html>", UpstreamError, "upstream_error"),
        (504, {"detail": "Gateway Timeout"}, UpstreamTimeout, "upstream_timeout"),
    ],
)
def test_http_errors_through_the_boundary(
    status: int, body: Any, error_type: type, code: str | None
) -> None:
    raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
    error = Upstream("bfl", read_error).status_error(
        status, raw, {"retry-after": "3"}, Deployment("bfl")
    )
    assert type(error) is error_type and error.origin == "provider"
    if code is not None:
        assert error.code == code
    if status == 402:
        assert "insufficient credits" in error.message
    if status == 429:
        assert error.headers == {"Retry-After": "3"}


@pytest.mark.parametrize(
    ("url", "base", "trusted"),
    [
        ("https://api.eu2.bfl.ai/v1/get_result?id=abc", BASE, True),
        ("https://api.us1.bfl.ai/v1/get_result?id=abc", BASE, True),
        ("https://gateway.bfl.ai/v1/get_result?id=abc", BASE, True),
        ("https://API.EU2.BFL.AI/v1/get_result?id=abc", BASE, True),
        ("https://api.bfl.ai/v1/get_result?id=abc", BASE + "/", True),
        ("https://api.eu2.bfl.ai/v1/get_result?id=abc", "https://api.eu.bfl.ai", True),
        ("http://api.eu2.bfl.ai/v1/get_result?id=abc", BASE, False),  # no key in clear text
        ("https://api.eu2.bfl.ai:8443/v1/get_result?id=abc", BASE, False),
        ("https://api.bfl.ai.evil.example/v1/get_result?id=abc", BASE, False),
        ("https://evilbfl.ai/v1/get_result?id=abc", BASE, False),
        ("https://bfl.ai@evil.example/v1/get_result?id=abc", BASE, False),
        ("https://api.bfl.ai\\@evil.example/v1/get_result", BASE, False),
        ("https://evil.example/v1/get_result?host=api.bfl.ai", BASE, False),
        ("ftp://api.eu2.bfl.ai/x", BASE, False),
        ("/v1/get_result?id=abc", BASE, False),
        ("http://127.0.0.1:8080/eu2/v1/get_result?id=1", "http://127.0.0.1:8080", True),
        ("http://127.0.0.1:8081/eu2/v1/get_result?id=1", "http://127.0.0.1:8080", False),
        ("http://localhost:8080/eu2/v1/get_result?id=1", "http://127.0.0.1:8080", False),
        ("https://api.eu2.bfl.ai/v1/get_result?id=1", "http://127.0.0.1:8080", False),
        ("https://api.eu2.bfl.ai/v1/get_result?id=1", "https://bfl-proxy.example", False),
    ],
)
def test_which_polling_urls_get_the_key(url: str, base: str, trusted: bool) -> None:
    assert trusted_polling_url(url, base) is trusted


# -- the adapter, on a mock transport ------------------------------------------------------------


class RecordingGuard:
    """Stands in for the gateway's SSRF-guarded fetcher: records the URL, answers ``data``."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = data
        self.urls: list[str] = []

    async def fetch(self, url: str, *, param: str) -> bytes:
        self.urls.append(url)
        return self.data


def run(
    edit_job: EditJob,
    answer: Callable[[httpx.Request], httpx.Response],
    guard: RecordingGuard | None = None,
    *,
    timeout: float = 5.0,
) -> Any:
    async def go() -> Any:
        client = httpx.AsyncClient(base_url=BASE, transport=httpx.MockTransport(answer))
        deployment = Deployment(
            "bfl",
            base_url=BASE,
            api_key=SecretStr(KEY),
            timeout_seconds=timeout,
            options={"poll_interval_seconds": "0.001"},
            client=client,
            guard=guard or RecordingGuard(),
        )
        try:
            return await BflProvider().edit(edit_job, deployment, DiscardEvents())
        finally:
            await client.aclose()

    return asyncio.run(go())


def queued(polls: list[dict[str, Any]], seen: list[httpx.Request]) -> Any:
    """BFL as the fixtures answer: the submit, then ``polls`` in turn at the regional URL."""
    answers = iter(polls)

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(200, json=fixture("bfl_submit_response.json"))
        return httpx.Response(200, json=next(answers))

    return answer


def test_the_adapter_submits_polls_the_regional_url_verbatim_and_downloads_without_the_key() -> (
    None
):
    seen: list[httpx.Request] = []
    guard = RecordingGuard(imaging.jpeg(80, 60))
    pending, ready = fixture("bfl_poll_pending.json"), fixture("bfl_poll_ready.json")
    result = run(job(KONTEXT), queued([pending, pending, ready], seen), guard)
    post, *polls = seen
    assert str(post.url) == "https://api.bfl.ai/v1/flux-kontext-pro"
    assert post.headers["x-key"] == KEY and post.headers["content-type"] == "application/json"
    assert orjson.loads(post.content)["input_image"] == b64(PNG)
    submitted = fixture("bfl_submit_response.json")["polling_url"]
    assert [str(poll.url) for poll in polls] == [submitted] * 3  # as given, never rebuilt
    assert all(poll.method == "GET" and poll.headers["x-key"] == KEY for poll in polls)
    assert guard.urls == [fixture("bfl_poll_ready.json")["result"]["sample"]]  # off the client
    (image,) = result.images
    assert (image.format, image.width, image.height) == ("jpeg", 80, 60)
    assert image.revised_prompt is None  # BFL used the prompt as sent
    assert result.usage.provider_cost_usd == 0.045


def test_a_polling_url_off_bfls_hosts_is_never_polled() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        doc = {**fixture("bfl_submit_response.json"), "polling_url": "https://evil.example/p?id=1"}
        return httpx.Response(200, json=doc)

    with pytest.raises(UpstreamError) as caught:
        run(job(FLUX2), answer)
    assert caught.value.code == "upstream_polling_refused"
    assert [request.method for request in seen] == ["POST"]
    assert KEY not in caught.value.message


def test_a_task_that_never_settles_times_out_with_a_504() -> None:
    seen: list[httpx.Request] = []
    pending = fixture("bfl_poll_pending.json")
    with pytest.raises(UpstreamTimeout):
        run(job(FLUX2), queued([pending] * 10_000, seen), timeout=0.2)
    assert len(seen) > 2


def test_a_ready_task_whose_sample_is_not_an_image_is_malformed() -> None:
    guard = RecordingGuard(b"<html>expired</html>")
    with pytest.raises(UpstreamError) as caught:
        run(job(KONTEXT), queued([fixture("bfl_poll_ready.json")], []), guard)
    assert caught.value.code == "upstream_malformed"


def test_an_upsampled_prompt_is_the_revised_prompt() -> None:
    ready = fixture("bfl_poll_ready.json")
    ready["result"]["prompt"] = "Change the car colour to a deep glossy red, studio light"
    guard = RecordingGuard(imaging.png(32, 32))
    result = run(job(KONTEXT), queued([ready], []), guard)
    assert result.images[0].revised_prompt == ready["result"]["prompt"]
