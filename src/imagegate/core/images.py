"""Image facts read from the bytes alone: format, dimensions and alpha, from the header.

Nothing here decodes pixels. The client's declared content type and filename are never
consulted: a part called ``cat.png`` holding JPEG bytes is a JPEG. Every refusal names the part
(``param``) so the user knows which file to fix.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Literal

from imagegate.core.errors import InvalidRequest, PayloadTooLarge
from imagegate.core.units import human_bytes

ImageFormat = Literal["png", "jpeg", "webp"]

MIME_TYPES: dict[ImageFormat, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
}
EXTENSIONS: dict[ImageFormat, str] = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Formats we recognise only to refuse them with a message that names them.
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"%PDF", "PDF"),
    (b"8BPS", "PSD"),
)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: ImageFormat
    width: int
    height: int
    has_alpha: bool

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.format]


class _Corrupt(Exception):
    """Raised inside the header readers; turned into InvalidRequest by ``probe``."""


def probe(
    source: bytes | bytearray | memoryview, *, param: str, max_pixels: int | None = None
) -> ImageInfo:
    """Read format, size and alpha from the header of ``source``, or refuse it clearly.

    Only slices of the header are read, so a memoryview over a spilled file costs no copy.
    """
    data = memoryview(source)
    if not data:
        raise InvalidRequest(
            f"{param} is empty: send the image file's bytes.", param=param, code="empty_file"
        )
    try:
        if bytes(data[:8]) == _PNG_SIGNATURE:
            info = _read_png(data)
        elif bytes(data[:3]) == b"\xff\xd8\xff":
            info = _read_jpeg(data)
        elif len(data) >= 12 and bytes(data[:4]) == b"RIFF" and bytes(data[8:12]) == b"WEBP":
            info = _read_webp(data)
        else:
            raise InvalidRequest(
                _unsupported_message(data, param), param=param, code="unsupported_image_format"
            )
    except _Corrupt as exc:
        raise InvalidRequest(
            f"{param} is not a valid image: {exc}.", param=param, code="invalid_image"
        ) from None
    if info.width <= 0 or info.height <= 0:
        raise InvalidRequest(
            f"{param} has an image size of {info.width}x{info.height}.",
            param=param,
            code="invalid_image",
        )
    if max_pixels is not None and info.pixels > max_pixels:
        raise InvalidRequest(
            f"{param} is {info.width}x{info.height} ({info.pixels:,} pixels); the limit is "
            f"{max_pixels:,} pixels. Downscale the image and send it again.",
            param=param,
            code="image_too_large",
        )
    return info


def check_size(data_len: int, limit: int, *, param: str) -> None:
    if data_len > limit:
        raise PayloadTooLarge(
            f"{param} is {data_len:,} bytes; the limit per image is {limit:,} bytes "
            f"({human_bytes(limit)}).",
            param=param,
            code="image_too_large",
        )


def _unsupported_message(view: memoryview, param: str) -> str:
    data = bytes(view[:64])
    for signature, name in _OTHER_SIGNATURES:
        if data.startswith(signature):
            return f"{param} is a {name} image; send PNG, JPEG or WEBP."
    if data[4:8] == b"ftyp":
        return f"{param} is a HEIF/AVIF image; send PNG, JPEG or WEBP."
    head = data[:64].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")):
        return f"{param} is an SVG document; send PNG, JPEG or WEBP."
    if head.startswith((b"{", b"<html", b"<!doctype")):
        return f"{param} is text, not an image; send PNG, JPEG or WEBP bytes."
    return f"{param} is not a PNG, JPEG or WEBP image (its first bytes match none of them)."


def _read_png(data: memoryview) -> ImageInfo:
    if len(data) < 33 or bytes(data[12:16]) != b"IHDR":
        raise _Corrupt("the PNG header (IHDR) is missing or truncated")
    (length,) = struct.unpack(">I", data[8:12])
    if length != 13:
        raise _Corrupt("the PNG header (IHDR) has the wrong length")
    crc_expected = struct.unpack(">I", data[29:33])[0]
    if zlib.crc32(data[12:29]) & 0xFFFFFFFF != crc_expected:
        raise _Corrupt("the PNG header (IHDR) fails its checksum")
    width, height, _depth, color_type = struct.unpack(">IIBB", data[16:26])
    if color_type not in (0, 2, 3, 4, 6):
        raise _Corrupt(f"the PNG colour type {color_type} is invalid")
    has_alpha = color_type in (4, 6) or _png_has_trns(data)
    return ImageInfo("png", width, height, has_alpha)


def _png_has_trns(data: memoryview) -> bool:
    """A tRNS chunk before the first IDAT gives palette and grey/RGB images transparency."""
    pos = 33
    end = len(data)
    while pos + 8 <= end:
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = bytes(data[pos + 4 : pos + 8])
        if kind == b"tRNS":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        pos += 12 + length
    return False


# SOF markers that carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _read_jpeg(data: memoryview) -> ImageInfo:
    pos = 2
    end = len(data)
    while pos < end:
        if data[pos] != 0xFF:
            raise _Corrupt("the JPEG marker stream is broken")
        while pos < end and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= end:
            break
        marker = data[pos]
        pos += 1
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        if marker in (0xD9, 0xDA):
            break  # end of image or start of scan before any frame header
        if pos + 2 > end:
            break
        (seg_len,) = struct.unpack(">H", data[pos : pos + 2])
        if seg_len < 2:
            raise _Corrupt("a JPEG segment has an invalid length")
        if marker in _JPEG_SOF:
            if pos + 7 > end:
                break
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            return ImageInfo("jpeg", width, height, False)
        pos += seg_len
    raise _Corrupt("the JPEG has no frame header (it is truncated or not a JPEG)")


def _read_webp(data: memoryview) -> ImageInfo:
    if len(data) < 30:
        raise _Corrupt("the WEBP header is truncated")
    chunk = bytes(data[12:16])
    body = data[20:]
    if chunk == b"VP8X":
        flags = body[0]
        if flags & 0x02:
            raise _Corrupt("animated WEBP is not supported; send a still image")
        width = 1 + int.from_bytes(body[4:7], "little")
        height = 1 + int.from_bytes(body[7:10], "little")
        return ImageInfo("webp", width, height, bool(flags & 0x10))
    if chunk == b"VP8 ":
        if bytes(body[3:6]) != b"\x9d\x01\x2a":
            raise _Corrupt("the WEBP (VP8) frame header is invalid")
        width = int.from_bytes(body[6:8], "little") & 0x3FFF
        height = int.from_bytes(body[8:10], "little") & 0x3FFF
        return ImageInfo("webp", width, height, False)
    if chunk == b"VP8L":
        if body[0] != 0x2F:
            raise _Corrupt("the WEBP (VP8L) signature is invalid")
        bits = int.from_bytes(body[1:5], "little")
        width = (bits & 0x3FFF) + 1
        height = ((bits >> 14) & 0x3FFF) + 1
        return ImageInfo("webp", width, height, bool((bits >> 28) & 1))
    raise _Corrupt("the WEBP has no image chunk")
