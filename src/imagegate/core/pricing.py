"""What an edit costs, in USD, from a model's list prices and what the provider reported.

The order of preference: a cost the provider states (credits turned into USD by its adapter),
then tokens × the card's token prices when the provider counts tokens, then the card's list price
per output image (flat, by tier, or by megapixel), plus any price per input image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from imagegate.core.result import Usage


class TokenPrices(BaseModel):
    """USD per one million tokens."""

    model_config = ConfigDict(extra="forbid")

    text_input: float = Field(0.0, ge=0)
    image_input: float = Field(0.0, ge=0)
    text_output: float = Field(0.0, ge=0)
    image_output: float = Field(0.0, ge=0)


class OutputTokens(BaseModel):
    """The most image tokens one output image is billed: ``base + per_megapixel x MP``, MP being
    the output's pixels / 1,000,000 (the largest output the edit can come back as)."""

    model_config = ConfigDict(extra="forbid")

    base: float = Field(0.0, ge=0)
    per_megapixel: float = Field(0.0, ge=0)

    def bound(self, pixels: int) -> float:
        return self.base + self.per_megapixel * pixels / 1_000_000


class InputTokens(BaseModel):
    """The most tokens one input image (each reference, and the mask) is billed:
    ``base + per_tile x ceil(width / tile_side) x ceil(height / tile_side)``, on its real size."""

    model_config = ConfigDict(extra="forbid")

    base: float = Field(0.0, ge=0)
    per_tile: float = Field(0.0, ge=0)
    tile_side: int = Field(512, ge=1)

    def bound(self, width: int, height: int) -> float:
        side = self.tile_side
        return self.base + self.per_tile * -(-width // side) * -(-height // side)


class TokenCeiling(BaseModel):
    """What a token-priced model can report for one edit at most: the facts the budget hold
    (``core/ceiling.py``) needs, since a token count is known only after the answer."""

    model_config = ConfigDict(extra="forbid")

    # By the card's tier (``tier_by``: quality, resolution or size). A tier the request does not
    # name, or that is missing here, is held at the largest rule.
    output_image: dict[str, OutputTokens] = Field(min_length=1)
    # Text and thinking output per image (a model's output-token limit where nothing tighter is
    # published); billed at ``tokens.text_output``.
    output_text_per_image: int = Field(0, ge=0)
    input_image: InputTokens = Field(default_factory=InputTokens)
    # More tokens per input image when the request asks input_fidelity=high.
    input_fidelity_high: int = Field(0, ge=0)
    partial_image: int = Field(0, ge=0)  # extra image output tokens per streamed partial image
    source: str | None = None


class Pricing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per_image: float | None = Field(None, ge=0)
    per_tier: dict[str, float] = Field(default_factory=dict)
    tier_by: Literal["quality", "resolution", "size"] | None = None
    per_megapixel: float | None = Field(None, ge=0)
    per_input_image: float = Field(0.0, ge=0)
    tokens: TokenPrices | None = None
    # The most a token-priced edit can report; required with ``tokens`` (core/ceiling.py).
    ceiling: TokenCeiling | None = None
    # The largest output (pixels) a card priced by the megapixel (or by tokens per megapixel)
    # can return when its sizing rules do not say (aspect-ratio and tier styles).
    max_output_pixels: int | None = Field(None, ge=1)
    source: str | None = None  # where the figures come from, shown in /v1/models

    @model_validator(mode="after")
    def _bounded(self) -> Pricing:
        # A token count is known only after the answer: without its bounds the budget hold would
        # be 0 (or a guess), and a team could overspend. Refused when the catalog loads.
        if self.tokens is not None and self.ceiling is None:
            raise ValueError(
                "token prices need pricing.ceiling (output_image tokens per image by tier, "
                "input_image, output_text_per_image, partial_image) so the budget hold can "
                "bound the edit before it runs; see the README, 'How the budget hold (cost "
                "ceiling) is computed'"
            )
        return self

    @property
    def grows_with_pixels(self) -> bool:
        """Whether a price (list or token bound) grows with the output's pixels, so the budget
        hold needs the largest output the card can make."""
        list_by_pixels = not self.per_tier and self.per_megapixel is not None
        tokens_by_pixels = self.ceiling is not None and any(
            rule.per_megapixel for rule in self.ceiling.output_image.values()
        )
        return list_by_pixels or tokens_by_pixels

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
