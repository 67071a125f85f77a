"""fal's converters on the reference fixtures and built requests, with no network at all; then
the adapter's queue protocol on an ``httpx.MockTransport`` (submit, polls, result, cancel)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
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
    GatewayError,
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from imagegate.core.request import EditRequest, OutputOptions, SizingRequest
from imagegate.providers.base import Deployment, DiscardEvents, EditJob
from imagegate.providers.fal import endpoints as fal_endpoints
from imagegate.providers.fal.adapter import FalProvider, FalUpstream
from imagegate.providers.fal.convert import (
    JobState,
    Malformed,
    job_error,
    plan_edit,
    read_error,
    read_handle,
    read_result,
    read_status,
    submit_body,
    with_error_type,
)
from imagegate.providers.fal.spec import SPEC
from tests import imaging
from tests.support.requests import image_input

FIXTURES = Path(__file__).parent / "fixtures"
CARDS = {
    card["id"]: ModelCard.model_validate(card) for card in SPEC.cards(Settings())
}  # every shipped fal card
KONTEXT = "fal/fal-ai/flux-pro/kontext"
SEEDREAM = "fal/fal-ai/bytedance/seedream/v4/edit"
NANO = "fal/fal-ai/nano-banana/edit"
QWEN = "fal/fal-ai/qwen-image-edit"
PNG = imaging.png()
KEY = "fal-id-0123:fal-secret-0123456789abcdef"
BASE = "https://queue.fal.run"


def fixture(name: str) -> Any:
    text = (FIXTURES / name).read_text()
    b64 = base64.b64encode(PNG).decode()
    return json.loads(text.replace("<BASE64_PNG_PLACEHOLDER>", b64))


def raw(name: str) -> bytes:
    return orjson.dumps(fixture(name))


def job(
    model: str,
    *images: bytes,
    sizing: SizingRequest | None = None,
    output: OutputOptions | None = None,
    card: ModelCard | None = None,
    **fields: Any,
) -> EditJob:
    card = card or CARDS[model]
    request = EditRequest(
        model=card.id,
        prompt=fields.pop("prompt", "Put a donut next to the flour."),
        images=tuple(image_input(data, f"image[{i}]") for i, data in enumerate(images or (PNG,))),
        sizing=sizing or SizingRequest(),
        output=output or OutputOptions(),
        **fields,
    )
    return EditJob(request, card, validate_request(request, card))


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def body_of(edit_job: EditJob, index: int = 0) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(submit_body(plan_edit(edit_job), index))
    return doc


# -- the request, against the reference's bodies ------------------------------------------------


def test_the_kontext_body_is_the_reference_request() -> None:
    sample = fixture("fal_queue_submit_request_flux_kontext.json")
    edit_job = job(
        KONTEXT,
        sizing=SizingRequest(aspect_ratio="1:1"),
        output=OutputOptions(output_format="jpeg"),
        seed=42,
        extra={"guidance_scale": 3.5, "safety_tolerance": "2"},
    )
    assert body_of(edit_job) == {**sample, "image_url": data_uri(PNG)}


def test_the_nano_banana_body_is_the_reference_request_with_every_image_as_data() -> None:
    sample = fixture("fal_queue_submit_request_nano_banana_edit.json")
    second = imaging.jpeg(80, 60)
    edit_job = job(
        NANO,
        PNG,
        second,
        prompt=sample["prompt"],
        sizing=SizingRequest(size="auto"),
        output=OutputOptions(output_format="png"),
    )
    expected = {**sample, "image_urls": [data_uri(PNG), data_uri(second, "image/jpeg")]}
    assert body_of(edit_job) == expected


def test_the_seedream_body_is_the_reference_request_without_max_images() -> None:
    sample = fixture("fal_queue_submit_request_seedream_edit.json")
    edit_job = job(
        SEEDREAM,
        PNG,
        imaging.webp(),
        prompt=sample["prompt"],
        sizing=SizingRequest(image_size="auto_2K"),
        seed=1234,
        extra={"enable_safety_checker": "true"},
    )
    expected = {**sample, "image_urls": [data_uri(PNG), data_uri(imaging.webp(), "image/webp")]}
    del expected["max_images"]  # one image per generation is fal's default; never sent
    assert body_of(edit_job) == expected


def test_the_prompt_is_json_escaped_and_the_images_spliced_raw() -> None:
    prompt = 'a "quoted" prompt with a \\ and \u00e9 and @imagegate-image-x-0@'
    body = submit_body(plan_edit(job(QWEN, prompt=prompt)))
    assert orjson.loads(body)["prompt"] == prompt
    assert base64.b64encode(PNG) in body


@pytest.mark.parametrize(
    ("sizing", "sent"),
    [
        (SizingRequest(size="1024x768"), "landscape_4_3"),
        (SizingRequest(size="640x480"), {"width": 640, "height": 480}),
        (SizingRequest(image_size="square"), "square"),
        (SizingRequest(), None),
    ],
)
def test_qwen_sizes_are_presets_or_exact_pixels(sizing: SizingRequest, sent: object) -> None:
    assert body_of(job(QWEN, sizing=sizing)).get("image_size") == sent


def test_seedream_takes_exact_pixels_of_at_least_960x960_in_all() -> None:
    assert body_of(job(SEEDREAM, sizing=SizingRequest(size="1280x720")))["image_size"] == {
        "width": 1280,
        "height": 720,
    }
    for size in ("1279x720", "1024x768"):  # the second is a preset's size, still too small
        with pytest.raises(InvalidRequest) as caught:
            plan_edit(job(SEEDREAM, sizing=SizingRequest(size=size)))
        assert (caught.value.param, caught.value.code) == ("size", "unsupported_size")
    # A preset named outright is fal's to size.
    assert body_of(job(SEEDREAM, sizing=SizingRequest(image_size="square")))["image_size"] == (
        "square"
    )


@pytest.mark.parametrize(
    ("output", "asked"),
    [
        (OutputOptions(), "png"),  # OpenAI's default, not Kontext's jpeg
        (OutputOptions(output_format="jpeg"), "jpeg"),
        (OutputOptions(output_format="webp"), "png"),  # converted by the gateway
        (OutputOptions(output_format="jpeg", output_compression=50), "png"),
    ],
)
def test_output_format_asked_of_kontext(output: OutputOptions, asked: str) -> None:
    assert body_of(job(KONTEXT, output=output))["output_format"] == asked


def test_seedream_has_no_output_format_and_nano_banana_no_seed() -> None:
    assert "output_format" not in body_of(job(SEEDREAM, output=OutputOptions(output_format="png")))
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(job(NANO, seed=1))
    assert caught.value.param == "seed"


# -- what only fal knows, refused before any call ------------------------------------------------


def test_an_unknown_fal_endpoint_is_refused() -> None:
    card = CARDS[NANO].model_copy(update={"id": "fal/fal-ai/other", "upstream_model": "fal-ai/x"})
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(job(NANO, card=card))
    assert caught.value.code == "model_not_available"


def test_a_single_image_endpoint_never_gets_only_the_first_of_several() -> None:
    # A config file may raise the card's cap; the endpoint still takes one image_url.
    card = CARDS[KONTEXT].model_copy(deep=True)
    card.edit.max_reference_images = 3
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(job(KONTEXT, PNG, PNG, card=card))
    assert caught.value.code == "too_many_images" and "kontext/multi" in caught.value.message


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"output": OutputOptions(quality="high")}, "quality"),
        ({"input_fidelity": "low"}, "input_fidelity"),
        ({"moderation": "low"}, "moderation"),
    ],
)
def test_openai_fields_fal_lacks(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(job(KONTEXT, **fields))
    assert caught.value.param == param
    if param == "moderation":
        assert "safety_tolerance" in caught.value.message


@pytest.mark.parametrize(
    ("model", "extra", "sent"),
    [
        (KONTEXT, {"safety_tolerance": 5}, {"safety_tolerance": "5"}),
        (KONTEXT, {"guidance_scale": "2.5"}, {"guidance_scale": 2.5}),
        (KONTEXT, {"enhance_prompt": "false"}, {"enhance_prompt": False}),
        (QWEN, {"num_inference_steps": "20"}, {"num_inference_steps": 20}),
        (QWEN, {"acceleration": "REGULAR"}, {"acceleration": "regular"}),
        (
            QWEN,
            {"negative_prompt": "blur", "style": "vivid", "tag": 3},
            {"negative_prompt": "blur"},
        ),
        (SEEDREAM, {"enhance_prompt_mode": "standard"}, {"enhance_prompt_mode": "standard"}),
        (SEEDREAM, {"enable_safety_checker": ""}, {}),  # an empty form field is no value
    ],
)
def test_options_are_read_as_fals_types(
    model: str, extra: dict[str, Any], sent: dict[str, Any]
) -> None:
    body = body_of(job(model, extra=extra))
    assert {k: body[k] for k in sent} == sent
    assert not {"style", "tag"} & set(body)


@pytest.mark.parametrize(
    ("model", "extra", "param", "code"),
    [
        (KONTEXT, {"safety_tolerance": "0"}, "safety_tolerance", "invalid_value"),
        (KONTEXT, {"safety_tolerance": True}, "safety_tolerance", "invalid_value"),
        (KONTEXT, {"guidance_scale": "high"}, "guidance_scale", "invalid_type"),
        (KONTEXT, {"guidance_scale": 10**400}, "guidance_scale", "invalid_type"),
        (KONTEXT, {"guidance_scale": 0.5}, "guidance_scale", "integer_below_min_value"),
        (KONTEXT, {"enhance_prompt": "maybe"}, "enhance_prompt", "invalid_type"),
        (KONTEXT, {"acceleration": "high"}, "acceleration", "unsupported_parameter"),
        (NANO, {"guidance_scale": 3}, "guidance_scale", "unsupported_parameter"),
        (QWEN, {"negative_prompt": ["a"]}, "negative_prompt", "invalid_type"),
        (QWEN, {"num_images": 2}, "num_images", "unsupported_parameter"),
        (QWEN, {"image_url": "https://x"}, "image_url", "unsupported_parameter"),
    ],
)
def test_options_fal_would_refuse(model: str, extra: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(job(model, extra=extra))
    assert (caught.value.param, caught.value.code) == (param, code)


# -- the job -------------------------------------------------------------------------------------


def test_the_submit_answer_is_read_as_returned() -> None:
    handle = read_handle(raw("fal_queue_submit_response.json"))
    assert handle.request_id == "f8837f29-26cb-4213-90f5-22b2911a0ea7"
    assert handle.status_url.endswith(
        "/fal-ai/nano-banana/requests/" + handle.request_id + "/status"
    )
    assert "/edit/" not in handle.response_url + handle.cancel_url


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"<html>", "not JSON"),
        (b'{"request_id": "x", "status_url": "https://q/s"}', "without response_url"),
        (
            b'{"request_id": "x", "status_url": "/a", "response_url": "b", "cancel_url": "c"}',
            "http",
        ),
    ],
)
def test_malformed_submit_answers(body: bytes, what: str) -> None:
    with pytest.raises(Malformed) as caught:
        read_handle(body)
    assert what in caught.value.what


def test_the_statuses_fal_answers() -> None:
    assert read_status(raw("fal_queue_status_in_queue.json")) == JobState(settled=False)
    assert read_status(raw("fal_queue_status_in_progress.json")) == JobState(settled=False)
    done = read_status(raw("fal_queue_status_completed.json"))
    assert done.settled and not done.failed
    failed = read_status(raw("fal_queue_status_completed_with_error.json"))
    assert failed == JobState(True, "Request timed out", "request_timeout") and failed.failed
    assert read_status(b'{"status": "FAILED"}').failed  # a third-party schema's statuses
    with pytest.raises(Malformed):
        read_status(b'{"status": "DONE"}')


def test_a_failed_job_is_an_error_by_its_type() -> None:
    assert isinstance(
        job_error(JobState(True, "Request timed out", "request_timeout")), UpstreamTimeout
    )
    policy = job_error(JobState(True, "flagged", "content_policy_violation"))
    assert isinstance(policy, ContentPolicyViolation) and "flagged" in policy.message
    other = job_error(JobState(True, "CUDA out of memory", None))
    assert (other.status, other.code) == (502, "upstream_job_failed")
    assert "CUDA out of memory" in other.message


# -- the answer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("fal_result_flux_kontext.json", "https://v3.fal.media/files/rabbit/aQEmU4lEKKIIr9cDOChUB.png"),
        ("fal_result_nano_banana_edit.json", "https://v3.fal.media/files/kangaroo/abc123_output.png"),
        ("fal_result_seedream_edit.json", "https://v3.fal.media/files/tiger/xyz_seedream.png"),
        ("fal_sync_result_data_uri.json", data_uri(PNG)),
    ],
)  # fmt: skip
def test_the_reference_outputs(name: str, url: str) -> None:
    answer = read_result(raw(name), "Put a donut next to the flour.")
    assert answer.urls == [url]
    assert answer.revised_prompt is None  # Kontext echoes the prompt it was given


def test_a_prompt_fal_rewrote_is_the_revised_prompt() -> None:
    answer = read_result(raw("fal_result_flux_kontext.json"), "donut")
    assert answer.revised_prompt == "Put a donut next to the flour."


def test_an_output_flagged_by_the_safety_checker_is_a_content_policy_violation() -> None:
    doc = fixture("fal_result_flux_kontext.json")
    doc["has_nsfw_concepts"] = [True]
    with pytest.raises(ContentPolicyViolation) as caught:
        read_result(orjson.dumps(doc), "p")
    assert "has_nsfw_concepts" in caught.value.message


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b'{"images": [{"url": "https://v3', "not JSON"),
        (b"[]", "not an object"),
        (b'{"seed": 1}', "without an images list"),
        (b'{"images": []}', "no image"),
        (b'{"images": [{"content_type": "image/png"}]}', "without a url"),
    ],
)
def test_malformed_outputs(body: bytes, what: str) -> None:
    with pytest.raises(Malformed) as caught:
        read_result(body, "p")
    assert what in caught.value.what


# -- errors --------------------------------------------------------------------------------------


def error_for(status: int, body: bytes, headers: dict[str, str] | None = None) -> GatewayError:
    deployment = Deployment("fal", api_key=SecretStr(KEY))
    return FalUpstream("fal", read_error).status_error(status, body, headers or {}, deployment)


def test_a_validation_error_names_the_openai_field() -> None:
    failure = read_error(422, raw("fal_error_validation_422.json"))
    assert (failure.param, failure.code, failure.kind) == ("image", "missing", None)
    assert failure.message == "image_urls: Field required"
    error = error_for(422, raw("fal_error_validation_422.json"))
    assert (error.status, error.param) == (400, "image")


def test_a_content_policy_violation_is_moderation_whatever_the_status() -> None:
    error = error_for(422, raw("fal_error_content_policy.json"))
    assert isinstance(error, ContentPolicyViolation) and error.origin == "provider"
    assert "flagged by a content checker" in error.message


def test_infrastructure_errors_and_fals_headers() -> None:
    timeout = error_for(504, raw("fal_error_request_timeout.json"))
    assert isinstance(timeout, UpstreamTimeout) and "Request timed out" in timeout.message
    busy = error_for(
        503,
        b'{"detail": "Runner scheduling failure"}',
        {"x-fal-error-type": "runner_scheduling_failure", "x-fal-retryable": "false"},
    )
    assert (busy.status, busy.retryable) == (502, False)
    assert read_error(503, with_error_type(b"oops", "runner_disconnected")).code == (
        "runner_disconnected"
    )
    assert error_for(500, b"{}", {"x-fal-needs-retry": "1"}).retryable is True


def test_a_refused_key_is_the_operators_problem() -> None:
    error = error_for(401, raw("fal_error_unauthorized.json"))
    assert (error.status, error.code) == (502, "provider_auth_failed")


def test_a_rate_limit_keeps_retry_after() -> None:
    error = error_for(429, b'{"detail": "Rate limit exceeded"}', {"retry-after": "7"})
    assert isinstance(error, RateLimited) and error.headers == {"Retry-After": "7"}


# -- the adapter, on a mock transport ------------------------------------------------------------

SUBMIT = fixture("fal_queue_submit_response.json")
STATUS_URL, RESPONSE_URL, CANCEL_URL = (
    SUBMIT["status_url"],
    SUBMIT["response_url"],
    SUBMIT["cancel_url"],
)
CDN_URL = "https://v3.fal.media/files/kangaroo/abc123_output.png"


class RecordingGuard:
    """Stands in for the gateway's SSRF-guarded fetcher: records the URL, answers ``data``."""

    def __init__(self, data: bytes = PNG) -> None:
        self.data = data
        self.urls: list[str] = []

    async def fetch(self, url: str, *, param: str) -> bytes:
        self.urls.append(url)
        return self.data


class Queue:
    """fal's queue as the reference shows it; ``statuses`` are answered to the polls in turn."""

    def __init__(
        self,
        statuses: list[tuple[int, bytes]] | None = None,
        result: tuple[int, bytes] | None = None,
        submit: dict[str, Any] | None = None,
    ) -> None:
        self.statuses = statuses or [
            (202, raw("fal_queue_status_in_queue.json")),
            (202, raw("fal_queue_status_in_progress.json")),
            (200, raw("fal_queue_status_completed.json")),
        ]
        self.result = result or (200, raw("fal_result_nano_banana_edit.json"))
        self.submit = submit or SUBMIT
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        url = str(request.url)
        if request.method == "POST":
            return httpx.Response(200, json=self.submit)
        if request.method == "PUT" and url == CANCEL_URL:
            return httpx.Response(202, content=raw("fal_cancel_response.json"))
        if url == STATUS_URL:
            status, body = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            return httpx.Response(status, content=body)
        if url == RESPONSE_URL:
            return httpx.Response(self.result[0], content=self.result[1])
        return httpx.Response(404, json={"detail": "Not Found"})

    def calls(self, method: str, url: str | None = None) -> list[httpx.Request]:
        return [r for r in self.seen if r.method == method and (url is None or str(r.url) == url)]


def run(
    edit_job: EditJob,
    answer: Callable[[httpx.Request], httpx.Response],
    guard: RecordingGuard | None = None,
    deadline: float = 5.0,
) -> Any:
    async def go() -> Any:
        client = httpx.AsyncClient(base_url=BASE, transport=httpx.MockTransport(answer))
        deployment = Deployment(
            "fal",
            base_url=BASE,
            api_key=SecretStr(KEY),
            timeout_seconds=deadline,
            options={"poll_interval_seconds": "0.001"},
            client=client,
            guard=guard or RecordingGuard(),
        )
        try:
            return await FalProvider().edit(edit_job, deployment, DiscardEvents())
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_the_adapter_submits_polls_the_returned_urls_and_downloads_through_the_guard() -> None:
    queue, guard = Queue(), RecordingGuard(imaging.jpeg(80, 60))
    result = run(job(NANO), queue, guard)
    post, *polls, read = queue.seen  # the CDN URL never goes through the client with the key
    assert str(post.url) == BASE + "/fal-ai/nano-banana/edit"
    assert post.headers["authorization"] == f"Key {KEY}"
    assert post.headers["content-type"] == "application/json"
    assert [str(p.url) for p in polls] == [STATUS_URL] * 3
    assert all(p.headers["authorization"] == f"Key {KEY}" for p in polls)
    assert (read.method, str(read.url)) == ("GET", RESPONSE_URL)
    assert guard.urls == [CDN_URL]
    (image,) = result.images
    assert (image.format, image.width, image.height) == ("jpeg", 80, 60)
    assert result.provider == "fal" and result.model == NANO


def test_job_urls_off_fals_origin_are_never_sent_the_key() -> None:
    queue = Queue(submit={**SUBMIT, "status_url": "https://evil.example/steal"})
    with pytest.raises(UpstreamError) as caught:
        run(job(NANO), queue)
    assert caught.value.code == "upstream_malformed"
    assert [r.method for r in queue.seen] == ["POST"]


def test_a_failed_job_is_read_from_its_result_url() -> None:
    queue = Queue(
        statuses=[(200, raw("fal_queue_status_completed_with_error.json"))],
        result=(504, raw("fal_error_request_timeout.json")),
    )
    with pytest.raises(UpstreamTimeout):
        run(job(NANO), queue)
    assert queue.calls("PUT") == []


def test_a_failed_job_whose_result_url_says_nothing_fails_by_its_status() -> None:
    status = orjson.dumps({"status": "COMPLETED", "error": "CUDA out of memory"})
    queue = Queue(statuses=[(200, status)], result=(200, b"{}"))
    with pytest.raises(UpstreamError) as caught:
        run(job(NANO), queue)
    assert caught.value.code == "upstream_job_failed" and "CUDA" in caught.value.message


def test_a_job_past_the_deadline_is_cancelled_and_504() -> None:
    queue = Queue(statuses=[(202, raw("fal_queue_status_in_progress.json"))])
    with pytest.raises(UpstreamTimeout) as caught:
        run(job(NANO), queue, deadline=0.2)
    assert "cancelled" in caught.value.message
    (cancel,) = queue.calls("PUT")
    assert str(cancel.url) == CANCEL_URL and cancel.headers["authorization"] == f"Key {KEY}"
    assert queue.calls("GET", RESPONSE_URL) == []


def test_passing_poll_failures_are_asked_again_then_given_up_with_a_cancel() -> None:
    flaky = [(500, b'{"detail": "Internal Server Error"}')] * 3
    queue = Queue(statuses=[*flaky, (200, raw("fal_queue_status_completed.json"))])
    assert len(run(job(NANO), queue).images) == 1
    assert queue.calls("PUT") == []
    queue = Queue(statuses=[*flaky, *flaky, (200, raw("fal_queue_status_completed.json"))])
    with pytest.raises(UpstreamError) as caught:
        run(job(NANO), queue)
    assert caught.value.code == "upstream_error"
    assert len(queue.calls("GET", STATUS_URL)) == 4 and len(queue.calls("PUT")) == 1


def test_a_job_fal_has_lost_is_a_502_not_the_clients_404() -> None:
    queue = Queue(statuses=[(404, b'{"detail": "Request not found"}')])
    with pytest.raises(UpstreamError) as caught:
        run(job(NANO), queue)
    assert caught.value.code == "upstream_job_lost"
    assert len(queue.calls("PUT")) == 1


def test_an_endpoint_without_num_images_is_fanned_out_with_a_seed_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    single = dataclasses.replace(
        fal_endpoints.ENDPOINTS["fal-ai/qwen-image-edit"], num_images=False
    )
    monkeypatch.setitem(fal_endpoints.ENDPOINTS, "fal-ai/qwen-image-edit", single)
    queue = Queue()
    result = run(job(QWEN, n=2, seed=5), queue)
    bodies = [orjson.loads(r.content) for r in queue.calls("POST")]
    assert [(b["num_images"], b["seed"]) for b in bodies] == [(1, 5), (1, 6)]
    assert len(result.images) == 2


def test_an_output_url_that_is_not_an_image_is_malformed() -> None:
    with pytest.raises(UpstreamError) as caught:
        run(job(NANO), Queue(), RecordingGuard(b"not an image"))
    assert caught.value.code == "upstream_malformed"
