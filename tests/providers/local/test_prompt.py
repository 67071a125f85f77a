"""Reading prompts into the local engine's operations: phrasings, order, overlaps, refusals."""

from __future__ import annotations

import pytest
from PIL import Image

from imagegate.core.errors import InvalidRequest
from imagegate.providers.local import ops
from imagegate.providers.local.prompt import LAYOUTS, SKILLS, Plan, capabilities, parse_prompt


def names(prompt: str) -> list[str]:
    return [op.name for op in parse_prompt(prompt).ops]


def only(prompt: str) -> ops.Op:
    plan = parse_prompt(prompt)
    assert len(plan.ops) == 1, [op.label for op in plan.ops]
    return plan.ops[0]


def labels(prompt: str) -> list[str]:
    return [op.label for op in parse_prompt(prompt).ops]


# --- every skill, from natural phrasings -------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        "make it grayscale",
        "Greyscale please",
        "gray-scale",
        "grey scale",
        "black and white",
        "Black & White",
        "black-and-white photo",
        "b&w",
        "monochrome",
        "desaturate it",
        "make it grey",
    ],
)
def test_grayscale_phrasings(prompt: str) -> None:
    op = only(prompt)
    assert (op.name, op.kind) == ("grayscale", "tone")


@pytest.mark.parametrize("prompt", ["invert", "invert the colours", "inverted", "make a negative"])
def test_invert_phrasings(prompt: str) -> None:
    assert names(prompt) == ["invert"]


@pytest.mark.parametrize("prompt", ["sepia", "Sepia tone", "make it vintage", "old photo look"])
def test_sepia_phrasings(prompt: str) -> None:
    assert names(prompt) == ["sepia"]


@pytest.mark.parametrize(
    ("prompt", "label"),
    [
        ("blur", "blur (radius 4)"),
        ("blur it", "blur (radius 4)"),
        ("make it blurry", "blur (radius 4)"),
        ("soften", "blur (radius 4)"),
        ("blur radius 6", "blur (radius 6)"),
        ("blur with a radius of 3", "blur (radius 3)"),
        ("blur by 5px", "blur (radius 5)"),
        ("blur it by 2.5 pixels", "blur (radius 2.5)"),
        ("blur 7.", "blur (radius 7)"),
    ],
)
def test_blur_with_and_without_radius(prompt: str, label: str) -> None:
    op = only(prompt)
    assert op.name == "blur"
    assert op.label == label


def test_blur_radius_is_clamped() -> None:
    assert only("blur 10000").label == "blur (radius 100)"
    assert only("blur radius 0").label == "blur (radius 0.5)"


def test_blur_does_not_take_a_number_of_degrees_as_its_radius() -> None:
    # The pattern refuses a number followed by degrees; it must not backtrack to "9" of "90".
    assert only("blur 90 degrees").label == "blur (radius 4)"
    assert only("blur 45°").label == "blur (radius 4)"


@pytest.mark.parametrize("prompt", ["sharpen", "sharpen it", "make it sharper", "crisper"])
def test_sharpen_phrasings(prompt: str) -> None:
    assert names(prompt) == ["sharpen"]


# Rotation is checked by what the op does to a 2x1 image: where the left (red) pixel goes.
_RED, _BLUE = (255, 0, 0, 255), (0, 0, 255, 255)


def _two_pixels() -> Image.Image:
    image = Image.new("RGBA", (2, 1), _BLUE)
    image.putpixel((0, 0), _RED)
    return image


def _turned(op: ops.Op) -> tuple[tuple[int, int], tuple[int, int] | None]:
    out = op.apply(_two_pixels())
    where = [
        (x, y) for y in range(out.height) for x in range(out.width) if out.getpixel((x, y)) == _RED
    ]
    return out.size, (where[0] if where else None)


@pytest.mark.parametrize(
    ("prompt", "label", "red_at"),
    [
        # clockwise a quarter turn: the left pixel ends up on top
        ("rotate", "rotate 90° clockwise", (0, 0)),
        ("rotate 90 degrees", "rotate 90° clockwise", (0, 0)),
        ("rotate 90 degrees clockwise", "rotate 90° clockwise", (0, 0)),
        ("rotate it 90° cw", "rotate 90° clockwise", (0, 0)),
        ("rotate right", "rotate 90° clockwise", (0, 0)),
        ("rotate the image to the right", "rotate 90° clockwise", (0, 0)),
        ("turn it by 90 degrees", "rotate 90° clockwise", (0, 0)),
        # counterclockwise: the left pixel ends up at the bottom
        ("rotate 90 degrees counterclockwise", "rotate 90° counterclockwise", (0, 1)),
        ("rotate 90 counter-clockwise", "rotate 90° counterclockwise", (0, 1)),
        ("rotate 90 degrees anti-clockwise", "rotate 90° counterclockwise", (0, 1)),
        ("rotate 90 ccw", "rotate 90° counterclockwise", (0, 1)),
        ("rotate left", "rotate 90° counterclockwise", (0, 1)),
        ("rotate it 90 degrees to the left", "rotate 90° counterclockwise", (0, 1)),
        ("rotate -90", "rotate 90° counterclockwise", (0, 1)),
        ("rotate 270 degrees", "rotate 270° clockwise", (0, 1)),
    ],
)
def test_rotate_quarter_turns(prompt: str, label: str, red_at: tuple[int, int]) -> None:
    op = only(prompt)
    assert (op.name, op.label, op.kind) == ("rotate", label, "canvas")
    assert _turned(op) == ((1, 2), red_at)


@pytest.mark.parametrize(
    "prompt", ["rotate 180", "upside down", "turn it upside down", "upside-down"]
)
def test_half_turn_is_a_tone_op_that_swaps_the_pixels(prompt: str) -> None:
    op = only(prompt)
    assert op.name == "rotate"
    assert op.kind == "tone"  # it keeps the canvas, so the mask can limit it
    assert _turned(op) == ((2, 1), (1, 0))


def test_rotate_other_angles_grow_the_canvas() -> None:
    op = only("rotate by 30° anticlockwise")
    assert op.label == "rotate 30° counterclockwise"
    assert op.kind == "canvas"
    op45 = only("rotate 45")
    out = op45.apply(Image.new("RGBA", (40, 40), _RED))
    assert out.width > 40 and out.height > 40


def test_turn_needs_a_number_so_ordinary_words_are_not_rotations() -> None:
    with pytest.raises(InvalidRequest):
        parse_prompt("turn the lights on")


@pytest.mark.parametrize(
    ("prompt", "name"),
    [
        ("flip vertically", "flip"),
        ("flip it vertically", "flip"),
        ("flip the image vertically", "flip"),
        ("flip top to bottom", "flip"),
        ("flip upside down", "flip"),
        ("vertical flip", "flip"),
        ("flip", "mirror"),
        ("flip horizontally", "mirror"),
        ("flip it horizontally", "mirror"),
        ("flipped left to right", "mirror"),
        ("horizontal flip", "mirror"),
        ("mirror", "mirror"),
        ("mirror it", "mirror"),
        ("mirrored", "mirror"),
    ],
)
def test_flip_vertically_versus_mirror(prompt: str, name: str) -> None:
    plan = parse_prompt(prompt)
    assert [op.name for op in plan.ops] == [name]
    # "vertically", "horizontally", "left to right", "top to bottom" are also layout words;
    # inside a flip phrase they belong to the flip.
    assert plan.layout is None
    probe = (
        _two_pixels() if name == "mirror" else _two_pixels().transpose(Image.Transpose.ROTATE_90)
    )
    out = plan.ops[0].apply(probe)
    assert out.size == probe.size
    assert out.getpixel((0, 0)) != probe.getpixel((0, 0))


@pytest.mark.parametrize(
    ("prompt", "label"),
    [
        ("brighten", "brightness x1.3"),
        ("make it brighter", "brightness x1.3"),
        ("lighten", "brightness x1.3"),
        ("brighten by 20%", "brightness x1.2"),
        ("brighten it by 50 %", "brightness x1.5"),
        ("darken", "brightness x0.7"),
        ("make it darker", "brightness x0.7"),
        ("darken by 20%", "brightness x0.8"),
        ("darken it by 150%", "brightness x0"),  # clamped at 0
    ],
)
def test_brighten_and_darken(prompt: str, label: str) -> None:
    op = only(prompt)
    assert (op.name, op.label) == ("brightness", label)


@pytest.mark.parametrize(
    ("prompt", "label"),
    [
        ("increase brightness", "brightness x1.4"),
        ("increase the brightness by 20%", "brightness x1.2"),
        ("decrease brightness by 20%", "brightness x0.8"),
        ("reduce brightness", "brightness x0.7"),
        ("brightness +20%", "brightness x1.2"),
        ("brightness -20%", "brightness x0.8"),
        ("brightness 120%", "brightness x1.2"),
        ("brightness +0.2", "brightness x1.2"),
        ("brightness to 2", "brightness x2"),
        ("brightness 50", "brightness x10"),  # clamped at 10
        ("increase contrast", "contrast x1.4"),
        ("more contrast", "contrast x1.4"),
        ("decrease contrast", "contrast x0.7"),
        ("lower the contrast by 30%", "contrast x0.7"),
        ("contrast 1.5", "contrast x1.5"),
        ("contrast: 0.5", "contrast x0.5"),
        ("high contrast", "contrast x1.5"),
        ("low-contrast", "contrast x0.6"),
        ("increase saturation", "saturation x1.4"),
        ("less saturation by 30%", "saturation x0.7"),
        ("saturation 0", "saturation x0"),
        ("saturation = 2", "saturation x2"),
        ("high saturation", "saturation x1.5"),
        ("muted colours", "saturation x0.5"),
        ("less saturated", "saturation x0.5"),
        ("washed-out", "saturation x0.5"),
        ("vivid", "saturation x1.6"),
        ("boost the colours", "saturation x1.6"),
    ],
)
def test_adjustments(prompt: str, label: str) -> None:
    assert labels(prompt) == [label]


@pytest.mark.parametrize(
    ("prompt", "label"),
    [
        ("resize to 32x24", "resize to 32x24"),
        ("resize it to 32 x 24 px", "resize to 32x24"),
        ("resize to 32 by 24", "resize to 32x24"),
        ("resize to 640×480", "resize to 640x480"),
        ("scale the image down to 20x10", "resize to 20x10"),
        ("make it 512x512", "resize to 512x512"),
        ("scale to 50%", "scale by 0.5"),
        ("scale it to 150 %", "scale by 1.5"),
        ("resize to 25%", "scale by 0.25"),
        ("scale by 200%", "scale by 2"),
        ("enlarge by 50%", "scale by 1.5"),
        ("scale it up by 50%", "scale by 1.5"),
        ("shrink by 25%", "scale by 0.75"),
        ("scale down by 40%", "scale by 0.6"),
        ("shrink to 10%", "scale by 0.1"),
        ("scale to 100000%", "scale by 16"),  # clamped
        ("half size", "scale by 0.5"),
        ("half the size", "scale by 0.5"),
        ("halve it", "scale by 0.5"),
        ("double the size", "scale by 2"),
    ],
)
def test_resize_and_scale(prompt: str, label: str) -> None:
    op = only(prompt)
    assert (op.name, op.kind, op.label) == ("resize", "canvas", label)


@pytest.mark.parametrize(
    ("prompt", "code"),
    [
        ("resize to 10000x100", "output_too_large"),  # was clamped to 4096x100, not what was asked
        ("resize to 4097x16", "output_too_large"),
        ("resize to 100x0", "invalid_value"),
        ("resize to 0x0", "invalid_value"),
    ],
)
def test_an_explicit_resize_outside_the_output_limits_is_refused(prompt: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_prompt(prompt)
    assert (caught.value.code, caught.value.param) == (code, "prompt")
    assert "each side 1-4096 px and at most 36,000,000 pixels" in caught.value.message


def test_the_largest_explicit_resize_is_accepted() -> None:
    assert only("resize to 4096x4096").label == "resize to 4096x4096"


def test_scale_past_the_limits_is_capped_by_one_factor_and_says_so() -> None:
    op = only("scale to 500%")
    assert op.label == "scale by 5"
    assert op.label_for((1024, 768)) == "scale by 4 (capped from 5: 4096 px max)"
    assert op.apply(Image.new("RGBA", (1024, 768))).size == (4096, 3072)  # the shape is kept
    assert op.label_for((100, 100)) == "scale by 5"


def test_resize_gives_the_size_asked_and_scale_is_relative() -> None:
    image = Image.new("RGBA", (64, 48), _RED)
    assert only("resize to 32x24").apply(image).size == (32, 24)
    assert only("scale to 50%").apply(image).size == (32, 24)
    assert only("half size").apply(image).size == (32, 24)
    assert only("double the size").apply(image).size == (128, 96)


@pytest.mark.parametrize(
    ("prompt", "label", "size"),
    [
        ("crop to square", "centre crop to 1:1", (48, 48)),
        ("crop it to a square", "centre crop to 1:1", (48, 48)),
        ("crop to 16:9", "centre crop to 16:9", (64, 36)),
        ("crop to 1:2", "centre crop to 1:2", (24, 48)),
    ],
)
def test_crop(prompt: str, label: str, size: tuple[int, int]) -> None:
    op = only(prompt)
    assert (op.name, op.kind, op.label) == ("crop", "canvas", label)
    assert op.apply(Image.new("RGBA", (64, 48), _RED)).size == size


@pytest.mark.parametrize(
    "prompt",
    [
        "make the background transparent",
        "background transparent",
        "transparent background",
        "remove the background",
        "remove background",
        "background removed",
        "no background",
        "cut out the product",
        "cutout",
    ],
)
def test_transparent_background_phrasings(prompt: str) -> None:
    assert names(prompt) == ["transparent_background"]


@pytest.mark.parametrize(
    ("prompt", "name"),
    [
        ("posterize", "posterize"),
        ("posterise it", "posterize"),
        ("posterized", "posterize"),
        ("solarize", "solarize"),
        ("solarised", "solarize"),
        ("auto contrast", "autocontrast"),
        ("auto-contrast", "autocontrast"),
        ("autocontrast", "autocontrast"),
        ("equalize", "autocontrast"),
        ("enhance", "autocontrast"),
        ("edges", "edges"),
        ("find the edges", "edges"),
        ("edge detection", "edges"),
        ("outline", "edges"),
        ("make a sketch", "edges"),
        ("emboss", "emboss"),
        ("embossed", "emboss"),
    ],
)
def test_effects(prompt: str, name: str) -> None:
    op = only(prompt)
    assert (op.name, op.kind) == (name, "tone")


@pytest.mark.parametrize(
    ("prompt", "label"),
    [
        ("pixelate", "pixelate (12 px blocks)"),
        ("pixelate 16", "pixelate (16 px blocks)"),
        ("pixelate with 8 px blocks", "pixelate (8 px blocks)"),
        ("pixelize 4 pixels", "pixelate (4 px blocks)"),
        ("pixelated", "pixelate (12 px blocks)"),
        ("pixelate 1", "pixelate (2 px blocks)"),  # clamped
        ("pixelate 10000", "pixelate (256 px blocks)"),  # clamped
    ],
)
def test_pixelate(prompt: str, label: str) -> None:
    assert labels(prompt) == [label]


def test_every_skill_example_parses_to_that_skill() -> None:
    """Each example the engine advertises must itself be understood."""
    for skill in SKILLS:
        for example in skill.example.split(", "):
            assert parse_prompt(example).ops, example
    for layout in LAYOUTS:
        assert parse_prompt(layout.example).layout is not None, layout.example


# --- order, overlaps, leftovers ---------------------------------------------------------------


def test_ops_come_out_in_prompt_order() -> None:
    prompt = "Sharpen, then rotate 90 degrees, make it black and white, blur radius 2 and invert"
    assert names(prompt) == ["sharpen", "rotate", "grayscale", "blur", "invert"]
    assert names("invert, then sharpen") == ["invert", "sharpen"]
    assert names("sharpen, then invert") == ["sharpen", "invert"]


def test_repeated_phrases_give_repeated_ops() -> None:
    assert labels("rotate 45, then rotate 45") == ["rotate 45° clockwise"] * 2


def test_unknown_words_are_ignored() -> None:
    plan = parse_prompt("Please, dear engine, make this lovely cat photo grayscale. Thanks!")
    assert [op.name for op in plan.ops] == ["grayscale"]


def test_prompt_is_case_insensitive() -> None:
    assert names("ROTATE 90 DEGREES COUNTERCLOCKWISE") == ["rotate"]
    assert labels("ROTATE 90 DEGREES COUNTERCLOCKWISE") == ["rotate 90° counterclockwise"]


def test_flip_horizontally_is_one_mirror_op_and_no_layout() -> None:
    plan = parse_prompt("flip horizontally")
    assert [op.label for op in plan.ops] == ["mirror (flip left-right)"]
    assert plan.layout is None


def test_flip_upside_down_is_one_vertical_flip_not_also_a_half_turn() -> None:
    plan = parse_prompt("flip upside down")
    assert [op.name for op in plan.ops] == ["flip"]


def test_increase_brightness_by_percent_is_one_op() -> None:
    # "brightness by 20%" would also match the by-value form; the earlier, longer phrase wins.
    assert labels("increase brightness by 20%") == ["brightness x1.2"]


def test_less_saturated_is_muted_not_saturate() -> None:
    assert labels("less saturated") == ["saturation x0.5"]


def test_desaturate_is_grayscale_not_saturate() -> None:
    assert names("desaturate") == ["grayscale"]


def test_auto_contrast_is_not_also_a_contrast_adjustment() -> None:
    assert names("auto contrast 2") == ["autocontrast"]


def test_resize_by_pixels_is_not_also_scale() -> None:
    assert labels("resize to 50x50") == ["resize to 50x50"]
    assert labels("resize to 50%") == ["scale by 0.5"]


def test_brightness_is_not_brighten() -> None:
    assert labels("brightness 1.5") == ["brightness x1.5"]


# --- layouts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "layout"),
    [
        ("side by side", "row"),
        ("put them side-by-side", "row"),
        ("in a row", "row"),
        ("arrange horizontally", "row"),
        ("left to right", "row"),
        ("stack vertically", "column"),
        ("stack them vertically", "column"),
        ("stacked", "column"),
        ("top to bottom", "column"),
        ("in a column", "column"),
        ("one above the other", "column"),
        ("in a grid", "grid"),
        ("make a collage", "grid"),
        ("mosaic", "grid"),
        ("tiled", "grid"),
        ("contact sheet", "grid"),
        ("combine them", "grid"),
        ("merge", "grid"),
        ("join these", "grid"),
        ("put them together", "grid"),
        ("montage", "grid"),
    ],
)
def test_layouts(prompt: str, layout: str) -> None:
    plan = parse_prompt(prompt)
    assert plan.ops == []
    assert plan.layout == layout


def test_combine_does_not_override_a_named_layout() -> None:
    assert parse_prompt("combine them side by side").layout == "row"
    assert parse_prompt("side by side, combine them").layout == "row"
    assert parse_prompt("combine them, stacked").layout == "column"


def test_a_later_named_layout_overrides_an_earlier_one() -> None:
    assert parse_prompt("side by side, no, in a grid").layout == "grid"


def test_layout_with_ops() -> None:
    plan = parse_prompt("grayscale each, then put them side by side")
    assert [op.name for op in plan.ops] == ["grayscale"]
    assert plan.layout == "row"


def test_plan_defaults() -> None:
    assert Plan().ops == [] and Plan().layout is None


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["", "   ", "a cat wearing a hat", "make it look like Monet"])
def test_unknown_prompt_is_refused_with_what_the_engine_can_do(prompt: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_prompt(prompt)
    error = caught.value
    assert error.status == 400
    assert error.code == "prompt_not_understood"
    assert error.param == "prompt"
    assert "local/pillow did not understand the prompt" in error.message
    assert repr(prompt) in error.message
    assert capabilities() in error.message
    for example in ("grayscale", "rotate 90 degrees", "blur radius 6", "crop to 16:9", "sepia"):
        assert example in error.message
    for layout in ("side by side", "stack vertically", "in a grid"):
        assert layout in error.message
    assert "mask" in error.message.lower()


def test_refusal_names_the_model_and_shortens_a_long_prompt() -> None:
    prompt = "paint " * 40
    with pytest.raises(InvalidRequest) as caught:
        parse_prompt(prompt, model="pillow-custom")
    message = caught.value.message
    assert message.startswith("pillow-custom did not understand the prompt ")
    assert repr(prompt[:57] + "...") in message
    assert prompt not in message


def test_capabilities_list_every_skill_once() -> None:
    text = capabilities()
    seen: set[str] = set()
    for skill in SKILLS:
        if skill.name in seen:
            continue
        seen.add(skill.name)
        assert text.count(skill.example) >= 1, skill.name
    assert text.count("flip vertically") == 1
