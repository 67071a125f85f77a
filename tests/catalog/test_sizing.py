"""Sizing translation between styles: lossless where it can be, else a 400 naming the options."""

from __future__ import annotations

import pytest

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.sizing import ResolvedSizing, resolve_sizing
from imagegate.core.errors import InvalidRequest
from imagegate.core.request import SizingRequest


def card(**sizing) -> ModelCard:
    return ModelCard.model_validate({"id": "acme/model", "sizing": sizing})


OPENAI = card(style="openai_size", sizes=["1024x1024", "1536x1024", "1024x1536", "auto"])
OPENAI_CUSTOM = card(
    style="openai_size",
    sizes=["1024x1024", "auto"],
    custom={
        "min_side": 16,
        "max_side": 3840,
        "multiple_of": 16,
        "max_pixels": 8_294_400,
        "min_ratio": 1 / 3,
        "max_ratio": 3,
    },
)
PIXELS = card(style="pixels", custom={"min_side": 64, "max_side": 2048, "multiple_of": 16})
RATIO = card(
    style="aspect_ratio",
    aspect_ratios=["auto", "1:1", "3:2", "2:3", "16:9", "21:9"],
    resolutions=["1K", "2K", "4K"],
)
TIER = card(style="resolution_tier", resolutions=["1K", "2K", "4K"])
PRESET = card(
    style="preset",
    presets={
        "square_hd": "1024x1024",
        "square": "512x512",
        "landscape_4_3": "1024x768",
        "portrait_16_9": "576x1024",
        "auto": "auto",
    },
)
PRESET_CUSTOM = card(
    style="preset", presets={"square_hd": "1024x1024"}, custom={"min_side": 256, "max_side": 4096}
)


@pytest.mark.parametrize(
    ("model", "asked", "expected"),
    [
        (OPENAI, SizingRequest(), ResolvedSizing()),
        (OPENAI, SizingRequest(size="1536x1024"), ResolvedSizing(size="1536x1024")),
        (OPENAI, SizingRequest(size="auto"), ResolvedSizing(size="auto")),
        (OPENAI, SizingRequest(width=1024, height=1536), ResolvedSizing(size="1024x1536")),
        (OPENAI, SizingRequest(aspect_ratio="3:2"), ResolvedSizing(size="1536x1024")),
        (OPENAI, SizingRequest(aspect_ratio="1.5:1"), ResolvedSizing(size="1536x1024")),
        (OPENAI_CUSTOM, SizingRequest(size="2048x1152"), ResolvedSizing(size="2048x1152")),
        (PIXELS, SizingRequest(size="512x768"), ResolvedSizing(width=512, height=768)),
        (PIXELS, SizingRequest(width=64, height=2048), ResolvedSizing(width=64, height=2048)),
        (PIXELS, SizingRequest(size="auto"), ResolvedSizing()),
        (RATIO, SizingRequest(size="1536x1024"), ResolvedSizing(aspect_ratio="3:2")),
        (
            RATIO,
            SizingRequest(size="1920x1080", resolution="2K"),
            ResolvedSizing(aspect_ratio="16:9", resolution="2K"),
        ),
        (RATIO, SizingRequest(aspect_ratio="21:9"), ResolvedSizing(aspect_ratio="21:9")),
        (RATIO, SizingRequest(image_size="4k"), ResolvedSizing(resolution="4K")),
        (RATIO, SizingRequest(aspect_ratio="auto"), ResolvedSizing(aspect_ratio="auto")),
        (
            RATIO,
            SizingRequest(aspect_ratio="match_input_image", resolution="1K"),
            ResolvedSizing(aspect_ratio="auto", resolution="1K"),
        ),
        (TIER, SizingRequest(resolution="2k"), ResolvedSizing(resolution="2K")),
        (TIER, SizingRequest(image_size="4K"), ResolvedSizing(resolution="4K")),
        (PRESET, SizingRequest(image_size="square"), ResolvedSizing(preset="square")),
        (PRESET, SizingRequest(size="1024x768"), ResolvedSizing(preset="landscape_4_3")),
        (PRESET, SizingRequest(aspect_ratio="9:16"), ResolvedSizing(preset="portrait_16_9")),
        (PRESET, SizingRequest(size="auto"), ResolvedSizing(preset="auto")),
        (PRESET_CUSTOM, SizingRequest(size="1024x1024"), ResolvedSizing(preset="square_hd")),
        (PRESET_CUSTOM, SizingRequest(size="2000x1000"), ResolvedSizing(width=2000, height=1000)),
    ],
)
def test_lossless_translations(
    model: ModelCard, asked: SizingRequest, expected: ResolvedSizing
) -> None:
    assert resolve_sizing(asked, model) == expected


@pytest.mark.parametrize(
    ("model", "asked", "param", "needle"),
    [
        (OPENAI, SizingRequest(size="1000x1000"), "size", "1024x1024, 1536x1024"),
        (OPENAI, SizingRequest(aspect_ratio="16:9"), "aspect_ratio", "no single size"),
        (OPENAI, SizingRequest(resolution="2K"), "resolution", "It takes size"),
        (OPENAI_CUSTOM, SizingRequest(size="1000x1000"), "size", "multiples of 16"),
        (OPENAI_CUSTOM, SizingRequest(size="3840x512"), "size", "ratio must be at most 3"),
        (PIXELS, SizingRequest(size="4096x4096"), "size", "between 64 and 2048"),
        (PIXELS, SizingRequest(aspect_ratio="16:9"), "aspect_ratio", "without pixels"),
        (PIXELS, SizingRequest(resolution="1K"), "resolution", "It takes size=WxH"),
        (RATIO, SizingRequest(size="1000x700"), "size", "10:7"),
        (RATIO, SizingRequest(aspect_ratio="5:4"), "aspect_ratio", "1:1, 3:2"),
        (RATIO, SizingRequest(resolution="8K"), "resolution", "1K, 2K, 4K"),
        (RATIO, SizingRequest(image_size="square_hd"), "image_size", "neither a preset"),
        (TIER, SizingRequest(size="1024x1024"), "size", "It takes resolution"),
        (TIER, SizingRequest(aspect_ratio="1:1"), "aspect_ratio", "It takes resolution"),
        (PRESET, SizingRequest(size="800x800"), "size", "square_hd (1024x1024)"),
        (PRESET, SizingRequest(aspect_ratio="1:1"), "aspect_ratio", "several presets"),
        (PRESET, SizingRequest(resolution="2K"), "resolution", "It takes image_size"),
    ],
)
def test_refusals_say_what_the_model_takes(
    model: ModelCard, asked: SizingRequest, param: str, needle: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        resolve_sizing(asked, model)
    assert caught.value.param == param
    assert needle in caught.value.message
    assert "acme/model" in caught.value.message


@pytest.mark.parametrize(
    "asked",
    [
        SizingRequest(size="1024x1024", width=512, height=512),
        SizingRequest(size="1024x1024", aspect_ratio="16:9"),
        SizingRequest(width=100),
        SizingRequest(resolution="1K", image_size="2K"),
    ],
)
def test_contradictions_are_refused(asked: SizingRequest) -> None:
    with pytest.raises(InvalidRequest):
        resolve_sizing(asked, RATIO)


def test_resolved_pixels() -> None:
    assert ResolvedSizing(size="1536x1024").pixels == (1536, 1024)
    assert ResolvedSizing(width=5, height=6).pixels == (5, 6)
    assert ResolvedSizing(size="auto").pixels is None


@pytest.mark.parametrize(
    ("asked", "param"),
    [
        (SizingRequest(size="64x0", aspect_ratio="16:9"), "size"),  # was a ZeroDivisionError
        (SizingRequest(size="0x0"), "size"),
        (SizingRequest(size="garbage"), "size"),  # was silently ignored
        (SizingRequest(size=""), "size"),
        (SizingRequest(size="1" * 5000 + "x1"), "size"),  # int() would raise on 5,000 digits
        (SizingRequest(size="١٦x٩"), "size"),
        (SizingRequest(width=0, height=5, aspect_ratio="1:1"), "width"),
        (SizingRequest(width=5, height=-1), "height"),
        (SizingRequest(width=10**12, height=5), "width"),
        (SizingRequest(aspect_ratio="0:1"), "aspect_ratio"),
        (SizingRequest(aspect_ratio="nan:1"), "aspect_ratio"),
        (SizingRequest(aspect_ratio="1e9:1"), "aspect_ratio"),
        (SizingRequest(aspect_ratio="16:9\n"), "aspect_ratio"),
        (SizingRequest(resolution=""), "resolution"),
    ],
)
def test_zero_negative_huge_and_garbage_values_are_400s_on_every_style(
    asked: SizingRequest, param: str
) -> None:
    for model in (OPENAI, OPENAI_CUSTOM, PIXELS, RATIO, TIER, PRESET, PRESET_CUSTOM):
        with pytest.raises(InvalidRequest) as caught:
            resolve_sizing(asked, model)
        assert caught.value.status == 400
        assert caught.value.param == param, model.sizing.style


@pytest.mark.parametrize(
    "sizing",
    [
        {"style": "openai_size", "sizes": ["1024x0"]},
        {"style": "openai_size", "sizes": ["big"]},
        {"style": "preset", "presets": {"flat": "0x512"}},
        {"style": "aspect_ratio", "aspect_ratios": ["16:0"]},
        {"style": "aspect_ratio", "aspect_ratios": ["wide"]},
    ],
)
def test_a_card_with_a_zero_or_garbage_size_is_a_config_error(sizing: dict[str, object]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        card(**sizing)
