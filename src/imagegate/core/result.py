"""What a provider hands back: images, usage as reported, and the facts the response needs."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from imagegate.core.images import ImageFormat


@dataclass(slots=True)
class ResultImage:
    """One output image: raw bytes, or the provider's base64 passed through untouched."""

    format: ImageFormat
    width: int
    height: int
    data: bytes | None = None
    b64: str | None = None
    revised_prompt: str | None = None

    def __post_init__(self) -> None:
        if self.data is None and self.b64 is None:
            raise ValueError("a ResultImage needs bytes or base64")

    def raw(self) -> bytes:
        if self.data is None:
            assert self.b64 is not None
            self.data = base64.b64decode(self.b64)
        return self.data

    def base64(self) -> str:
        if self.b64 is None:
            assert self.data is not None
            self.b64 = base64.b64encode(self.data).decode("ascii")
        return self.b64

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(slots=True)
class Usage:
    """Token counts where the provider reports them; a cost the provider states, in USD."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    input_text_tokens: int | None = None
    input_image_tokens: int | None = None
    output_image_tokens: int | None = None
    output_text_tokens: int | None = None
    provider_cost_usd: float | None = None

    @property
    def has_tokens(self) -> bool:
        return self.input_tokens is not None or self.output_tokens is not None

    @property
    def total_tokens(self) -> int | None:
        if not self.has_tokens:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


@dataclass(slots=True)
class EditResult:
    images: list[ResultImage]
    model: str
    provider: str
    usage: Usage = field(default_factory=Usage)
    quality: str | None = None  # as the provider applied it, when it says
    background: str | None = None
    cost_usd: float = 0.0  # filled in by the service from the card's pricing
