"""The upstream multipart body: the bytes httpx's own encoder would send, in a few pieces."""

from __future__ import annotations

import asyncio

import httpx

from imagegate.core.blob import BlobWriter, FileBlob
from imagegate.core.errors import PayloadTooLarge
from imagegate.core.memory import MemoryGate
from imagegate.providers.formdata import PIECE_BYTES, FormBody, FormFile


async def _collect(body: FormBody) -> list[bytes]:
    return [bytes(piece) async for piece in body]


def _httpx_bytes(fields: dict[str, str], files: list[FormFile], boundary: bytes) -> bytes:
    request = httpx.Request(
        "POST",
        "http://127.0.0.1/x",
        data=fields,
        files=[(f.name, (f.filename, bytes(f.data), f.content_type)) for f in files],
        headers={"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"},
    )
    return request.read()


def test_same_bytes_as_httpx_with_escapes_and_large_images() -> None:
    big = memoryview(bytes(range(256)) * (PIECE_BYTES // 256 * 2 + 3))  # three pieces
    files = [
        FormFile("image[]", 'a "quoted"\\name\n.png', "image/png", big),
        FormFile("image[]", "", "image/jpeg", memoryview(b"\xff\xd8small")),
        FormFile("mask", "mask.png", "image/png", memoryview(b"")),
    ]
    fields = {"model": "gpt-image-1", "prompt": 'a "prompt"\r\nwith ünïcode', "n": "2"}
    body = FormBody(fields, files, boundary=b"0123456789abcdef")
    pieces = asyncio.run(_collect(body))
    sent = b"".join(pieces)
    assert sent == _httpx_bytes(fields, files, b"0123456789abcdef")
    assert body.length == len(sent)
    assert body.headers == {
        "Content-Type": "multipart/form-data; boundary=0123456789abcdef",
        "Content-Length": str(len(sent)),
    }
    assert max(len(piece) for piece in pieces) == PIECE_BYTES
    assert len(pieces) < 10  # a few large writes, not one per 64 KiB


def test_iterable_again_and_random_boundaries() -> None:
    files = [FormFile("image", "x.png", "image/png", memoryview(b"\x89PNG data"))]
    body = FormBody({"prompt": "p"}, files)
    first, second = asyncio.run(_collect(body)), asyncio.run(_collect(body))
    assert first == second  # a resend sends the same body
    assert FormBody({"prompt": "p"}, files).boundary != body.boundary
    assert len(body.boundary) == 32


def test_a_spilled_image_is_sent_from_its_file_byte_for_byte() -> None:
    data = bytes(range(256)) * (PIECE_BYTES // 256 + 5)  # two pieces
    lease = MemoryGate(limit=1 << 30, spill_above=0).lease()
    writer = BlobWriter(lease, spill_bytes=1 << 30, max_bytes=1 << 30, on_limit=PayloadTooLarge)
    writer.write(data)
    blob = writer.finish()
    assert isinstance(blob, FileBlob)
    files = [FormFile("image[]", "a.png", "image/png", blob)]
    body = FormBody({"prompt": "p"}, files, boundary=b"0123456789abcdef")
    sent = b"".join(asyncio.run(_collect(body)))
    view_files = [FormFile("image[]", "a.png", "image/png", memoryview(data))]
    assert sent == _httpx_bytes({"prompt": "p"}, view_files, b"0123456789abcdef")
    assert body.length == len(sent)
    lease.close()
