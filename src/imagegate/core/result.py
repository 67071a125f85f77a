"""What a provider hands back: images, usage as reported, and the facts the response needs."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

import pybase64

from imagegate.core.errors import GatewayError
from imagegate.core.images import ImageFormat, probe

_PROBE_CHARS = 64 * 1024  # base64 characters decoded to read an image's header


@dataclass(slots=True)
class ResultImage:
    """One output image: raw bytes, or the provider's base64 passed through untouched."""

    format: ImageFormat
    width: int
    height: int
    data: bytes | None = None
    b64: str | memoryview | None = None  # a view of the provider's answer (``core.lift``)
    revised_prompt: str | None = None

    def __post_init__(self) -> None:
        if self.data is None and self.b64 is None:
            raise ValueError("a ResultImage needs bytes or base64")

    def raw(self) -> bytes:
        if self.data is None:
            assert self.b64 is not None
            self.data = pybase64.b64decode(self.b64)
        return self.data

    def base64(self) -> str:
        if self.b64 is None:
            assert self.data is not None
            self.b64 = pybase64.b64encode(self.data).decode("ascii")
        if isinstance(self.b64, memoryview):
            return str(self.b64, "ascii")
        return self.b64

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @classmethod
    def from_base64(
        cls, b64: str | memoryview, *, revised_prompt: str | None = None
    ) -> ResultImage:
        """A provider's base64 image, kept as it came: only its header is decoded, to learn the
        format and size. Raises ``ValueError`` when it is not base64 of a PNG, JPEG or WEBP.

        A memoryview is plain, padded, standard base64 (``core.lift`` checked): kept as it is.
        """
        if isinstance(b64, memoryview):
            try:
                info = probe(base64.b64decode(b64[:_PROBE_CHARS]), param="result")
            except (binascii.Error, ValueError, GatewayError):
                return cls.from_base64(str(b64, "latin-1"), revised_prompt=revised_prompt)
            return cls(info.format, info.width, info.height, b64=b64, revised_prompt=revised_prompt)
        text = b64.strip()
        head = text[:_PROBE_CHARS]
        head = head[: len(head) - len(head) % 4]
        try:
            data = base64.b64decode(head.replace("-", "+").replace("_", "/"))
            info = probe(data, param="result")
        except (binascii.Error, ValueError, GatewayError):
            try:  # a header past the first 48 KB (large EXIF), or URL-safe with no padding
                data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
                info = probe(data, param="result")
            except (binascii.Error, ValueError, GatewayError) as exc:
                raise ValueError(f"not a base64 image: {exc}") from None
            return cls(
                info.format, info.width, info.height, data=data, revised_prompt=revised_prompt
            )
        if "-" in text or "_" in text:  # pass base64 on in the standard alphabet only
            text = text.replace("-", "+").replace("_", "/")
        if len(text) % 4:  # and padded, as every decoder wants it (URL-safe often is not)
            text += "=" * (-len(text) % 4)
        return cls(info.format, info.width, info.height, b64=text, revised_prompt=revised_prompt)

    @classmethod
    def from_bytes(cls, data: bytes, *, revised_prompt: str | None = None) -> ResultImage:
        """Raw image bytes (a download, a raw answer). Raises ``ValueError`` if not an image."""
        try:
            info = probe(data, param="result")
        except GatewayError as exc:
            raise ValueError(f"not an image: {exc.message}") from None
        return cls(info.format, info.width, info.height, data=data, revised_prompt=revised_prompt)


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
