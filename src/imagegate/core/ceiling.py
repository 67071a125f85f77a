"""The most an edit can cost, known before it is dispatched: what a budget holds for it.

A simple bound from the card's list prices: ``n`` times the highest price one output image can
have, plus the price per input image. A provider-stated cost or a token count can exceed a
per-image figure only where the card prices by tokens; those cards are bounded by a generous
token allowance per image. (A fuller ceiling, per provider, replaces this module.)
"""

from __future__ import annotations

from imagegate.providers.base import EditJob

# Where the card only knows a price per megapixel and the size is the model's own choice.
_DEFAULT_MEGAPIXELS = 4.2
# Where the card prices by tokens: a per-image allowance above what edit models report.
_TOKENS_PER_IMAGE_OUT = 8_000
_TOKENS_PER_IMAGE_IN = 6_000
_TOKENS_PROMPT = 8_000


def cost_ceiling(job: EditJob) -> float:
    pricing = job.card.pricing
    request = job.request
    n = request.n
    inputs = len(request.images) + (1 if request.mask is not None else 0)
    per_output = 0.0
    if pricing.per_tier:
        per_output = max(pricing.per_tier.values())
    elif pricing.per_megapixel is not None:
        pixels = job.sizing.pixels
        megapixels = pixels[0] * pixels[1] / 1_000_000 if pixels else _DEFAULT_MEGAPIXELS
        per_output = pricing.per_megapixel * megapixels
    elif pricing.per_image is not None:
        per_output = pricing.per_image
    total = per_output * n + pricing.per_input_image * len(request.images)
    if pricing.tokens is not None:
        tokens = pricing.tokens
        per_million = 1 / 1_000_000
        total = max(
            total,
            per_million
            * (
                _TOKENS_PROMPT * max(tokens.text_input, tokens.text_output)
                + _TOKENS_PER_IMAGE_IN * inputs * tokens.image_input
                + _TOKENS_PER_IMAGE_OUT * n * tokens.image_output
            ),
        )
    return round(total, 8)
