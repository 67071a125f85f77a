"""Answers checked against OpenAI's published schemas, as strict clients check them.

``openai_spec/images.schema.json`` holds the component schemas of ``openapi.yaml`` from
openai/openai-openapi (SOURCE.md there gives the commit) that the edit endpoint answers with:
``ImagesResponse`` for a JSON answer, ``ImageEditPartialImageEvent`` and
``ImageEditCompletedEvent`` for stream events, ``ErrorEvent`` and ``ErrorResponse`` for errors,
and everything they ``$ref``. Extra keys (our ``model``, ``usage.cost``, ``error.origin``) are
allowed by those schemas; a missing required key, a wrong type or an unknown enum value is not.

One deliberate widening, applied here and not in the vendored file: ``size``. The snapshot lists
only ``1024x1024``, ``1024x1536`` and ``1536x1024`` (and ``auto`` in events), while the request
schema of the same snapshot takes any ``WIDTHxHEIGHT`` for gpt-image-2, and the SDKs generated
from the newer spec type the answer's ``size`` as ``Union[str, Literal[...]]``
(openai-python ``types/images_response.py``, ``types/image_edit_completed_event.py``). We
answer with the real size of the image, so ``size`` must be one of the listed values or a
``WIDTHxHEIGHT`` string.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator, FormatChecker

from tests.support import sse

SPEC = Path(__file__).parent / "openai_spec" / "images.schema.json"
_SIZE = {"type": "string", "pattern": r"^[1-9][0-9]*x[1-9][0-9]*$"}
_WIDENED_SIZE = ("ImagesResponse", "ImageEditPartialImageEvent", "ImageEditCompletedEvent")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")

_formats = FormatChecker(formats=())


@_formats.checks("uri")
def _is_uri(value: object) -> bool:
    """RFC 3986 in short: a scheme, a colon, and no whitespace (``data:`` URIs included)."""
    return not isinstance(value, str) or bool(_SCHEME.match(value))


@functools.cache
def components() -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(SPEC.read_bytes())
    schemas = copy.deepcopy(doc["components"]["schemas"])
    for name in _WIDENED_SIZE:
        size = schemas[name]["properties"]["size"]
        schemas[name]["properties"]["size"] = {"anyOf": [{"enum": size["enum"]}, _SIZE]}
    return {"schemas": schemas}


@functools.cache
def validator(name: str) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": components()}
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_formats)


def check(name: str, instance: object) -> None:
    """Fail with every violation, each with its path, if ``instance`` is not a valid ``name``."""
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [
            f"  {'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
            for error in errors
        ]
        raise AssertionError(f"not a valid {name}:\n" + "\n".join(lines))


def _doc(body: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(body, bytes | str):
        loaded: dict[str, Any] = orjson.loads(body)
        return loaded
    return dict(body)


def assert_images_response(body: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """A 200 JSON answer: an ``ImagesResponse`` whose ``usage`` has the token fields."""
    doc = _doc(body)
    check("ImagesResponse", doc)
    assert doc.get("data"), "an edit answer must carry its images"
    assert "usage" in doc, "the gateway always reports usage (tokens and cost)"
    assert set(doc["usage"]["cost"]) == {"total_cost", "currency"}
    return doc


_EVENT_SCHEMAS = {
    "image_edit.partial_image": "ImageEditPartialImageEvent",
    "image_edit.completed": "ImageEditCompletedEvent",
}


def assert_stream_event(event: sse.SseEvent) -> None:
    """One event: a partial or completed image, or an error the SDKs raise as ``APIError``."""
    if event.name == "error":
        # OpenAI's ErrorEvent is "event: error" with an Error as its data. The SDKs raise it
        # only when the data wraps that Error as {"error": {...}}, so that is how it is sent.
        assert set(event.data) == {"type", "error"} and event.data["type"] == "error", event.data
        check("ErrorEvent", {"event": event.name, "data": event.data["error"]})
        return
    assert event.name in _EVENT_SCHEMAS, f"unexpected event {event.name!r}"
    assert event.data.get("type") == event.name, (event.name, event.data.get("type"))
    check(_EVENT_SCHEMAS[event.name], event.data)
    if event.name == "image_edit.completed":
        assert set(event.data["usage"]["cost"]) == {"total_cost", "currency"}


def assert_stream(body: bytes | str) -> list[sse.SseEvent]:
    """A whole 200 ``text/event-stream`` body: every event valid, at most one error, last."""
    events = sse.events(body)
    assert events, "the stream carried no event"
    for event in events:
        assert_stream_event(event)
    names = [event.name for event in events]
    assert "error" not in names[:-1], f"events after an error: {names}"
    return events


def assert_error_body(body: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """An error answer: OpenAI's ``ErrorResponse``."""
    doc = _doc(body)
    check("ErrorResponse", doc)
    return doc
