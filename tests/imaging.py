"""Real Pillow images for the tests, and helpers to read what came back."""

from __future__ import annotations

import base64
import io

from PIL import Image, ImageDraw

RED = (200, 30, 30)
GREEN = (20, 200, 20)
BLUE = (20, 40, 220)


def picture(width: int = 64, height: int = 48, background=RED, box=GREEN) -> Image.Image:
    """A flat background with a box in the middle: edits are easy to see in its pixels."""
    image = Image.new("RGB", (width, height), background)
    ImageDraw.Draw(image).rectangle(
        (width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=box
    )
    return image


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def png(width: int = 64, height: int = 48, **kwargs) -> bytes:
    return encode(picture(width, height, **kwargs), "PNG")


def jpeg(width: int = 64, height: int = 48, **kwargs) -> bytes:
    return encode(picture(width, height, **kwargs), "JPEG", quality=95)


def webp(width: int = 64, height: int = 48, **kwargs) -> bytes:
    return encode(picture(width, height, **kwargs), "WEBP", lossless=True)


def mask_left_half(width: int = 64, height: int = 48) -> bytes:
    """Opaque everywhere except the left half, which is fully transparent: edit the left."""
    mask = Image.new("RGBA", (width, height), (0, 0, 0, 255))
    ImageDraw.Draw(mask).rectangle((0, 0, width // 2 - 1, height - 1), fill=(0, 0, 0, 0))
    return encode(mask, "PNG")


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def decode_b64(b64: str) -> Image.Image:
    return decode(base64.b64decode(b64))


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def is_grey(pixel) -> bool:
    r, g, b = pixel[:3]
    return max(r, g, b) - min(r, g, b) <= 2


def halves(width: int = 64, height: int = 48, left=RED, right=BLUE) -> Image.Image:
    """Left half one colour, right half another: a mirror or a flip shows in any column."""
    image = Image.new("RGB", (width, height), right)
    ImageDraw.Draw(image).rectangle((0, 0, width // 2 - 1, height - 1), fill=left)
    return image


def is_close(pixel, expected, tolerance: int = 8) -> bool:
    """Within ``tolerance`` levels on every channel, as a lossy format keeps a flat colour."""
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], expected, strict=True))
