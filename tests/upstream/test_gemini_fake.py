"""The Gemini fake is strict: what Google refuses, it refuses, in Google's error envelope."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import imaging
from tests.upstream.conftest import KEYS, RunningFake

PATH = "/v1beta/models/gemini-3-pro-image-preview:generateContent"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture()
def gemini(fakes: dict[str, RunningFake]) -> Iterator[RunningFake]:
    fakes["gemini"].reset()
    yield fakes["gemini"]
    fakes["gemini"].reset()


def body(*images: bytes, config: dict[str, Any] | None = None, **part: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": "invert"}]
    for image in images:
        parts.append({"inline_data": {"mime_type": "image/png", "data": _b64(image)}, **part})
    doc: dict[str, Any] = {"contents": [{"role": "user", "parts": parts}]}
    if config is not None:
        doc["generationConfig"] = config
    return doc


def post(
    fake: RunningFake,
    doc: Any,
    *,
    path: str = PATH,
    key: str | None = KEYS["gemini"],
    method: str = "POST",
    **kwargs: Any,
) -> httpx.Response:
    headers = {"x-goog-api-key": key} if key else {}
    return httpx.request(
        method, fake.base_url + path, json=doc, headers=headers, timeout=10, **kwargs
    )


def google_error(response: httpx.Response, status: int, state: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and error["status"] == state
    message: str = error["message"]
    return message


def test_a_good_call_in_every_spelling(gemini: RunningFake) -> None:
    png = imaging.png()
    assert post(gemini, body(png)).status_code == 200
    camel = body()
    camel["contents"][0]["parts"].append(
        {"inlineData": {"mimeType": "image/png", "data": base64.urlsafe_b64encode(png).decode()}}
    )
    camel["generation_config"] = {"response_modalities": ["IMAGE"], "image_config": {}}
    answer = post(
        gemini, camel, path=PATH.replace("v1beta", "v1"), key=None, params={"key": KEYS["gemini"]}
    )
    assert answer.status_code == 200, answer.text
    parts = answer.json()["candidates"][0]["content"]["parts"]
    assert [part.get("thought", False) for part in parts] == [True, True, False]
    recorded = [call.summary for call in gemini.fake.calls]
    assert recorded[1]["auth"] == "query" and recorded[1]["api_version"] == "v1"
    assert recorded[1]["parts"][1]["alphabet"] == "urlsafe"


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"contents": []}, "contents"),
        ({"contents": [{"parts": [{"text": "x"}]}], "seed": 1}, 'Unknown name "seed"'),
        (
            body(config={"imageConfig": {"outputMimeType": "image/jpeg"}}),
            'Unknown name "outputMimeType"',
        ),
        (body(config={"imageConfig": {"personGeneration": "ALLOW_ALL"}}), "personGeneration"),
        (body(config={"responseModalities": ["TEXT"]}), "response modalities"),
        (body(config={"responseModalities": ["image"]}), "response_modalities"),
        (body(config={"candidateCount": 2}), "Multiple candidates"),
        (body(config={"imageConfig": {"aspectRatio": "1:8"}}), "aspect ratio"),
        (body(config={"imageConfig": {"imageSize": "512"}}), "image size"),
        (body(config={"imageConfig": {"imageSize": "2k"}}), "image size"),
        (body(imaging.png(), thought_signature="x", text="y"), "one datum"),
        (body(*[imaging.png()] * 15), "at most 14"),
    ],
)
def test_bodies_google_refuses(gemini: RunningFake, doc: dict[str, Any], needle: str) -> None:
    message = google_error(post(gemini, doc), 400, "INVALID_ARGUMENT")
    assert needle in message
    assert gemini.fake.calls == []


def test_images_must_be_what_they_say(gemini: RunningFake) -> None:
    doc = body(imaging.jpeg())  # labelled image/png
    assert "data is JPEG" in google_error(post(gemini, doc), 400, "INVALID_ARGUMENT")
    doc["contents"][0]["parts"][1]["inline_data"]["data"] = "not base64!"
    assert "Base64" in google_error(post(gemini, doc), 400, "INVALID_ARGUMENT")
    doc["contents"][0]["parts"][1]["inline_data"]["data"] = _b64(b"GIF89a not an image")
    assert "Unable to process" in google_error(post(gemini, doc), 400, "INVALID_ARGUMENT")
    doc["contents"][0]["parts"][1]["inline_data"]["mime_type"] = "image/gif"
    assert "Unsupported MIME" in google_error(post(gemini, doc), 400, "INVALID_ARGUMENT")


def test_keys_paths_and_content_types(gemini: RunningFake) -> None:
    doc = body(imaging.png())
    assert "not valid" in google_error(post(gemini, doc, key="AIzaWrong"), 400, "INVALID_ARGUMENT")
    google_error(post(gemini, doc, key=None), 403, "PERMISSION_DENIED")
    google_error(post(gemini, doc, method="GET"), 404, "NOT_FOUND")
    google_error(
        post(gemini, doc, path="/v1beta/models/gemini-9:generateContent"), 404, "NOT_FOUND"
    )
    google_error(
        post(gemini, doc, path=PATH.replace(":generateContent", ":predict")), 404, "NOT_FOUND"
    )
    google_error(post(gemini, doc, path="/v2/other"), 404, "NOT_FOUND")
    plain = httpx.post(
        gemini.base_url + PATH,
        content=b"{}",
        headers={"x-goog-api-key": KEYS["gemini"], "content-type": "text/plain"},
    )
    assert "Content-Type" in google_error(plain, 400, "INVALID_ARGUMENT")
    assert gemini.fake.calls == []


def test_image_size_is_ignored_by_2_5_flash_image(gemini: RunningFake) -> None:
    doc = body(imaging.png(), config={"imageConfig": {"imageSize": "4K", "aspectRatio": "1:1"}})
    answer = post(
        gemini, doc, path=PATH.replace("gemini-3-pro-image-preview", "gemini-2.5-flash-image")
    )
    assert answer.status_code == 200
    image = answer.json()["candidates"][0]["content"]["parts"][-1]["inlineData"]["data"]
    assert imaging.decode_b64(image).size == (1024, 1024)  # 1K, whatever was asked
    (call,) = gemini.fake.calls
    assert call.summary["generation_config"]["imageConfig"]["imageSize"] == "4K"  # recorded
