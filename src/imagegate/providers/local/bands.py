"""Running a slow neighbourhood filter in horizontal bands, so a stop need not wait for it.

A blur or sharpen over 36 MP takes over a second in one pass; in bands of about 4 MP each, the
render's flag is checked every fraction of a second. Each band is cut with enough rows of
context above and below for the filter's reach, so every output row sees exactly the input it
would in one pass and the bytes are identical (the tests compare them).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from PIL import Image

from imagegate.providers.local.cancel import CancelFlag

Transform = Callable[[Image.Image], Image.Image]
Stoppable = Callable[[Image.Image, CancelFlag], Image.Image]

# Rows per band: about this many pixels, so one band of the slowest filter takes a fraction of a
# second even on the largest image the engine takes.
BAND_PIXELS = 4_000_000


def in_bands(transform: Transform, margin: int) -> Stoppable:
    """``transform`` applied band by band, each with ``margin`` rows of context either side.

    Valid for neighbourhood filters whose reach is at most ``margin`` rows: every output row
    sees exactly the input rows it would see in one pass, so the result is identical (the
    tests compare bytes), and the flag is checked between bands.
    """

    def run(image: Image.Image, cancel: CancelFlag) -> Image.Image:
        width, height = image.size
        rows = max(BAND_PIXELS // width, 4 * margin, 1)
        if rows >= height:
            return transform(image)
        out = Image.new(image.mode, image.size)
        for top in range(0, height, rows):
            cancel.check()
            bottom = min(height, top + rows)
            above, below = max(0, top - margin), min(height, bottom + margin)
            done = transform(image.crop((0, above, width, below)))
            out.paste(done.crop((0, top - above, width, bottom - above)), (0, top))
        return out

    return run


def blur_reach(radius: float) -> int:
    # Pillow's Gaussian blur is three box blurs of about ``radius`` each; each reaches at most
    # ceil(radius) + 1 rows, so three reach less than this.
    return 3 * math.ceil(radius) + 4
