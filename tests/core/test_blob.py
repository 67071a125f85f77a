"""Blobs: one copy of an image's bytes, in memory or spilled to disk, read without copies."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imagegate.core.blob import BlobWriter, FileBlob, MemoryBlob
from imagegate.core.errors import PayloadTooLarge, ServiceUnavailable
from imagegate.core.memory import MemoryGate
from tests import imaging


def _writer(gate: MemoryGate, *, spill: int, limit: int = 1 << 30) -> BlobWriter:
    return BlobWriter(
        gate.lease(),
        spill_bytes=spill,
        max_bytes=limit,
        on_limit=lambda n: PayloadTooLarge(f"over {n}", code="image_too_large"),
    )


def test_small_image_stays_in_memory_and_is_charged_to_the_gate() -> None:
    gate = MemoryGate(limit=10_000)
    writer = _writer(gate, spill=5_000)
    for _ in range(4):
        writer.write(b"x" * 1_000)
    blob = writer.finish()
    assert isinstance(blob, MemoryBlob)
    assert blob.nbytes == 4_000 and gate.held == 4_000
    assert bytes(blob.view()) == b"x" * 4_000


def test_past_the_threshold_the_bytes_move_to_disk_and_leave_the_gate() -> None:
    gate = MemoryGate(limit=10_000)
    lease = gate.lease()
    writer = BlobWriter(
        lease, spill_bytes=2_500, max_bytes=1 << 20, on_limit=lambda n: PayloadTooLarge("x")
    )
    chunks = [bytes([i]) * 1_000 for i in range(8)]
    for chunk in chunks:
        writer.write(chunk)
    blob = writer.finish()
    assert isinstance(blob, FileBlob)
    assert gate.held == 0  # spilled bytes are on disk, not in memory
    assert blob.nbytes == 8_000
    assert bytes(blob.view()) == b"".join(chunks)
    with blob.open() as reader:
        reader.seek(2_999)
        assert reader.read(2) == b"\x02\x03"
    lease.close()
    with pytest.raises(ValueError):
        blob.view()  # closed with the request


def test_pillow_decodes_a_spilled_image_through_its_reader() -> None:
    png = imaging.encode(Image.effect_noise((300, 200), 80).convert("RGB"), "PNG")
    writer = _writer(MemoryGate(limit=1 << 30), spill=1024)
    view = memoryview(png)
    for start in range(0, len(png), 777):
        writer.write(view[start : start + 777])
    blob = writer.finish()
    assert isinstance(blob, FileBlob)
    with Image.open(blob.open()) as opened:
        opened.load()
        assert opened.size == (300, 200)
        assert opened.tobytes() == imaging.decode(png).tobytes()


def test_the_per_image_limit_drops_what_was_collected() -> None:
    gate = MemoryGate(limit=1 << 20)
    writer = _writer(gate, spill=1 << 20, limit=3_000)
    writer.write(b"a" * 2_000)
    with pytest.raises(PayloadTooLarge, match="over 3000"):
        writer.write(b"a" * 2_000)
    assert gate.held == 0


def test_a_full_gate_answers_503_with_retry_after_and_frees_on_close() -> None:
    gate = MemoryGate(limit=5_000)
    first = gate.lease()
    first.reserve(4_000)
    second = gate.lease()
    with pytest.raises(ServiceUnavailable) as caught:
        second.reserve(2_000)
    assert caught.value.status == 503
    assert caught.value.headers["Retry-After"].isdigit()
    assert "IMAGEGATE_MAX_INFLIGHT_BYTES" in caught.value.message
    first.close()
    second.reserve(2_000)  # room again once the first request ended
    assert gate.held == 2_000 and gate.peak == 4_000


def test_memory_blob_over_bytes_reads_without_a_copy() -> None:
    data = imaging.png()
    blob = MemoryBlob(data)
    reader = blob.open()
    assert isinstance(reader, io.BytesIO)  # shares the bytes object
    assert reader.read() == data


def test_when_the_process_is_crowded_new_images_go_to_disk_and_read_back_whole() -> None:
    gate = MemoryGate(limit=1 << 30, spill_above=6_000)
    first = _writer(gate, spill=1 << 20)
    first.write(b"a" * 5_000)
    assert isinstance(first.finish(), MemoryBlob)  # under the line: memory
    second = _writer(gate, spill=1 << 20)
    second.write(b"b" * 2_000)  # 7,000 held now: the rest of this image goes to disk
    second.write(bytes(range(256)) * 40)
    spilled = second.finish()
    assert isinstance(spilled, FileBlob)
    expected = b"b" * 2_000 + bytes(range(256)) * 40
    assert gate.held == 5_000  # the spilled image's bytes left the gate
    pieces = list(spilled.pieces(4_096))
    assert b"".join(pieces) == expected and [len(p) for p in pieces] == [4_096, 4_096, 4_048]
    assert bytes(spilled.view()) == expected
    spilled.close()


def test_memory_blob_pieces_are_views_not_copies() -> None:
    buffer = bytearray(b"x" * 10_000)
    pieces = list(MemoryBlob(buffer).pieces(4_096))
    assert [len(p) for p in pieces] == [4_096, 4_096, 1_808]
    assert all(isinstance(p, memoryview) for p in pieces)
    buffer[0] = ord("y")
    assert bytes(pieces[0][:1]) == b"y"  # the same memory
