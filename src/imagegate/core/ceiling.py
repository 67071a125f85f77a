"""The most an edit can cost, before it runs: what a team budget holds until the answer settles.

``compute_cost`` (``core/pricing.py``) prices an answer by the first of three paths: a cost the
provider states, tokens x token prices, or the card's list price per output image (flat, by tier
or by megapixel) plus a price per input image. Which path applies is known only afterwards, so
the ceiling is the largest of every path that can apply to this job, rounded UP to 8 decimals:

list price      n x the largest price per output image this job can reach (the resolved tier, or
                the dearest tier when it is not known; per megapixel: the largest output the
                card can make, in started megapixels) + the price per input image, held once
                per output image (providers that fan ``n`` out bill the inputs on every call;
                a card priced by the megapixel is held per started input megapixel).
tokens          n x (output image tokens x image_output + text/thinking tokens x text_output +
                partial-image tokens x image_output + every input token x the dearer input
                price), each count from the card's ``pricing.ceiling`` facts; the prompt is held
                at one token per UTF-8 byte (a byte-level tokenizer never makes more).
provider-stated bounded by the list-price path: the adapters turn credits and ticks into USD at
                the provider's own list prices, which the cards carry.

The service drops images beyond ``n`` before pricing (``cap_images``), so a provider answering
more than asked cannot push the list-price path past the hold. Free cards hold 0.

This module sits in ``core`` because budgets import it from here; it reads cards and jobs, which
live above ``core``, only through their attributes (and ``parse_size`` for listed sizes).
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING, TypeVar

from imagegate.catalog.cards import SizingStyle, parse_size
from imagegate.core.pricing import OutputTokens

if TYPE_CHECKING:
    from imagegate.catalog.cards import ModelCard
    from imagegate.catalog.sizing import ResolvedSizing
    from imagegate.core.request import EditRequest
    from imagegate.providers.base import EditJob

MEGAPIXEL = 1_000_000
# Providers work in latent blocks: an asked size may come back rounded up to a multiple of this.
_BLOCK = 64
# A model that keeps the input's size may still lift a tiny input to its native scale.
_NATIVE = 1024 * 1024
# Tokens a provider may add around the prompt (role and turn markers); a margin, not a fact.
PROMPT_FRAMING_TOKENS = 32
_EIGHT_DECIMALS = Decimal("0.00000001")
_T = TypeVar("_T")


def cost_ceiling(job: EditJob) -> float:
    """USD: the most this edit can be billed, whatever the provider reports."""
    pricing = job.card.pricing
    if pricing.is_free:
        return 0.0
    worst = _list_ceiling(job)
    if pricing.tokens is not None:
        worst = max(worst, _token_ceiling(job))
    return round_up(worst)


def round_up(usd: float) -> float:
    """``usd`` rounded up (never down) to 8 decimals."""
    return float(Decimal(repr(usd)).quantize(_EIGHT_DECIMALS, rounding=ROUND_CEILING))


def price_tier(job: EditJob) -> str | None:
    """The tier this job is priced at (``Pricing.tier_by``), as the service prices the answer."""
    pricing = job.card.pricing
    if pricing.tier_by == "quality":
        return job.request.output.quality
    if pricing.tier_by == "resolution":
        return job.sizing.resolution
    if pricing.tier_by == "size":
        pixels = job.sizing.pixels
        return f"{pixels[0]}x{pixels[1]}" if pixels else job.sizing.size
    return None


def max_output_pixels(job: EditJob) -> int:
    """The most pixels one output image of this job can have.

    An asked size (``size=WxH``, width and height, a preset with a size) is the size, each side
    rounded up to a multiple of 64. Without one it is the largest the card can make, by style:

    - openai_size: its largest listed size, or its custom rule's largest ("auto" may pick any);
    - pixels: the input's size (these models keep it), the largest input, at least 1024x1024;
    - preset: its largest preset, and the largest input (a default that keeps the input's size);
    - aspect_ratio, resolution_tier: ``pricing.max_output_pixels`` (required when a price grows
      with pixels) or the custom rule's largest.

    ``pricing.max_output_pixels``, when set, always counts too: a card whose output can outgrow
    its input (outpaint margins) declares it.
    """
    asked = _asked_pixels(job.sizing, job.card)
    if asked is not None:
        width, height = asked
        return _padded(width) * _padded(height)
    return largest_output_pixels(job.card, job.request)


def largest_output_pixels(card: ModelCard, request: EditRequest) -> int:
    spec = card.sizing
    candidates = [card.pricing.max_output_pixels or 0]
    listed = [p for s in [*spec.sizes, *spec.presets.values()] if (p := parse_size(s))]
    candidates += [_padded(w) * _padded(h) for w, h in listed]
    inputs = [_padded(im.width) * _padded(im.height) for im in request.images]
    if spec.style is SizingStyle.PIXELS:
        candidates += [*inputs, _NATIVE]
    elif spec.style is SizingStyle.PRESET:
        candidates += inputs
    elif spec.custom is not None:
        rule = spec.custom
        candidates.append(rule.max_pixels or rule.max_side * rule.max_side)
    return max(candidates)


def cap_images(images: list[_T], n: int) -> list[_T]:
    """At most ``n`` images: what the client asked for and the budget held."""
    return images[:n] if len(images) > n else images


# -- the paths ---------------------------------------------------------------------------------
def _list_ceiling(job: EditJob) -> float:
    pricing = job.card.pricing
    n = job.request.n
    per_output = 0.0
    per_megapixel = False
    if pricing.per_tier:
        tier = price_tier(job)
        listed = pricing.per_tier.get(tier) if tier is not None else None
        per_output = listed if listed is not None else max(pricing.per_tier.values())
    elif pricing.per_megapixel is not None:
        per_megapixel = True
        started = math.ceil(max_output_pixels(job) / MEGAPIXEL)
        per_output = pricing.per_megapixel * max(1, started)
    elif pricing.per_image is not None:
        per_output = pricing.per_image
    inputs = len(job.request.images)
    if per_megapixel:  # a provider billing by the megapixel bills input megapixels too
        inputs = sum(
            max(1, math.ceil(im.width * im.height / MEGAPIXEL)) for im in job.request.images
        )
    return n * (per_output + pricing.per_input_image * inputs)


def _token_ceiling(job: EditJob) -> float:
    pricing = job.card.pricing
    prices, facts = pricing.tokens, pricing.ceiling
    assert prices is not None and facts is not None  # Pricing refuses tokens without a ceiling
    request = job.request
    rule = _output_rule(facts.output_image, price_tier(job))
    pixels = max_output_pixels(job) if rule.per_megapixel else 0
    image_out = rule.bound(pixels) + facts.partial_image * request.partial_images
    text_out = facts.output_text_per_image
    pictures = [*request.images, *([request.mask] if request.mask is not None else [])]
    fidelity = facts.input_fidelity_high if request.input_fidelity == "high" else 0
    image_in = sum(facts.input_image.bound(im.width, im.height) + fidelity for im in pictures)
    text_in = len(request.prompt.encode("utf-8")) + PROMPT_FRAMING_TOKENS
    # compute_cost bills every input token at the text rate when the split is not reported, and
    # every output token as an image token: hold each at the dearer of the two rates.
    input_rate = max(prices.text_input, prices.image_input)
    image_rate = max(prices.image_output, prices.text_output)
    per_image = (
        image_out * image_rate + text_out * prices.text_output + (text_in + image_in) * input_rate
    )
    return request.n * per_image / 1_000_000


def _output_rule(rules: dict[str, OutputTokens], tier: str | None) -> OutputTokens:
    if tier is not None and tier in rules:
        return rules[tier]
    # Unknown tier: the rule that can reach the most, over every size this card can make.
    return OutputTokens(
        base=max(r.base for r in rules.values()),
        per_megapixel=max(r.per_megapixel for r in rules.values()),
    )


def _asked_pixels(sizing: ResolvedSizing, card: ModelCard) -> tuple[int, int] | None:
    if sizing.pixels is not None:
        return sizing.pixels
    if sizing.preset is not None:
        return parse_size(card.sizing.presets.get(sizing.preset, ""))
    return None


def _padded(side: int) -> int:
    return -(-side // _BLOCK) * _BLOCK
