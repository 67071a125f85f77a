"""Property test: on a card of any style served by the engine, any sizing is made or refused.

Whatever the request resolves to, the engine's check either refuses it with a 400 or returns a
target whose every size is one the engine can make (within 4096 px / 36 MP).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.sizing import resolve_sizing
from imagegate.core.errors import GatewayError
from imagegate.core.request import SizingRequest
from imagegate.providers.local import limits
from imagegate.providers.local.target import output_target
from tests.catalog.test_sizing_properties import CARDS, REQUESTS

ENGINE_CARDS = [
    *CARDS,
    ModelCard.model_validate(
        {"id": "local/t", "sizing": {"style": "resolution_tier", "resolutions": ["1K", "8K", "HD"]}}
    ),
    ModelCard.model_validate(
        {
            "id": "local/r",
            "sizing": {
                "style": "aspect_ratio",
                "aspect_ratios": ["1:1", "21:9", "9:21"],
                "resolutions": ["1K", "4K", "16K"],
                "default": "21:9",
            },
        }
    ),
    ModelCard.model_validate(
        {"id": "local/s", "sizing": {"style": "openai_size", "sizes": ["8192x8192", "64x64"]}}
    ),
]


@settings(max_examples=200, deadline=None)
@given(request=REQUESTS, card=st.sampled_from(ENGINE_CARDS))
def test_any_sizing_is_made_within_the_limits_or_refused(
    request: SizingRequest, card: ModelCard
) -> None:
    try:
        target = output_target(resolve_sizing(request, card), card)
    except GatewayError as error:
        assert error.status == 400
        return
    for size, _why in target.sizes:
        assert limits.within(size)
    for side, _tier in target.tiers:
        assert 1 <= side <= limits.MAX_SIDE
