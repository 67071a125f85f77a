"""OpenAI's image edit streams (``stream=true``): Server-Sent Events read as the SDKs read
them, and what each event carries. Pure: ``adapter.py`` feeds the lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from imagegate.core.result import Usage
from imagegate.providers.openai.convert import Malformed, int_value, text_value, usage_of
from imagegate.providers.openai.errors import MODERATION_CODES, MODERATION_TYPES


@dataclass(frozen=True, slots=True)
class SseEvent:
    name: str
    data: str


class SseDecoder:
    """Server-Sent Events from lines, as the OpenAI SDKs read them: ``event:`` and ``data:``
    (several data lines joined by newlines), a blank line ends an event, ``:`` lines are
    comments."""

    def __init__(self) -> None:
        self._name = ""
        self._data: list[str] = []

    def feed(self, line: str) -> SseEvent | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "event":
            self._name = value
        elif key == "data":
            self._data.append(value)
        return None

    def end(self) -> SseEvent | None:
        """The event still pending when the body ended without its blank line."""
        return self._dispatch()

    def _dispatch(self) -> SseEvent | None:
        if not self._data and not self._name:
            return None
        event = SseEvent(self._name, "\n".join(self._data))
        self._name, self._data = "", []
        return event


def sse_events(lines: Iterable[str]) -> Iterator[SseEvent]:
    decoder = SseDecoder()
    for line in lines:
        event = decoder.feed(line)
        if event is not None:
            yield event
    last = decoder.end()
    if last is not None:
        yield last


@dataclass(frozen=True, slots=True)
class PartialImage:
    b64: str
    index: int


@dataclass(frozen=True, slots=True)
class CompletedImage:
    b64: str
    usage: Usage
    quality: str | None
    background: str | None


@dataclass(frozen=True, slots=True)
class StreamError:
    """An error OpenAI sent as an event after the stream began."""

    error: dict[str, Any]

    def body(self) -> bytes:
        return orjson.dumps({"error": self.error})


StreamItem = PartialImage | CompletedImage | StreamError | None


def stream_error_status(error: Mapping[str, Any]) -> int:
    """The HTTP status an error sent inside a stream stands for (the stream itself was 200)."""
    kind = str(error.get("type") or "")
    code = str(error.get("code") or "")
    if code in MODERATION_CODES or kind in MODERATION_TYPES or kind == "invalid_request_error":
        return 400
    if "rate_limit" in code or kind in ("requests", "tokens", "rate_limit_error"):
        return 429
    return 500


def stream_item(event: SseEvent, *, gpt_image: bool = True) -> StreamItem:
    """What one event of an image edit stream carries; None for events to skip."""
    if not event.data or event.data.startswith("[DONE]"):
        return None
    try:
        doc = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        raise Malformed("a stream event whose data is not JSON") from None
    if not isinstance(doc, dict):
        raise Malformed("a stream event that is not a JSON object")
    error = doc.get("error")
    if event.name == "error" or error:
        return StreamError(error if isinstance(error, dict) else doc)
    kind = doc.get("type") or event.name
    if kind == "image_edit.partial_image":
        b64, index = doc.get("b64_json"), int_value(doc.get("partial_image_index"))
        if not isinstance(b64, str) or not b64 or index is None:
            raise Malformed("a partial image event without its image or index")
        return PartialImage(b64, index)
    if kind == "image_edit.completed":
        b64 = doc.get("b64_json")
        if not isinstance(b64, str) or not b64:
            raise Malformed("a completed event without an image")
        return CompletedImage(
            b64,
            usage_of(doc.get("usage"), gpt_image=gpt_image),
            text_value(doc.get("quality")),
            text_value(doc.get("background")),
        )
    return None  # an event type this gateway does not know: skipped, as the SDKs would
