"""OpenAI's image edit streams (``stream=true``): Server-Sent Events read as the SDKs read
them, and what each event carries. Pure: ``adapter.py`` feeds the lines."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from imagegate.core.lift import loads_lifting
from imagegate.core.result import Usage
from imagegate.providers.openai.convert import Malformed, int_value, text_value, usage_of
from imagegate.providers.openai.errors import MODERATION_CODES, MODERATION_TYPES


@dataclass(frozen=True, slots=True)
class SseEvent:
    name: str
    data: str | bytes  # bytes as read from the wire; a str where a test builds one


class SseDecoder:
    """Server-Sent Events from lines, as the OpenAI SDKs read them: ``event:`` and ``data:``
    (several data lines joined by newlines), a blank line ends an event, ``:`` lines are
    comments. Lines are bytes (``byte_lines``): an event carries megabytes of base64, which is
    never decoded to text here."""

    def __init__(self) -> None:
        self._name = ""
        self._data: list[bytes] = []

    def feed(self, line: str | bytes) -> SseEvent | None:
        if isinstance(line, str):
            line = line.encode()
        line = line.rstrip(b"\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            return None
        colon = line.find(b":")
        key = line if colon < 0 else line[:colon]
        start = len(line) if colon < 0 else colon + 1
        if line.startswith(b" ", start):
            start += 1
        if key == b"event":
            self._name = line[start:].decode("utf-8", "replace")
        elif key == b"data":
            self._data.append(line[start:])
        return None

    def end(self) -> SseEvent | None:
        """The event still pending when the body ended without its blank line."""
        return self._dispatch()

    def _dispatch(self) -> SseEvent | None:
        if not self._data and not self._name:
            return None
        event = SseEvent(self._name, b"\n".join(self._data))
        self._name, self._data = "", []
        return event


async def byte_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The lines of a byte stream, without their endings (CRLF, LF or CR, as SSE allows);
    a line split across chunks is joined once, when its end arrives."""
    pending: list[bytes] = []
    async for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            pending.append(chunk[start:end])
            line = b"".join(pending)
            pending = []
            for part in _cr_lines(line.removesuffix(b"\r")):
                yield part
            start = end + 1
        if start < len(chunk):
            pending.append(chunk[start:])
    if pending:
        for part in _cr_lines(b"".join(pending)):
            yield part


def _cr_lines(line: bytes) -> list[bytes]:
    return line.split(b"\r") if b"\r" in line else [line]


def sse_events(lines: Iterable[str | bytes]) -> Iterator[SseEvent]:
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
    b64: str | memoryview  # a view of the event's bytes when lifted (``core.lift``)
    index: int


@dataclass(frozen=True, slots=True)
class CompletedImage:
    b64: str | memoryview
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


def _the_event(doc: Any) -> Iterator[tuple[dict[str, Any], str]]:
    if isinstance(doc, dict):
        yield doc, "b64_json"


def stream_item(event: SseEvent, *, gpt_image: bool = True) -> StreamItem:
    """What one event of an image edit stream carries; None for events to skip."""
    data = event.data.encode() if isinstance(event.data, str) else event.data
    if not data or data.startswith(b"[DONE]"):
        return None
    try:
        doc = loads_lifting(data, "b64_json", _the_event)
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
        if not isinstance(b64, str | memoryview) or not b64 or index is None:
            raise Malformed("a partial image event without its image or index")
        return PartialImage(b64, index)
    if kind == "image_edit.completed":
        b64 = doc.get("b64_json")
        if not isinstance(b64, str | memoryview) or not b64:
            raise Malformed("a completed event without an image")
        return CompletedImage(
            b64,
            usage_of(doc.get("usage"), gpt_image=gpt_image),
            text_value(doc.get("quality")),
            text_value(doc.get("background")),
        )
    return None  # an event type this gateway does not know: skipped, as the SDKs would
