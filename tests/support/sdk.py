"""Edits through the official OpenAI Python SDK whose raw answers are checked against OpenAI's
schemas (``tests.support.schema``) before the SDK parses them. Every success test calls these.
"""

from __future__ import annotations

from typing import Any

from openai import OpenAI
from openai.types import ImageEditStreamEvent, ImagesResponse

from tests.support import schema


def edit(client: OpenAI, **params: Any) -> ImagesResponse:
    """``client.images.edit(**params)``, its 200 body a valid ``ImagesResponse``."""
    raw = client.images.with_raw_response.edit(**params)
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["x-imagegate-provider"]
    schema.assert_images_response(raw.http_response.content)
    result = raw.parse()
    assert isinstance(result, ImagesResponse)
    return result


def stream(client: OpenAI, **params: Any) -> list[ImageEditStreamEvent]:
    """``client.images.edit(stream=True, **params)``, every event schema-checked, then typed.

    An ``event: error`` in the stream is checked too, then raised by the SDK as ``APIError``.
    """
    raw = client.images.with_raw_response.edit(stream=True, **params)
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["x-imagegate-provider"]  # known from the card before the first event
    schema.assert_stream(raw.http_response.read())
    return list(raw.parse())
