"""Combining images: the canvas is worked out from header sizes, and nothing bigger is ever built.

Pillow's pixel buffers are not seen by tracemalloc, so the bound is proved by instrumenting
Pillow itself: every image the render asks Pillow to make is recorded, and one bigger than the
output canvas (or the largest input, which has to be decoded anyway) fails the test before its
memory is allocated. The old pipeline scaled every image to the first one's height and shrank
afterwards, and fails this at once (a 16,000,000 x 4000 intermediate).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imagegate.providers.local import limits
from imagegate.providers.local.engine import render
from imagegate.providers.local.layout import arrange, fit_inside
from imagegate.providers.local.prompt import Layout
from tests import imaging
from tests.providers.local.test_engine import make_job

LAYOUTS: list[Layout] = ["row", "column", "grid"]


# --- the arithmetic ---------------------------------------------------------------------------


def test_row_keeps_the_first_height_and_adds_widths() -> None:
    done = arrange([(64, 48), (40, 24), (16, 48)], "row")
    assert done.canvas == (160, 48)
    assert [p.size for p in done.places] == [(64, 48), (80, 48), (16, 48)]
    assert [p.at for p in done.places] == [(0, 0), (64, 0), (144, 0)]


def test_column_keeps_the_first_width_and_adds_heights() -> None:
    done = arrange([(64, 48), (32, 32)], "column")
    assert done.canvas == (64, 112)
    assert [p.size for p in done.places] == [(64, 48), (64, 64)]
    assert [p.at for p in done.places] == [(0, 0), (0, 48)]


def test_a_row_too_wide_shrinks_by_one_factor() -> None:
    done = arrange([(3000, 1000), (3000, 1000)], "row")
    assert done.canvas == (4092, 682)  # 682 is 1000 x 4096/6000, rounded down
    assert [p.size for p in done.places] == [(2046, 682), (2046, 682)]


def test_grid_cells_take_the_first_size_and_centre_smaller_images() -> None:
    done = arrange([(40, 40), (20, 20)], "grid")
    assert done.canvas == (80, 40)
    assert done.places[1].size == (20, 20)
    assert done.places[1].at == (50, 10)


def test_fit_inside_matches_pillow_thumbnail() -> None:
    for size, box in [((60, 30), (20, 20)), ((7, 3000), (5, 9)), ((1000, 999), (333, 333))]:
        thumb = Image.new("L", size)
        thumb.thumbnail(box)
        assert fit_inside(size, box) == thumb.size


_SIDES = st.one_of(st.integers(1, 8), st.integers(1, 5000), st.sampled_from([1, 4000, 4096]))


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.tuples(_SIDES, _SIDES), min_size=2, max_size=16),
    layout=st.sampled_from(LAYOUTS),
)
def test_any_arrangement_fits_the_limits_and_its_canvas(
    sizes: list[tuple[int, int]], layout: Layout
) -> None:
    done = arrange(sizes, layout)
    width, height = done.canvas
    assert 1 <= width <= limits.MAX_SIDE and 1 <= height <= limits.MAX_SIDE
    assert len(done.places) == len(sizes)
    for place in done.places:
        assert place.size[0] >= 1 and place.size[1] >= 1
        assert place.at[0] >= 0 and place.at[1] >= 0
        assert place.at[0] + place.size[0] <= width
        assert place.at[1] + place.size[1] <= height


# --- what a render allocates ------------------------------------------------------------------


@dataclass
class Allocations:
    """Every image size a render asked Pillow for; refuses one over ``limit`` before it exists.

    Nothing is recorded until ``limit`` is set, so the test's own inputs can be made first.
    """

    limit: int = 0
    sizes: list[tuple[int, int]] = field(default_factory=list)

    def record(self, size: tuple[int, int], what: str) -> None:
        if not self.limit:
            return
        self.sizes.append(size)
        assert size[0] * size[1] <= self.limit, f"{what} {size[0]}x{size[1]} > {self.limit} px"

    @property
    def largest(self) -> int:
        return max(w * h for w, h in self.sizes)


@pytest.fixture()
def allocations(monkeypatch: pytest.MonkeyPatch) -> Iterator[Allocations]:
    seen = Allocations()
    new, resize, derived = Image.new, Image.Image.resize, Image.Image._new

    def checked_new(mode: str, size: tuple[int, int], *args: object, **kw: object) -> Image.Image:
        seen.record(tuple(size), "Image.new")  # type: ignore[arg-type]
        return new(mode, size, *args, **kw)  # type: ignore[arg-type]

    def checked_resize(self: Image.Image, size: tuple[int, int], *a: object, **kw: object):  # type: ignore[no-untyped-def]
        seen.record(tuple(size), "resize to")  # type: ignore[arg-type]
        return resize(self, size, *a, **kw)  # type: ignore[arg-type]

    def checked_derived(self: Image.Image, im: object) -> Image.Image:
        made = derived(self, im)  # type: ignore[arg-type]
        seen.record(made.size, "derived image")  # after the fact: these are never bigger
        return made

    monkeypatch.setattr(Image, "new", checked_new)
    monkeypatch.setattr(Image.Image, "resize", checked_resize)
    monkeypatch.setattr(Image.Image, "_new", checked_derived)
    yield seen


def _slivers(first: str, count: int = 16) -> list[bytes]:
    """Tiny PNGs of extreme shapes: 1x4000 and 4000x1, alternating, a few hundred bytes each."""
    tall = imaging.encode(Image.new("RGB", (1, 4000), (200, 30, 30)))
    wide = imaging.encode(Image.new("RGB", (4000, 1), (20, 40, 220)))
    pair = [tall, wide] if first == "tall" else [wide, tall]
    return [pair[i % 2] for i in range(count)]


@pytest.mark.parametrize("first", ["tall", "wide"])
@pytest.mark.parametrize(
    ("prompt", "layout"), [("side by side", "row"), ("stacked", "column"), ("grid", "grid")]
)
def test_extreme_shapes_never_allocate_more_than_the_canvas_needs(
    allocations: Allocations, first: str, prompt: str, layout: Layout
) -> None:
    images = _slivers(first)
    assert sum(len(data) for data in images) < 16 * 1024  # a few KB in all
    pair = [(1, 4000), (4000, 1)] if first == "tall" else [(4000, 1), (1, 4000)]
    canvas = arrange(pair * 8, layout).canvas
    # The canvas, or an input decoded at its own size (4000 pixels): nothing larger.
    allocations.limit = max(canvas[0] * canvas[1], 4000)
    rendered = render(make_job(images, f"{prompt}, invert"))
    assert (rendered.width, rendered.height) == canvas
    assert allocations.largest <= allocations.limit


def test_a_big_jpeg_in_a_small_cell_is_decoded_at_a_reduced_scale(
    allocations: Allocations,
) -> None:
    big = imaging.jpeg(2000, 1500)
    small = imaging.png(100, 75)
    allocations.limit = 2000 * 1500
    rendered = render(make_job([small, big], "side by side"))
    assert (rendered.width, rendered.height) == (200, 75)
    # libjpeg decoded the 2000x1500 at 1/4 (500x375) at most: never the full 3 MP.
    assert allocations.largest <= 500 * 375
    assert max(w * h for w, h in allocations.sizes if (w, h) != (200, 75)) < 2000 * 1500 / 8


def test_placed_images_keep_their_colours() -> None:
    rendered = render(make_job(_slivers("tall", 2), "side by side"))
    out = imaging.decode(rendered.data).convert("RGB")
    # The row is 1 px tall (4000 x 4096/16,000,001, rounded down): the 1x4000 becomes 1x1
    # (red), the 4000x1 keeps its own size (blue).
    assert out.size == (4001, 1)
    assert out.getpixel((0, 0)) == (200, 30, 30)
    assert out.getpixel((2000, 0)) == (20, 40, 220)


def test_the_largest_combined_canvas_is_within_the_output_limits() -> None:
    sizes = [(4000, 4000)] * 16
    for layout in LAYOUTS:
        canvas = arrange(sizes, layout).canvas
        assert limits.within(canvas)
        assert max(canvas) == 4096 or math.prod(canvas) <= limits.MAX_OUTPUT_PIXELS


def test_a_mask_follows_the_first_image_when_the_layout_shrinks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two 64x48 side by side are 128 wide; with a 64 px limit each is placed at 32x24, and the
    # mask (64x48, left half transparent) must be fitted to the first image's place with it.
    monkeypatch.setattr(limits, "MAX_SIDE", 64)
    red = imaging.encode(Image.new("RGB", (64, 48), (200, 30, 30)))
    job = make_job([red, red], "invert", mask=imaging.mask_left_half())
    out = imaging.decode(render(job).data).convert("RGB")
    assert out.size == (64, 24)
    inverted = (55, 225, 225)
    assert out.getpixel((2, 12)) == inverted  # first image, left half: edited
    assert out.getpixel((29, 12)) == (200, 30, 30)  # first image, right half: kept
    assert out.getpixel((34, 12)) == inverted  # the second image is edited all over
    assert out.getpixel((62, 12)) == inverted
