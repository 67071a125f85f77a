"""The card the embedded engine declares for itself; a user's config may override any field."""

from __future__ import annotations

from typing import Any

from imagegate.providers.local.limits import MAX_OUTPUT_PIXELS, MAX_SIDE, describe_limits

LOCAL_CARDS: list[dict[str, Any]] = [
    {
        "id": "local/pillow",
        "description": "The embedded Pillow engine: deterministic edits (grayscale, invert, "
        "sepia, blur, rotate, resize, transparent background, ...) parsed from "
        "the prompt, with masks and multi-image layouts. No keys, no network.",
        "aliases": ["pillow"],
        "edit": {"supported": True, "max_reference_images": 16, "mask": True},
        "sizing": {
            "style": "pixels",
            "custom": {"min_side": 16, "max_side": MAX_SIDE, "max_pixels": MAX_OUTPUT_PIXELS},
            # Not a WxH: with no size asked, the edit keeps its own size (the output rule
            # still fits it to 4096 px / 36 MP).
            "default": f"the edit's own size, scaled to fit {describe_limits()}",
        },
        "n": {"min": 1, "max": 4},
        "output_formats": ["png", "jpeg", "webp"],
        "transparent_background": True,
        "partial_images": True,
        "max_prompt_chars": 32_000,
        "pricing": {"per_image": 0.0, "source": "runs inside the gateway: no charge"},
        "source": "imagegate.providers.local",
    }
]
