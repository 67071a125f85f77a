"""The OpenAI error envelope, checked exactly: what every refusal of the gateway looks like."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import schema

ENVELOPE_KEYS = frozenset({"message", "type", "param", "code", "origin"})


def error_of(
    response: httpx.Response,
    status: int,
    *,
    origin: str = "gateway",
    request_id: str | None = None,
) -> dict[str, Any]:
    """The ``error`` object of a refusal, after checking the status, the headers and every key.

    The ``x-request-id`` must be the client's own (``request_id``) or one the gateway made.
    """
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    sent_id = response.headers.get("x-request-id", "")
    if request_id is not None:
        assert sent_id == request_id
    else:
        assert sent_id.startswith("req_"), sent_id
    body = schema.assert_error_body(response.content)
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == ENVELOPE_KEYS
    assert isinstance(error["message"], str) and error["message"]
    assert error["origin"] == origin
    return error
