"""What every answer of the gateway must look like, whatever was sent.

A refusal is OpenAI's error envelope with a 4xx status (never 422), a code and a message, and an
``x-request-id``; a success is an ``ImagesResponse`` or an event stream with no ``server_error``
event in it. Shared by the property tests, the schemathesis run and the hostile corpus.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

ENVELOPE_KEYS = {"message", "type", "param", "code", "origin"}


def check_answer(response: httpx.Response, context: str = "") -> dict[str, Any] | None:
    """Assert the answer is well-formed; return the error object of a refusal, else None."""
    where = f"{context}\n" if context else ""
    status = response.status_code
    assert status < 500, f"{where}{status}: {response.text[:2000]}"
    assert status != 422, f"{where}FastAPI's 422 leaked: {response.text[:500]}"
    assert response.headers.get("x-request-id"), f"{where}no x-request-id on {status}"
    if status >= 400:
        return check_envelope(response, where)
    assert status == 200, f"{where}{status}: {response.text[:500]}"
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("text/event-stream"):
        check_stream(response.text, where)
    else:
        assert content_type == "application/json", f"{where}{content_type}"
        body = orjson.loads(response.content)
        assert isinstance(body, dict) and ("data" in body or "object" in body), where
    return None


def check_envelope(response: httpx.Response, where: str = "") -> dict[str, Any]:
    assert response.headers.get("content-type") == "application/json", (
        f"{where}{response.headers.get('content-type')}: {response.text[:300]}"
    )
    body = orjson.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"error"}, f"{where}{body}"
    error = body["error"]
    assert set(error) == ENVELOPE_KEYS, f"{where}{error}"
    assert isinstance(error["message"], str) and len(error["message"]) > 10, f"{where}{error}"
    assert isinstance(error["code"], str) and error["code"], f"{where}{error}"
    assert error["type"] in {"invalid_request_error", "authentication_error"}, f"{where}{error}"
    assert error["origin"] == "gateway", f"{where}{error}"
    assert error["param"] is None or isinstance(error["param"], str), f"{where}{error}"
    return dict(error)


def check_stream(text: str, where: str = "") -> None:
    """A stream that began must end in completed events, or a client error, never a crash."""
    for frame in text.split("\n\n"):
        lines = [line for line in frame.split("\n") if line.startswith("data: ")]
        for line in lines:
            event = orjson.loads(line[len("data: ") :])
            if event.get("type") == "error":
                assert event["error"]["type"] != "server_error", f"{where}{event}"
