"""The size local/pillow makes: what the sizing resolved to, made or refused; one output rule.

Cards served by the engine may come from a user's config in any sizing style; whatever the
request resolves to on such a card must come back in that shape, never the input's size by
default.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.catalog import Catalog
from imagegate.catalog.sizing import resolve_sizing
from imagegate.core.errors import InvalidRequest
from imagegate.core.request import EditRequest, SizingRequest
from imagegate.providers.base import Deployment, DiscardEvents, EditJob, ProviderRegistry
from imagegate.providers.local import limits
from imagegate.providers.local.adapter import LocalProvider
from imagegate.providers.local.card import LOCAL_CARDS
from imagegate.providers.local.engine import Rendered, render
from imagegate.routing.router import Router
from imagegate.service import EditService
from tests import imaging
from tests.providers.local.test_engine import CARD, make_job, part


def local_card(**sizing: Any) -> ModelCard:
    return ModelCard.model_validate({"id": "local/custom", "sizing": sizing})


THUMBS = local_card(style="openai_size", sizes=["256x256", "512x512"])  # README's example
RATIOS = local_card(style="aspect_ratio", aspect_ratios=["1:1", "3:2", "2:3"])
TIERS = local_card(style="resolution_tier", resolutions=["0.5K", "1K", "2K"])
PRESETS = local_card(style="preset", presets={"square": "512x512", "wide": "1024x576"})


def job_for(card: ModelCard, asked: SizingRequest, prompt: str = "invert", **kw: Any) -> EditJob:
    base = make_job(kw.pop("image", imaging.png()), prompt, **kw)  # a 64x48 picture
    return EditJob(request=base.request, card=card, sizing=resolve_sizing(asked, card))


NOTHING = SizingRequest()


def made(card: ModelCard, asked: SizingRequest = NOTHING, **kw: Any) -> Rendered:
    job = job_for(card, asked, **kw)
    LocalProvider(max_concurrency=1).check(job)
    return render(job)


def refused(card: ModelCard, asked: SizingRequest) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        LocalProvider(max_concurrency=1).check(job_for(card, asked))
    assert caught.value.status == 400
    return caught.value


def size_of(rendered: Rendered) -> tuple[int, int]:
    assert imaging.decode(rendered.data).size == (rendered.width, rendered.height)
    return rendered.width, rendered.height


# --- a fixed list of sizes --------------------------------------------------------------------


def test_a_fixed_list_card_makes_a_listed_size_when_none_is_asked() -> None:
    rendered = made(THUMBS)
    assert size_of(rendered) == (256, 256)  # both are square: the first listed
    # a 64x48 picture is cropped to the square's shape, not squashed into it
    assert rendered.labels == [
        "invert colours",
        "centre crop to 1:1",
        "output 256x256 (nearest listed size)",
    ]


def test_auto_on_a_fixed_list_card_is_a_listed_size_too() -> None:
    assert size_of(made(THUMBS, SizingRequest(size="auto"))) == (256, 256)


def test_a_fixed_list_card_makes_its_default_when_it_has_one() -> None:
    card = local_card(style="openai_size", sizes=["256x256", "512x512"], default="512x512")
    rendered = made(card)
    assert size_of(rendered) == (512, 512)
    assert rendered.labels[-1] == "output 512x512 (the card's default)"


def test_the_nearest_listed_shape_wins() -> None:
    card = local_card(style="openai_size", sizes=["1024x1024", "1536x1024", "1024x1536"])
    assert size_of(made(card, image=imaging.png(90, 60))) == (1536, 1024)
    assert size_of(made(card, image=imaging.png(60, 90))) == (1024, 1536)


def test_a_named_size_is_made_exactly() -> None:
    rendered = made(THUMBS, SizingRequest(size="512x512"))
    assert size_of(rendered) == (512, 512)
    assert rendered.labels == ["invert colours", "output 512x512"]  # resized, not cropped


def test_a_listed_size_over_the_engines_limits_is_refused() -> None:
    card = local_card(style="openai_size", sizes=["8192x8192", "1024x1024"])
    error = refused(card, SizingRequest(size="8192x8192"))
    assert (error.param, error.code) == ("size", "unsupported_size")
    assert "up to 4096 px a side" in error.message
    assert size_of(made(card)) == (1024, 1024)  # the default skips what it cannot make


def test_a_card_listing_nothing_the_engine_can_make_says_what_to_send() -> None:
    card = local_card(style="openai_size", sizes=["8192x8192"])
    error = refused(card, SizingRequest())
    assert error.code == "unsupported_size"
    assert "8192x8192" in error.message


# --- aspect ratios and tiers ------------------------------------------------------------------


def test_an_aspect_ratio_card_crops_to_the_ratio_asked() -> None:
    rendered = made(RATIOS, SizingRequest(aspect_ratio="1:1"))
    assert size_of(rendered) == (48, 48)
    assert rendered.labels[-1] == "centre crop to 1:1"


def test_a_size_on_an_aspect_ratio_card_gives_its_shape() -> None:
    # size 1536x1024 resolves to the card's 3:2; before, the engine ignored it (64x48 back).
    assert size_of(made(RATIOS, SizingRequest(size="1536x1024"))) == (64, 43)


def test_an_aspect_ratio_card_with_nothing_asked_makes_its_nearest_ratio() -> None:
    rendered = made(RATIOS)  # 64x48 is 4:3, nearest 3:2
    assert size_of(rendered) == (64, 43)
    assert rendered.labels[-1] == "centre crop to 3:2 (nearest listed shape)"


def test_an_aspect_ratio_card_listing_auto_keeps_the_shape() -> None:
    card = local_card(style="aspect_ratio", aspect_ratios=["auto", "1:1"])
    assert size_of(made(card)) == (64, 48)
    assert size_of(made(card, SizingRequest(aspect_ratio="auto"))) == (64, 48)


def test_a_ratio_with_a_tier_sets_the_longer_side() -> None:
    card = local_card(style="aspect_ratio", aspect_ratios=["16:9", "9:16"], resolutions=["1K"])
    rendered = made(card, SizingRequest(aspect_ratio="9:16", resolution="1K"))
    assert size_of(rendered) == (576, 1024)
    assert rendered.labels[-1] == "output 576x1024 (resolution 1K)"


def test_a_tier_card_sets_the_longer_side() -> None:
    assert size_of(made(TIERS, SizingRequest(resolution="2K"))) == (2048, 1536)
    assert size_of(made(TIERS)) == (512, 384)  # nothing asked: the tier nearest 64 px


@pytest.mark.parametrize("tier", ["8K", "HD", "1080"])
def test_a_tier_the_engine_cannot_make_is_refused(tier: str) -> None:
    card = local_card(style="resolution_tier", resolutions=["1K", tier])
    error = refused(card, SizingRequest(resolution=tier))
    assert (error.param, error.code) == ("resolution", "unsupported_size")
    assert "NK" in error.message


# --- presets ----------------------------------------------------------------------------------


def test_a_preset_is_made_exactly_and_nothing_asked_is_the_nearest_preset() -> None:
    assert size_of(made(PRESETS, SizingRequest(image_size="wide"))) == (1024, 576)
    assert size_of(made(PRESETS, image=imaging.png(100, 60))) == (1024, 576)
    assert size_of(made(PRESETS, image=imaging.png(50, 50))) == (512, 512)


# --- local/pillow itself ----------------------------------------------------------------------


def test_local_pillow_keeps_the_edits_own_size_when_none_is_asked() -> None:
    assert size_of(made(CARD)) == (64, 48)
    assert size_of(made(CARD, SizingRequest(size="auto"))) == (64, 48)


def test_local_pillow_refuses_an_aspect_ratio_alone_and_says_what_it_takes() -> None:
    with pytest.raises(InvalidRequest) as caught:
        resolve_sizing(SizingRequest(aspect_ratio="16:9"), CARD)
    assert caught.value.param == "aspect_ratio"
    assert "size=WxH" in caught.value.message


# --- the one output rule ----------------------------------------------------------------------


def test_the_rule_scales_by_one_common_factor() -> None:
    assert limits.fit((6500, 6000)) == (4096, 3781)  # a 39 MP input kept at its size
    assert limits.fit((7000, 7000)) == (4096, 4096)
    assert limits.fit((4096, 4096)) == (4096, 4096)
    assert limits.fit((40000, 1)) == (4096, 1)
    assert limits.fitted_note((4096, 3781)) == "output 4096x3781 (scaled to fit 4096 px / 36 MP)"


def test_an_edit_that_keeps_an_oversized_input_is_scaled_to_fit_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real case (a 6500x6000 PNG made grayscale) with the limits scaled down 100-fold.
    monkeypatch.setattr(limits, "MAX_SIDE", 41)
    monkeypatch.setattr(limits, "MAX_OUTPUT_PIXELS", 3600)
    rendered = render(make_job(imaging.png(65, 60), "grayscale"))
    assert size_of(rendered) == (41, 38)
    assert rendered.labels == ["grayscale", "output 41x38 (scaled to fit 41 px / 0.0036 MP)"]


def test_an_explicit_size_over_the_limits_stays_a_400() -> None:
    card = local_card(style="pixels", custom={"min_side": 1, "max_side": 10000})
    error = refused(card, SizingRequest(size="5000x5000"))
    assert (error.param, error.code) == ("size", "unsupported_size")


# --- through the service: a user's card, and refusals before a stream opens -------------------


def local_service(*cards: dict[str, Any]) -> EditService:
    registry = ProviderRegistry()
    registry.register(LocalProvider(max_concurrency=1))
    return EditService(
        Catalog.build(list(cards), shipped=LOCAL_CARDS),
        registry,
        Router([Deployment(provider="local")]),
        timeout_seconds=30,
    )


def test_the_readmes_thumbs_card_answers_a_listed_size() -> None:
    service = local_service(
        {
            "id": "local/pillow-thumbs",
            "edit": {"supported": True, "max_reference_images": 1},
            "sizing": {"style": "openai_size", "sizes": ["256x256", "512x512"]},
        }
    )
    request = EditRequest(
        model="local/pillow-thumbs", prompt="invert", images=(part(imaging.png()),)
    )
    result = asyncio.run(service.run(service.prepare(request), DiscardEvents()))
    assert (result.images[0].width, result.images[0].height) == (256, 256)
    assert imaging.decode(result.images[0].raw()).size == (256, 256)


@pytest.mark.parametrize(
    ("prompt", "code"),
    [
        (", ".join(["emboss"] * 9), "operation_too_costly"),
        (", ".join(["invert"] * 33), "too_many_operations"),
    ],
)
def test_a_costly_stream_is_refused_by_prepare_before_it_opens(prompt: str, code: str) -> None:
    service = local_service()
    request = EditRequest(
        model="local/pillow", prompt=prompt, images=(part(imaging.png()),), stream=True
    )
    with pytest.raises(InvalidRequest) as caught:
        service.prepare(request)
    assert caught.value.code == code
