"""Decoding one reference image, optionally straight to the size it will be used at.

Bytes are read through ``ImageInput.open()`` (never ``.data``), so it does not matter whether
the request holds them in memory or in a spilled file. Given a target size, a JPEG is decoded at
a reduced scale by libjpeg itself (``draft``: 1/2, 1/4 or 1/8, never below the target) and any
image is then shrunk in two steps (``reducing_gap``), so a large input placed in a small cell
costs little more than its compressed bytes and the cell.
"""

from __future__ import annotations

import math
from typing import IO, cast

from PIL import Image

from imagegate.core.errors import InvalidRequest
from imagegate.core.request import ImageInput
from imagegate.providers.local.cancel import CancelFlag, CheckedReader
from imagegate.providers.local.limits import Size
from imagegate.providers.local.ops import REDUCING_GAP

# Only the decoder for the format sniffed from the header: Pillow would otherwise try every
# plugin it has on bytes that fail to open, a needless attack surface.
_DECODERS = {"png": ["PNG"], "jpeg": ["JPEG"], "webp": ["WEBP"]}
# Modes Pillow resamples directly (alpha premultiplied for LA and RGBA); others are converted
# to RGBA first (palette images must be: Pillow resizes them nearest-neighbour only).
_RESAMPLED = frozenset({"L", "LA", "RGB", "RGBA"})


def decode(image: ImageInput, cancel: CancelFlag, size: Size | None = None) -> Image.Image:
    """RGBA pixels of ``image`` (at ``size`` if given); a broken body is a 400 naming the part."""
    try:
        reader = CheckedReader(image.open(), cancel)
        with Image.open(cast("IO[bytes]", reader), formats=_DECODERS[image.format]) as opened:
            if size is not None and opened.format == "JPEG":
                opened.draft(None, (_at_least(size[0]), _at_least(size[1])))
            opened.load()
            pixels: Image.Image = opened
            if pixels.mode not in _RESAMPLED:
                pixels = pixels.convert("RGBA")
            if size is not None and pixels.size != size:
                cancel.check()
                pixels = pixels.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
            return pixels.convert("RGBA")
    except Image.DecompressionBombError:
        raise InvalidRequest(
            f"{image.param} has too many pixels to decode.",
            param=image.param,
            code="image_too_large",
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidRequest(
            f"{image.param} could not be decoded ({exc}); it may be truncated or corrupt.",
            param=image.param,
            code="invalid_image",
        ) from None


def _at_least(side: int) -> int:
    # Decode at REDUCING_GAP times the target at least, as Image.thumbnail does, so the final
    # resampling still has enough pixels to average over.
    return max(1, math.ceil(side * REDUCING_GAP))
