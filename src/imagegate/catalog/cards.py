"""Model cards: what each model can do, how it takes its size, and what it costs."""

from __future__ import annotations

import re
from enum import StrEnum
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from imagegate.core.images import ImageFormat
from imagegate.core.pricing import Pricing

# ASCII digits only and a bounded length: int() of a 5,000-digit string raises, and a unicode digit
# in a size is a typo, not a number anyone means.
_SIZE_RE = re.compile(r"([0-9]{1,7})x([0-9]{1,7})")
_RATIO_RE = re.compile(r"([0-9]{1,6}(?:\.[0-9]{1,6})?):([0-9]{1,6}(?:\.[0-9]{1,6})?)")
# No model takes a side this long; anything bigger is a typo or a probe, refused before any
# arithmetic rather than carried into fractions and products.
MAX_SANE_SIDE = 100_000


class SizingStyle(StrEnum):
    OPENAI_SIZE = "openai_size"  # size strings: "1024x1024", "1536x1024", "auto"
    PIXELS = "pixels"  # explicit width and height within a rule
    ASPECT_RATIO = "aspect_ratio"  # "16:9", optionally with a resolution tier
    RESOLUTION_TIER = "resolution_tier"  # "1K", "2K", "4K" alone
    PRESET = "preset"  # named sizes: "square_hd", "landscape_16_9"


class PixelRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_side: int = Field(1, ge=1)
    max_side: int = Field(4096, ge=1)
    multiple_of: int = Field(1, ge=1)
    max_pixels: int | None = Field(None, ge=1)
    min_ratio: float | None = Field(None, gt=0)  # width / height
    max_ratio: float | None = Field(None, gt=0)

    def problem(self, width: int, height: int) -> str | None:
        """Why ``width x height`` breaks this rule, or None."""
        # min_side is at least 1, so the ratio below never divides by zero.
        if min(width, height) < self.min_side or max(width, height) > self.max_side:
            return f"each side must be between {self.min_side} and {self.max_side} pixels"
        if width % self.multiple_of or height % self.multiple_of:
            return f"both sides must be multiples of {self.multiple_of}"
        if self.max_pixels is not None and width * height > self.max_pixels:
            return f"at most {self.max_pixels:,} pixels in all"
        ratio = width / height
        if self.min_ratio is not None and ratio < self.min_ratio - 1e-9:
            return f"the width:height ratio must be at least {self.min_ratio:g}"
        if self.max_ratio is not None and ratio > self.max_ratio + 1e-9:
            return f"the width:height ratio must be at most {self.max_ratio:g}"
        return None

    def describe(self) -> str:
        parts = [f"sides {self.min_side}-{self.max_side} px"]
        if self.multiple_of > 1:
            parts.append(f"multiples of {self.multiple_of}")
        if self.max_pixels:
            parts.append(f"at most {self.max_pixels:,} pixels")
        return ", ".join(parts)


class Sizing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    style: SizingStyle
    sizes: list[str] = Field(default_factory=list)  # openai_size
    custom: PixelRule | None = None  # openai_size: any WxH in the rule too; pixels: the rule
    aspect_ratios: list[str] = Field(default_factory=list)  # aspect_ratio
    resolutions: list[str] = Field(default_factory=list)  # aspect_ratio, resolution_tier
    presets: dict[str, str] = Field(default_factory=dict)  # preset: name -> "WxH" or "auto"
    default: str | None = None  # what the model does when the client says nothing

    @model_validator(mode="after")
    def _complete(self) -> Sizing:
        style = self.style
        if style is SizingStyle.OPENAI_SIZE and not (self.sizes or self.custom):
            raise ValueError("openai_size sizing needs sizes or a custom rule")
        if style is SizingStyle.PIXELS and self.custom is None:
            raise ValueError("pixels sizing needs a custom rule (min_side, max_side, ...)")
        if style is SizingStyle.ASPECT_RATIO and not self.aspect_ratios:
            raise ValueError("aspect_ratio sizing needs aspect_ratios")
        if style is SizingStyle.RESOLUTION_TIER and not self.resolutions:
            raise ValueError("resolution_tier sizing needs resolutions")
        if style is SizingStyle.PRESET and not self.presets:
            raise ValueError("preset sizing needs presets")
        for ratio in self.aspect_ratios:
            if ratio != "auto":
                parse_ratio(ratio)
        # Listed sizes are divided and multiplied when requests are translated: check them here,
        # at start, so a zero side in a config is a config error, never a 500 on a request.
        for size in [*self.sizes, *self.presets.values()]:
            if size != "auto" and parse_size(size) is None:
                raise ValueError(
                    f"size {size!r} is not WIDTHxHEIGHT with sides 1-{MAX_SANE_SIDE:,}"
                )
        return self


class EditSupport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    supported: bool = True
    max_reference_images: int = Field(1, ge=0)
    mask: bool = False
    # For a model that takes no mask: send the image without it, then keep the provider's image
    # only where the mask is transparent (core.masking). Off unless a card opts in.
    mask_emulation: bool = False


class NRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: int = Field(1, ge=1)
    max: int = Field(1, ge=1)


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9._-]+/.+$")
    # Who serves the card and under what name; by default the id's two halves. Azure
    # deployments set both: an id of the user's choosing, served by azure, running gpt-image-1.
    provider: str = ""
    upstream_model: str = ""
    # Provider fields OpenAI has no name for that this model takes (Stability's search_prompt,
    # negative_prompt ...): accepted as extra form fields or JSON keys and forwarded; any other
    # unknown field is never sent upstream.
    extra_fields: list[str] = Field(default_factory=list)
    # What only the card's provider reads, in its own terms (Replicate: the upstream model's
    # input keys, for a model the gateway does not ship a card for). Checked by that provider.
    provider_options: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    aliases: list[str] = Field(default_factory=list)
    edit: EditSupport = Field(default_factory=EditSupport)
    sizing: Sizing
    n: NRange = Field(default_factory=NRange)
    output_formats: list[ImageFormat] = Field(default_factory=lambda: list[ImageFormat](["png"]))
    transparent_background: bool = False
    partial_images: bool = False  # streams partial images itself
    max_prompt_chars: int = Field(32_000, ge=1)
    pricing: Pricing = Field(default_factory=Pricing)
    source: str | None = None  # where the limits come from

    @model_validator(mode="after")
    def _default_provider(self) -> ModelCard:
        prefix, _, rest = self.id.partition("/")
        self.provider = self.provider or prefix
        self.upstream_model = self.upstream_model or rest
        return self

    @model_validator(mode="after")
    def _largest_output_known(self) -> ModelCard:
        # A price per megapixel needs the largest output for the budget hold (core/ceiling.py):
        # an aspect-ratio or tier card says nothing of pixels, so it must declare one.
        spec = self.sizing
        has_pixels = spec.style in (SizingStyle.PIXELS, SizingStyle.PRESET) or bool(
            spec.custom or spec.sizes
        )
        if self.pricing.grows_with_pixels and not (has_pixels or self.pricing.max_output_pixels):
            raise ValueError(
                "a price per megapixel needs the largest output the model makes: set "
                "pricing.max_output_pixels (or sizing.custom.max_pixels)"
            )
        return self

    @property
    def generate_only(self) -> bool:
        return not self.edit.supported


def parse_ratio(text: str) -> Fraction:
    """ "16:9" -> Fraction(16, 9); decimals ("19.5:9") are allowed. ValueError for anything else.

    Both terms must be above 0 and at most ``MAX_SANE_SIDE``, so the fraction always exists and
    stays small enough to compare and multiply.
    """
    match = _RATIO_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"aspect ratio {text!r} is not W:H, such as 16:9")
    width, height = Fraction(match.group(1)), Fraction(match.group(2))
    if not (0 < width <= MAX_SANE_SIDE and 0 < height <= MAX_SANE_SIDE):
        raise ValueError(
            f"aspect ratio {text!r} needs both sides above 0 and at most {MAX_SANE_SIDE:,}"
        )
    return width / height


def parse_size(text: str) -> tuple[int, int] | None:
    """ "1024x768" -> (1024, 768); None unless both sides are 1-``MAX_SANE_SIDE``."""
    match = _SIZE_RE.fullmatch(text)
    if match is None:
        return None
    width, height = int(match.group(1)), int(match.group(2))
    if not (1 <= width <= MAX_SANE_SIDE and 1 <= height <= MAX_SANE_SIDE):
        return None
    return width, height
