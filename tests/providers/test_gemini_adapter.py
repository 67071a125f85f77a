"""The Gemini adapter over ``httpx.MockTransport``: the URL, the key, the body as sent, fan-out,
and 200 answers that are refusals or not JSON. The spec: settings in, deployment out."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from imagegate.catalog.catalog import Catalog
from imagegate.catalog.validate import validate_request
from imagegate.config import Settings
from imagegate.core.errors import ContentPolicyViolation, UpstreamError
from imagegate.core.result import EditResult
from imagegate.providers.base import Deployment, DiscardEvents, EditJob
from imagegate.providers.gemini.adapter import GeminiProvider
from imagegate.providers.gemini.spec import SPEC, load_cards
from tests import imaging
from tests.support.requests import edit_request

KEY = "AIzaAdapterTestKey0123456789abcdefgh"
MODEL = "gemini/gemini-3-pro-image-preview"
Handler = Callable[[httpx.Request], httpx.Response]


def answer(png: bytes) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": "thinking", "thought": True},
                        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}, "thought": True},
                        {
                            "inlineData": {
                                "mimeType": "image/png",
                                "data": base64.b64encode(png).decode(),
                            }
                        },
                    ]
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 570,
            "candidatesTokenCount": 1120,
            "thoughtsTokenCount": 100,
            "promptTokensDetails": [
                {"modality": "TEXT", "tokenCount": 10},
                {"modality": "IMAGE", "tokenCount": 560},
            ],
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1120}],
        },
    }


def run(handler: Handler, *, n: int = 1, api_version: str = "v1beta") -> EditResult:
    card = Catalog.build(shipped=load_cards()).resolve(MODEL)
    request = edit_request(MODEL, prompt="make it blue", n=n)
    job = EditJob(request, card, validate_request(request, card))

    async def go() -> EditResult:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(handler), base_url="https://gemini.test/proxy"
        ) as client:
            deployment = Deployment(
                provider="gemini",
                api_key=SecretStr(KEY),
                options={"api_version": api_version},
                client=client,
            )
            return await GeminiProvider().edit(job, deployment, DiscardEvents())

    return asyncio.run(go())


def test_the_request_as_sent() -> None:
    seen: list[httpx.Request] = []
    png = imaging.png(32, 32)

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(200, json=answer(png))

    result = run(handler, api_version="v1")
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == (
        "https://gemini.test/proxy/v1/models/gemini-3-pro-image-preview:generateContent"
    )
    assert not request.url.query  # the key never rides in the URL
    assert request.headers["x-goog-api-key"] == KEY
    assert request.headers["content-type"] == "application/json"
    assert int(request.headers["content-length"]) == len(request.content)
    assert "transfer-encoding" not in request.headers
    doc = orjson.loads(request.content)
    assert doc["contents"][0]["parts"][0] == {"text": "make it blue"}
    assert doc["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"]}
    assert result.images[0].b64 == base64.b64encode(png).decode()  # the final, not the draft


def test_n_is_fanned_out_and_usage_summed() -> None:
    calls: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.read())
        return httpx.Response(200, json=answer(imaging.png()))

    result = run(handler, n=3)
    assert len(calls) == 3 and len(set(calls)) == 1  # the same body, encoded once
    assert len(result.images) == 3
    usage = result.usage
    assert (usage.input_tokens, usage.output_image_tokens, usage.output_text_tokens) == (
        3 * 570,
        3 * 1120,
        3 * 100,
    )


@pytest.mark.parametrize(
    ("content", "error", "code"),
    [
        (
            orjson.dumps({"promptFeedback": {"blockReason": "SAFETY"}}),
            ContentPolicyViolation,
            "content_policy_violation",
        ),
        (
            orjson.dumps({"candidates": [{"finishReason": "NO_IMAGE"}]}),
            UpstreamError,
            "upstream_error",
        ),
        (b'{"candidates": [', UpstreamError, "upstream_malformed"),
        (b"{}", UpstreamError, "upstream_malformed"),
    ],
)
def test_200_answers_without_an_image(content: bytes, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as raised:
        run(lambda request: httpx.Response(200, content=content))
    assert getattr(raised.value, "code", None) == code


def test_the_spec_reads_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    assert not SPEC.enabled(Settings(_env_file=None))  # type: ignore[call-arg]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        gemini_api_key=SecretStr(KEY),
        gemini_base_url="http://127.0.0.1:9/",
        gemini_api_version="v1",
    )
    assert SPEC.enabled(settings)
    (deployment,) = SPEC.deployments(settings)
    try:
        assert deployment.base_url == "http://127.0.0.1:9"
        assert deployment.options == {"api_version": "v1"}
        assert deployment.secret() == KEY
    finally:
        asyncio.run(deployment.http().aclose())
    assert [card["id"] for card in SPEC.cards(settings)] == [
        "gemini/gemini-2.5-flash-image",
        "gemini/gemini-3-pro-image-preview",
        "gemini/gemini-3.1-flash-image-preview",
    ]
