"""xAI's converter on the reference fixtures and built requests: no network at all (the adapter
tests answer from an ``httpx.MockTransport``)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.validate import validate_request
from imagegate.config import Settings
from imagegate.core.errors import ContentPolicyViolation, InvalidRequest, UpstreamError
from imagegate.core.request import EditRequest, OutputOptions, SizingRequest
from imagegate.providers.base import Deployment, DiscardEvents, EditJob
from imagegate.providers.upstream import Upstream
from imagegate.providers.xai.adapter import XaiProvider
from imagegate.providers.xai.convert import (
    Malformed,
    check_request,
    edit_body,
    read_answer,
    read_error,
)
from imagegate.providers.xai.spec import SPEC
from tests import imaging
from tests.support.requests import image_input

FIXTURES = Path(__file__).parent / "fixtures"
CARD = ModelCard.model_validate(SPEC.cards(Settings())[0])
PNG = imaging.png()
KEY = "xai-test-key-0123456789abcdef"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def job(
    *images: bytes,
    sizing: SizingRequest | None = None,
    output: OutputOptions | None = None,
    **fields: Any,
) -> EditJob:
    request = EditRequest(
        model=CARD.id,
        prompt=fields.pop("prompt", "Render this as a pencil sketch with detailed shading"),
        images=tuple(image_input(data, f"image[{i}]") for i, data in enumerate(images or (PNG,))),
        sizing=sizing or SizingRequest(),
        output=output or OutputOptions(),
        **fields,
    )
    return EditJob(request, CARD, validate_request(request, CARD))


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


# -- the request ---------------------------------------------------------------------------------


def test_the_body_is_the_reference_request_asking_for_base64() -> None:
    sample = fixture("xai_edit_request.json")
    body = orjson.loads(edit_body(job(sizing=SizingRequest(aspect_ratio="auto", resolution="1K"))))
    expected = {**sample, "response_format": "b64_json"}
    expected["image"] = {"url": data_uri(PNG), "type": "image_url"}
    assert body == expected


def test_several_images_go_as_images_in_order() -> None:
    jpeg, webp = imaging.jpeg(), imaging.webp()
    body = orjson.loads(edit_body(job(PNG, jpeg, webp, n=3)))
    assert "image" not in body and body["n"] == 3
    assert [ref["url"] for ref in body["images"]] == [
        data_uri(PNG),
        data_uri(jpeg, "image/jpeg"),
        data_uri(webp, "image/webp"),
    ]


def test_no_size_quality_or_style_ever_goes_to_xai() -> None:
    body = orjson.loads(edit_body(job(sizing=SizingRequest(size="1536x1024"))))
    assert body["aspect_ratio"] == "3:2"
    assert not {"size", "quality", "style", "seed", "mask"} & set(body)


def test_the_prompt_is_json_escaped_but_images_are_spliced_raw() -> None:
    prompt = 'a "quoted" prompt with a \\ and \u00e9 and @imagegate-image-x-0@'
    body = edit_body(job(prompt=prompt))
    assert orjson.loads(body)["prompt"] == prompt
    assert base64.b64encode(PNG) in body


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"output": OutputOptions(quality="high")}, "quality"),
        ({"input_fidelity": "low"}, "input_fidelity"),
        ({"moderation": "low"}, "moderation"),
        ({"seed": 1}, "seed"),
    ],
)
def test_openai_fields_xai_lacks(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_request(job(**fields))
    assert caught.value.param == param


def test_what_xai_can_take_passes() -> None:
    check_request(job(output=OutputOptions(quality="auto"), moderation="auto", user="u"))


# -- the answer ----------------------------------------------------------------------------------


def test_the_reference_answer_is_a_url_to_download() -> None:
    answer = read_answer(json.dumps(fixture("xai_edit_response.json")).encode())
    (image,) = answer.images
    assert image.url == "https://imgen.x.ai/xai-imgen/xai-tmp-imgen-abc.jpeg"
    assert image.b64 is None and image.revised_prompt is None  # "" is no revision
    assert answer.cost_usd is None


def test_base64_answers_and_the_cost_xai_states() -> None:
    b64 = base64.b64encode(imaging.jpeg()).decode()
    body = orjson.dumps(
        {
            "created": 1,
            "data": [{"b64_json": b64, "mime_type": "image/jpeg", "revised_prompt": "a sketch"}],
            "usage": {"cost_in_usd_ticks": 220_000_000},
        }
    )
    answer = read_answer(body)
    assert answer.images[0].b64 == b64 and answer.images[0].revised_prompt == "a sketch"
    assert answer.cost_usd == pytest.approx(0.022)


def test_a_flagged_image_is_a_content_policy_violation() -> None:
    body = orjson.dumps({"data": [{"url": "", "respect_moderation": False}]})
    with pytest.raises(ContentPolicyViolation):
        read_answer(body)


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"<html>", "not JSON"),
        (b'{"created": 1, "data": [{"b64_json": "aGk', "not JSON"),
        (b'{"created": 1}', "without a data list"),
        (b'{"created": 1, "data": []}', "no image"),
        (b'{"data": [{"mime_type": "image/jpeg"}]}', "neither b64_json nor url"),
    ],
)
def test_malformed_answers(body: bytes, what: str) -> None:
    with pytest.raises(Malformed) as caught:
        read_answer(body)
    assert what in caught.value.what


# -- errors --------------------------------------------------------------------------------------


def error_for(status: int, doc: object) -> UpstreamError | Any:
    deployment = Deployment("xai", api_key=SecretStr(KEY))
    return Upstream("xai", read_error).status_error(status, orjson.dumps(doc), {}, deployment)


def test_a_refused_key_is_a_400_read_by_its_text() -> None:
    doc = {
        "code": "Client specified an invalid argument",
        "error": "Incorrect API key provided: xa***ef. You can obtain an API key from "
        "https://console.x.ai.",
    }
    assert read_error(400, orjson.dumps(doc)).kind == "auth"
    error = error_for(400, doc)
    assert (error.status, error.code) == (502, "provider_auth_failed")


def test_a_moderation_refusal_is_a_content_policy_violation() -> None:
    error = error_for(
        400, {"code": "x", "error": "Generated image rejected by content moderation."}
    )
    assert isinstance(error, ContentPolicyViolation)


def test_an_unsupported_argument_names_it() -> None:
    failure = read_error(
        400, orjson.dumps({"code": "bad", "error": "Argument not supported: size"})
    )
    assert (failure.param, failure.kind) == ("size", None)


def test_openai_shaped_errors_are_read_too() -> None:
    doc = {"error": {"message": "Rate limited", "code": "rate_limit_exceeded"}}
    failure = read_error(429, orjson.dumps(doc))
    assert (failure.message, failure.code, failure.kind) == (
        "Rate limited",
        "rate_limit_exceeded",
        None,
    )
    assert error_for(429, doc).status == 429


def test_a_rate_limit_mentioning_the_key_is_still_a_rate_limit() -> None:
    doc = {"code": "Some resource has been exhausted", "error": "Your API key hit its limit."}
    assert read_error(429, orjson.dumps(doc)).kind is None


# -- the adapter, on a mock transport ------------------------------------------------------------


class RecordingGuard:
    """Stands in for the gateway's SSRF-guarded fetcher: records the URL, answers ``data``."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = data
        self.urls: list[str] = []

    async def fetch(self, url: str, *, param: str) -> bytes:
        self.urls.append(url)
        return self.data


def run(edit_job: EditJob, answer: Any, guard: RecordingGuard | None = None) -> Any:
    async def go() -> Any:
        client = httpx.AsyncClient(
            base_url="https://api.x.test/v1", transport=httpx.MockTransport(answer)
        )
        deployment = Deployment(
            "xai",
            base_url="https://api.x.test/v1",
            api_key=SecretStr(KEY),
            client=client,
            guard=guard or RecordingGuard(),
        )
        try:
            return await XaiProvider().edit(edit_job, deployment, DiscardEvents())
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_the_adapter_posts_json_and_downloads_url_answers_through_the_guard() -> None:
    seen: list[httpx.Request] = []
    guard = RecordingGuard(imaging.jpeg(80, 60))

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=fixture("xai_edit_response.json"))

    result = run(job(), answer, guard)
    (post,) = seen  # the CDN URL never goes through the client that carries the key
    assert str(post.url) == "https://api.x.test/v1/images/edits"
    assert post.headers["content-type"] == "application/json"
    assert post.headers["authorization"] == f"Bearer {KEY}"
    assert guard.urls == ["https://imgen.x.ai/xai-imgen/xai-tmp-imgen-abc.jpeg"]
    (image,) = result.images
    assert (image.format, image.width, image.height) == ("jpeg", 80, 60)


def test_the_adapter_refuses_base64_that_is_not_an_image() -> None:
    body = {"data": [{"b64_json": base64.b64encode(b"not an image at all").decode()}]}
    with pytest.raises(UpstreamError) as caught:
        run(job(), lambda request: httpx.Response(200, json=body))
    assert caught.value.code == "upstream_malformed"
