"""What local/pillow refuses before any work: costly prompts, and contradictions in the request."""

from __future__ import annotations

import pytest

from imagegate.core.errors import InvalidRequest
from imagegate.providers.local.adapter import LocalProvider
from imagegate.providers.local.engine import render
from tests import imaging
from tests.providers.local.test_engine import make_job


def refusal(prompt: str, **options: object) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        LocalProvider(max_concurrency=1).check(make_job(imaging.png(), prompt, **options))  # type: ignore[arg-type]
    return caught.value


def accepted(prompt: str, **options: object) -> None:
    LocalProvider(max_concurrency=1).check(make_job(imaging.png(), prompt, **options))  # type: ignore[arg-type]


# --- the budget -------------------------------------------------------------------------------


def test_thirty_two_operations_pass_and_thirty_three_do_not() -> None:
    accepted(", ".join(["invert"] * 32))
    error = refusal(", ".join(["invert"] * 33))
    assert (error.status, error.param, error.code) == (400, "prompt", "too_many_operations")
    assert "at most 32 operations" in error.message and "asks for 33" in error.message


def test_filters_are_capped_at_eight() -> None:
    accepted("blur, sharpen, find edges, emboss, pixelate, blur, sharpen, emboss")
    error = refusal("blur, sharpen, find edges, emboss, pixelate, blur, sharpen, emboss, sharpen")
    assert (error.param, error.code) == ("prompt", "operation_too_costly")
    assert "at most 8 filters (blur, sharpen, edge detect, emboss, pixelate)" in error.message
    assert "asks for 9" in error.message


def test_the_total_blur_radius_is_capped() -> None:
    accepted("blur radius 100, blur radius 100")
    error = refusal("blur radius 100, blur radius 100, blur radius 1")
    assert error.code == "operation_too_costly"
    assert "total radius of at most 200" in error.message and "asks for 201" in error.message


def test_free_rotations_are_capped_and_quarter_turns_are_not() -> None:
    accepted(", ".join(["rotate 90"] * 20))
    accepted("rotate 10, rotate 20, rotate 30, rotate 40")
    error = refusal("rotate 10, rotate 20, rotate 30, rotate 40, rotate 50")
    assert error.code == "operation_too_costly"
    assert "other than multiples of 90° at most 4 times" in error.message


def test_resamples_are_capped() -> None:
    accepted(", ".join(["half size", "double the size"] * 4))
    error = refusal(", ".join(["half size", "double the size"] * 4) + ", resize to 64x48")
    assert error.code == "operation_too_costly"
    assert "at most 8 times" in error.message and "asks for 9" in error.message


# --- the same request said two ways -----------------------------------------------------------


@pytest.mark.parametrize("prompt", ["make the background transparent", "remove the background"])
def test_a_transparent_background_in_words_with_jpeg_is_the_fields_400(prompt: str) -> None:
    error = refusal(prompt, output_format="jpeg")
    assert (error.status, error.param, error.code) == (400, "prompt", "conflicting_parameters")
    assert "png or webp" in error.message


def test_a_transparent_background_in_words_with_background_opaque_is_a_400() -> None:
    error = refusal("remove the background", background="opaque")
    assert error.code == "conflicting_parameters"
    assert "background=opaque" in error.message


@pytest.mark.parametrize("fmt", ["png", "webp", None])
def test_a_transparent_background_in_words_with_an_alpha_format_is_fine(fmt: str | None) -> None:
    accepted("remove the background", output_format=fmt)
    rendered = render(make_job(imaging.png(), "remove the background", output_format=fmt))  # type: ignore[arg-type]
    assert rendered.background == "transparent"


def test_jpeg_without_transparency_asked_is_fine() -> None:
    accepted("grayscale", output_format="jpeg")


# --- the work the whole prompt does, known from the headers -----------------------------------


def header_only(width: int, height: int) -> bytes:
    from tests.providers.local.test_engine import _header_only_png

    return _header_only_png(width, height)


def check_on(images: list[bytes], prompt: str) -> None:
    LocalProvider(max_concurrency=1).check(make_job(images, prompt))


def test_work_adds_passes_at_the_size_each_operation_sees() -> None:
    from imagegate.providers.local.budget import work
    from imagegate.providers.local.prompt import parse_prompt

    ops = parse_prompt("double the size, invert, rotate 45").ops
    # invert (a tone op) runs first at 1 MP, then the scale (x2) at 1 MP, then the rotation
    # (x3) at the 4 MP the scale made (a little more: the rotated canvas is bounded from above).
    assert work(ops, (1000, 1000)) == pytest.approx(1 + 2 + 3 * 4)


def test_a_36_mp_input_takes_eleven_plain_operations_not_twelve() -> None:
    # Headers only: the check decodes no pixel, so these need no pixel data behind them.
    big = header_only(6000, 6000)
    check_on([big], ", ".join(["invert"] * 11))
    with pytest.raises(InvalidRequest) as caught:
        check_on([big], ", ".join(["invert"] * 12))
    error = caught.value
    assert (error.param, error.code) == ("prompt", "operation_too_costly")
    assert "at most 400 megapixel-passes" in error.message
    assert "6000x6000 pixels needs 432" in error.message


def test_several_images_count_at_their_combined_canvas() -> None:
    images = [header_only(3000, 3000)] * 4  # a 2x2 grid shrunk to 4096x4096 (16.8 MP)
    check_on(images, ", ".join(["invert"] * 23))
    with pytest.raises(InvalidRequest) as caught:
        check_on(images, ", ".join(["invert"] * 24))
    assert "4096x4096 pixels needs 403" in caught.value.message


def test_a_small_image_takes_the_whole_count_budget() -> None:
    check_on([header_only(2000, 1500)], ", ".join(["blur"] * 8 + ["invert"] * 24))
