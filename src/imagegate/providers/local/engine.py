"""The embedded engine's pipeline, pure and synchronous: an ``EditJob`` in, encoded images out.

1. With one image, decode it. With several, work out the combined canvas from their header
   sizes first (side by side, stacked or in a grid; the prompt may say which, three or fewer
   default to side by side, more to a grid), then decode each straight to its place.
2. Apply the prompt's tone operations to each image (after it is fitted to its place); on the
   first image, only where the mask is fully transparent (OpenAI's mask convention).
3. Apply the canvas operations (rotate, resize, crop) to the whole result, in prompt order.
4. Finish to the size the job's sizing asks for (``target.py``), apply the output rule
   (``limits.py``), and encode in the requested format.

Every step checks the render's ``CancelFlag`` first, so a render whose request has gone stops
at the next step; decoding and encoding also check between the chunks they read and write.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from PIL import Image

from imagegate.core.convert import Background
from imagegate.core.images import ImageFormat
from imagegate.core.request import ImageInput
from imagegate.providers.base import EditJob
from imagegate.providers.local import limits, ops
from imagegate.providers.local.cancel import NEVER, CancelFlag
from imagegate.providers.local.decode import decode
from imagegate.providers.local.encode import encode
from imagegate.providers.local.layout import arrange, layout_for
from imagegate.providers.local.ops import Op
from imagegate.providers.local.prompt import Layout, Plan, parse_prompt
from imagegate.providers.local.target import output_target


@dataclass(frozen=True, slots=True)
class Rendered:
    data: bytes
    format: ImageFormat
    width: int
    height: int
    background: Background
    labels: list[str]
    partials: list[bytes] = field(default_factory=list)


def edit_region(mask: Image.Image) -> Image.Image:
    """An L image that is 255 where the mask is fully transparent: the part to edit."""
    return mask.getchannel("A").point(lambda alpha: 255 if alpha == 0 else 0)


def plan_for(job: EditJob) -> Plan:
    """The prompt's operations, plus keying the background when the request field asks for it."""
    plan = parse_prompt(job.request.prompt, model=job.card.id)
    if job.request.output.background == "transparent" and not any(
        op.name == "transparent_background" for op in plan.ops
    ):
        plan.ops.append(ops.transparent_background())
    return plan


def render(job: EditJob, cancel: CancelFlag = NEVER) -> Rendered:
    request = job.request
    plan = plan_for(job)
    target = output_target(job.sizing, job.card)
    tone = [op for op in plan.ops if op.kind == "tone"]
    canvas = [op for op in plan.ops if op.kind == "canvas"]

    labels = [op.label for op in tone]  # in the order they ran
    if len(request.images) == 1:
        result = _edited(request.images[0], None, tone, request.mask, cancel)
    else:
        layout = layout_for(plan.layout, len(request.images))
        result = _combined(request.images, layout, tone, request.mask, cancel)
        labels.append(f"combine {len(request.images)} images ({_LAYOUT_WORDS[layout]})")
    for op in canvas:
        labels.append(op.label_for(result.size))
        result = op.run(result, cancel)
    cancel.check()
    result, finishing = target.finish(result)
    labels.extend(finishing)

    fmt: ImageFormat = request.output.output_format or "png"
    opaque = request.output.background == "opaque"
    compression = request.output.output_compression
    data, background = encode(result, fmt, cancel, compression=compression, opaque=opaque)
    partials = []
    for preview in _previews(result, request.partial_images, cancel):
        partials.append(encode(preview, fmt, cancel, compression=compression, opaque=opaque)[0])
    return Rendered(data, fmt, result.width, result.height, background, labels, partials)


_LAYOUT_WORDS = {"row": "side by side", "column": "stacked", "grid": "grid"}


def _edited(
    source: ImageInput,
    size: limits.Size | None,
    tone: list[Op],
    mask: ImageInput | None,
    cancel: CancelFlag,
) -> Image.Image:
    """One image decoded (at ``size`` if given) with the tone operations applied.

    With a mask, the operations apply only where it is fully transparent; the mask has the
    image's size as sent, so it is fitted to ``size`` too.
    """
    cancel.check()
    original = decode(source, cancel, size)
    image = original
    for op in tone:
        image = op.run(image, cancel)
    if mask is None:
        return image
    cancel.check()
    region = edit_region(decode(mask, cancel))
    if region.size != image.size:
        region = region.resize(image.size, Image.Resampling.NEAREST)
    return Image.composite(image, original, region)


def _combined(
    images: tuple[ImageInput, ...],
    layout: Layout,
    tone: list[Op],
    mask: ImageInput | None,
    cancel: CancelFlag,
) -> Image.Image:
    arrangement = arrange([(image.width, image.height) for image in images], layout)
    canvas = Image.new("RGBA", arrangement.canvas, (0, 0, 0, 0))
    for index, (source, place) in enumerate(zip(images, arrangement.places, strict=True)):
        placed = _edited(source, place.size, tone, mask if index == 0 else None, cancel)
        canvas.paste(placed, place.at)
    return canvas


def _previews(final: Image.Image, count: int, cancel: CancelFlag) -> Iterator[Image.Image]:
    """Coarse-to-fine previews of the final image, the way a progressive render looks.

    One at a time: each is the output's size, so holding all of them would multiply its memory.
    """
    for index in range(count):
        cancel.check()
        factor = 2 ** (count - index + 1)
        small = final.resize(
            (max(1, final.width // factor), max(1, final.height // factor)), Image.Resampling.BOX
        )
        yield small.resize(final.size, Image.Resampling.BILINEAR)
