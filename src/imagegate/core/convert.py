"""Encoding and converting output images with Pillow: the only place pixels are re-encoded."""

from __future__ import annotations

import io
from typing import Literal

from PIL import Image

from imagegate.core.images import ImageFormat

_PIL_FORMATS: dict[ImageFormat, str] = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
DEFAULT_LOSSY_QUALITY = 90
Background = Literal["transparent", "opaque"]


def flatten(image: Image.Image, color: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Composite any alpha onto a solid colour; JPEG and opaque outputs need this."""
    if image.mode in ("RGB", "L"):
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, color)
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas


def is_opaque(image: Image.Image) -> bool:
    if "A" not in image.getbands():
        return True
    low, _high = image.getchannel("A").getextrema()
    return bool(low == 255)


def encode(
    image: Image.Image,
    fmt: ImageFormat,
    *,
    compression: int | None = None,
    opaque: bool = False,
    into: io.BytesIO | None = None,
) -> tuple[bytes, Background]:
    """Encode ``image``; returns the bytes and whether the result has transparency.

    ``into`` is the file Pillow writes to (the engine passes one that stops between chunks).
    """
    keep_alpha = fmt != "jpeg" and not opaque and not is_opaque(image)
    prepared = image.convert("RGBA") if keep_alpha else flatten(image)
    out = into if into is not None else io.BytesIO()
    if fmt == "png":
        prepared.save(out, format="PNG", compress_level=6)
    else:
        quality = DEFAULT_LOSSY_QUALITY if compression is None else compression
        prepared.save(out, format=_PIL_FORMATS[fmt], quality=max(quality, 1))
    return out.getvalue(), "transparent" if keep_alpha else "opaque"


def convert_bytes(
    data: bytes,
    to: ImageFormat,
    *,
    compression: int | None = None,
    opaque: bool = False,
) -> tuple[bytes, int, int, Background]:
    """Re-encode a provider's image in the format the client asked for."""
    with Image.open(io.BytesIO(data)) as source:
        source.load()
        encoded, background = encode(source, to, compression=compression, opaque=opaque)
        return encoded, source.width, source.height, background
