"""The edits the embedded engine can make: pure functions from one RGBA image to another.

Each operation is either a *tone* operation, which keeps the canvas (and so can be limited to the
masked region), or a *canvas* operation, which changes the geometry and applies to the whole
image after the masked work is done. Each also states its ``cost`` class, which the budget
(``budget.py``) counts before any work, and no operation makes a canvas over the output limits
(``limits.py``): scaling and rotation shrink by one common factor to fit and say so in their
label; an explicit "resize to WxH" beyond them is refused when the prompt is read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageChops, ImageEnhance, ImageFilter, ImageOps

from imagegate.core.errors import InvalidRequest
from imagegate.providers.local import limits
from imagegate.providers.local.bands import Stoppable, blur_reach, in_bands
from imagegate.providers.local.cancel import CancelFlag
from imagegate.providers.local.limits import Size

Kind = Literal["tone", "canvas"]
# plain: one pass over the pixels; filter: a neighbourhood filter; resample: a resize;
# free_rotation: a rotation by an angle that is not a quarter turn (a resample that grows).
Cost = Literal["plain", "filter", "resample", "free_rotation"]
Transform = Callable[[Image.Image], Image.Image]


@dataclass(frozen=True, slots=True)
class Op:
    name: str
    label: str  # what was done, in words, reported back as revised_prompt
    kind: Kind
    apply: Transform
    cost: Cost = "plain"
    radius: float = 0.0  # a blur's radius, which the budget adds up
    # The label for an image of a given size, where the op adapts to it (a capped scale).
    describe: Callable[[Size], str] | None = None
    # The same transform in bands, checking the flag between them, for the ops slow enough
    # on a large image to hold up a stop by more than a fraction of a second.
    banded: Stoppable | None = None
    # The size this op makes from a given size, known before any pixel is touched, so the
    # budget can add up the work of a whole prompt; None for ops that keep the size.
    resized: Callable[[Size], Size] | None = None

    def size_after(self, size: Size) -> Size:
        return self.resized(size) if self.resized is not None else size

    def label_for(self, size: Size) -> str:
        return self.describe(size) if self.describe is not None else self.label

    def run(self, image: Image.Image, cancel: CancelFlag) -> Image.Image:
        cancel.check()
        return self.banded(image, cancel) if self.banded else self.apply(image)


def _on_rgb(fn: Callable[[Image.Image], Image.Image]) -> Transform:
    """Apply ``fn`` to the colour channels and keep the alpha channel as it was."""

    def run(image: Image.Image) -> Image.Image:
        alpha = image.getchannel("A")
        out = fn(image.convert("RGB"))
        if out.mode != "RGB":  # convert() copies even to the same mode: a whole image wasted
            out = out.convert("RGB")
        out.putalpha(alpha)
        return out

    return run


def _filter(name: str, label: str, transform: Transform, margin: int, radius: float = 0.0) -> Op:
    return Op(
        name,
        label,
        "tone",
        transform,
        cost="filter",
        radius=radius,
        banded=in_bands(transform, margin),
    )


def grayscale() -> Op:
    return Op("grayscale", "grayscale", "tone", _on_rgb(ImageOps.grayscale))


def invert() -> Op:
    return Op("invert", "invert colours", "tone", _on_rgb(ImageOps.invert))


def sepia() -> Op:
    def tone(rgb: Image.Image) -> Image.Image:
        grey = ImageOps.grayscale(rgb)
        return ImageOps.colorize(
            grey, black=(40, 26, 13), white=(255, 240, 192), mid=(162, 128, 84)
        )

    return Op("sepia", "sepia tone", "tone", _on_rgb(tone))


def blur(radius: float) -> Op:
    radius = min(max(radius, 0.5), 100.0)
    return _filter(
        "blur",
        f"blur (radius {radius:g})",
        _on_rgb(lambda rgb: rgb.filter(ImageFilter.GaussianBlur(radius))),
        blur_reach(radius),
        radius=radius,
    )


def sharpen() -> Op:
    return _filter(
        "sharpen",
        "sharpen",
        _on_rgb(
            lambda rgb: rgb.filter(ImageFilter.UnsharpMask(radius=2, percent=160, threshold=2))
        ),
        blur_reach(2),
    )


def _enhance(
    name: str, enhancer: Callable[[Image.Image], ImageEnhance._Enhance], factor: float
) -> Op:
    factor = _clamp_factor(factor)
    return Op(
        name, f"{name} x{factor:g}", "tone", _on_rgb(lambda rgb: enhancer(rgb).enhance(factor))
    )


def brightness(factor: float) -> Op:
    return _enhance("brightness", ImageEnhance.Brightness, factor)


def contrast(factor: float) -> Op:
    return _enhance("contrast", ImageEnhance.Contrast, factor)


def saturation(factor: float) -> Op:
    return _enhance("saturation", ImageEnhance.Color, factor)


def posterize() -> Op:
    return Op("posterize", "posterize", "tone", _on_rgb(lambda rgb: ImageOps.posterize(rgb, 3)))


def solarize() -> Op:
    return Op("solarize", "solarize", "tone", _on_rgb(lambda rgb: ImageOps.solarize(rgb, 128)))


def autocontrast() -> Op:
    return Op(
        "autocontrast",
        "auto contrast",
        "tone",
        _on_rgb(lambda rgb: ImageOps.autocontrast(rgb, cutoff=1)),
    )


def edges() -> Op:
    return _filter(
        "edges", "edge detect", _on_rgb(lambda rgb: rgb.filter(ImageFilter.FIND_EDGES)), 2
    )


def emboss() -> Op:
    return _filter("emboss", "emboss", _on_rgb(lambda rgb: rgb.filter(ImageFilter.EMBOSS)), 2)


def pixelate(block: int) -> Op:
    block = min(max(block, 2), 256)

    def run(image: Image.Image) -> Image.Image:
        small = image.resize(
            (max(1, image.width // block), max(1, image.height // block)), Image.Resampling.BOX
        )
        return small.resize(image.size, Image.Resampling.NEAREST)

    return Op("pixelate", f"pixelate ({block} px blocks)", "tone", run, cost="filter")


def mirror() -> Op:
    return Op(
        "mirror",
        "mirror (flip left-right)",
        "tone",
        lambda image: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    )


def flip_vertical() -> Op:
    return Op(
        "flip",
        "flip top-bottom",
        "tone",
        lambda image: image.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    )


def rotate(clockwise_degrees: float) -> Op:
    """Rotate clockwise; multiples of 90 are exact, other angles grow the canvas."""
    degrees = clockwise_degrees % 360
    exact = {
        90.0: Image.Transpose.ROTATE_270,
        180.0: Image.Transpose.ROTATE_180,
        270.0: Image.Transpose.ROTATE_90,
    }
    if clockwise_degrees < 0:
        label = f"rotate {-clockwise_degrees:g}° counterclockwise"
    else:
        label = f"rotate {clockwise_degrees:g}° clockwise"

    def run(image: Image.Image) -> Image.Image:
        if degrees == 0:
            return image
        if degrees in exact:
            return image.transpose(exact[degrees])
        # Shrink first, so the grown canvas is never built over the limits and then thrown away.
        first = fit_for_rotation(image.size, degrees)
        if first != image.size:
            image = image.resize(first, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
        return image.rotate(
            -degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0, 0)
        )

    def describe(size: Size) -> str:
        if degrees in exact or degrees == 0:
            return label
        first = fit_for_rotation(size, degrees)
        if first == size:
            return label
        return (
            f"{label} (scaled by {first[0] / size[0]:.3g} first to fit {limits.describe_limits()})"
        )

    # A half turn keeps the canvas, so it may be limited to the mask like any tone operation.
    kind: Kind = "tone" if degrees in (0.0, 180.0) else "canvas"
    cost: Cost = "plain" if degrees in exact or degrees == 0 else "free_rotation"

    def turned(size: Size) -> Size:
        if degrees in (90.0, 270.0):
            return size[1], size[0]
        if degrees in exact or degrees == 0:
            return size
        return rotated_bounds(fit_for_rotation(size, degrees), degrees)  # at most this

    return Op("rotate", label, kind, run, cost=cost, describe=describe, resized=turned)


def rotated_bounds(size: Size, degrees: float) -> Size:
    """At least the canvas ``Image.rotate(expand=True)`` makes (it rounds each corner out)."""
    width, height = size
    radians = math.radians(degrees)
    cos, sin = abs(math.cos(radians)), abs(math.sin(radians))
    return (
        math.ceil(width * cos + height * sin) + 1,
        math.ceil(width * sin + height * cos) + 1,
    )


def fit_for_rotation(size: Size, degrees: float) -> Size:
    """The size to shrink to first so that the rotated canvas is within the output limits."""
    grown = rotated_bounds(size, degrees)
    if limits.within(grown):
        return size
    width, height = size
    factor = limits.fit(grown)[0] / grown[0]
    while True:  # the +1 rounding in the bounds may need a hair more; 1x1 always fits
        first = (max(1, math.floor(width * factor)), max(1, math.floor(height * factor)))
        if limits.within(rotated_bounds(first, degrees)):
            return first
        factor *= 0.99


def resize_to(width: int, height: int) -> Op:
    """An exact size the prompt spells out: within the output limits, or refused (a 400)."""
    if width < 1 or height < 1 or not limits.within((width, height)):
        raise InvalidRequest(
            f"'resize to {width}x{height}' is outside what the engine makes: each side 1-"
            f"{limits.MAX_SIDE} px and at most {limits.MAX_OUTPUT_PIXELS:,} pixels in all.",
            param="prompt",
            code="output_too_large" if width >= 1 and height >= 1 else "invalid_value",
        )
    return Op(
        "resize",
        f"resize to {width}x{height}",
        "canvas",
        lambda image: image.resize(
            (width, height), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP
        ),
        cost="resample",
        resized=lambda _size: (width, height),
    )


def scale_by(factor: float) -> Op:
    """Scale both sides by ``factor``, capped by one common factor at the output limits."""
    factor = min(max(factor, 0.01), 16.0)

    def scaled(size: Size) -> tuple[Size, bool]:
        wanted = (max(1, round(size[0] * factor)), max(1, round(size[1] * factor)))
        fitted = limits.fit(wanted)
        return fitted, fitted != wanted

    def run(image: Image.Image) -> Image.Image:
        size, _capped = scaled(image.size)
        return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)

    def describe(size: Size) -> str:
        new, capped = scaled(size)
        if not capped:
            return f"scale by {factor:g}"
        wanted = (round(size[0] * factor), round(size[1] * factor))
        return (
            f"scale by {new[0] / size[0]:.3g} (capped from {factor:g}: "
            f"{limits.binding_limit(wanted)})"
        )

    return Op(
        "resize",
        f"scale by {factor:g}",
        "canvas",
        run,
        cost="resample",
        describe=describe,
        resized=lambda size: scaled(size)[0],
    )


def crop_to_ratio(width_part: int, height_part: int) -> Op:
    def box(size: Size) -> tuple[int, int, int, int]:
        target = width_part / height_part
        w, h = size
        if w / h > target:
            new_w = max(1, round(h * target))
            left = (w - new_w) // 2
            return left, 0, left + new_w, h
        new_h = max(1, round(w / target))
        top = (h - new_h) // 2
        return 0, top, w, top + new_h

    def cropped(size: Size) -> Size:
        left, top, right, bottom = box(size)
        return right - left, bottom - top

    return Op(
        "crop",
        f"centre crop to {width_part}:{height_part}",
        "canvas",
        lambda image: image.crop(box(image.size)),
        resized=cropped,
    )


def transparent_background(tolerance: int = 40) -> Op:
    """Make the colour of the image's border transparent wherever it appears.

    The border colour is the per-channel median of the outermost pixels; pixels within
    ``tolerance`` of it on every channel become fully transparent. Deterministic and fast; it
    suits product shots and drawings on a plain background.
    """

    def run(image: Image.Image) -> Image.Image:
        rgb = image.convert("RGB")
        key = _border_colour(rgb)
        diff = ImageChops.difference(rgb, Image.new("RGB", rgb.size, key))
        r, g, b = diff.split()
        distance = ImageChops.lighter(ImageChops.lighter(r, g), b)
        keep = distance.point(lambda v: 255 if v > tolerance else 0)
        out = image.copy()
        out.putalpha(ImageChops.darker(image.getchannel("A"), keep))
        return out

    return Op("transparent_background", "transparent background", "tone", run)


def _border_colour(rgb: Image.Image) -> tuple[int, int, int]:
    w, h = rgb.size
    strips = [
        rgb.crop((0, 0, w, 1)),
        rgb.crop((0, h - 1, w, h)),
        rgb.crop((0, 0, 1, h)),
        rgb.crop((w - 1, 0, w, h)),
    ]
    channels: list[list[int]] = [[], [], []]
    for strip in strips:
        for index, band in enumerate(strip.split()):
            channels[index].extend(band.tobytes())
    medians = [sorted(values)[len(values) // 2] for values in channels]
    return medians[0], medians[1], medians[2]


def _clamp_factor(factor: float) -> float:
    return round(min(max(factor, 0.0), 10.0), 4)


# Resize in two steps when shrinking a lot (an integer reduce, then LANCZOS over the last 3x):
# much faster on large images, and indistinguishable from a single LANCZOS pass (Pillow's docs).
REDUCING_GAP = 3.0
