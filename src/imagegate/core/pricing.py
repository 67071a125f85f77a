"""What an edit costs, in USD, from a model's list prices and what the provider reported.

The order of preference: a cost the provider states (credits turned into USD by its adapter),
then tokens × the card's token prices when the provider counts tokens, then the card's list price
per output image (flat, by tier, or by megapixel), plus any price per input image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from imagegate.core.result import Usage


class TokenPrices(BaseModel):
    """USD per one million tokens."""

    model_config = ConfigDict(extra="forbid")

    text_input: float = Field(0.0, ge=0)
    image_input: float = Field(0.0, ge=0)
    text_output: float = Field(0.0, ge=0)
    image_output: float = Field(0.0, ge=0)


class Pricing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per_image: float | None = Field(None, ge=0)
    per_tier: dict[str, float] = Field(default_factory=dict)
    tier_by: Literal["quality", "resolution", "size"] | None = None
    per_megapixel: float | None = Field(None, ge=0)
    per_input_image: float = Field(0.0, ge=0)
    tokens: TokenPrices | None = None
    source: str | None = None  # where the figures come from, shown in /v1/models

    @property
    def is_free(self) -> bool:
        return (
            not self.per_image
            and not self.per_tier
            and not self.per_megapixel
            and not self.per_input_image
            and self.tokens is None
        )


def compute_cost(
    pricing: Pricing,
    usage: Usage,
    *,
    output_sizes: Sequence[tuple[int, int]],
    input_images: int,
    tier: str | None,
) -> float:
    if usage.provider_cost_usd is not None:
        return round(usage.provider_cost_usd, 8)
    if pricing.tokens is not None and usage.has_tokens:
        return round(_token_cost(pricing.tokens, usage), 8)
    per_output = 0.0
    if pricing.per_tier:
        price = pricing.per_tier.get(tier or "", pricing.per_tier.get("default"))
        per_output = (price or 0.0) * len(output_sizes)
    elif pricing.per_megapixel is not None:
        megapixels = sum(w * h for w, h in output_sizes) / 1_000_000
        per_output = pricing.per_megapixel * megapixels
    elif pricing.per_image is not None:
        per_output = pricing.per_image * len(output_sizes)
    return round(per_output + pricing.per_input_image * input_images, 8)


def _token_cost(prices: TokenPrices, usage: Usage) -> float:
    per_token = 1 / 1_000_000
    if usage.input_text_tokens is not None or usage.input_image_tokens is not None:
        text_in = usage.input_text_tokens or 0
        image_in = usage.input_image_tokens or 0
    else:
        text_in, image_in = usage.input_tokens or 0, 0
    if usage.output_image_tokens is not None or usage.output_text_tokens is not None:
        image_out = usage.output_image_tokens or 0
        text_out = usage.output_text_tokens or 0
    else:
        image_out, text_out = usage.output_tokens or 0, 0
    return per_token * (
        text_in * prices.text_input
        + image_in * prices.image_input
        + text_out * prices.text_output
        + image_out * prices.image_output
    )
