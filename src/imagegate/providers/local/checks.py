"""Everything ``local/pillow`` refuses, checked before any work (so a stream still gets a 400).

The prompt must be readable and within the budget, the inputs within the pixels one edit may
decode, the output format able to hold what the prompt asks for, and the sizing one the engine
can make (``target.py``). Each refusal says what to send instead.
"""

from __future__ import annotations

from imagegate.core.errors import InvalidRequest
from imagegate.core.request import ImageInput
from imagegate.providers.base import EditJob
from imagegate.providers.local import limits
from imagegate.providers.local.budget import check_budget
from imagegate.providers.local.layout import arrange, layout_for
from imagegate.providers.local.limits import Size
from imagegate.providers.local.prompt import Plan, parse_prompt
from imagegate.providers.local.target import output_target


def check_job(job: EditJob) -> None:
    plan = parse_prompt(job.request.prompt, model=job.card.id)
    check_input_pixels(job.request.images, job.card.id)
    check_budget(plan.ops, job.card.id, working_size(plan, job.request.images))
    check_transparency(plan, job)
    output_target(job.sizing, job.card)


def working_size(plan: Plan, images: tuple[ImageInput, ...]) -> Size:
    """The canvas the operations start on: the image, or the combined canvas of several."""
    if len(images) == 1:
        return images[0].width, images[0].height
    layout = layout_for(plan.layout, len(images))
    return arrange([(image.width, image.height) for image in images], layout).canvas


def check_input_pixels(images: tuple[ImageInput, ...], model: str) -> None:
    total = sum(image.width * image.height for image in images)
    if total > limits.MAX_INPUT_PIXELS:
        raise InvalidRequest(
            f"{model} takes at most {limits.MAX_INPUT_PIXELS:,} pixels across all its images; "
            f"these add up to {total:,}. Send fewer or smaller images.",
            param="image",
            code="image_too_large",
        )


def check_transparency(plan: Plan, job: EditJob) -> None:
    """A transparent background asked for in words is refused where the field would be.

    ``background=transparent`` with JPEG is a 400 at validation; the same request phrased in the
    prompt must not quietly come back flattened onto white instead.
    """
    if not any(op.name == "transparent_background" for op in plan.ops):
        return
    output = job.request.output
    if output.output_format == "jpeg":
        raise InvalidRequest(
            "The prompt asks for a transparent background, but output_format=jpeg cannot hold "
            "transparency; use output_format png or webp.",
            param="prompt",
            code="conflicting_parameters",
        )
    if output.background == "opaque":
        raise InvalidRequest(
            "The prompt asks for a transparent background, but background=opaque asks for "
            "none; drop one of them (use output_format png or webp to keep the transparency).",
            param="prompt",
            code="conflicting_parameters",
        )
