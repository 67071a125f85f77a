"""Property tests: whatever sizing fields a client sends, resolution answers or refuses with a 400.

A request must never reach arithmetic with a zero, negative or absurd side (a 500 on
``size=64x0`` with ``aspect_ratio=16:9`` was the bug that started this). Examples are bounded
so the suite stays fast.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.sizing import ResolvedSizing, resolve_sizing
from imagegate.core.errors import GatewayError
from imagegate.core.request import SizingRequest
from imagegate.providers.local.card import LOCAL_CARDS
from tests.catalog.test_sizing import (
    OPENAI,
    OPENAI_CUSTOM,
    PIXELS,
    PRESET,
    PRESET_CUSTOM,
    RATIO,
    TIER,
)

CARDS = [
    OPENAI,
    OPENAI_CUSTOM,
    PIXELS,
    RATIO,
    TIER,
    PRESET,
    PRESET_CUSTOM,
    ModelCard.model_validate(LOCAL_CARDS[0]),
    ModelCard.model_validate(
        {"id": "local/thumbs", "sizing": {"style": "openai_size", "sizes": ["256x256", "512x512"]}}
    ),
]

# Numbers as a client might spell them: ordinary, zero, negative, huge, and other scripts' digits.
_INTS = st.one_of(
    st.integers(min_value=-5, max_value=5),
    st.integers(min_value=1, max_value=5000),
    st.integers(min_value=-(10**30), max_value=10**30),
)
_NUMBER_TEXT = st.one_of(
    _INTS.map(str),
    st.sampled_from(["0", "00", "0.0", "1.5", "1e9", "nan", "inf", "-0", "١٦", "²", "٣", "1_000"]),
    st.text(alphabet="0123456789.", min_size=1, max_size=12),
    st.just("9" * 5000),
)
_SIZES = st.one_of(
    st.none(),
    st.just("auto"),
    st.builds(lambda w, h: f"{w}x{h}", _NUMBER_TEXT, _NUMBER_TEXT),
    st.sampled_from(["1024x1024", "1536x1024", "64x0", "0x0", "x", "", "AUTO", "1024x1024\n"]),
    st.text(max_size=20),
)
_RATIOS = st.one_of(
    st.none(),
    st.sampled_from(["auto", "match_input_image", "16:9", "3:2", "1:1", "0:1", "1:0", "-1:1"]),
    st.builds(lambda w, h: f"{w}:{h}", _NUMBER_TEXT, _NUMBER_TEXT),
    st.text(max_size=20),
)
_TIERS = st.one_of(
    st.none(),
    st.sampled_from(["1K", "2k", "4K", "8K", "0K", "", " ", "K", "0.5K", "²K", "auto"]),
    st.builds(lambda n: f"{n}K", _NUMBER_TEXT),
    st.text(max_size=12),
)
_IMAGE_SIZES = st.one_of(
    _TIERS, st.sampled_from(["square_hd", "square", "landscape_4_3", "portrait_16_9"])
)
_SIDES = st.one_of(st.none(), _INTS)

REQUESTS = st.builds(
    SizingRequest,
    size=_SIZES,
    width=_SIDES,
    height=_SIDES,
    aspect_ratio=_RATIOS,
    resolution=_TIERS,
    image_size=_IMAGE_SIZES,
)


@settings(max_examples=200, deadline=None)
@given(request=REQUESTS, card=st.sampled_from(CARDS))
def test_any_sizing_request_resolves_or_is_a_gateway_error(
    request: SizingRequest, card: ModelCard
) -> None:
    try:
        resolved = resolve_sizing(request, card)
    except GatewayError as error:
        assert error.status == 400
        assert error.message
        return
    assert isinstance(resolved, ResolvedSizing)
    if resolved.pixels is not None:
        width, height = resolved.pixels
        assert width >= 1 and height >= 1


@settings(max_examples=200, deadline=None)
@given(
    width=_INTS,
    height=_INTS,
    ratio=_RATIOS,
    card=st.sampled_from(CARDS),
)
def test_pixels_with_a_ratio_never_divide_by_zero(
    width: int, height: int, ratio: str | None, card: ModelCard
) -> None:
    # The shape of the reported bug, searched harder: a size with a zero side plus a ratio.
    for request in (
        SizingRequest(size=f"{width}x{height}", aspect_ratio=ratio),
        SizingRequest(width=width, height=height, aspect_ratio=ratio),
    ):
        try:
            resolve_sizing(request, card)
        except GatewayError as error:
            assert error.status == 400
