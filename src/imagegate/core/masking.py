"""Mask emulation: a mask honoured on a model that takes none.

The provider edits the whole image; the gateway then keeps the provider's pixels only where
the mask is fully transparent (OpenAI's convention: transparent = edit) and the original's
everywhere else, with the seam feathered over a few pixels so the edit does not show a hard
edge. The provider's result is resized to the original's size first if it changed it. Pure:
bytes in, bytes out, run off the event loop by the service.
"""

from __future__ import annotations

import io

from PIL import Image, ImageFilter

from imagegate.core.convert import encode
from imagegate.core.images import ImageFormat
from imagegate.core.request import ImageInput
from imagegate.core.result import ResultImage

FEATHER_PIXELS = 2  # Gaussian radius of the seam; pixels ~3x this far from it are exact
NOTE = "mask applied by the gateway"


def edit_region(mask: ImageInput, size: tuple[int, int]) -> Image.Image:
    """An L image: 255 where the mask is fully transparent (edit), 0 elsewhere, feathered."""
    with Image.open(mask.open()) as opened:
        alpha = opened.convert("RGBA").getchannel("A")
    if alpha.size != size:
        alpha = alpha.resize(size, Image.Resampling.NEAREST)
    region = alpha.point(lambda value: 255 if value == 0 else 0)
    return region.filter(ImageFilter.GaussianBlur(FEATHER_PIXELS)) if FEATHER_PIXELS else region


def composite_outside_mask(
    result: ResultImage, original: ImageInput, mask: ImageInput, fmt: ImageFormat | None = None
) -> ResultImage:
    """The provider's ``result`` inside the mask, ``original`` outside it, at the original's
    size, encoded as ``fmt`` -- by default PNG, so the pixels outside the mask stay exactly
    the original's (a JPEG would blur them)."""
    with Image.open(original.open()) as opened:
        base = opened.convert("RGBA")
    with Image.open(io.BytesIO(result.raw())) as opened:
        edited = opened.convert("RGBA")
    if edited.size != base.size:
        edited = edited.resize(base.size, Image.Resampling.LANCZOS)
    combined = Image.composite(edited, base, edit_region(mask, base.size))
    fmt = fmt or "png"
    data, _background = encode(combined, fmt)
    note = f"{result.revised_prompt} ({NOTE})" if result.revised_prompt else NOTE
    return ResultImage(fmt, base.width, base.height, data=data, revised_prompt=note)
