"""The budget hold against real answers: an edit through the gateway and a strict fake provider
is billed (``usage.cost.total_cost``) no more than ``cost_ceiling`` of the same request.

The job is built here as the service builds it (the card from the catalog, the request's sizing
validated against it), from the same bytes and fields the SDK sends.
"""

from __future__ import annotations

from typing import Any

import pytest
from openai import OpenAI

from imagegate.app import build_catalog
from imagegate.catalog.validate import validate_request
from imagegate.config import Settings
from imagegate.core.ceiling import cost_ceiling
from imagegate.core.request import EditRequest, OutputOptions, SizingRequest
from imagegate.providers.base import EditJob
from imagegate.wire.body import check_image
from imagegate.wire.limits import WireLimits
from tests import imaging
from tests.support import sdk

CATALOG = build_catalog(Settings())
SMALL = imaging.png(64, 48)
WIDE = imaging.png(1600, 1000)  # 1.6 MP: several tiles, two input megapixels
PROMPT = "Turn the red box into a small blue boat on a calm sea, keep the green"


def job_for(model: str, images: list[bytes], params: dict[str, Any]) -> EditJob:
    card = CATALOG.resolve(model)
    extra = params.get("extra_body", {})
    request = EditRequest(
        model=card.id,
        prompt=PROMPT,
        images=tuple(
            check_image(data, f"image[{i}]", None, WireLimits()) for i, data in enumerate(images)
        ),
        n=params.get("n", 1),
        sizing=SizingRequest(
            size=params.get("size"),
            aspect_ratio=extra.get("aspect_ratio"),
            resolution=extra.get("resolution"),
        ),
        output=OutputOptions(quality=params.get("quality")),
        input_fidelity=params.get("input_fidelity"),
    )
    return EditJob(request=request, card=card, sizing=validate_request(request, card))


CASES = [
    # token-priced: OpenAI (one call for n) and Gemini (n calls, thinking)
    ("openai/gpt-image-1", [WIDE, SMALL], {"n": 2, "quality": "high", "input_fidelity": "high"}),
    ("openai/gpt-image-1.5", [WIDE], {"size": "1536x1024", "quality": "medium"}),
    ("openai/gpt-image-1-mini", [SMALL], {"size": "auto", "quality": "low", "n": 3}),
    ("openai/gpt-image-2", [WIDE], {"size": "1024x1024", "quality": "high"}),
    ("gemini/gemini-2.5-flash-image", [SMALL, WIDE, SMALL], {"n": 2}),
    ("gemini/gemini-3-pro-image-preview", [WIDE], {"extra_body": {"resolution": "4K"}}),
    ("gemini/gemini-3.1-flash-image-preview", [SMALL], {"n": 2}),
    # per image, per tier, per megapixel, and costs the provider states
    ("openai/dall-e-2", [imaging.png(64, 64)], {"size": "512x512", "n": 2}),
    ("stability/remove-background", [imaging.png(128, 96)], {"n": 2}),
    ("fal/fal-ai/qwen-image-edit", [WIDE], {}),
    ("fal/fal-ai/bytedance/seedream/v4/edit", [SMALL, SMALL], {"n": 2}),
    ("bfl/flux-2-pro", [WIDE, SMALL], {"size": "2048x1024", "n": 2}),
    ("bfl/flux-kontext-max", [SMALL], {"n": 2}),
    ("replicate/bytedance/seedream-4", [SMALL, SMALL], {"n": 3}),
    ("xai/grok-imagine-image", [SMALL, SMALL], {"n": 2}),
]


@pytest.mark.parametrize(("model", "images", "params"), CASES, ids=[case[0] for case in CASES])
def test_the_answered_cost_is_within_the_hold(
    upstream_client: OpenAI, model: str, images: list[bytes], params: dict[str, Any]
) -> None:
    hold = cost_ceiling(job_for(model, images, params))
    image: Any = [(f"{i}.png", data) for i, data in enumerate(images)]
    result = sdk.edit(upstream_client, model=model, image=image, prompt=PROMPT, **params)
    assert result.usage is not None and result.usage.model_extra is not None
    billed = result.usage.model_extra["cost"]["total_cost"]
    assert len(result.data or []) == params.get("n", 1)
    assert 0 < billed <= hold, (billed, hold)
