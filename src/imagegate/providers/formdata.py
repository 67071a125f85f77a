"""A ``multipart/form-data`` body for an upstream, sent from the images' blobs in a few large
pieces.

httpx's own encoder reads a file part 64 KiB at a time: every read is a copy, and every piece
is one more trip through httpcore and anyio (a cancel scope, a write, a drain wait). For an edit
that uploads megabytes, that loop was the largest share of the gateway's CPU (bench/RESULTS.md).
Here the text fields and part headers are encoded exactly as httpx encodes them (the same
escaping, the same layout, a random boundary), runs of small pieces are joined, and each image
goes as slices of its blob's view of up to ``PIECE_BYTES``, with no copy here. The length is
known, so the body goes with a ``Content-Length``, as httpx sends its own.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

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
    data: memoryview  # the image's bytes, as its blob holds them


class FormBody:
    """The body, iterable again on every send; ``headers`` carries its type and length."""

    def __init__(
        self,
        fields: Mapping[str, str],
        files: Sequence[FormFile],
        boundary: bytes | None = None,
    ) -> None:
        self.boundary = boundary or os.urandom(16).hex().encode("ascii")
        self._pieces = list(self._layout(fields, files))
        self.length = sum(len(piece) for piece in self._pieces)

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary.decode('ascii')}",
            "Content-Length": str(self.length),
        }

    def _layout(
        self, fields: Mapping[str, str], files: Sequence[FormFile]
    ) -> Iterator[bytes | memoryview]:
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
            data = part.data
            for start in range(0, len(data), PIECE_BYTES):
                yield data[start : start + PIECE_BYTES]
        yield bytes(head + b"--" + self.boundary + b"--\r\n")

    def close(self) -> None:
        """Let go of the images now: httpx's request and response objects can outlive the
        edit in reference cycles, and through this body they would pin megabytes each."""
        for piece in self._pieces:
            if isinstance(piece, memoryview):
                piece.release()
        self._pieces = []

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            # h11 and the transport take any buffer; a memoryview saves copying the image here.
            yield cast(bytes, piece)
