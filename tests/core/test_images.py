from __future__ import annotations

import struct
import zlib

import pytest
from PIL import Image

from imagegate.core.errors import InvalidRequest, PayloadTooLarge
from imagegate.core.images import check_size, probe
from tests import imaging


@pytest.mark.parametrize(
    ("data", "fmt", "size", "alpha"),
    [
        (imaging.png(64, 48), "png", (64, 48), False),
        (imaging.encode(Image.new("RGBA", (7, 9)), "PNG"), "png", (7, 9), True),
        (imaging.encode(Image.new("LA", (5, 5)), "PNG"), "png", (5, 5), True),
        (imaging.encode(Image.new("L", (5, 6)), "PNG"), "png", (5, 6), False),
        (imaging.jpeg(640, 480), "jpeg", (640, 480), False),
        (
            imaging.encode(imaging.picture(33, 17), "JPEG", progressive=True),
            "jpeg",
            (33, 17),
            False,
        ),
        (imaging.webp(100, 50), "webp", (100, 50), False),  # lossless: VP8L
        (imaging.encode(imaging.picture(100, 50), "WEBP", quality=80), "webp", (100, 50), False),
        (
            imaging.encode(Image.new("RGBA", (30, 20), (1, 2, 3, 4)), "WEBP", quality=80),
            "webp",
            (30, 20),
            True,
        ),
    ],
)
def test_probe_reads_format_size_and_alpha_from_the_header(data, fmt, size, alpha) -> None:
    info = probe(data, param="image[0]")
    assert (info.format, (info.width, info.height), info.has_alpha) == (fmt, size, alpha)


def test_probe_agrees_with_pillow_on_a_palette_png_with_transparency() -> None:
    image = Image.new("P", (8, 8))
    image.info["transparency"] = 0
    data = imaging.encode(image, "PNG", transparency=0)
    info = probe(data, param="mask")
    assert info.has_alpha  # tRNS chunk
    assert (info.width, info.height) == (8, 8)


def test_probe_does_not_trust_names_or_types() -> None:
    # The bytes decide; the caller never passes a filename or content type at all.
    assert probe(imaging.jpeg(), param="image").format == "jpeg"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (imaging.encode(imaging.picture(), "GIF"), "GIF"),
        (imaging.encode(imaging.picture(), "BMP"), "BMP"),
        (imaging.encode(imaging.picture(), "TIFF"), "TIFF"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "SVG"),
        (b"<html><body>hi</body></html>", "text"),
        (b"%PDF-1.7 ...", "PDF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIF"),
        (b"just some bytes", "not a PNG, JPEG or WEBP"),
    ],
)
def test_unsupported_formats_are_named(data: bytes, needle: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        probe(data, param="image[2]")
    assert needle in caught.value.message
    assert caught.value.param == "image[2]"
    assert caught.value.code == "unsupported_image_format"


def test_empty_file() -> None:
    with pytest.raises(InvalidRequest) as caught:
        probe(b"", param="mask")
    assert caught.value.code == "empty_file"


def test_png_with_a_broken_header_checksum() -> None:
    data = bytearray(imaging.png())
    data[20] ^= 0xFF  # inside IHDR's width/height
    with pytest.raises(InvalidRequest) as caught:
        probe(bytes(data), param="image[0]")
    assert caught.value.code == "invalid_image"
    assert "checksum" in caught.value.message


def test_truncated_headers() -> None:
    for data in (imaging.png()[:20], imaging.jpeg()[:10], imaging.webp()[:16]):
        with pytest.raises(InvalidRequest) as caught:
            probe(data, param="image[0]")
        assert caught.value.code == "invalid_image"


def test_pixel_limit_stops_a_decompression_bomb_before_decoding() -> None:
    # A tiny file whose header claims 100 000 x 100 000 pixels.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + chunk
        + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    )
    assert len(bomb) < 100
    with pytest.raises(InvalidRequest) as caught:
        probe(bomb, param="image[0]", max_pixels=40_000_000)
    assert caught.value.code == "image_too_large"
    assert "40,000,000" in caught.value.message


def test_animated_webp_is_refused() -> None:
    frames = [imaging.picture(20, 20), imaging.picture(20, 20, background=imaging.BLUE)]
    data = imaging.encode(frames[0], "WEBP", save_all=True, append_images=frames[1:])
    with pytest.raises(InvalidRequest) as caught:
        probe(data, param="image[0]")
    assert "animated" in caught.value.message


def test_check_size_gives_the_limit() -> None:
    check_size(10, 10, param="image[0]")
    with pytest.raises(PayloadTooLarge) as caught:
        check_size(11, 10, param="image[0]")
    assert caught.value.status == 413
    assert "10 bytes" in caught.value.message
