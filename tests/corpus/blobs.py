"""The binary inputs the corpus cases name (``blob: png``), made with Pillow at test time.

Nothing large is kept in the repository: the decompression bombs are a few kilobytes here and
stay that small on the wire; only the gateway's refusal (or its bounded work) is being tested.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from collections.abc import Callable

from PIL import Image

from tests import imaging


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_claiming(width: int, height: int, color_type: int = 2, idat: bytes = b"") -> bytes:
    """A PNG whose header (with a correct CRC) claims any size; the pixels need not follow."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", idat or zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def zlib_bomb(width: int, height: int) -> bytes:
    """A grey PNG whose IDAT is a zlib stream of zeros: width*height bytes of pixels from a
    file of a few kilobytes, streamed through compressobj so the raw rows never sit in memory."""
    row = b"\x00" * (width + 1)  # filter byte + one grey byte per pixel
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return png_claiming(width, height, color_type=0, idat=idat)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _animated_webp() -> bytes:
    frames = [imaging.picture(16, 16), imaging.picture(16, 16, background=imaging.BLUE)]
    return _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)


def _bad_crc() -> bytes:
    data = bytearray(imaging.png())
    data[20] ^= 0xFF  # inside IHDR: the header no longer matches its checksum
    return bytes(data)


def _jpeg_cut_after_header() -> bytes:
    data = imaging.jpeg(64, 48)
    return data[: len(data) // 2]  # SOF is early, so the header reads; the scan is cut


def _jpeg_without_frame() -> bytes:
    # SOI, an APP0 segment, then end of image: a JPEG with no frame header at all.
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + app0 + b"\xff\xd9"


MAKERS: dict[str, Callable[[], bytes]] = {
    "png": lambda: imaging.png(64, 48),
    "jpeg": lambda: imaging.jpeg(64, 48),
    "webp": lambda: imaging.webp(64, 48),
    "square": lambda: imaging.png(48, 48),
    "small": lambda: imaging.png(32, 24),
    "mask": lambda: imaging.mask_left_half(64, 48),
    "mask_small": lambda: imaging.mask_left_half(32, 24),
    "mask_jpeg": lambda: _encode(imaging.picture(64, 48), "JPEG"),
    "mask_no_alpha": lambda: _encode(Image.new("RGB", (64, 48), (0, 0, 0)), "PNG"),
    "mask_corrupt": lambda: imaging.mask_left_half(64, 48)[:40],
    "gif": lambda: _encode(imaging.picture(16, 16), "GIF"),
    "bmp": lambda: _encode(imaging.picture(16, 16), "BMP"),
    "tiff": lambda: _encode(imaging.picture(16, 16), "TIFF"),
    "ico": lambda: _encode(imaging.picture(16, 16), "ICO"),
    "pdf": lambda: b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n",
    "svg": lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48"><rect/></svg>',
    "svg_xml": lambda: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
    "html": lambda: b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
    "json_text": lambda: b'{"image": "not really"}',
    "heic": lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 16,
    "psd": lambda: b"8BPS\x00\x01" + b"\x00" * 40,
    "text": lambda: b"hello, this is not an image at all",
    "random": lambda: bytes(range(256)) * 4,
    "empty": lambda: b"",
    "truncated_png": lambda: imaging.png()[:60],
    "png_header_only": lambda: imaging.png()[:33],
    "png_signature_only": lambda: b"\x89PNG\r\n\x1a\n",
    "png_bad_crc": _bad_crc,
    "png_bad_color_type": lambda: png_claiming(64, 48, color_type=5),
    "png_0x0": lambda: png_claiming(0, 0),
    "png_64x0": lambda: png_claiming(64, 0),
    "png_50000": lambda: png_claiming(50_000, 50_000),
    "png_2e31": lambda: png_claiming(2**31 - 1, 2**31 - 1),
    "png_bomb_64mp": lambda: zlib_bomb(8000, 8000),
    "png_bomb_36mp": lambda: zlib_bomb(6000, 6000),
    "png_truncated_pixels": lambda: png_claiming(64, 48),  # header fine, IDAT far too short
    "jpeg_soi_only": lambda: b"\xff\xd8\xff",
    "jpeg_no_frame": _jpeg_without_frame,
    "jpeg_cut": _jpeg_cut_after_header,
    "webp_truncated": lambda: imaging.webp()[:20],
    "webp_animated": _animated_webp,
    "riff_not_webp": lambda: b"RIFF\x10\x00\x00\x00WAVEfmt " + b"\x00" * 16,
    "wide": lambda: imaging.png(4096, 16),
    "tall": lambda: imaging.png(16, 4096),
    "mid_3mp": lambda: _encode(Image.new("RGB", (2000, 1500), (90, 30, 200)), "PNG"),
}


@functools.cache
def blob(name: str) -> bytes:
    return MAKERS[name]()
