"""The size limits the wire parsers enforce while the body streams in."""

from __future__ import annotations

from dataclasses import dataclass

from imagegate.core.errors import PayloadTooLarge
from imagegate.core.units import human_bytes

MiB = 1_048_576


@dataclass(frozen=True, slots=True)
class WireLimits:
    max_image_bytes: int = 50 * MiB  # per image or mask, as OpenAI documents
    max_request_bytes: int = 128 * MiB  # the whole body, every image and field together
    max_images: int = 16  # the most any model takes; a model's own card may allow fewer
    max_pixels: int = 40_000_000  # a header claiming more is refused before any decoding
    max_field_bytes: int = 256 * 1024  # one text field (a 32 000-character prompt fits)
    max_parts: int = 64
    max_part_header_bytes: int = 8 * 1024
    spill_bytes: int = 8 * MiB  # an image past this goes to a temporary file, not memory
    max_json_text_bytes: int = 1 * MiB  # a JSON body's text outside its data URLs

    @property
    def max_json_bytes(self) -> int:
        # Data URLs carry base64, a third larger than the bytes they encode.
        return self.max_request_bytes * 4 // 3 + 64 * 1024


class ByteBudget:
    """What the images of one request may add up to, spent as their bytes arrive.

    Fetches run concurrently; each spends from the same budget chunk by chunk, so the total is
    enforced while downloading, not after everything is already in memory.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    def spend(self, count: int) -> None:
        self.spent += count
        if self.spent > self.limit:
            raise PayloadTooLarge(
                f"The images in this request add up to over {self.limit:,} bytes "
                f"({human_bytes(self.limit)}), the limit per request.",
                param="images",
                code="request_too_large",
            )
