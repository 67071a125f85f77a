"""The engine's encoder writes through a stoppable file, with the gateway encoder's settings."""

from __future__ import annotations

import pytest
from PIL import Image

from imagegate.core import convert
from imagegate.core.images import ImageFormat
from imagegate.providers.local import encode
from imagegate.providers.local.cancel import CancelFlag


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("compression", [None, 40])
@pytest.mark.parametrize("opaque", [False, True])
def test_same_bytes_as_the_gateways_encoder(
    fmt: ImageFormat, compression: int | None, opaque: bool
) -> None:
    image = Image.effect_noise((120, 80), 60).convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize((120, 80)))
    assert encode.encode(
        image, fmt, CancelFlag(), compression=compression, opaque=opaque
    ) == convert.encode(image, fmt, compression=compression, opaque=opaque)
