"""The engine's size limits, and the one rule that fits a canvas inside them.

The card promises outputs up to ``MAX_SIDE`` pixels a side and ``MAX_OUTPUT_PIXELS`` in all.
Whatever makes a canvas bigger than that (a large input kept at its size, a scale, a rotation)
is scaled down by one common factor, so the shape never changes, and the engine says so in
``revised_prompt``. Only a size the client spelled out (``size``, ``width`` and ``height``, or
"resize to WxH" in the prompt) is refused instead, because shrinking it would not be what was
asked.

The functions read the limits from this module at call time, so a test may lower them.
"""

from __future__ import annotations

import math

Size = tuple[int, int]

MAX_SIDE = 4096
MAX_OUTPUT_PIXELS = 36_000_000
# The most pixels one edit may decode across its images. Images are decoded one at a time, so
# this bounds the CPU spent decoding more than the memory held at once.
MAX_INPUT_PIXELS = 48_000_000


def within(size: Size) -> bool:
    width, height = size
    return max(width, height) <= MAX_SIDE and width * height <= MAX_OUTPUT_PIXELS


def fit(size: Size) -> Size:
    """``size`` scaled down by one factor until it is within the limits (unchanged if it is)."""
    if within(size):
        return size
    width, height = size
    factor = min(
        MAX_SIDE / width, MAX_SIDE / height, math.sqrt(MAX_OUTPUT_PIXELS / (width * height))
    )
    fitted = (
        min(MAX_SIDE, max(1, round(width * factor))),
        min(MAX_SIDE, max(1, round(height * factor))),
    )
    # Rounding may land a pixel over the area limit: take it off the longer side.
    while not within(fitted):
        fw, fh = fitted
        fitted = (fw - 1, fh) if fw >= fh else (fw, fh - 1)
    return fitted


def binding_limit(size: Size) -> str:
    """Which limit ``size`` breaks first, in words, for a note such as "capped: 4096 px max"."""
    width, height = size
    side_factor = MAX_SIDE / max(width, height)
    area_factor = math.sqrt(MAX_OUTPUT_PIXELS / (width * height))
    if side_factor <= area_factor:
        return f"{MAX_SIDE} px max"
    return f"{describe_pixels(MAX_OUTPUT_PIXELS)} max"


def describe_limits() -> str:
    return f"{MAX_SIDE} px / {describe_pixels(MAX_OUTPUT_PIXELS)}"


def describe_pixels(pixels: int) -> str:
    megapixels = pixels / 1_000_000
    return f"{megapixels:g} MP"


def fitted_note(size: Size) -> str:
    """The revised_prompt note for an output the rule shrank."""
    return f"output {size[0]}x{size[1]} (scaled to fit {describe_limits()})"
