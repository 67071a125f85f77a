"""The size limits the wire parsers enforce while the body streams in."""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def max_json_bytes(self) -> int:
        # Data URLs carry base64, a third larger than the bytes they encode.
        return self.max_request_bytes * 4 // 3 + 64 * 1024
