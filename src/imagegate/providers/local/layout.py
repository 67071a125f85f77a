"""Where each image goes when several are combined, worked out from their header sizes alone.

The final canvas is computed first, in exact arithmetic, and each image is then decoded and
resized straight to its place. No image is ever scaled to a neighbour's size on the way: a
1-pixel-tall sliver next to a 4000-pixel-tall one would otherwise need a 16-million-pixel-wide
intermediate before the shrink to 4096.

- side by side (row): every image at the first image's height, widths adding up; the whole
  shrunk by one factor if it would be wider or taller than ``MAX_SIDE``.
- stacked (column): the same, turned a quarter.
- grid: ceil(sqrt(n)) columns of cells the first image's size (shrunk so the grid fits);
  each image fitted inside its cell (only ever shrunk) and centred.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from imagegate.providers.local import limits
from imagegate.providers.local.limits import Size
from imagegate.providers.local.prompt import Layout


@dataclass(frozen=True, slots=True)
class Placement:
    size: Size  # what the image is resized to
    at: tuple[int, int]  # its top-left corner on the canvas


@dataclass(frozen=True, slots=True)
class Arrangement:
    canvas: Size
    places: tuple[Placement, ...]


def layout_for(asked: Layout | None, count: int) -> Layout:
    """The layout the prompt named, else side by side for up to three images, a grid beyond."""
    return asked or ("row" if count <= 3 else "grid")


def arrange(sizes: Sequence[Size], layout: Layout) -> Arrangement:
    if layout == "row":
        return _row(sizes)
    if layout == "column":
        turned = _row([(h, w) for w, h in sizes])
        return Arrangement(
            (turned.canvas[1], turned.canvas[0]),
            tuple(Placement((p.size[1], p.size[0]), (p.at[1], p.at[0])) for p in turned.places),
        )
    return _grid(sizes)


def _row(sizes: Sequence[Size]) -> Arrangement:
    height = sizes[0][1]
    natural = [Fraction(w * height, h) for w, h in sizes]  # widths at the first image's height
    total = sum(natural, Fraction(0))
    factor = min(Fraction(1), Fraction(limits.MAX_SIDE) / total, Fraction(limits.MAX_SIDE, height))
    if factor == 1:
        row_height = height
        widths = [max(1, round(w)) for w in natural]
    else:
        row_height = max(1, math.floor(height * factor))
        widths = [max(1, round(w * row_height / height)) for w in natural]
    # Rounding each width may add a few pixels past MAX_SIDE: take them from the widest.
    while sum(widths) > limits.MAX_SIDE and max(widths) > 1:
        widest = widths.index(max(widths))
        widths[widest] -= 1
    places = []
    x = 0
    for width in widths:
        places.append(Placement((width, row_height), (x, 0)))
        x += width
    return Arrangement((x, row_height), tuple(places))


def _grid(sizes: Sequence[Size]) -> Arrangement:
    cols = math.ceil(math.sqrt(len(sizes)))
    rows = math.ceil(len(sizes) / cols)
    cell_w, cell_h = sizes[0]
    shrink = min(1.0, limits.MAX_SIDE / (cols * cell_w), limits.MAX_SIDE / (rows * cell_h))
    cell_w, cell_h = max(1, int(cell_w * shrink)), max(1, int(cell_h * shrink))
    places = []
    for index, size in enumerate(sizes):
        fitted = fit_inside(size, (cell_w, cell_h))
        col, row = index % cols, index // cols
        x = col * cell_w + (cell_w - fitted[0]) // 2
        y = row * cell_h + (cell_h - fitted[1]) // 2
        places.append(Placement(fitted, (x, y)))
    return Arrangement((cols * cell_w, rows * cell_h), tuple(places))


def fit_inside(size: Size, box: Size) -> Size:
    """The size ``Image.thumbnail(box)`` gives ``size``: shrunk to fit, shape kept, never grown."""
    width, height = size
    x, y = box
    if x >= width and y >= height:
        return size
    aspect = width / height
    if x / y >= aspect:
        x = _round_aspect(y * aspect, lambda n: abs(aspect - n / y))
    else:
        y = _round_aspect(x / aspect, lambda n: 0 if n == 0 else abs(aspect - x / n))
    return x, y


def _round_aspect(number: float, key: Callable[[int], float]) -> int:
    return max(min(math.floor(number), math.ceil(number), key=key), 1)
