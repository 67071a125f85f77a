"""Encoding the engine's output into a file Pillow writes chunk by chunk, so a stop is honoured.

The settings are ``core.convert.encode``'s (the gateway's one encoder); only the file differs: a
``CheckedWriter`` that stops between the chunks PNG and JPEG write. A PNG of 16 MP of noise
takes seconds to compress, far past the second a cancel may take.
"""

from __future__ import annotations

from PIL import Image

from imagegate.core import convert
from imagegate.core.convert import Background
from imagegate.core.images import ImageFormat
from imagegate.providers.local.cancel import CancelFlag, CheckedWriter


def encode(
    image: Image.Image,
    fmt: ImageFormat,
    cancel: CancelFlag,
    *,
    compression: int | None = None,
    opaque: bool = False,
) -> tuple[bytes, Background]:
    """Encode ``image``; returns the bytes and whether the result has transparency."""
    cancel.check()
    return convert.encode(
        image, fmt, compression=compression, opaque=opaque, into=CheckedWriter(cancel)
    )
