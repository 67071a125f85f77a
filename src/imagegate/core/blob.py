"""The one copy of an image's bytes, in memory or spilled to an anonymous temporary file.

Who owns what::

    client chunk (bytes, uvicorn's) ──copy──► BlobWriter ──finish()──► Blob ──► ImageInput
                                              bytearray, or a temp file     one per image
                                              past the spill threshold

A ``BlobWriter`` receives an image as it streams in (a multipart part, a data URL being decoded,
a fetched body) and is the only place its bytes are copied. Small images stay in one
``bytearray``; past ``spill_bytes``, or when the process already holds its share of request
bytes in memory (``MemoryGate.crowded``), the writer moves them to an unlinked temporary file
and appends there, so a large upload, or many at once, cost page cache, not process memory. The
finished ``Blob`` is read through ``view()`` (a memoryview: of the bytearray, or of a read-only
``mmap`` of the file), ``open()`` (a seekable reader over that view) and ``pieces()`` (the bytes
in order, for uploads: slices of the bytearray, or ``pread`` from the file, so that sending a
spilled image does not map all of it into the process). Nothing downstream copies the whole
image: header probes slice the view, Pillow reads the reader, uploads take the pieces.

In-memory bytes are charged to the request's ``MemoryLease`` as they arrive; spilled bytes are
not (they are on disk). ``close()`` gives both back; the request's scope calls it when the
exchange ends.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import BinaryIO, Protocol

from imagegate.core.memory import MemoryLease

Buffer = bytes | bytearray | memoryview


class Blob(Protocol):
    @property
    def nbytes(self) -> int: ...

    def view(self) -> memoryview:
        """The bytes, without a copy. Valid until ``close``."""

    def pieces(self, size: int) -> Iterator[bytes | memoryview]:
        """The bytes in order, ``size`` at a time (the last may be shorter)."""

    def open(self) -> BinaryIO:
        """A fresh, seekable reader over the bytes (independent of any other reader)."""

    def close(self) -> None: ...


class MemoryBlob:
    """Bytes held in memory: a ``bytearray`` filled by a writer, or ``bytes`` from elsewhere."""

    __slots__ = ("_buffer",)

    def __init__(self, buffer: bytes | bytearray) -> None:
        self._buffer = buffer

    @property
    def nbytes(self) -> int:
        return len(self._buffer)

    def view(self) -> memoryview:
        return memoryview(self._buffer)

    def pieces(self, size: int) -> Iterator[bytes | memoryview]:
        view = memoryview(self._buffer)
        for start in range(0, len(view), size):
            yield view[start : start + size]

    def open(self) -> BinaryIO:
        if isinstance(self._buffer, bytes):
            return io.BytesIO(self._buffer)  # shares the bytes object until written to
        return _reader(memoryview(self._buffer))

    def close(self) -> None:
        return None  # the garbage collector frees it with the last reference


class FileBlob:
    """Bytes in an unlinked temporary file, read through one read-only ``mmap``."""

    __slots__ = ("_file", "_map", "_size")

    def __init__(self, file: BinaryIO, size: int) -> None:
        file.flush()
        self._file = file
        self._size = size
        self._map = mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ)

    @property
    def nbytes(self) -> int:
        return self._size

    def view(self) -> memoryview:
        return memoryview(self._map)

    def pieces(self, size: int) -> Iterator[bytes | memoryview]:
        descriptor = self._file.fileno()
        for start in range(0, self._size, size):
            yield os.pread(descriptor, min(size, self._size - start), start)

    def open(self) -> BinaryIO:
        return _reader(memoryview(self._map))

    def close(self) -> None:
        self._file.close()
        # A reader may still hold a view (BufferError): the map and the file's disk space then
        # go with that reader's last reference instead.
        with contextlib.suppress(BufferError):
            self._map.close()


def _reader(view: memoryview) -> BinaryIO:
    return io.BufferedReader(ViewReader(view), buffer_size=64 * 1024)


class ViewReader(io.RawIOBase):
    """A seekable binary reader over a memoryview: what ``BytesIO`` is, without its copy."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = len(self._view) + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: Buffer) -> int:  # type: ignore[override]
        target = memoryview(buffer).cast("B")
        chunk = self._view[self._pos : self._pos + len(target)]
        count = len(chunk)
        target[:count] = chunk
        self._pos += count
        return count

    def read(self, size: int | None = -1) -> bytes:
        # Pillow and httpx call read(n); answer with one slice instead of readinto's dance.
        end = len(self._view) if size is None or size < 0 else self._pos + size
        chunk = bytes(self._view[self._pos : end])
        self._pos += len(chunk)
        return chunk

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        self._view.release()
        super().close()


class BlobWriter:
    """Collects one image's bytes as they arrive; spills to disk past ``spill_bytes``.

    ``max_bytes`` is enforced on every write through ``on_limit``, which raises the caller's
    error (the caller knows the param and the message).
    """

    def __init__(
        self,
        lease: MemoryLease,
        *,
        spill_bytes: int,
        max_bytes: int,
        on_limit: Callable[[int], Exception],
    ) -> None:
        self._lease = lease
        self._spill_bytes = spill_bytes
        self._max_bytes = max_bytes
        self._on_limit = on_limit
        self._memory = bytearray()
        self._file: BinaryIO | None = None
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: Buffer) -> None:
        count = len(data)
        if not count:
            return
        if self._size + count > self._max_bytes:
            self.discard()
            raise self._on_limit(self._max_bytes)
        self._size += count
        if self._file is None and (
            len(self._memory) + count > self._spill_bytes or self._lease.crowded
        ):
            self._spill()
        if self._file is not None:
            self._file.write(data)
            return
        self._lease.reserve(count)
        self._memory += data

    def _spill(self) -> None:
        # Unlinked at once: the disk space goes with the last descriptor, even on a crash.
        self._file = tempfile.TemporaryFile(prefix="imagegate-")  # noqa: SIM115
        self._lease.hold(self._file)  # closed with the request, even if the part never ends
        self._file.write(self._memory)
        self._lease.release(len(self._memory))
        self._memory = bytearray()

    def finish(self) -> Blob:
        """The collected bytes as a ``Blob``; the writer must not be used afterwards."""
        if self._file is not None:
            blob: Blob = FileBlob(self._file, self._size)
            self._lease.hold(blob)
            self._file = None
            return blob
        memory, self._memory = self._memory, bytearray()
        return MemoryBlob(memory)

    def discard(self) -> None:
        """Drop what was collected (an image refused part-way) and give its memory back."""
        self._lease.release(len(self._memory))
        self._memory = bytearray()
        if self._file is not None:
            self._file.close()
            self._file = None
