"""Replicate's converter on the reference fixtures and built requests: no network at all (the
adapter tests at the end answer from an ``httpx.MockTransport``)."""

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
from imagegate.catalog.catalog import CatalogError
from imagegate.catalog.validate import validate_request
from imagegate.config import Settings
from imagegate.core.errors import GatewayError, InvalidRequest
from imagegate.core.request import EditRequest, OutputOptions, SizingRequest
from imagegate.core.result import EditResult
from imagegate.providers.base import Deployment, DiscardEvents, EditJob
from imagegate.providers.replicate.adapter import ReplicateProvider
from imagegate.providers.replicate.answers import (
    Malformed,
    read_error,
    read_prediction,
    stated_cost,
)
from imagegate.providers.replicate.convert import (
    Plan,
    data_uri,
    input_chunks,
    plan_edit,
    seed_for,
)
from imagegate.providers.replicate.inputs import MODELS, NANO_BANANA, read_inputs
from imagegate.providers.replicate.spec import SPEC
from imagegate.providers.upstream import Upstream
from tests import imaging
from tests.support.requests import image_input

FIXTURES = Path(__file__).parent / "fixtures"
CARDS = {entry["id"]: ModelCard.model_validate(entry) for entry in SPEC.cards(Settings())}
KONTEXT = CARDS["replicate/black-forest-labs/flux-kontext-pro"]
NANO = CARDS["replicate/google/nano-banana"]
SEEDREAM = CARDS["replicate/bytedance/seedream-4"]
PNG = imaging.png()
TOKEN = "r8_TestReplicateToken0123456789abcdef"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def job(
    card: ModelCard,
    *images: bytes,
    sizing: SizingRequest | None = None,
    output: OutputOptions | None = None,
    **fields: Any,
) -> EditJob:
    request = EditRequest(
        model=card.id,
        prompt=fields.pop("prompt", "Make this a 90s cartoon"),
        images=tuple(image_input(data, f"image[{i}]") for i, data in enumerate(images or (PNG,))),
        sizing=sizing or SizingRequest(),
        output=output or OutputOptions(),
        **fields,
    )
    return EditJob(request, card, validate_request(request, card))


def body(edit: EditJob, index: int = 0) -> dict[str, Any]:
    plan = plan_edit(edit)
    uris = [data_uri(image.mime_type, image.view()) for image in edit.request.images]
    doc: dict[str, Any] = orjson.loads(
        b"".join(input_chunks(plan, edit.request.prompt, uris, index))
    )
    return doc


def inputs_of(edit: EditJob) -> dict[str, Any]:
    doc = body(edit)
    assert set(doc) == {"input"}  # never a webhook, a version or a stream
    found: dict[str, Any] = doc["input"]
    return found


def uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def refused(edit: Callable[[], EditJob]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        plan_edit(edit())
    return caught.value


# -- the request ---------------------------------------------------------------------------------


def test_kontext_input_is_the_reference_request() -> None:
    sample = fixture("replicate_prediction_create_request.json")["input"]
    found = inputs_of(
        job(
            KONTEXT,
            seed=42,
            output=OutputOptions(output_format="png"),
            extra={"safety_tolerance": 2},
            sizing=SizingRequest(aspect_ratio="auto"),
        )
    )
    assert found == {**sample, "input_image": uri(PNG)}


def test_nano_banana_input_is_the_reference_request() -> None:
    sample = fixture("replicate_prediction_create_request_nano_banana.json")["input"]
    jpeg = imaging.jpeg()
    found = inputs_of(
        job(
            NANO,
            PNG,
            jpeg,
            prompt=sample["prompt"],
            output=OutputOptions(output_format="jpeg"),
        )
    )
    assert found == {**sample, "image_input": [uri(PNG), uri(jpeg, "image/jpeg")]}


def test_the_prompt_is_json_escaped_and_images_are_spliced_raw() -> None:
    prompt = 'a "quoted" prompt with \\ and \u00e9 and @imagegate-image-x-0@'
    edit = job(NANO, prompt=prompt)
    plan = plan_edit(edit)
    chunks = input_chunks(plan, prompt, [data_uri("image/png", PNG)], 0)
    assert orjson.loads(b"".join(chunks))["input"]["prompt"] == prompt
    assert data_uri("image/png", PNG) in chunks  # the data URI itself, not a copy in a string


def test_path_is_the_official_model_endpoint() -> None:
    assert plan_edit(job(SEEDREAM)).path == "/v1/models/bytedance/seedream-4/predictions"


@pytest.mark.parametrize(
    ("card", "sizing", "expected"),
    [
        (KONTEXT, SizingRequest(), {"aspect_ratio": "match_input_image"}),
        (KONTEXT, SizingRequest(size="auto"), {"aspect_ratio": "match_input_image"}),
        (
            KONTEXT,
            SizingRequest(aspect_ratio="match_input_image"),
            {"aspect_ratio": "match_input_image"},
        ),
        (KONTEXT, SizingRequest(size="1536x1024"), {"aspect_ratio": "3:2"}),
        (NANO, SizingRequest(aspect_ratio="21:9"), {"aspect_ratio": "21:9"}),
        (
            SEEDREAM,
            SizingRequest(resolution="4K"),
            {"aspect_ratio": "match_input_image", "size": "4K"},
        ),
        (
            SEEDREAM,
            SizingRequest(aspect_ratio="16:9", resolution="1K"),
            {"aspect_ratio": "16:9", "size": "1K"},
        ),
        # Exact pixels where the model takes them: size=custom (sides 1024-4096).
        (
            SEEDREAM,
            SizingRequest(size="2048x1536"),
            {"size": "custom", "width": 2048, "height": 1536},
        ),
        (
            SEEDREAM,
            SizingRequest(width=1024, height=1024),
            {"size": "custom", "width": 1024, "height": 1024},
        ),
        # Smaller than custom allows: the shape, at the nearest tier.
        (SEEDREAM, SizingRequest(size="1024x768"), {"aspect_ratio": "4:3", "size": "1K"}),
        (SEEDREAM, SizingRequest(size="512x512"), {"aspect_ratio": "1:1", "size": "1K"}),
        # A tier named with pixels: that shape at that tier.
        (
            SEEDREAM,
            SizingRequest(size="2048x2048", resolution="4K"),
            {"aspect_ratio": "1:1", "size": "4K"},
        ),
    ],
)
def test_sizes(card: ModelCard, sizing: SizingRequest, expected: dict[str, Any]) -> None:
    found = inputs_of(job(card, sizing=sizing))
    sizing_keys = {"aspect_ratio", "size", "width", "height"}
    assert {k: v for k, v in found.items() if k in sizing_keys} == expected


@pytest.mark.parametrize(
    ("wanted", "compression", "sent"),
    [
        (None, None, None),
        ("png", None, "png"),
        ("jpeg", None, "jpg"),
        ("webp", None, "png"),
        ("jpeg", 40, "png"),
    ],
)
def test_output_format_as_replicate_spells_it(
    wanted: Any, compression: int | None, sent: str | None
) -> None:
    output = OutputOptions(output_format=wanted, output_compression=compression)
    assert inputs_of(job(KONTEXT, output=output)).get("output_format") == sent


def test_seedream_has_no_output_format_and_the_service_converts() -> None:
    found = inputs_of(job(SEEDREAM, output=OutputOptions(output_format="png")))
    assert "output_format" not in found


def test_a_seed_goes_to_kontext_and_each_fanned_out_call_gets_its_own() -> None:
    edit = job(KONTEXT, seed=7, n=3)
    assert plan_edit(edit).calls == 3
    assert [body(edit, index)["input"]["seed"] for index in range(3)] == [7, 8, 9]
    assert seed_for(2**32 - 1, 1) == 0


def test_n_is_fanned_out_for_kontext_and_nano_banana() -> None:
    assert plan_edit(job(NANO, n=4)).calls == 4
    assert "max_images" not in inputs_of(job(NANO, n=4))


def test_n_is_seedreams_own_max_images() -> None:
    edit = job(SEEDREAM, n=3)
    assert plan_edit(edit).calls == 1
    found = inputs_of(edit)
    assert (found["sequential_image_generation"], found["max_images"]) == ("auto", 3)


def test_seedream_options_are_checked_and_forwarded() -> None:
    extra = {"enhance_prompt": "false", "sequential_image_generation": "auto", "max_images": "4"}
    found = inputs_of(job(SEEDREAM, extra=extra))
    assert (found["enhance_prompt"], found["max_images"]) == (False, 4)


@pytest.mark.parametrize(
    ("card", "fields", "param", "code"),
    [
        (
            KONTEXT,
            {"extra": {"safety_tolerance": 3}},
            "safety_tolerance",
            "integer_above_max_value",
        ),
        (
            KONTEXT,
            {"extra": {"safety_tolerance": -1}},
            "safety_tolerance",
            "integer_below_min_value",
        ),
        (KONTEXT, {"extra": {"safety_tolerance": "low"}}, "safety_tolerance", "invalid_type"),
        (KONTEXT, {"extra": {"prompt_upsampling": "maybe"}}, "prompt_upsampling", "invalid_type"),
        (NANO, {"extra": {"safety_tolerance": 1}}, "safety_tolerance", "unsupported_parameter"),
        (NANO, {"seed": 3}, "seed", "unsupported_parameter"),
        (SEEDREAM, {"seed": 3}, "seed", "unsupported_parameter"),
        (SEEDREAM, {"extra": {"max_images": 16}}, "max_images", "integer_above_max_value"),
        (
            SEEDREAM,
            {"extra": {"sequential_image_generation": "sometimes"}},
            "sequential_image_generation",
            "invalid_value",
        ),
        (SEEDREAM, {"n": 2, "extra": {"max_images": 3}}, "max_images", "conflicting_parameters"),
        (
            SEEDREAM,
            {"n": 2, "extra": {"sequential_image_generation": "disabled"}},
            "sequential_image_generation",
            "conflicting_parameters",
        ),
        (SEEDREAM, {"extra": {"max_images": 3}}, "max_images", "conflicting_parameters"),
        (KONTEXT, {"output": OutputOptions(quality="high")}, "quality", "unsupported_value"),
        (NANO, {"input_fidelity": "high"}, "input_fidelity", "unsupported_parameter"),
        (KONTEXT, {"moderation": "low"}, "moderation", "unsupported_value"),
    ],
)
def test_what_replicate_would_refuse_is_refused_first(
    card: ModelCard, fields: dict[str, Any], param: str, code: str
) -> None:
    error = refused(lambda: job(card, **fields))
    assert (error.param, error.code) == (param, code)


def test_kontext_safety_tolerance_is_at_most_2_with_an_input_image() -> None:
    error = refused(lambda: job(KONTEXT, extra={"safety_tolerance": 6}))
    assert "when an input image is given" in error.message
    assert inputs_of(job(KONTEXT, extra={"safety_tolerance": "0"}))["safety_tolerance"] == 0


def test_seedream_inputs_and_outputs_are_at_most_15() -> None:
    images = [PNG] * 10
    assert plan_edit(job(SEEDREAM, *images, n=5)).calls == 1
    error = refused(lambda: job(SEEDREAM, *images, n=6))
    assert (error.param, error.code) == ("n", "too_many_images")


def test_unknown_fields_are_never_forwarded() -> None:
    extra = {"webhook": "https://evil.test", "input_image": "https://evil.test/x.png", "style": 1}
    found = inputs_of(job(KONTEXT, extra=extra))
    assert set(found) == {"prompt", "input_image", "aspect_ratio"}
    assert found["input_image"] == uri(PNG)


# -- a card for another Replicate model ----------------------------------------------------------


def user_card(**entry: Any) -> ModelCard:
    base = {
        "id": "replicate/google/nano-banana-pro",
        "edit": {"max_reference_images": 14},
        "sizing": {
            "style": "aspect_ratio",
            "aspect_ratios": ["auto", "1:1", "16:9"],
            "resolutions": ["1K", "2K", "4K"],
        },
        "pricing": {"per_tier": {"1K": 0.15, "2K": 0.15, "4K": 0.3}, "tier_by": "resolution"},
    }
    return ModelCard.model_validate({**base, **entry})


def test_a_user_card_names_its_inputs_with_provider_options() -> None:
    card = user_card(
        provider_options={"inputs": "google/nano-banana", "tier_key": "resolution"},
        extra_fields=["safety_filter_level"],
    )
    found = inputs_of(
        job(
            card,
            sizing=SizingRequest(aspect_ratio="16:9", resolution="4K"),
            extra={"safety_filter_level": "block_only_high"},
        )
    )
    assert found["image_input"] == [uri(PNG)]
    assert (found["aspect_ratio"], found["resolution"]) == ("16:9", "4K")
    assert found["safety_filter_level"] == "block_only_high"  # forwarded as sent
    assert plan_edit(job(card)).path == "/v1/models/google/nano-banana-pro/predictions"


def test_a_user_card_for_a_model_like_none_of_them() -> None:
    card = user_card(
        id="replicate/acme/restyle",
        provider_options={"image_key": "image", "image_list": False, "seed": True},
        sizing={"style": "aspect_ratio", "aspect_ratios": ["auto"]},
        pricing={"per_image": 0.01},
    )
    found = inputs_of(job(card, seed=5))
    assert found == {
        "prompt": "Make this a 90s cartoon",
        "image": uri(PNG),
        "aspect_ratio": "match_input_image",
        "seed": 5,
    }


def test_a_card_whose_inputs_are_unknown_is_refused_per_request() -> None:
    card = user_card(id="replicate/acme/unknown")
    error = refused(lambda: job(card))
    assert (error.param, error.code) == ("model", "model_not_available")
    assert "provider_options" in error.message


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({}, "does not know the inputs"),
        ({"inputs": "acme/other"}, "must be one of"),
        ({"inputs": "google/nano-banana", "imagekey": "x"}, "has no imagekey"),
        ({"image_key": "Image Input"}, "image_key must be"),
        ({"image_key": "image", "seed": "yes"}, "seed must be"),
    ],
)
def test_bad_provider_options_stop_the_server_at_start(options: dict[str, Any], words: str) -> None:
    entry = {"id": "replicate/acme/new-model", "provider_options": options}
    with pytest.raises(CatalogError) as caught:
        SPEC.cards(Settings(models=[entry]))
    assert "replicate/acme/new-model" in str(caught.value) and words in str(caught.value)


def test_extra_fields_may_not_name_inputs_the_gateway_fills() -> None:
    entry = {"id": "replicate/google/nano-banana", "extra_fields": ["image_input"]}
    with pytest.raises(CatalogError) as caught:
        SPEC.cards(Settings(models=[entry]))
    assert "image_input" in str(caught.value)


def test_overrides_of_shipped_cards_and_other_providers_pass() -> None:
    models = [
        {"id": "replicate/google/nano-banana", "pricing": {"per_image": 0.05}},
        {"id": "xai/grok-imagine-image", "description": "not Replicate's"},
    ]
    assert len(SPEC.cards(Settings(models=models))) == 3


def test_the_shipped_table_reads_as_it_is() -> None:
    assert read_inputs("google/nano-banana", {}) is NANO_BANANA
    assert set(MODELS) == {card.upstream_model for card in CARDS.values()}


# -- the answers ---------------------------------------------------------------------------------


def test_a_starting_prediction() -> None:
    sample = fixture("replicate_prediction_starting.json")
    prediction = read_prediction(orjson.dumps(sample))
    assert (prediction.id, prediction.status, prediction.settled) == (
        sample["id"],
        "starting",
        False,
    )
    assert prediction.get_url == sample["urls"]["get"]
    assert prediction.cancel_url == sample["urls"]["cancel"]
    assert prediction.output == ()


def test_a_succeeded_prediction_with_one_uri_and_a_count() -> None:
    sample = fixture("replicate_prediction_succeeded.json")
    prediction = read_prediction(orjson.dumps(sample))
    assert prediction.settled and prediction.output == (sample["output"],)
    assert prediction.image_count == 1


def test_a_list_of_uris_is_read_too() -> None:
    sample = {**fixture("replicate_prediction_succeeded.json"), "output": ["a", "b"]}
    del sample["metrics"]
    prediction = read_prediction(orjson.dumps(sample))
    assert prediction.output == ("a", "b") and prediction.image_count is None


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (b"<html>502</html>", "not JSON"),
        (b'{"id": "x"}', "without an id or a status"),
        (b"[]", "not a prediction"),
        (b'{"id": "x", "status": "succeeded", "output": {"image": "u"}}', "neither a URI"),
        (b'{"id": "x", "status": "succeeded", "output": [1]}', "neither a URI"),
    ],
)
def test_malformed_predictions(raw: bytes, what: str) -> None:
    with pytest.raises(Malformed) as caught:
        read_prediction(raw)
    assert what in caught.value.what


def error_for(status: int, doc: Any) -> GatewayError:
    deployment = Deployment("replicate", api_key=SecretStr(TOKEN))
    return Upstream("replicate", read_error).status_error(status, orjson.dumps(doc), {}, deployment)


def test_a_failed_prediction_flagged_as_sensitive_is_a_content_policy_400() -> None:
    sample = fixture("replicate_prediction_failed.json")
    assert read_error(200, orjson.dumps(sample)).kind == "moderation"
    error = error_for(200, sample)
    assert (error.status, error.code, error.origin) == (400, "content_policy_violation", "provider")
    assert "flagged as sensitive" in error.message


def test_another_failed_prediction_is_a_502_with_replicates_words() -> None:
    sample = {**fixture("replicate_prediction_failed.json"), "error": "CUDA out of memory (E1001)"}
    error = error_for(200, sample)
    assert (error.status, error.code) == (502, "upstream_error")
    assert "CUDA out of memory (E1001)" in error.message


@pytest.mark.parametrize("status", ["canceled", "aborted"])
def test_a_prediction_ended_otherwise_is_a_502(status: str) -> None:
    sample = {**fixture("replicate_prediction_failed.json"), "status": status, "error": None}
    error = error_for(200, sample)
    assert (error.status, error.code) == (502, "upstream_error")
    assert status in error.message


def test_the_401_problem_is_the_operators_problem() -> None:
    sample = fixture("replicate_error_401.json")
    assert read_error(401, orjson.dumps(sample)).message == sample["detail"]
    error = error_for(401, sample)
    assert (error.status, error.code) == (502, "provider_auth_failed")


def test_the_422_problem_is_a_400_naming_the_field() -> None:
    sample = fixture("replicate_error_422.json")
    failure = read_error(422, orjson.dumps(sample))
    assert failure.message == "prompt is required" and failure.param is None
    doc = {
        "title": "Input validation failed",
        "detail": "- input.aspect_ratio: ...",
        "status": 422,
        "invalid_fields": [
            {"type": "enum", "field": "input.aspect_ratio", "description": "must be one of ..."}
        ],
    }
    error = error_for(422, doc)
    assert (error.status, error.param) == (400, "aspect_ratio")
    assert "aspect_ratio: must be one of" in error.message


def test_429_keeps_retry_after_and_402_is_billing() -> None:
    deployment = Deployment("replicate", api_key=SecretStr(TOKEN))
    doc = {"title": "Too Many Requests", "detail": "Request was throttled.", "status": 429}
    error = Upstream("replicate", read_error).status_error(
        429, orjson.dumps(doc), {"retry-after": "7"}, deployment
    )
    assert (error.status, error.headers) == (429, {"Retry-After": "7"})
    billing = error_for(402, {"title": "Payment required", "detail": "no credit", "status": 402})
    assert billing.status == 502 and "billing" in billing.message


def test_cost_is_per_billed_image_on_flat_prices_only() -> None:
    assert stated_cost(KONTEXT, 2, 1) == pytest.approx(0.08)
    assert stated_cost(SEEDREAM, 3, 10) == pytest.approx(0.09)
    assert stated_cost(user_card(provider_options={"inputs": "google/nano-banana"}), 1, 1) is None


# -- the adapter, on a mock transport ------------------------------------------------------------

API = "https://api.replicate.test"


def prediction(status: str, *, get: str | None = None, output: Any = None) -> dict[str, Any]:
    base = f"{API}/v1/predictions/p1"
    return {
        "id": "p1",
        "status": status,
        "output": output,
        "error": None,
        "urls": {"get": get or base, "cancel": base + "/cancel"},
    }


class RecordingGuard:
    """Stands in for the gateway's SSRF-guarded fetcher: records the URL, answers ``data``."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = data
        self.urls: list[str] = []

    async def fetch(self, url: str, *, param: str) -> bytes:
        self.urls.append(url)
        return self.data


def run(
    edit: EditJob,
    answer: Callable[[httpx.Request], httpx.Response],
    guard: RecordingGuard | None = None,
    **options: str,
) -> Any:
    async def go() -> EditResult:
        client = httpx.AsyncClient(base_url=API, transport=httpx.MockTransport(answer))
        deployment = Deployment(
            "replicate",
            base_url=API,
            api_key=SecretStr(TOKEN),
            timeout_seconds=float(options.pop("deadline", "2")),
            options={"wait_seconds": "5", "poll_interval_seconds": "0.01", **options},
            client=client,
            guard=guard,
        )
        try:
            return await ReplicateProvider().edit(edit, deployment, DiscardEvents())
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_a_polling_url_on_another_host_is_refused_and_never_sent_the_token() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/predictions"):
            return httpx.Response(201, json=prediction("starting", get="https://evil.test/p1"))
        return httpx.Response(200, json=prediction("canceled"))

    with pytest.raises(GatewayError) as caught:
        run(job(KONTEXT), answer)
    assert (caught.value.status, caught.value.code) == (502, "upstream_malformed")
    assert [(r.method, r.url.host) for r in seen] == [
        ("POST", "api.replicate.test"),
        ("POST", "api.replicate.test"),  # the cancel, on the API's own origin
    ]
    assert seen[0].headers["prefer"] == "wait=5"
    assert seen[1].url.path == "/v1/predictions/p1/cancel"


def test_a_poll_that_fails_for_a_while_is_polled_again() -> None:
    polls: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json=prediction("starting"))
        polls.append(1)
        if len(polls) < 3:
            return httpx.Response(503, json={"title": "Unavailable", "status": 503})
        return httpx.Response(200, json=prediction("succeeded", output=imaging.data_url(PNG)))

    result = run(job(NANO), answer)
    assert len(polls) == 3 and result.images[0].format == "png"
    assert result.usage.provider_cost_usd == pytest.approx(0.039)


def test_a_poll_refused_for_good_cancels_the_prediction() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path.endswith("/predictions"):
            return httpx.Response(201, json=prediction("starting"))
        if request.method == "GET":
            return httpx.Response(404, json={"title": "Not found", "status": 404})
        return httpx.Response(200, json=prediction("canceled"))

    with pytest.raises(GatewayError) as caught:
        run(job(NANO), answer)
    assert (caught.value.status, caught.value.code) == (502, "upstream_error")
    assert "lost prediction p1" in caught.value.message
    assert seen[-1] == "POST /v1/predictions/p1/cancel"


def test_the_deadline_cancels_and_answers_504() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.method == "POST" and request.url.path.endswith("/predictions"):
            return httpx.Response(201, json=prediction("starting"))
        return httpx.Response(200, json=prediction("processing"))

    with pytest.raises(GatewayError) as caught:
        run(job(NANO), answer, deadline="0.2")
    assert caught.value.status == 504
    assert seen[-1] == "POST /v1/predictions/p1/cancel"


def test_without_a_wait_no_prefer_header_is_sent() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=prediction("succeeded", output=[imaging.data_url(PNG)]))

    run(job(SEEDREAM), answer, wait_seconds="0")
    assert "prefer" not in seen[0].headers
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_delivery_urls_are_fetched_through_the_guard_without_the_token() -> None:
    seen: list[httpx.Request] = []
    output = ["https://replicate.delivery/xezq/a.png", "https://replicate.delivery/xezq/b.png"]

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=prediction("succeeded", output=output))

    guard = RecordingGuard(PNG)
    result = run(job(SEEDREAM, n=2), answer, guard)
    assert guard.urls == output and len(result.images) == 2
    assert len(seen) == 1  # the create only: nothing else went through the API's client


def test_a_result_that_is_not_an_image_is_malformed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            201, json=prediction("succeeded", output="data:text/plain;base64,aGk=")
        )

    with pytest.raises(GatewayError) as caught:
        run(job(KONTEXT), answer)
    assert (caught.value.status, caught.value.code) == (502, "upstream_malformed")


def test_plan_is_what_check_refuses_with() -> None:
    edit = job(KONTEXT, extra={"safety_tolerance": 9})
    with pytest.raises(InvalidRequest):
        ReplicateProvider().check(edit)
    assert isinstance(plan_edit(job(KONTEXT)), Plan)
