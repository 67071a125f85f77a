"""What one prompt may ask of the engine, checked before any work (so a stream still gets a 400).

The engine is the default model of a fresh install and answers anyone who reaches the port, so
a prompt cannot ask for unbounded work: each operation is one pass over at most the input's
pixels (the output limits cap every canvas an operation makes), and these caps bound how many
passes there are and how heavy they get.
"""

from __future__ import annotations

from collections.abc import Sequence

from imagegate.core.errors import InvalidRequest
from imagegate.providers.local.ops import Op

MAX_OPERATIONS = 32
MAX_FILTERS = 8  # blur, sharpen, edge detect, emboss, pixelate: neighbourhood passes
MAX_BLUR_RADIUS = 200.0  # summed over every blur
MAX_RESAMPLES = 8  # resizes, scales and free rotations: each a full resampling pass
MAX_FREE_ROTATIONS = 4  # rotations by angles that are not quarter turns

_FILTER_NAMES = "blur, sharpen, edge detect, emboss, pixelate"


def check_budget(ops: Sequence[Op], model: str) -> None:
    if len(ops) > MAX_OPERATIONS:
        raise InvalidRequest(
            f"{model} runs at most {MAX_OPERATIONS} operations per edit; this prompt asks for "
            f"{len(ops)}. Split it into several edits.",
            param="prompt",
            code="too_many_operations",
        )
    filters = sum(op.cost == "filter" for op in ops)
    if filters > MAX_FILTERS:
        raise _costly(
            f"{model} runs at most {MAX_FILTERS} filters ({_FILTER_NAMES}) per edit; this "
            f"prompt asks for {filters}."
        )
    radius = sum(op.radius for op in ops)
    if radius > MAX_BLUR_RADIUS:
        raise _costly(
            f"{model} blurs by a total radius of at most {MAX_BLUR_RADIUS:g} per edit; this "
            f"prompt asks for {radius:g}."
        )
    rotations = sum(op.cost == "free_rotation" for op in ops)
    if rotations > MAX_FREE_ROTATIONS:
        raise _costly(
            f"{model} rotates by angles other than multiples of 90° at most "
            f"{MAX_FREE_ROTATIONS} times per edit; this prompt asks for {rotations}."
        )
    resamples = rotations + sum(op.cost == "resample" for op in ops)
    if resamples > MAX_RESAMPLES:
        raise _costly(
            f"{model} resizes, scales or freely rotates at most {MAX_RESAMPLES} times per edit; "
            f"this prompt asks for {resamples}."
        )


def _costly(message: str) -> InvalidRequest:
    return InvalidRequest(message, param="prompt", code="operation_too_costly")
