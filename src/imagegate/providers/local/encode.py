"""Encoding the engine's output into a file Pillow writes chunk by chunk, so a stop is honoured.

The settings are those of ``core.convert.encode`` (the gateway's one encoder), reused from there;
only the file differs: a ``CheckedWriter`` that stops between the chunks PNG and JPEG write.
A PNG of 16 MP of noise takes seconds to compress, far past the second a cancel may take.
"""

from __future__ import annotations

from PIL import Image

from imagegate.core.convert import DEFAULT_LOSSY_QUALITY, Background, flatten, is_opaque
from imagegate.core.images import ImageFormat
from imagegate.providers.local.cancel import CancelFlag, CheckedWriter

_PIL_FORMATS: dict[ImageFormat, str] = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def encode(
    image: Image.Image,
    fmt: ImageFormat,
    cancel: CancelFlag,
    *,
    compression: int | None = None,
    opaque: bool = False,
) -> tuple[bytes, Background]:
    """Encode ``image``; returns the bytes and whether the result has transparency."""
    keep_alpha = fmt != "jpeg" and not opaque and not is_opaque(image)
    prepared = image.convert("RGBA") if keep_alpha else flatten(image)
    cancel.check()
    out = CheckedWriter(cancel)
    if fmt == "png":
        prepared.save(out, format="PNG", compress_level=6)
    else:
        quality = DEFAULT_LOSSY_QUALITY if compression is None else compression
        prepared.save(out, format=_PIL_FORMATS[fmt], quality=max(quality, 1))
    return out.getvalue(), "transparent" if keep_alpha else "opaque"
