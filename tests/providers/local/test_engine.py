"""The local engine end to end on real images: every op, masks, layouts, sizes, formats, errors."""

from __future__ import annotations

import asyncio
import math

import pytest
from PIL import Image, ImageDraw

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.sizing import ResolvedSizing, resolve_sizing
from imagegate.core.errors import InvalidRequest
from imagegate.core.images import ImageFormat, probe
from imagegate.core.request import Background, EditRequest, ImageInput, OutputOptions, SizingRequest
from imagegate.core.result import ResultImage
from imagegate.providers.base import Deployment, EditJob
from imagegate.providers.local import limits, ops
from imagegate.providers.local.adapter import LocalProvider
from imagegate.providers.local.card import LOCAL_CARDS
from imagegate.providers.local.engine import Rendered, render
from tests import imaging
from tests.imaging import BLUE, GREEN, RED

CARD = ModelCard.model_validate(LOCAL_CARDS[0])
YELLOW = (220, 210, 30)
MARK = (250, 250, 250)

Pixel = tuple[int, ...]


# --- helpers ----------------------------------------------------------------------------------


def part(data: bytes, param: str = "image[0]") -> ImageInput:
    return ImageInput.of(data, probe(data, param=param), param)


def make_job(
    images: bytes | list[bytes],
    prompt: str,
    *,
    mask: bytes | None = None,
    sizing: ResolvedSizing | None = None,
    output_format: ImageFormat | None = None,
    background: Background | None = None,
    compression: int | None = None,
    partial_images: int = 0,
    n: int = 1,
) -> EditJob:
    bodies = [images] if isinstance(images, bytes) else images
    request = EditRequest(
        model=CARD.id,
        prompt=prompt,
        images=tuple(part(data, f"image[{i}]") for i, data in enumerate(bodies)),
        mask=part(mask, "mask") if mask is not None else None,
        n=n,
        output=OutputOptions(
            output_format=output_format, background=background, output_compression=compression
        ),
        partial_images=partial_images,
    )
    return EditJob(request=request, card=CARD, sizing=sizing or ResolvedSizing())


def run(images: bytes | list[bytes], prompt: str, **options: object) -> Rendered:
    return render(make_job(images, prompt, **options))


def out(rendered: Rendered) -> Image.Image:
    return imaging.decode(rendered.data)


def rgba(data: bytes) -> Image.Image:
    return imaging.decode(data).convert("RGBA")


def px(image: Image.Image, xy: tuple[int, int]) -> Pixel:
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def pixels(image: Image.Image) -> list[Pixel]:
    data = image.convert("RGBA").tobytes()
    return [tuple(data[i : i + 4]) for i in range(0, len(data), 4)]


def marked(width: int = 64, height: int = 48) -> bytes:
    """The test picture with the top-left 2x2 pixels painted MARK: its motion shows geometry."""
    image = imaging.picture(width, height)
    ImageDraw.Draw(image).rectangle((0, 0, 1, 1), fill=MARK)
    return imaging.encode(image)


def gradient(width: int = 64, height: int = 48) -> bytes:
    image = Image.new("RGB", (width, height))
    image.putdata(
        [(x * 4 % 256, y * 5 % 256, (x * y) % 256) for y in range(height) for x in range(width)]
    )
    return imaging.encode(image)


def solid(colour: tuple[int, int, int], width: int = 64, height: int = 48) -> bytes:
    return imaging.encode(Image.new("RGB", (width, height), colour))


def close(a: Pixel, b: Pixel, tolerance: int = 3) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=False))


ORIGINAL = imaging.picture().convert("RGBA")
CORNER, CENTRE = (2, 2), (32, 24)  # red background, green box in the test picture


# --- tone operations --------------------------------------------------------------------------


def test_grayscale_makes_every_pixel_grey_with_its_luma() -> None:
    image = out(run(imaging.png(), "make it black and white"))
    assert image.size == (64, 48)
    assert all(r == g == b for r, g, b, *_ in pixels(image))
    # ITU-R 601 luma of the red background and the green box
    assert abs(px(image, CORNER)[0] - (RED[0] * 299 + RED[1] * 587 + RED[2] * 114) / 1000) <= 1
    assert (
        abs(px(image, CENTRE)[0] - (GREEN[0] * 299 + GREEN[1] * 587 + GREEN[2] * 114) / 1000) <= 1
    )


def test_invert_gives_255_minus_each_channel_and_keeps_alpha() -> None:
    source = Image.new("RGBA", (8, 8), (10, 100, 250, 255))
    source.putpixel((0, 0), (0, 0, 0, 0))
    image = rgba(run(imaging.encode(source), "invert the colours").data)
    assert px(image, (3, 3)) == (245, 155, 5, 255)
    assert px(image, (0, 0))[3] == 0


def test_sepia_gives_a_warm_tone_at_every_level() -> None:
    ramp = Image.new("RGB", (256, 4))
    ramp.putdata([(v, v, v) for _y in range(4) for v in range(256)])
    image = out(run(imaging.encode(ramp), "sepia"))
    for r, g, b, *_ in pixels(image):
        assert r > g > b
    assert px(image, (255, 0))[:3] == (255, 240, 192)  # white turns cream, black dark brown
    assert px(image, (0, 0))[:3] == (40, 26, 13)
    picture = out(run(imaging.png(), "sepia"))
    assert px(picture, CENTRE)[:3] != px(picture, CORNER)[:3]  # tones still tell them apart


def test_blur_makes_edge_pixels_intermediate_and_leaves_flat_areas() -> None:
    image = out(run(imaging.png(), "blur radius 3"))
    left_edge = px(image, (16, 24))  # first column of the green box
    assert GREEN[0] < left_edge[0] < RED[0]
    assert GREEN[1] > left_edge[1] > RED[1]
    assert close(px(image, CORNER), (*RED, 255), 4)
    assert close(px(image, CENTRE), (*GREEN, 255), 4)


def test_bigger_blur_spreads_further() -> None:
    small = out(run(imaging.png(), "blur radius 1"))
    big = out(run(imaging.png(), "blur radius 6"))
    assert close(px(small, (10, 24)), (*RED, 255), 2)  # six pixels from the box
    assert px(big, (10, 24))[1] > RED[1] + 10


def test_sharpen_overshoots_at_edges() -> None:
    image = out(run(imaging.png(), "sharpen"))
    outside = px(image, (15, 24))  # red, next to the green box
    assert outside[0] > RED[0]
    assert outside[1] < RED[1]
    assert px(image, CORNER)[:3] == RED


def test_rotate_90_swaps_the_size_and_moves_the_corner_clockwise() -> None:
    image = out(run(marked(), "rotate 90 degrees"))
    assert image.size == (48, 64)
    # Clockwise, the top-left corner goes to the top-right.
    assert px(image, (47, 0))[:3] == MARK
    assert px(image, (0, 0))[:3] == RED
    assert px(image, (0, 63))[:3] == RED


def test_rotate_counterclockwise_moves_the_corner_to_the_bottom_left() -> None:
    image = out(run(marked(), "rotate 90 degrees counterclockwise"))
    assert image.size == (48, 64)
    assert px(image, (0, 63))[:3] == MARK
    assert px(image, (47, 0))[:3] == RED


def test_upside_down_moves_the_corner_to_the_opposite_corner() -> None:
    image = out(run(marked(), "turn it upside down"))
    assert image.size == (64, 48)
    assert px(image, (63, 47))[:3] == MARK
    assert px(image, (0, 0))[:3] == RED


def test_rotate_45_grows_the_canvas_with_transparent_corners() -> None:
    rendered = run(imaging.png(), "rotate 45 degrees")
    image = rgba(rendered.data)
    diagonal = (64 + 48) / math.sqrt(2)
    assert abs(image.width - diagonal) <= 2 and abs(image.height - diagonal) <= 2
    for corner in [(0, 0), (image.width - 1, 0), (0, image.height - 1)]:
        assert px(image, corner)[3] == 0
    centre = px(image, (image.width // 2, image.height // 2))
    assert close(centre, (*GREEN, 255), 4)
    assert rendered.background == "transparent"


def test_mirror_moves_the_mark_left_to_right() -> None:
    image = out(run(marked(), "mirror it"))
    assert image.size == (64, 48)
    assert px(image, (63, 0))[:3] == MARK
    assert px(image, (0, 0))[:3] == RED
    assert px(image, (0, 47))[:3] == RED


def test_flip_vertically_moves_the_mark_top_to_bottom() -> None:
    image = out(run(marked(), "flip vertically"))
    assert image.size == (64, 48)
    assert px(image, (0, 47))[:3] == MARK
    assert px(image, (0, 0))[:3] == RED
    assert px(image, (63, 0))[:3] == RED


def test_brighten_and_darken_move_values_the_right_way() -> None:
    brighter = out(run(imaging.png(), "brighten by 20%"))
    darker = out(run(imaging.png(), "darken by 20%"))
    assert close(px(brighter, CORNER), (240, 36, 36, 255), 1)
    assert close(px(darker, CORNER), (160, 24, 24, 255), 1)
    for b, o, d in zip(pixels(brighter), pixels(imaging.picture()), pixels(darker), strict=True):
        assert all(bc >= oc >= dc for bc, oc, dc in zip(b[:3], o[:3], d[:3], strict=True))


def _spread(image: Image.Image) -> int:
    return px(image, CORNER)[0] - px(image, CENTRE)[0]  # red channel: background minus box


def test_contrast_widens_or_narrows_the_gap() -> None:
    base = _spread(imaging.picture())
    assert _spread(out(run(imaging.png(), "increase contrast"))) > base
    assert _spread(out(run(imaging.png(), "contrast 1.5"))) > base
    assert _spread(out(run(imaging.png(), "decrease contrast"))) < base
    flat = out(run(imaging.png(), "contrast 0"))
    assert len(set(pixels(flat))) == 1  # no contrast: one mean grey


def test_saturation_moves_colour_towards_or_away_from_grey() -> None:
    def chroma(image: Image.Image) -> int:
        r, g, b, *_ = px(image, CORNER)
        return max(r, g, b) - min(r, g, b)

    base = chroma(imaging.picture())
    assert chroma(out(run(imaging.png(), "decrease saturation"))) < base
    assert chroma(out(run(imaging.png(), "more vivid colours"))) > base
    assert all(imaging.is_grey(p) for p in pixels(out(run(imaging.png(), "saturation 0"))))


def test_posterize_keeps_three_bits_per_channel() -> None:
    image = out(run(gradient(), "posterize"))
    values = {c for p in pixels(image) for c in p[:3]}
    assert all(v & 0x1F == 0 for v in values)
    assert len(values) > 1


def test_solarize_inverts_only_the_bright_channels() -> None:
    image = out(run(imaging.png(), "solarize"))
    assert px(image, CORNER)[:3] == (255 - RED[0], RED[1], RED[2])
    assert px(image, CENTRE)[:3] == (GREEN[0], 255 - GREEN[1], GREEN[2])


def test_auto_contrast_stretches_a_dull_image() -> None:
    dull = Image.new("RGB", (32, 32))
    dull.putdata([(100 + x, 100 + x, 100 + x) for _y in range(32) for x in range(32)])
    image = out(run(imaging.encode(dull), "auto contrast"))
    grey = image.convert("L").tobytes()
    assert min(grey) <= 5 and max(grey) >= 250


def test_edges_are_bright_and_flat_areas_black() -> None:
    image = out(run(imaging.png(), "find edges"))
    assert px(image, (8, 24))[:3] == (0, 0, 0)
    assert px(image, CENTRE)[:3] == (0, 0, 0)
    assert max(px(image, (16, 24))[:3]) > 100


def test_emboss_is_mid_grey_on_flat_areas_and_not_at_edges() -> None:
    image = out(run(imaging.png(), "emboss"))
    assert px(image, (8, 24))[:3] == (128, 128, 128)
    assert px(image, CENTRE)[:3] == (128, 128, 128)
    assert px(image, (16, 12))[:3] != (128, 128, 128)


def test_pixelate_makes_uniform_blocks() -> None:
    source = imaging.decode(gradient()).convert("RGBA")
    image = out(run(gradient(), "pixelate 8")).convert("RGBA")
    assert image.size == (64, 48)
    for bx in range(0, 64, 8):
        for by in range(0, 48, 8):
            block = {px(image, (x, y)) for x in range(bx, bx + 8) for y in range(by, by + 8)}
            assert len(block) == 1, (bx, by)
    assert len(set(pixels(image))) == (64 // 8) * (48 // 8)
    assert pixels(image) != pixels(source)


def test_transparent_background_keys_the_border_and_keeps_the_subject() -> None:
    rendered = run(imaging.png(), "remove the background")
    image = rgba(rendered.data)
    assert rendered.background == "transparent"
    for corner in [(0, 0), (63, 0), (0, 47), (63, 47), (8, 24)]:
        assert px(image, corner)[3] == 0
    assert px(image, CENTRE) == (*GREEN, 255)
    assert px(image, (16, 12)) == (*GREEN, 255)
    assert px(image, (15, 12))[3] == 0


def test_transparent_background_keys_the_commonest_border_colour() -> None:
    # The subject touches the left edge and the top-left corner: the border's median is still
    # the red background, so red goes and the blue subject stays, even on the border.
    source = Image.new("RGB", (64, 48), RED)
    ImageDraw.Draw(source).rectangle((0, 0, 20, 30), fill=BLUE)
    image = rgba(run(imaging.encode(source), "transparent background").data)
    assert px(image, (0, 0)) == (*BLUE, 255)
    assert px(image, (10, 15)) == (*BLUE, 255)
    assert px(image, (40, 40))[3] == 0
    assert px(image, (63, 0))[3] == 0


def test_transparent_background_keeps_colours_unlike_the_border() -> None:
    # A near-red box (within the tolerance of 40) goes with the background; a far one stays.
    near = imaging.png(background=RED, box=(180, 50, 50))
    far = imaging.png(background=RED, box=BLUE)
    assert px(rgba(run(near, "transparent background").data), CENTRE)[3] == 0
    assert px(rgba(run(far, "transparent background").data), CENTRE)[3] == 255


# --- canvas operations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "size"),
    [
        ("resize to 32x24", (32, 24)),
        ("resize to 100 by 20", (100, 20)),
        ("scale to 50%", (32, 24)),
        ("scale to 150%", (96, 72)),
        ("half size", (32, 24)),
        ("double the size", (128, 96)),
        ("crop to square", (48, 48)),
        ("crop to 16:9", (64, 36)),
        ("crop to 1:2", (24, 48)),
    ],
)
def test_canvas_ops_give_exact_sizes(prompt: str, size: tuple[int, int]) -> None:
    rendered = run(imaging.png(), prompt)
    assert (rendered.width, rendered.height) == size
    assert out(rendered).size == size


def test_resize_keeps_the_picture() -> None:
    image = out(run(imaging.png(), "resize to 32x24"))
    assert close(px(image, (1, 1)), (*RED, 255), 2)
    assert close(px(image, (16, 12)), (*GREEN, 255), 2)


def test_crop_square_is_centred() -> None:
    image = out(run(imaging.png(), "crop to square"))
    # 8 columns cut from each side: the box (x 16..48) now spans 8..40.
    assert px(image, (8, 24))[:3] == GREEN
    assert px(image, (7, 24))[:3] == RED
    assert px(image, (40, 24))[:3] == GREEN
    assert px(image, (41, 24))[:3] == RED


def test_canvas_ops_run_in_prompt_order() -> None:
    # crop then resize ends at the resize's size; resize then crop ends square.
    assert out(run(imaging.png(), "crop to square, then resize to 40x20")).size == (40, 20)
    assert out(run(imaging.png(), "resize to 40x20, then crop to square")).size == (20, 20)


# --- masks ------------------------------------------------------------------------------------


def test_mask_limits_tone_ops_to_its_transparent_region() -> None:
    image = out(run(imaging.png(), "invert", mask=imaging.mask_left_half()))
    for y in range(48):
        for x in range(64):
            original = px(ORIGINAL, (x, y))
            expected = tuple(255 - c for c in original[:3]) if x < 32 else original[:3]
            assert px(image, (x, y))[:3] == expected, (x, y)


def test_mask_applies_only_to_the_first_image() -> None:
    job = make_job([imaging.png(), imaging.png()], "invert", mask=imaging.mask_left_half())
    image = out(render(job))
    assert image.size == (128, 48)
    inverted_red = tuple(255 - c for c in RED)
    assert px(image, (2, 2))[:3] == inverted_red  # first image, masked (edited) half
    assert px(image, (62, 2))[:3] == RED  # first image, protected half
    assert px(image, (64 + 2, 2))[:3] == inverted_red  # second image: all of it
    assert px(image, (64 + 62, 2))[:3] == inverted_red


def test_mask_does_not_limit_canvas_ops() -> None:
    image = out(run(marked(), "invert, rotate 90", mask=imaging.mask_left_half()))
    assert image.size == (48, 64)
    # The edited left half is the top half after a clockwise quarter turn.
    assert px(image, (47, 0))[:3] == tuple(255 - c for c in MARK)
    assert px(image, (2, 2))[:3] == tuple(255 - c for c in RED)
    assert px(image, (2, 61))[:3] == RED


def test_an_opaque_mask_protects_everything() -> None:
    mask = imaging.encode(Image.new("RGBA", (64, 48), (0, 0, 0, 255)))
    image = out(run(imaging.png(), "grayscale, invert, blur", mask=mask))
    assert pixels(image) == pixels(ORIGINAL)


# --- several images ---------------------------------------------------------------------------


def test_side_by_side_widths_add_up_at_the_first_images_height() -> None:
    first = imaging.png(64, 48)
    second = solid(BLUE, 40, 24)  # scaled to height 48: 80 wide
    third = solid(YELLOW, 16, 48)  # already that height: 16 wide
    rendered = run([first, second, third], "put them side by side")
    image = out(rendered)
    assert image.size == (64 + 80 + 16, 48)
    assert px(image, (1, 1))[:3] == RED
    assert px(image, (63, 24))[:3] == RED
    assert close(px(image, (65, 1)), (*BLUE, 255), 2)
    assert close(px(image, (143, 47)), (*BLUE, 255), 2)
    assert px(image, (144, 0))[:3] == YELLOW
    assert px(image, (159, 47))[:3] == YELLOW
    assert "combine 3 images (side by side)" in rendered.labels


def test_stacked_heights_add_up_at_the_first_images_width() -> None:
    first = imaging.png(64, 48)
    second = solid(BLUE, 32, 32)  # scaled to width 64: 64 tall
    rendered = run([first, second], "stack them vertically")
    image = out(rendered)
    assert image.size == (64, 48 + 64)
    assert px(image, (1, 1))[:3] == RED
    assert px(image, (1, 47))[:3] == RED
    assert close(px(image, (1, 49)), (*BLUE, 255), 2)
    assert close(px(image, (63, 111)), (*BLUE, 255), 2)
    assert "combine 2 images (stacked)" in rendered.labels


@pytest.mark.parametrize(("count", "cols", "rows"), [(2, 2, 1), (4, 2, 2), (5, 3, 2), (9, 3, 3)])
def test_grid_has_ceil_sqrt_columns_and_colours_land_in_their_cells(
    count: int, cols: int, rows: int
) -> None:
    colours = [
        RED,
        GREEN,
        BLUE,
        YELLOW,
        (120, 0, 160),
        (0, 160, 160),
        (90, 90, 90),
        MARK,
        (0, 0, 0),
    ]
    rendered = run([solid(c, 32, 24) for c in colours[:count]], "in a grid")
    image = rgba(rendered.data)
    assert image.size == (cols * 32, rows * 24)
    for index in range(cols * rows):
        col, row = index % cols, index // cols
        centre = px(image, (col * 32 + 16, row * 24 + 12))
        if index < count:
            assert centre == (*colours[index], 255), index
        else:
            assert centre[3] == 0  # an empty cell is transparent
    assert f"combine {count} images (grid)" in rendered.labels


def test_grid_centres_a_smaller_image_in_its_cell() -> None:
    image = rgba(run([solid(RED, 40, 40), solid(BLUE, 20, 20)], "grid").data)
    assert image.size == (80, 40)
    assert px(image, (50, 20)) == (*BLUE, 255)
    assert px(image, (41, 20))[3] == 0  # left of the centred 20x20
    assert px(image, (50, 1))[3] == 0  # above it


def test_grid_shrinks_a_bigger_image_to_fit_its_cell() -> None:
    image = rgba(run([solid(RED, 20, 20), solid(BLUE, 60, 30)], "collage").data)
    assert image.size == (40, 20)
    assert px(image, (30, 10)) == (*BLUE, 255)
    assert px(image, (30, 2))[3] == 0  # 60x30 fitted to 20x10, centred vertically


def test_default_layout_is_a_row_up_to_three_then_a_grid() -> None:
    three = run([solid(c, 16, 16) for c in (RED, GREEN, BLUE)], "grayscale")
    assert (three.width, three.height) == (48, 16)
    four = run([solid(c, 16, 16) for c in (RED, GREEN, BLUE, YELLOW)], "grayscale")
    assert (four.width, four.height) == (32, 32)


def test_a_layout_alone_is_a_valid_prompt() -> None:
    rendered = run([solid(RED, 16, 16), solid(BLUE, 16, 16)], "combine them")
    assert (rendered.width, rendered.height) == (32, 16)
    assert rendered.labels == ["combine 2 images (grid)"]


def test_an_op_applies_to_every_image() -> None:
    image = out(run([imaging.png(), solid(BLUE, 64, 48), solid(YELLOW, 64, 48)], "grayscale"))
    assert image.size == (192, 48)
    assert all(r == g == b for r, g, b, *_ in pixels(image))
    assert px(image, (2, 2)) != px(image, (66, 2)) != px(image, (130, 2))


def test_canvas_ops_apply_to_the_combined_image() -> None:
    image = out(run([imaging.png(), solid(BLUE, 64, 48)], "side by side, rotate 90"))
    assert image.size == (48, 128)
    assert px(image, (24, 2))[:3] == RED  # first image on top after a clockwise turn
    assert close(px(image, (24, 125)), (*BLUE, 255), 2)


# --- requested size and output formats --------------------------------------------------------


def test_requested_size_resizes_the_output_exactly() -> None:
    rendered = run(imaging.png(), "grayscale", sizing=ResolvedSizing(width=40, height=30))
    assert (rendered.width, rendered.height) == (40, 30)
    assert out(rendered).size == (40, 30)
    assert rendered.labels == ["grayscale", "output 40x30"]


def test_requested_size_through_the_cards_sizing_rule() -> None:
    sizing = resolve_sizing(SizingRequest(size="100x20"), CARD)
    rendered = render(make_job(imaging.png(), "rotate 90", sizing=sizing))
    assert out(rendered).size == (100, 20)


def test_requested_size_equal_to_the_result_is_not_reported() -> None:
    rendered = run(imaging.png(), "invert", sizing=ResolvedSizing(width=64, height=48))
    assert rendered.labels == ["invert colours"]


@pytest.mark.parametrize(("fmt", "pil"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_output_formats_decode_as_that_format(fmt: ImageFormat, pil: str) -> None:
    rendered = run(imaging.png(), "invert", output_format=fmt)
    image = out(rendered)
    assert rendered.format == fmt
    assert image.format == pil
    assert image.size == (64, 48)
    inverted = tuple(255 - c for c in RED)
    assert close(px(image.convert("RGB"), (8, 8)), inverted, 6)


def test_default_output_is_png_and_opaque_input_stays_opaque() -> None:
    rendered = run(imaging.jpeg(), "sepia")
    assert rendered.format == "png"
    assert out(rendered).format == "PNG"
    assert rendered.background == "opaque"


def test_jpeg_output_flattens_alpha_onto_white() -> None:
    # (Asking for a transparent background with JPEG is refused by the provider's check; a
    # rotation's empty corners are the alpha JPEG still has to flatten.)
    rendered = run(imaging.png(), "rotate 45", output_format="jpeg")
    image = out(rendered)
    assert image.mode == "RGB"
    assert rendered.background == "opaque"
    assert close(px(image, (1, 1)), (255, 255, 255), 6)
    assert close(px(image, (image.width // 2, image.height // 2)), GREEN, 8)


def test_jpeg_compression_changes_the_bytes() -> None:
    fine = run(gradient(), "sharpen", output_format="jpeg", compression=95).data
    coarse = run(gradient(), "sharpen", output_format="jpeg", compression=10).data
    assert len(coarse) < len(fine)


def test_opaque_background_flattens_png() -> None:
    rendered = run(imaging.png(), "rotate 45", background="opaque")
    image = out(rendered)
    assert rendered.background == "opaque"
    assert image.mode == "RGB"
    assert px(image, (0, 0)) == (255, 255, 255)


def test_transparent_background_request_adds_the_keying_op() -> None:
    rendered = run(imaging.png(), "grayscale", background="transparent")
    image = rgba(rendered.data)
    assert rendered.labels == ["grayscale", "transparent background"]
    assert rendered.background == "transparent"
    assert px(image, (0, 0))[3] == 0
    assert px(image, CENTRE)[3] == 255
    assert imaging.is_grey(px(image, CENTRE))


def test_transparent_background_request_does_not_key_twice() -> None:
    rendered = run(imaging.png(), "remove the background", background="transparent")
    assert rendered.labels == ["transparent background"]


def test_webp_keeps_alpha() -> None:
    rendered = run(imaging.png(), "transparent background", output_format="webp")
    image = rgba(rendered.data)
    assert rendered.background == "transparent"
    assert px(image, (0, 0))[3] == 0
    assert px(image, CENTRE)[3] == 255


# --- partial images ---------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 3])
def test_partial_images_are_coarse_to_fine_previews_of_the_final_size(count: int) -> None:
    rendered = run(gradient(), "rotate 90", partial_images=count)
    assert len(rendered.partials) == count
    final = pixels(out(rendered))
    errors = []
    for data in rendered.partials:
        preview = imaging.decode(data)
        assert preview.format == "PNG"
        assert preview.size == (rendered.width, rendered.height) == (48, 64)
        assert pixels(preview) != final
        errors.append(
            sum(
                abs(a - b)
                for p, q in zip(pixels(preview), final, strict=True)
                for a, b in zip(p, q, strict=True)
            )
        )
    assert errors == sorted(errors, reverse=True)
    assert len(set(errors)) == len(errors)


def test_partials_use_the_output_format() -> None:
    rendered = run(imaging.png(), "invert", partial_images=2, output_format="webp")
    assert [imaging.decode(p).format for p in rendered.partials] == ["WEBP", "WEBP"]


# --- determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_same_job_twice_gives_identical_bytes(fmt: ImageFormat) -> None:
    job = make_job(
        [imaging.png(), solid(BLUE, 30, 20)],
        "sepia, blur radius 2, rotate 30, pixelate 4, side by side",
        output_format=fmt,
        partial_images=2,
    )
    first, second = render(job), render(job)
    assert first.data == second.data
    assert first.partials == second.partials
    assert first.labels == second.labels


# --- errors -----------------------------------------------------------------------------------


def test_an_unreadable_prompt_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidRequest) as caught:
        render(make_job(imaging.png()[:40] + b"junk", "draw a dragon"))
    assert caught.value.code == "prompt_not_understood"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(imaging.png()[:33] + b"\x00garbage" * 20, id="header-then-garbage"),
        pytest.param(imaging.png()[:60], id="truncated-in-idat"),
        pytest.param(imaging.png()[:33], id="header-only"),
        pytest.param(imaging.jpeg()[:300], id="truncated-jpeg"),
    ],
)
def test_a_corrupt_image_body_is_invalid_image_naming_the_part(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        render(make_job([imaging.png(), body], "grayscale"))
    error = caught.value
    assert error.status == 400
    assert error.code == "invalid_image"
    assert error.param == "image[1]"
    assert "image[1]" in error.message


def test_a_corrupt_mask_is_invalid_image_naming_the_mask() -> None:
    broken = imaging.mask_left_half()[:45]
    with pytest.raises(InvalidRequest) as caught:
        render(make_job(imaging.png(), "grayscale", mask=broken))
    assert (caught.value.code, caught.value.param) == ("invalid_image", "mask")


def test_a_scale_over_the_limits_is_capped_by_one_factor(monkeypatch: pytest.MonkeyPatch) -> None:
    # Before, each side was clamped on its own: the shape changed and revised_prompt did not say.
    monkeypatch.setattr(limits, "MAX_SIDE", 100)
    rendered = run(imaging.png(), "double the size")
    assert (rendered.width, rendered.height) == (100, 75)  # 64x48 is 4:3, and so is this
    assert rendered.labels == ["scale by 1.56 (capped from 2: 100 px max)"]


def test_scale_to_500_percent_of_1024x768_keeps_its_shape() -> None:
    rendered = run(solid(RED, 1024, 768), "scale to 500%")
    assert (rendered.width, rendered.height) == (4096, 3072)
    assert rendered.labels == ["scale by 4 (capped from 5: 4096 px max)"]


def test_a_rotation_that_would_grow_past_the_limits_is_shrunk_before_it_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 64x48 turned 45° needs a 79x79 canvas (6241 pixels); allow fewer than that.
    monkeypatch.setattr(limits, "MAX_OUTPUT_PIXELS", 6000)
    rotate = Image.Image.rotate

    def checked(image: Image.Image, *args: object, **kwargs: object) -> Image.Image:
        grown = ops.rotated_bounds(image.size, 45)
        assert grown[0] * grown[1] <= 6000, "the oversized canvas was built"
        return rotate(image, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "rotate", checked)
    rendered = run(imaging.png(), "rotate 45")
    assert rendered.width * rendered.height <= 6000
    assert rendered.labels[0].startswith("rotate 45° clockwise (scaled by 0.9")
    assert rendered.labels[0].endswith("first to fit 4096 px / 0.006 MP)")


# --- the provider -----------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[int, ResultImage]] = []

    async def partial(self, image: ResultImage, index: int) -> None:
        self.seen.append((index, image))


def test_provider_edit_returns_n_copies_and_streams_partials_in_order() -> None:
    job = make_job(gradient(), "rotate 90 degrees, then make it grayscale", n=3, partial_images=2)
    events = Recorder()
    provider = LocalProvider(max_concurrency=1)
    result = asyncio.run(provider.edit(job, Deployment(provider="local"), events))
    expected = render(job)

    assert (result.model, result.provider, result.background) == ("local/pillow", "local", "opaque")
    assert len(result.images) == 3
    for image in result.images:
        assert image.raw() == expected.data
        assert (image.format, image.width, image.height) == ("png", 48, 64)
        # what ran, in the order it ran: tone ops first, then the canvas
        assert image.revised_prompt == "grayscale; rotate 90° clockwise"
    decoded = imaging.decode(result.images[0].raw())
    assert decoded.size == (48, 64)
    assert all(imaging.is_grey(p) for p in pixels(decoded))

    assert [index for index, _ in events.seen] == [0, 1]
    assert [image.raw() for _, image in events.seen] == expected.partials
    for _, image in events.seen:
        assert (image.width, image.height) == (48, 64)
        assert image.revised_prompt is None
    asyncio.run(provider.aclose())


def test_provider_reports_a_transparent_result() -> None:
    job = make_job(imaging.png(), "cut out")
    result = asyncio.run(LocalProvider().edit(job, Deployment(provider="local"), Recorder()))
    assert result.background == "transparent"
    assert result.images[0].revised_prompt == "transparent background"


def test_provider_check_refuses_an_unreadable_prompt() -> None:
    provider = LocalProvider()
    provider.check(make_job(imaging.png(), "grayscale"))  # fine: no exception
    with pytest.raises(InvalidRequest) as caught:
        provider.check(make_job(imaging.png(), "paint a sunset over the sea"))
    assert (caught.value.code, caught.value.param) == ("prompt_not_understood", "prompt")
    assert "local/pillow" in caught.value.message


def _header_only_png(width: int, height: int) -> bytes:
    """A PNG header claiming a size, with no pixel data behind it."""
    import struct
    import zlib

    chunk = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + chunk
        + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    )


def test_provider_check_caps_the_pixels_it_would_decode_at_once() -> None:
    provider = LocalProvider()
    # Each 5000x5000 is under the gateway's per-image limit; two are over the engine's total.
    provider.check(make_job([_header_only_png(5000, 5000)], "invert"))
    with pytest.raises(InvalidRequest) as caught:
        provider.check(make_job([_header_only_png(5000, 5000)] * 2, "invert"))
    assert caught.value.code == "image_too_large"
    assert "48,000,000 pixels across all its images" in caught.value.message
    assert "50,000,000" in caught.value.message


def test_provider_edit_raises_the_engines_errors() -> None:
    job = make_job(imaging.png()[:33] + b"garbage" * 9, "invert")
    with pytest.raises(InvalidRequest) as caught:
        asyncio.run(LocalProvider().edit(job, Deployment(provider="local"), Recorder()))
    assert (caught.value.code, caught.value.param) == ("invalid_image", "image[0]")


def test_engine_concurrency_follows_the_container_cpu_quota(tmp_path) -> None:
    from imagegate.providers.local.adapter import available_cpus

    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # a quota of 1.5 CPUs rounds up to 2
    assert available_cpus(cpu_max) == min(2, available_cpus(tmp_path / "missing"))
    cpu_max.write_text("50000 100000\n")
    assert available_cpus(cpu_max) == 1
    cpu_max.write_text("max 100000\n")
    assert available_cpus(cpu_max) == available_cpus(tmp_path / "missing") >= 1
