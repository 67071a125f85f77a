"""Event streams read as bytes: line endings as SSE allows, and images never decoded to text."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import orjson
import pytest

from imagegate.core.result import ResultImage
from imagegate.providers.openai import events
from imagegate.providers.openai.events import CompletedImage, PartialImage


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def lines_of(data: bytes, size: int) -> list[bytes]:
    async def collect() -> list[bytes]:
        return [line async for line in events.byte_lines(_chunks(data, size))]

    return asyncio.run(collect())


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_lines_end_at_lf_crlf_or_cr_across_any_chunking(size: int) -> None:
    data = b"event: a\r\ndata: 1\n\nevent: b\rdata: 2\r\n\r\ndata: tail"
    assert lines_of(data, size) == [
        b"event: a",
        b"data: 1",
        b"",
        b"event: b",
        b"data: 2",
        b"",
        b"data: tail",
    ]


def test_a_streamed_image_comes_as_a_view_and_decodes_as_before() -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
    )
    b64 = base64.b64encode(png + b"\0" * 9000).decode()  # long enough to be lifted
    completed = {"type": "image_edit.completed", "b64_json": b64, "usage": {"input_tokens": 1}}
    partial = {"type": "image_edit.partial_image", "b64_json": b64, "partial_image_index": 0}
    stream = (
        b"event: image_edit.partial_image\r\ndata: "
        + orjson.dumps(partial)
        + b"\r\n\r\n: keepalive\r\nevent: image_edit.completed\r\ndata: "
        + orjson.dumps(completed)
        + b"\r\n\r\n"
    )
    items = [events.stream_item(event) for event in events.sse_events(lines_of(stream, 4096))]
    first, second = items
    assert isinstance(first, PartialImage) and isinstance(second, CompletedImage)
    assert isinstance(second.b64, memoryview)
    assert str(second.b64, "ascii") == b64
    image = ResultImage.from_base64(second.b64)
    assert (image.format, image.width, image.height) == ("png", 1, 1)
    assert image.raw() == png + b"\0" * 9000
    assert second.usage.input_tokens == 1
