"""The embedded engine's pipeline, pure and synchronous: an ``EditJob`` in, encoded images out.

1. Decode every reference image (the only step that touches pixels of the input).
2. Apply the prompt's tone operations to each image; on the first image, only where the mask is
   fully transparent (OpenAI's mask convention).
3. With several images, combine them: side by side, stacked, or in a grid (the prompt may say
   which; three or fewer default to side by side, more to a grid).
4. Apply the canvas operations (rotate, resize, crop) to the whole result, in prompt order.
5. Resize to the requested size, if one was given, and encode in the requested format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from PIL import Image

from imagegate.core.convert import Background, encode
from imagegate.core.errors import InvalidRequest
from imagegate.core.images import ImageFormat
from imagegate.core.request import ImageInput
from imagegate.providers.base import EditJob
from imagegate.providers.local import ops
from imagegate.providers.local.prompt import Layout, parse_prompt

MAX_OUTPUT_PIXELS = ops.MAX_CANVAS_PIXELS
# Every reference is decoded to RGBA (4 bytes a pixel) at once: this caps one edit's memory.
MAX_INPUT_PIXELS = 48_000_000


def check_input_pixels(images: tuple[ImageInput, ...], model: str) -> None:
    total = sum(image.width * image.height for image in images)
    if total > MAX_INPUT_PIXELS:
        raise InvalidRequest(
            f"{model} takes at most {MAX_INPUT_PIXELS:,} pixels across all its images; these "
            f"add up to {total:,}. Send fewer or smaller images.",
            param="image",
            code="image_too_large",
        )


@dataclass(frozen=True, slots=True)
class Rendered:
    data: bytes
    format: ImageFormat
    width: int
    height: int
    background: Background
    labels: list[str]
    partials: list[bytes] = field(default_factory=list)


def decode(image: ImageInput) -> Image.Image:
    """Decode to RGBA; a file whose header looked fine but whose body is broken is a 400."""
    try:
        with Image.open(image.open()) as opened:
            opened.load()
            return opened.convert("RGBA")
    except Image.DecompressionBombError:
        raise InvalidRequest(
            f"{image.param} has too many pixels to decode.",
            param=image.param,
            code="image_too_large",
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequest(
            f"{image.param} could not be decoded ({exc}); it may be truncated or corrupt.",
            param=image.param,
            code="invalid_image",
        ) from None


def edit_region(mask: Image.Image) -> Image.Image:
    """An L image that is 255 where the mask is fully transparent: the part to edit."""
    return mask.getchannel("A").point(lambda alpha: 255 if alpha == 0 else 0)


def render(job: EditJob) -> Rendered:
    request = job.request
    plan = parse_prompt(request.prompt, model=job.card.id)
    if request.output.background == "transparent" and not any(
        op.name == "transparent_background" for op in plan.ops
    ):
        plan.ops.append(ops.transparent_background())
    tone = [op for op in plan.ops if op.kind == "tone"]
    canvas = [op for op in plan.ops if op.kind == "canvas"]

    region = edit_region(decode(request.mask)) if request.mask is not None else None
    edited: list[Image.Image] = []
    for index, source in enumerate(request.images):
        original = decode(source)
        image = original
        for op in tone:
            image = op.apply(image)
        if index == 0 and region is not None:
            image = Image.composite(image, original, region)
        edited.append(image)

    labels = [op.label for op in tone]  # in the order they ran
    result = edited[0]
    if len(edited) > 1:
        layout = plan.layout or ("row" if len(edited) <= 3 else "grid")
        result = combine(edited, layout)
        labels.append(f"combine {len(edited)} images ({_LAYOUT_WORDS[layout]})")
    for op in canvas:
        result = op.apply(result)
        _check_canvas(result)
        labels.append(op.label)
    target = job.sizing.pixels
    if target is not None and target != result.size:
        result = result.resize(target, Image.Resampling.LANCZOS)
        labels.append(f"output {target[0]}x{target[1]}")

    fmt: ImageFormat = request.output.output_format or "png"
    opaque = request.output.background == "opaque"
    compression = request.output.output_compression
    data, background = encode(result, fmt, compression=compression, opaque=opaque)
    partials = [
        encode(preview, fmt, compression=compression, opaque=opaque)[0]
        for preview in _previews(result, request.partial_images)
    ]
    return Rendered(data, fmt, result.width, result.height, background, labels, partials)


_LAYOUT_WORDS = {"row": "side by side", "column": "stacked", "grid": "grid"}


def combine(images: list[Image.Image], layout: Layout) -> Image.Image:
    if layout == "row":
        height = images[0].height
        scaled = [_fit_height(image, height) for image in images]
        canvas = Image.new("RGBA", (sum(i.width for i in scaled), height), (0, 0, 0, 0))
        x = 0
        for image in scaled:
            canvas.paste(image, (x, 0))
            x += image.width
        return _shrink_to_limit(canvas)
    if layout == "column":
        width = images[0].width
        scaled = [_fit_width(image, width) for image in images]
        canvas = Image.new("RGBA", (width, sum(i.height for i in scaled)), (0, 0, 0, 0))
        y = 0
        for image in scaled:
            canvas.paste(image, (0, y))
            y += image.height
        return _shrink_to_limit(canvas)
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    cell_w, cell_h = images[0].size
    shrink = min(1.0, ops.MAX_SIDE / (cols * cell_w), ops.MAX_SIDE / (rows * cell_h))
    cell_w, cell_h = max(1, int(cell_w * shrink)), max(1, int(cell_h * shrink))
    canvas = Image.new("RGBA", (cols * cell_w, rows * cell_h), (0, 0, 0, 0))
    for index, image in enumerate(images):
        fitted = image.copy()
        fitted.thumbnail((cell_w, cell_h), Image.Resampling.LANCZOS)  # only ever shrinks
        col, row = index % cols, index // cols
        x = col * cell_w + (cell_w - fitted.width) // 2
        y = row * cell_h + (cell_h - fitted.height) // 2
        canvas.paste(fitted, (x, y))
    return canvas


def _fit_height(image: Image.Image, height: int) -> Image.Image:
    if image.height == height:
        return image
    width = max(1, round(image.width * height / image.height))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def _fit_width(image: Image.Image, width: int) -> Image.Image:
    if image.width == width:
        return image
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def _shrink_to_limit(image: Image.Image) -> Image.Image:
    longest = max(image.size)
    if longest <= ops.MAX_SIDE:
        return image
    factor = ops.MAX_SIDE / longest
    size = (max(1, int(image.width * factor)), max(1, int(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _check_canvas(image: Image.Image) -> None:
    if image.width * image.height > MAX_OUTPUT_PIXELS:
        raise InvalidRequest(
            f"The edit would make a {image.width}x{image.height} image, over the engine's "
            f"limit of {MAX_OUTPUT_PIXELS:,} pixels; ask for a smaller size.",
            param="prompt",
            code="output_too_large",
        )


def _previews(final: Image.Image, count: int) -> list[Image.Image]:
    """Coarse-to-fine previews of the final image, the way a progressive render looks."""
    previews = []
    for index in range(count):
        factor = 2 ** (count - index + 1)
        small = final.resize(
            (max(1, final.width // factor), max(1, final.height // factor)), Image.Resampling.BOX
        )
        previews.append(small.resize(final.size, Image.Resampling.BILINEAR))
    return previews
