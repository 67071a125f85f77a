"""Stopping a render whose request has gone (client away, deadline passed, server stopping).

A worker thread cannot be killed, so the render stops itself: the adapter sets a ``CancelFlag``
and the engine checks it between steps (each image decoded, each operation, each placement,
before encoding, between previews) and inside the two long steps Pillow runs in C, decoding and
encoding, through the file objects Pillow reads from and writes to. A set flag raises
``RenderCancelled``, which unwinds the render and frees its memory; the adapter holds the
concurrency slot until that has happened.
"""

from __future__ import annotations

import io
import threading
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class RenderCancelled(Exception):
    """The render was told to stop. Internal: the adapter turns it into the right answer."""


class CancelFlag:
    """One per render: set from the event loop, checked from the worker thread."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise RenderCancelled


NEVER = CancelFlag()  # for callers (tests, tools) that render without a request to lose


class CheckedReader:
    """A reader for Pillow's decoders that stops between the chunks it reads (64 KB or less)."""

    def __init__(self, raw: BinaryIO, cancel: CancelFlag) -> None:
        self._raw = raw
        self._cancel = cancel

    def read(self, size: int = -1) -> bytes:
        self._cancel.check()
        return self._raw.read(size)

    def readline(self, size: int = -1) -> bytes:
        self._cancel.check()
        return self._raw.readline(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


class CheckedWriter(io.BytesIO):
    """An in-memory file for Pillow's encoders that stops between the chunks they write.

    PNG and JPEG write every 64 KB or so, so a long encode stops soon after the flag is set;
    WEBP hands over its bytes in one write, after encoding (see the engine's notes).
    """

    def __init__(self, cancel: CancelFlag) -> None:
        super().__init__()
        self._cancel = cancel

    def write(self, data: ReadableBuffer, /) -> int:
        self._cancel.check()
        return super().write(data)
