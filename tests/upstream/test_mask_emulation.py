"""Mask emulation end to end: the official SDK sends a mask for a model that takes none (a card
that opted in); the provider gets no mask, and the answer keeps its pixels only inside it."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from openai import BadRequestError, OpenAI

from imagegate.testing.xai import FakeXai
from tests import imaging
from tests.imaging import GREEN, RED
from tests.upstream.conftest import RunningFake

W, H = 96, 64


@pytest.fixture()
def fake(fakes: dict[str, RunningFake]) -> Iterator[FakeXai]:
    running = fakes["xai"]
    running.reset()
    assert isinstance(running.fake, FakeXai)
    yield running.fake
    running.reset()


def test_outside_the_mask_is_the_input_exactly_inside_is_the_providers(
    upstream_client: OpenAI, fake: FakeXai
) -> None:
    source = imaging.png(W, H, background=RED, box=GREEN)
    result = upstream_client.images.edit(
        model="xai/grok-imagine-masked",
        image=("in.png", source, "image/png"),
        mask=("mask.png", imaging.mask_left_half(W, H), "image/png"),
        prompt="make it night",
    )
    (call,) = fake.calls
    assert "mask" not in call.summary["keys"] and call.summary["model"] == "grok-imagine-image"
    assert result.data[0].revised_prompt.endswith("(mask applied by the gateway)")
    out = imaging.decode(base64.b64decode(result.data[0].b64_json)).convert("RGB")
    original = imaging.decode(source).convert("RGB")
    assert out.size == (W, H) and result.output_format == "png"
    inverted = tuple(255 - c for c in RED)
    for y in range(0, H, 3):
        for x in range(0, W, 3):
            if x >= W // 2 + 6:  # outside the mask, away from the feathered seam: exact
                assert out.getpixel((x, y)) == original.getpixel((x, y)), (x, y)
            elif x < W // 4 - 6 or (x < W // 2 - 6 and not H // 4 - 6 <= y <= 3 * H // 4 + 6):
                # inside the mask, on the red background: the provider's (inverted, JPEG) red
                assert imaging.is_close(out.getpixel((x, y)), inverted, 12), (x, y)


def test_the_same_model_without_the_opt_in_refuses_the_mask(
    upstream_client: OpenAI, fake: FakeXai
) -> None:
    with pytest.raises(BadRequestError) as caught:
        upstream_client.images.edit(
            model="xai/grok-imagine-image",
            image=("in.png", imaging.png(W, H), "image/png"),
            mask=("mask.png", imaging.mask_left_half(W, H), "image/png"),
            prompt="make it night",
        )
    assert caught.value.body["code"] == "mask_not_supported"  # type: ignore[index]
    assert fake.calls == []  # refused before any upstream call
