"""Base64 values lifted out of a JSON answer: the same document orjson parses, with views."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from imagegate.core.lift import MIN_LIFT, loads_lifting

B64 = base64.b64encode(bytes(range(256)) * 40).decode()  # 13656 chars, padded
assert len(B64) > MIN_LIFT


def entries(doc: Any) -> Iterator[tuple[dict[str, Any], str]]:
    for entry in doc.get("data", []):
        yield entry, "b64_json"


def plain(doc: Any) -> Any:
    """The document with every memoryview as the text it stands for."""
    if isinstance(doc, dict):
        return {key: plain(value) for key, value in doc.items()}
    if isinstance(doc, list):
        return [plain(value) for value in doc]
    if isinstance(doc, memoryview):
        return str(doc, "ascii")
    return doc


@pytest.mark.parametrize("indent", [None, 2])
def test_lifted_values_are_views_of_the_body(indent: int | None) -> None:
    doc = {
        "created": 1,
        "data": [{"b64_json": B64, "revised_prompt": 'say "b64_json": here'}, {"b64_json": B64}],
        "usage": {"total_tokens": 3},
    }
    body = json.dumps(doc, indent=indent).encode()  # compact, and pretty with spaces/newlines
    got = loads_lifting(body, "b64_json", entries)
    assert all(isinstance(entry["b64_json"], memoryview) for entry in got["data"])
    assert got["data"][0]["b64_json"].obj is body  # no copy
    assert plain(got) == orjson.loads(body)


def test_values_that_are_not_plain_base64_stay_strings() -> None:
    urlsafe = B64.replace("+", "-")
    short = B64[:100]
    unpadded = B64[:-1] if B64.endswith("=") else B64 + "A"
    doc = {"data": [{"b64_json": v} for v in (urlsafe, short, unpadded)]}
    escaped = orjson.dumps(doc).replace(b"/", b"\\/")  # a JSON encoder that escapes slashes
    for body in (orjson.dumps(doc), escaped):
        got = loads_lifting(body, "b64_json", entries)
        assert got == orjson.loads(body)
        assert all(isinstance(entry["b64_json"], str) for entry in got["data"])


def test_a_value_where_it_is_not_expected_is_parsed_whole() -> None:
    doc = {"data": [], "extra": {"b64_json": B64}}
    body = orjson.dumps(doc)
    got = loads_lifting(body, "b64_json", entries)
    assert got == doc  # no placeholder left behind
    assert isinstance(got["extra"]["b64_json"], str)


def test_broken_json_raises_as_orjson_does() -> None:
    body = orjson.dumps({"data": [{"b64_json": B64}]})
    with pytest.raises(orjson.JSONDecodeError):
        loads_lifting(body[:-2], "b64_json", entries)
