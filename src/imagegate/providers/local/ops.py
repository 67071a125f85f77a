"""The edits the embedded engine can make: pure functions from one RGBA image to another.

Each operation is either a *tone* operation, which keeps the canvas (and so can be limited to the
masked region), or a *canvas* operation, which changes the geometry and applies to the whole
image after the masked work is done.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageChops, ImageEnhance, ImageFilter, ImageOps

from imagegate.core.errors import InvalidRequest

Kind = Literal["tone", "canvas"]
Transform = Callable[[Image.Image], Image.Image]

MAX_SIDE = 4096
MAX_CANVAS_PIXELS = 36_000_000  # the most any intermediate canvas may hold


@dataclass(frozen=True, slots=True)
class Op:
    name: str
    label: str  # what was done, in words, reported back as revised_prompt
    kind: Kind
    apply: Transform


def _on_rgb(fn: Callable[[Image.Image], Image.Image]) -> Transform:
    """Apply ``fn`` to the colour channels and keep the alpha channel as it was."""

    def run(image: Image.Image) -> Image.Image:
        alpha = image.getchannel("A")
        out = fn(image.convert("RGB")).convert("RGB")
        out.putalpha(alpha)
        return out

    return run


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
    return Op(
        "blur",
        f"blur (radius {radius:g})",
        "tone",
        _on_rgb(lambda rgb: rgb.filter(ImageFilter.GaussianBlur(radius))),
    )


def sharpen() -> Op:
    return Op(
        "sharpen",
        "sharpen",
        "tone",
        _on_rgb(
            lambda rgb: rgb.filter(ImageFilter.UnsharpMask(radius=2, percent=160, threshold=2))
        ),
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
    return Op(
        "edges", "edge detect", "tone", _on_rgb(lambda rgb: rgb.filter(ImageFilter.FIND_EDGES))
    )


def emboss() -> Op:
    return Op("emboss", "emboss", "tone", _on_rgb(lambda rgb: rgb.filter(ImageFilter.EMBOSS)))


def pixelate(block: int) -> Op:
    block = min(max(block, 2), 256)

    def run(image: Image.Image) -> Image.Image:
        small = image.resize(
            (max(1, image.width // block), max(1, image.height // block)), Image.Resampling.BOX
        )
        return small.resize(image.size, Image.Resampling.NEAREST)

    return Op("pixelate", f"pixelate ({block} px blocks)", "tone", run)


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

    def run(image: Image.Image) -> Image.Image:
        if degrees == 0:
            return image
        if degrees in exact:
            return image.transpose(exact[degrees])
        radians = math.radians(degrees)
        grown = (abs(image.width * math.cos(radians)) + abs(image.height * math.sin(radians))) * (
            abs(image.width * math.sin(radians)) + abs(image.height * math.cos(radians))
        )
        if grown > MAX_CANVAS_PIXELS:  # refuse before allocating it, not after
            raise InvalidRequest(
                f"Rotating a {image.width}x{image.height} image by {clockwise_degrees:g}° would "
                f"make a canvas over {MAX_CANVAS_PIXELS:,} pixels; make it smaller first.",
                param="prompt",
                code="output_too_large",
            )
        return image.rotate(
            -degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0, 0)
        )

    # A half turn keeps the canvas, so it may be limited to the mask like any tone operation.
    kind: Kind = "tone" if degrees in (0.0, 180.0) else "canvas"
    if clockwise_degrees < 0:
        label = f"rotate {-clockwise_degrees:g}° counterclockwise"
    else:
        label = f"rotate {clockwise_degrees:g}° clockwise"
    return Op("rotate", label, kind, run)


def resize_to(width: int, height: int) -> Op:
    width, height = _bounded(width), _bounded(height)
    return Op(
        "resize",
        f"resize to {width}x{height}",
        "canvas",
        lambda image: image.resize((width, height), Image.Resampling.LANCZOS),
    )


def scale_by(factor: float) -> Op:
    factor = min(max(factor, 0.01), 16.0)

    def run(image: Image.Image) -> Image.Image:
        size = (_bounded(round(image.width * factor)), _bounded(round(image.height * factor)))
        return image.resize(size, Image.Resampling.LANCZOS)

    return Op("resize", f"scale by {factor:g}", "canvas", run)


def crop_to_ratio(width_part: int, height_part: int) -> Op:
    def run(image: Image.Image) -> Image.Image:
        target = width_part / height_part
        w, h = image.size
        if w / h > target:
            new_w = max(1, round(h * target))
            left = (w - new_w) // 2
            return image.crop((left, 0, left + new_w, h))
        new_h = max(1, round(w / target))
        top = (h - new_h) // 2
        return image.crop((0, top, w, top + new_h))

    return Op("crop", f"centre crop to {width_part}:{height_part}", "canvas", run)


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


def _bounded(side: int) -> int:
    return min(max(side, 1), MAX_SIDE)
