"""The budget hold (``core/ceiling.py``) is a true upper bound, and not an absurd one.

For every shipped card and a grid of valid requests (every size, tier, quality and aspect ratio
the card takes, n at both ends, one and the most reference images, a prompt at the card's limit in
4-byte characters), no cost the service can compute from what the provider may report exceeds
``cost_ceiling(job)``. What a provider may report is written here from the published facts, apart
from the cards: OpenAI's output-token table and gpt-image-2 calculator, Gemini's tokens per tier
and output-token limit, BFL's credits per megapixel, xAI's and Replicate's prices per image.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagegate.app import build_catalog
from imagegate.catalog.cards import ModelCard, SizingStyle, parse_size
from imagegate.catalog.catalog import Catalog, CatalogError
from imagegate.catalog.validate import validate_request
from imagegate.config import Settings
from imagegate.core.ceiling import cap_images, cost_ceiling, round_up
from imagegate.core.errors import GatewayError
from imagegate.core.pricing import compute_cost
from imagegate.core.request import EditRequest, ImageInput, SizingRequest
from imagegate.core.result import Usage
from imagegate.providers.base import EditJob
from imagegate.providers.replicate.answers import stated_cost
from imagegate.wire.body import check_image
from imagegate.wire.limits import WireLimits
from tests import imaging

CATALOG = build_catalog(
    Settings(
        azure_openai_endpoint="https://res.openai.azure.com",
        azure_openai_api_key="k",
        azure_deployments=[
            {"id": "azure/img2", "deployment": "img", "upstream_model": "gpt-image-2"}
        ],
    )
)
CARDS = [card for card in CATALOG.cards() if card.edit.supported]

# -- what providers publish (not read from the cards) ------------------------------------------
# OpenAI: output image tokens per image for gpt-image-1, 1.5 and mini, by quality and size.
GPT_IMAGE_1_TOKENS = {
    "low": {(1024, 1024): 272, (1024, 1536): 408, (1536, 1024): 400},
    "medium": {(1024, 1024): 1056, (1024, 1536): 1584, (1536, 1024): 1568},
    "high": {(1024, 1024): 4160, (1024, 1536): 6240, (1536, 1024): 6208},
}
GPT_IMAGE_2_Q = {"low": 16, "medium": 48, "high": 96}  # OpenAI's gpt-image-2 calculator
PARTIAL_TOKENS = 100  # each streamed partial image
HIGH_FIDELITY_TOKENS = 6240  # input_fidelity=high, held as one more large high-quality image
# Gemini: image tokens per output image by tier; the output-token limit (image + text + thoughts).
GEMINI_TOKENS = {
    "gemini-2.5-flash-image": {"1K": 1290},
    "gemini-3-pro-image-preview": {"1K": 1120, "2K": 1120, "4K": 2000},
    "gemini-3.1-flash-image-preview": {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520},
}
GEMINI_OUTPUT_LIMIT = 32768
# BFL, in credits ($0.01): Kontext per image; FLUX.2 first MP, then each further output MP and
# each input MP.
BFL_CREDITS = {
    "flux-kontext-pro": (4, 0),
    "flux-kontext-max": (8, 0),
    "flux-2-pro": (3, 1.5),
    "flux-2-max": (7, 3),
}
XAI_PRICES = (0.02, 0.002)  # per output image, per input image


# -- the grid ----------------------------------------------------------------------------------
def _image(width: int, height: int) -> ImageInput:
    return check_image(imaging.png(width, height), "image[0]", None, WireLimits())


SMALL = _image(64, 48)
LARGE = _image(3000, 2000)  # 6 MP: more tiles and input megapixels than any default


def sizings(card: ModelCard) -> list[SizingRequest]:
    spec = card.sizing
    out = [SizingRequest()]
    if spec.style is SizingStyle.OPENAI_SIZE:
        out += [SizingRequest(size=size) for size in spec.sizes]
    if spec.style is SizingStyle.ASPECT_RATIO:
        ratios = [None, *spec.aspect_ratios]
        tiers = [None, *spec.resolutions]
        out += [SizingRequest(aspect_ratio=r, resolution=t) for r in ratios for t in tiers]
    if spec.style is SizingStyle.RESOLUTION_TIER:
        out += [SizingRequest(resolution=tier) for tier in spec.resolutions]
    if spec.style is SizingStyle.PRESET:
        out += [SizingRequest(image_size=name) for name in spec.presets]
    if spec.custom is not None:
        out += [SizingRequest(size=f"{w}x{h}") for w, h in _custom_extremes(card)]
    return out


def _custom_extremes(card: ModelCard) -> list[tuple[int, int]]:
    """The largest outputs the card's custom rule allows: widest, tallest and squarest."""
    rule = card.sizing.custom
    assert rule is not None
    step = rule.multiple_of
    found = []
    for ratio in (Fraction(1), Fraction(16, 9), Fraction(9, 16), Fraction(5, 2), Fraction(2, 5)):
        for width in range(rule.max_side - rule.max_side % step, rule.min_side - 1, -step):
            height = int(width / ratio) // step * step
            if height >= rule.min_side and rule.problem(width, height) is None:
                found.append((width, height))
                break
    found.append((1024, 1024))
    return [size for size in found if rule.problem(*size) is None]


def qualities(card: ModelCard) -> list[str | None]:
    return [None, "auto", "low", "medium", "high"] if card.pricing.tier_by == "quality" else [None]


def jobs(card: ModelCard) -> Iterator[EditJob]:
    long_prompt = "🎨" * card.max_prompt_chars  # 4 UTF-8 bytes each
    refs = sorted({1, card.edit.max_reference_images})
    for sizing in sizings(card):
        for n in sorted({card.n.min, card.n.max}):
            for count in refs:
                for quality in qualities(card):
                    for images in ((SMALL,) * count, (LARGE,) * count):
                        request = EditRequest(
                            model=card.id,
                            prompt=long_prompt,
                            images=images,
                            mask=images[0] if card.edit.mask else None,
                            n=n,
                            sizing=sizing,
                            stream=n == 1 and card.partial_images,
                            partial_images=3 if n == 1 and card.partial_images else 0,
                            input_fidelity="high",
                        )
                        request = replace(request, output=replace(request.output, quality=quality))
                        try:
                            resolved = validate_request(request, card)
                        except GatewayError:
                            continue  # not a valid request for this card (a ratio x tier pair)
                        yield EditJob(request=request, card=card, sizing=resolved)


# -- what the provider can report, at worst ----------------------------------------------------
def outputs(job: EditJob) -> list[tuple[int, int]]:
    """Every size one output image can come back as: the size asked, else what the card's style
    makes without one (its listed sizes and presets; the input's own size where the model keeps
    it; any size its custom rule allows where "auto" may pick one)."""
    asked = job.sizing.pixels
    if asked is None and job.sizing.preset is not None:
        asked = parse_size(job.card.sizing.presets[job.sizing.preset])
    if asked is not None:
        return [asked]
    spec = job.card.sizing
    found = [p for s in [*spec.sizes, *spec.presets.values()] if (p := parse_size(s))]
    inputs = [(im.width, im.height) for im in job.request.images]
    if spec.style is SizingStyle.PIXELS:  # BFL FLUX.2: "0 or omitted = the input's size"
        found += [*inputs, (1024, 1024)]
    elif spec.style is SizingStyle.PRESET:  # fal: the default keeps the input's size
        found += inputs
    elif spec.custom is not None:  # "auto" may be any size the rule allows
        found += _custom_extremes(job.card)
        if spec.custom.max_pixels:
            found.append((spec.custom.max_pixels, 1))  # only the area is priced
    return found or [(1024, 1024)]


def tiles(image: ImageInput, side: int) -> int:
    return math.ceil(image.width / side) * math.ceil(image.height / side)


def worst_usages(job: EditJob) -> list[Usage]:
    card, request = job.card, job.request
    n, model = request.n, card.upstream_model
    prompt_tokens = len(request.prompt.encode("utf-8"))
    pictures = [*request.images, *([request.mask] if request.mask else [])]
    found = [Usage()]
    if model.startswith("gpt-image"):
        quality = request.output.quality if request.output.quality in GPT_IMAGE_1_TOKENS else None
        per_image = max(
            _gpt_image_tokens(model, q, size) for q in _qs(quality) for size in outputs(job)
        )
        image_out = n * per_image + PARTIAL_TOKENS * request.partial_images
        fidelity = (
            HIGH_FIDELITY_TOKENS
            if request.input_fidelity == "high" or model == "gpt-image-2"
            else 0
        )
        image_in = sum(85 + 170 * tiles(im, 512) + fidelity for im in pictures)
        found += _token_variants(prompt_tokens, image_in, image_out, 0)
    if card.provider == "gemini":
        table = GEMINI_TOKENS[model]
        tier = job.sizing.resolution
        image_out = table[tier] if tier in table else max(table.values())
        per_in = (lambda im: 258 * tiles(im, 768)) if "2.5" in model else (lambda im: 1120)
        image_in = sum(per_in(im) for im in request.images)
        text_out = GEMINI_OUTPUT_LIMIT - image_out  # thoughts and text: what the limit leaves
        one_call = _token_variants(prompt_tokens, image_in, image_out, text_out)
        found += [_times(usage, n) for usage in one_call]  # n calls, each billed in full
    return found


def _qs(quality: str | None) -> list[str]:
    return [quality] if quality is not None else list(GPT_IMAGE_1_TOKENS)


def _gpt_image_tokens(model: str, quality: str, size: tuple[int, int]) -> int:
    width, height = size
    by_area = math.ceil(GPT_IMAGE_1_TOKENS[quality][(1024, 1024)] * width * height / 1024**2)
    if model != "gpt-image-2":
        return GPT_IMAGE_1_TOKENS[quality].get(size, by_area)
    q = GPT_IMAGE_2_Q[quality]
    long, short = max(size), min(size)
    s = (2 * q * short + long) // (2 * long)
    calculator = -(-(q * s * (2_000_000 + width * height)) // 4_000_000)
    return max(calculator, by_area)  # the gateway's fake bills gpt-image-2 by area


def _token_variants(text_in: int, image_in: int, image_out: int, text_out: int) -> list[Usage]:
    split = Usage(
        input_tokens=text_in + image_in,
        output_tokens=image_out + text_out,
        input_text_tokens=text_in,
        input_image_tokens=image_in,
        output_image_tokens=image_out,
        output_text_tokens=text_out,
    )
    unsplit = Usage(input_tokens=text_in + image_in, output_tokens=image_out)
    return [split, unsplit]


def _times(usage: Usage, n: int) -> Usage:
    return Usage(**{k: (v * n if isinstance(v, int) else v) for k, v in asdict(usage).items()})


def stated_costs(job: EditJob) -> list[float]:
    card, request = job.card, job.request
    n, model = request.n, card.upstream_model
    if card.provider == "bfl":
        first, extra = BFL_CREDITS[model]
        in_mp = sum(max(1, math.ceil(im.width * im.height / 1e6)) for im in request.images)
        costs = []
        for width, height in outputs(job):
            out_mp = max(1, math.ceil(width * height / 1e6))
            task = first if not extra else first + extra * (out_mp - 1) + extra * in_mp
            costs.append(n * task / 100)
        return costs
    if card.provider == "xai":
        return [n * XAI_PRICES[0] + len(request.images) * XAI_PRICES[1]]
    if card.provider == "replicate":
        one = stated_cost(card, 1, len(request.images)) or 0.0
        return [n * one]  # n predictions of one image, or one of n: never more per image
    return []


def worst_cost(job: EditJob) -> float:
    request = job.request
    tier = _tier(job)
    costs = []
    for usage in worst_usages(job):
        for size in outputs(job):
            costs.append(
                compute_cost(
                    job.card.pricing,
                    usage,
                    output_sizes=[size] * request.n,
                    input_images=len(request.images),
                    tier=tier,
                )
            )
    return max(costs + stated_costs(job))


def _tier(job: EditJob) -> str | None:
    by = job.card.pricing.tier_by
    if by == "quality":
        return job.request.output.quality
    if by == "resolution":
        return job.sizing.resolution
    if by == "size":
        pixels = job.sizing.pixels
        return f"{pixels[0]}x{pixels[1]}" if pixels else job.sizing.size
    return None


# -- the tests ---------------------------------------------------------------------------------
@pytest.mark.parametrize("card", CARDS, ids=lambda card: card.id)
def test_the_ceiling_bounds_every_cost_the_provider_can_report(card: ModelCard) -> None:
    checked = 0
    for job in jobs(card):
        ceiling, worst = cost_ceiling(job), worst_cost(job)
        assert ceiling >= worst, (job.sizing, job.request.n, len(job.request.images), worst)
        if card.pricing.is_free:
            assert ceiling == 0
        else:
            assert ceiling > 0
        checked += 1
    assert checked >= 4  # the grid reached this card


def typical_cost(job: EditJob) -> float:
    """What the edit usually costs: at the size asked (1024x1024 when none), high quality when
    none is named, Gemini at 1K; no thinking, no text out, inputs at their published cost."""
    card, request = job.card, job.request
    asked = job.sizing.pixels or (1024, 1024)
    if job.sizing.preset and (preset := parse_size(card.sizing.presets[job.sizing.preset])):
        asked = preset
    usage = Usage()
    model = card.upstream_model
    prompt_tokens = len(request.prompt.encode("utf-8"))
    if model.startswith("gpt-image"):
        quality = request.output.quality if request.output.quality in GPT_IMAGE_1_TOKENS else "high"
        fidelity = HIGH_FIDELITY_TOKENS if model == "gpt-image-2" else 0
        image_in = sum(85 + 170 * tiles(im, 512) + fidelity for im in request.images)
        out = request.n * _gpt_image_tokens(model, quality, asked)
        usage = _token_variants(prompt_tokens, image_in, out, 0)[0]
    elif card.provider == "gemini":
        out = GEMINI_TOKENS[model].get(job.sizing.resolution or "1K", 1290)
        usage = _times(
            _token_variants(prompt_tokens, 560 * len(request.images), out, 0)[0], request.n
        )
    return compute_cost(
        card.pricing,
        usage,
        output_sizes=[asked] * request.n,
        input_images=len(request.images),
        tier=_tier(job),
    )


# The hold over the typical cost, at most. List prices (per image, per tier, per megapixel): 3x
# (the dearest tier when none is named: 2x for dall-e-2 at 256 px, 1.8x for Gemini 3 Pro at 4K;
# whole started megapixels: 2x just past 1 MP). Token prices: 6x, since a thinking model is held
# at its output-token limit (32,768 text tokens), which a typical edit does not spend.
RATIO_LIST = 3.0
RATIO_TOKENS = 6.0


@pytest.mark.parametrize("card", [c for c in CARDS if not c.pricing.is_free], ids=lambda c: c.id)
def test_the_ceiling_is_not_absurd(card: ModelCard) -> None:
    checked = 0
    for job in jobs(card):
        request = job.request
        if request.images[0] is LARGE or request.n != 1 or len(request.images) != 1:
            continue  # the typical edit: n=1, one small input
        auto_any_size = card.sizing.style is SizingStyle.OPENAI_SIZE and card.sizing.custom
        if auto_any_size and card.pricing.grows_with_pixels and not job.sizing.pixels:
            continue  # gpt-image-2's "auto" may be any size up to 3840x2160: held at the largest
        short = replace(
            request, prompt="make the sky purple", partial_images=0, mask=None, input_fidelity=None
        )
        job = replace(job, request=short)
        typical = typical_cost(job)
        if card.pricing.per_megapixel and _asked_mp(job) < 1:
            continue  # below 1 MP a provider bills the first megapixel whole
        limit = RATIO_TOKENS if card.pricing.tokens is not None else RATIO_LIST
        assert 0 < typical <= cost_ceiling(job) <= limit * typical, (job.sizing, typical)
        checked += 1
    assert checked


def _asked_mp(job: EditJob) -> float:
    pixels = job.sizing.pixels
    return pixels[0] * pixels[1] / 1e6 if pixels else 0.0


def test_round_up_never_rounds_down() -> None:
    assert round_up(0.123456781) == 0.12345679
    assert round_up(0.12345678) == 0.12345678
    assert round_up(0.0) == 0.0


def test_images_beyond_n_are_dropped() -> None:
    assert cap_images([1, 2, 3], 2) == [1, 2]
    assert cap_images([1], 2) == [1]


# -- property: any usage within the published bounds -------------------------------------------
PRICED = [c for c in CARDS if c.pricing.tokens is not None]
FUZZ = settings(max_examples=150, deadline=None, derandomize=bool(os.environ.get("CI")))


@FUZZ
@given(data=st.data())
def test_any_usage_within_the_bounds_costs_no_more_than_the_ceiling(data: st.DataObject) -> None:
    card = data.draw(st.sampled_from(PRICED), label="card")
    job = data.draw(st.sampled_from(jobs_small(card.id)), label="job")
    # Every figure up to its worst case: each usage the provider may report within bounds.
    # Every figure up to its worst case, split as the provider reports it.
    worst = worst_usages(job)[1]
    text_in, image_in, image_out, text_out = (
        data.draw(st.integers(0, value or 0), label=name)
        for name, value in (
            ("input_text_tokens", worst.input_text_tokens),
            ("input_image_tokens", worst.input_image_tokens),
            ("output_image_tokens", worst.output_image_tokens),
            ("output_text_tokens", worst.output_text_tokens),
        )
    )
    usage = _token_variants(text_in, image_in, image_out, text_out)[0]
    if card.provider != "gemini" and data.draw(st.booleans(), label="without details"):
        # OpenAI may leave the details out: every input token is then billed as text and every
        # output token as an image token. (Gemini's reading always splits them: read_usage.)
        usage = _token_variants(text_in, image_in, image_out, text_out)[1]
    size = data.draw(st.sampled_from(outputs(job)), label="size")
    returned = data.draw(st.integers(0, job.request.n + 3), label="images returned")
    cost = compute_cost(
        card.pricing,
        usage,
        output_sizes=cap_images([size] * returned, job.request.n),
        input_images=len(job.request.images),
        tier=_tier(job),
    )
    assert cost <= cost_ceiling(job)


@functools.cache
def jobs_small(card_id: str) -> list[EditJob]:
    card = CATALOG.resolve(card_id)
    return [job for index, job in enumerate(jobs(card)) if index % 7 == 0]


# -- cards the catalog refuses ------------------------------------------------------------------
@dataclass(frozen=True)
class Refused:
    entry: dict[str, object]
    says: str


REFUSED = [
    Refused(
        {
            "id": "mine/token-model",
            "sizing": {"style": "openai_size", "sizes": ["1024x1024"]},
            "pricing": {"tokens": {"image_output": 40}},
        },
        "pricing.ceiling",
    ),
    Refused(
        {
            "id": "mine/mp-model",
            "sizing": {"style": "aspect_ratio", "aspect_ratios": ["1:1"]},
            "pricing": {"per_megapixel": 0.03},
        },
        "max_output_pixels",
    ),
]


@pytest.mark.parametrize("case", REFUSED, ids=lambda case: str(case.entry["id"]))
def test_a_card_whose_ceiling_cannot_be_computed_is_refused(case: Refused) -> None:
    with pytest.raises(CatalogError, match=case.says):
        Catalog.build([case.entry], shipped=[])


def test_a_declared_largest_output_bounds_a_megapixel_card() -> None:
    entry = {
        "id": "mine/mp-model",
        "sizing": {"style": "aspect_ratio", "aspect_ratios": ["1:1"]},
        "pricing": {"per_megapixel": 0.03, "max_output_pixels": 4_000_000},
    }
    card = Catalog.build([entry], shipped=[]).resolve("mine/mp-model")
    request = EditRequest(model=card.id, prompt="p", images=(SMALL,))
    job = EditJob(request=request, card=card, sizing=validate_request(request, card))
    assert cost_ceiling(job) == pytest.approx(0.12)  # 4 MP x $0.03
    assert compute_cost(
        card.pricing, Usage(), output_sizes=[(2000, 2000)], input_images=1, tier=None
    ) <= cost_ceiling(job)
