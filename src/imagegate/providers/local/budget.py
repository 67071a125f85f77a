"""What one prompt may ask of the engine, checked before any work (so a stream still gets a 400).

The engine is the default model of a fresh install and answers anyone who reaches the port, so
a prompt cannot ask for unbounded work: each operation is one pass over at most the input's
pixels (the output limits cap every canvas an operation makes), and these caps bound how many
passes there are, how heavy they get, and (``MAX_WORK``) how many pixels they pass over in all:
the sizes each operation makes are known from the headers before any pixel is decoded.
"""

from __future__ import annotations

from collections.abc import Sequence

from imagegate.core.errors import InvalidRequest
from imagegate.providers.local.limits import Size
from imagegate.providers.local.ops import Op

MAX_OPERATIONS = 32
MAX_FILTERS = 8  # blur, sharpen, edge detect, emboss, pixelate: neighbourhood passes
MAX_BLUR_RADIUS = 200.0  # summed over every blur
MAX_RESAMPLES = 8  # resizes, scales and free rotations: each a full resampling pass
MAX_FREE_ROTATIONS = 4  # rotations by angles that are not quarter turns

# Megapixel-passes per edit: each operation passes once over the pixels it works on, weighted
# by how long it takes per pixel next to a plain pass (measured on Pillow 13: a plain pass over
# 36 MP takes 0.35-0.6 s of one core, a filter 1.2-1.5 s, a LANCZOS resize 0.7 s, a free
# rotation about 1 s). 400 is about 5-7 seconds of one core: 11 plain operations on a 36 MP
# photo, or all 32 (8 of them filters) on a 7 MP one.
MAX_WORK = 400
_WEIGHTS = {"plain": 1, "filter": 4, "resample": 2, "free_rotation": 3}

_FILTER_NAMES = "blur, sharpen, edge detect, emboss, pixelate"


def work(ops: Sequence[Op], size: Size) -> float:
    """Megapixel-passes for ``ops`` run in the engine's order on a canvas of ``size``.

    Tone operations first, at the size the images are worked on (their combined canvas when
    there are several), then canvas operations, each at the size the one before it made.
    """
    total = 0.0
    for op in [op for op in ops if op.kind == "tone"] + [op for op in ops if op.kind != "tone"]:
        total += _WEIGHTS[op.cost] * size[0] * size[1] / 1_000_000
        size = op.size_after(size)
    return total


def check_budget(ops: Sequence[Op], model: str, size: Size | None = None) -> None:
    """Refuse a prompt over any cap; ``size`` is the canvas the operations start on."""
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
    needed = work(ops, size) if size is not None else 0.0
    if needed > MAX_WORK:
        assert size is not None
        raise _costly(
            f"{model} does at most {MAX_WORK} megapixel-passes of work per edit (each operation "
            f"is one pass over the image; filters count 4, free rotations 3, resizes 2); "
            f"this prompt on {size[0]}x{size[1]} pixels needs {needed:.0f}. Use fewer "
            "operations or a smaller image."
        )


def _costly(message: str) -> InvalidRequest:
    return InvalidRequest(message, param="prompt", code="operation_too_costly")
