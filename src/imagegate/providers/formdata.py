"""A ``multipart/form-data`` body for an upstream, sent from the images' blobs in a few large
pieces.

httpx's own encoder reads a file part 64 KiB at a time: every read is a copy, and every piece
is one more trip through httpcore and anyio (a cancel scope, a write, a drain wait). For an edit
that uploads megabytes, that loop was the largest share of the gateway's CPU (bench/RESULTS.md).
Here the text fields and part headers are encoded exactly as httpx encodes them (the same
escaping, the same layout, a random boundary), runs of small pieces are joined, and each image
goes as its blob's pieces of up to ``PIECE_BYTES``: slices of the bytes in memory, with no copy
here, or reads of a spilled image's file. The length is known, so the body goes with a
``Content-Length``, as httpx sends its own.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from imagegate.core.blob import Blob

PIECE_BYTES = 1 << 18  # what one write hands the transport: bounds its buffer, few trips

_ESCAPES = {'"': "%22", "\\": "\\\\"} | {chr(c): f"%{c:02X}" for c in range(0x20) if c != 0x1B}
_ESCAPE = re.compile("|".join(re.escape(c) for c in _ESCAPES))


def _param(name: str, value: str) -> bytes:
    """``name="value"`` as HTML5 forms (and httpx) escape it."""
    return f'{name}="{_ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], value)}"'.encode()


@dataclass(frozen=True, slots=True)
class FormFile:
    name: str
    filename: str
    content_type: str
    data: Blob | memoryview  # the image's bytes: its blob, or a view of them

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    def pieces(self) -> Iterator[bytes | memoryview]:
        data = self.data
        if isinstance(data, memoryview):
            for start in range(0, len(data), PIECE_BYTES):
                yield data[start : start + PIECE_BYTES]
            return
        yield from data.pieces(PIECE_BYTES)


class FormBody:
    """The body, iterable again on every send; ``headers`` carries its type and length."""

    def __init__(
        self,
        fields: Mapping[str, str],
        files: Sequence[FormFile],
        boundary: bytes | None = None,
    ) -> None:
        self.boundary = boundary or os.urandom(16).hex().encode("ascii")
        self._items = list(self._layout(fields, files))
        self.length = sum(
            len(item) if isinstance(item, bytes) else item.nbytes for item in self._items
        )

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary.decode('ascii')}",
            "Content-Length": str(self.length),
        }

    def _layout(
        self, fields: Mapping[str, str], files: Sequence[FormFile]
    ) -> Iterator[bytes | FormFile]:
        dash = b"--" + self.boundary + b"\r\n"
        head = bytearray()
        for name, value in fields.items():
            head += dash + b"Content-Disposition: form-data; " + _param("name", name)
            head += b"\r\n\r\n" + value.encode() + b"\r\n"
        for part in files:
            head += dash + b"Content-Disposition: form-data; " + _param("name", part.name)
            if part.filename:
                head += b"; " + _param("filename", part.filename)
            head += b"\r\nContent-Type: " + part.content_type.encode() + b"\r\n\r\n"
            yield bytes(head)
            head = bytearray(b"\r\n")
            yield part
        yield bytes(head + b"--" + self.boundary + b"--\r\n")

    def close(self) -> None:
        """Let go of the images now: httpx's request and response objects can outlive the
        edit in reference cycles, and through this body they would pin megabytes each."""
        self._items = []

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for item in self._items:
            if isinstance(item, bytes):
                yield item
                continue
            for piece in item.pieces():
                # The transport takes any buffer; a memoryview saves copying the image here.
                yield cast(bytes, piece)
