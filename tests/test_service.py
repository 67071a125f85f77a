"""The edit service with a scripted provider: conversion, pricing, deadlines and crashes."""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass

import pytest
from PIL import Image

from imagegate.catalog.catalog import Catalog
from imagegate.core.ceiling import cost_ceiling
from imagegate.core.errors import GatewayError, InternalError, NotFound, UpstreamTimeout
from imagegate.core.request import EditRequest, OutputOptions
from imagegate.core.result import EditResult, ResultImage, Usage
from imagegate.providers.base import (
    Deployment,
    DiscardEvents,
    EditJob,
    EventSink,
    ProviderRegistry,
)
from imagegate.routing.router import Router
from imagegate.service import EditService
from tests import imaging
from tests.support.requests import edit_request

CARD = {
    "id": "scripted/model",
    "edit": {"max_reference_images": 4},
    "sizing": {"style": "openai_size", "sizes": ["1024x1024", "auto"]},
    "n": {"max": 4},
    "pricing": {
        "per_image": 0.04,
        "per_input_image": 0.01,
        "tokens": {"text_input": 5, "image_input": 10, "image_output": 40},
        "ceiling": {"output_image": {"default": {"base": 4160}}},
    },
}


@dataclass
class Scripted:
    """A provider that answers as told: a PNG (with or without tokens), a delay, or a crash."""

    name: str = "scripted"
    delay: float = 0.0
    crash: bool = False
    usage: Usage | None = None
    shared: bool = False  # hand back one image object n times, as a deterministic engine does
    error: GatewayError | None = None  # answer with this gateway error instead
    extra: int = 0  # images beyond n, as a misbehaving upstream might send
    calls: int = 0

    def check(self, job: EditJob) -> None:
        return None

    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.crash:
            raise RuntimeError("secret internals")
        if self.error is not None:
            raise self.error
        transparent = Image.new("RGBA", (20, 10), (10, 200, 10, 0))
        out = io.BytesIO()
        transparent.save(out, format="PNG")
        if self.shared:
            images = [ResultImage("png", 20, 10, data=out.getvalue())] * job.request.n
        else:
            count = job.request.n + self.extra
            images = [ResultImage("png", 20, 10, data=out.getvalue()) for _ in range(count)]
        return EditResult(
            images=images,
            model=job.card.id,
            provider=self.name,
            usage=self.usage or Usage(),
            background="transparent",
        )

    async def aclose(self) -> None:
        return None


def service(provider: Scripted, timeout: float = 5.0) -> EditService:
    registry = ProviderRegistry()
    registry.register(provider)
    return EditService(
        Catalog.build([CARD], shipped=[]),
        registry,
        Router([Deployment(provider="scripted")]),
        timeout_seconds=timeout,
    )


def request(n: int = 1, images: int = 1, **output: object) -> EditRequest:
    return edit_request("scripted/model", n=n, images=images, output=OutputOptions(**output))


def run(svc: EditService, req: EditRequest) -> EditResult:
    return asyncio.run(svc.run(svc.prepare(req), DiscardEvents()))


def test_output_format_is_honoured_when_the_provider_did_not() -> None:
    result = run(service(Scripted()), request(output_format="webp", output_compression=70))
    assert result.images[0].format == "webp"
    assert imaging.decode(result.images[0].raw()).format == "WEBP"
    assert result.background == "transparent"


def test_one_image_handed_back_n_times_is_converted_once() -> None:
    shared = run(service(Scripted(shared=True)), request(n=3, output_format="webp"))
    assert shared.images[0] is shared.images[1] is shared.images[2]
    assert shared.images[0].format == "webp"
    separate = run(service(Scripted()), request(n=3, output_format="webp"))
    assert separate.images[0] is not separate.images[1]
    assert all(image.format == "webp" for image in separate.images)


def test_jpeg_conversion_flattens_and_says_opaque() -> None:
    result = run(service(Scripted()), request(output_format="jpeg"))
    out = imaging.decode(result.images[0].raw())
    assert out.format == "JPEG" and out.mode == "RGB"
    assert result.background == "opaque"


def test_list_price_when_no_tokens() -> None:
    result = run(service(Scripted()), request(n=3, images=2))
    assert result.cost_usd == pytest.approx(3 * 0.04 + 2 * 0.01)


def test_images_beyond_n_are_neither_answered_nor_billed() -> None:
    svc = service(Scripted(extra=2))
    job = svc.prepare(request(n=2, images=1))
    result = asyncio.run(svc.run(job, DiscardEvents()))
    assert len(result.images) == 2
    assert result.cost_usd == pytest.approx(2 * 0.04 + 0.01)
    assert result.cost_usd <= cost_ceiling(job)


def test_tokens_win_over_the_list_price() -> None:
    usage = Usage(
        input_tokens=1000,
        output_tokens=4160,
        input_text_tokens=200,
        input_image_tokens=800,
        output_image_tokens=4160,
    )
    result = run(service(Scripted(usage=usage)), request())
    assert result.cost_usd == pytest.approx((200 * 5 + 800 * 10 + 4160 * 40) / 1e6)


def test_deadline_is_a_504_from_the_provider() -> None:
    with pytest.raises(UpstreamTimeout) as caught:
        run(service(Scripted(delay=1.0), timeout=0.05), request())
    assert caught.value.status == 504 and caught.value.origin == "provider"


def test_a_crashing_provider_is_a_500_that_hides_its_internals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(InternalError) as caught:
        run(service(Scripted(crash=True)), request())
    assert "secret internals" not in caught.value.message
    assert "secret internals" in caplog.text  # the trace is in the log, for the operator


def test_a_model_whose_provider_is_not_configured_is_not_served() -> None:
    registry = ProviderRegistry()
    svc = EditService(Catalog.build([CARD], shipped=[]), registry, Router([]), timeout_seconds=1)
    assert svc.listed_cards() == []
    with pytest.raises(NotFound) as caught:
        svc.card("scripted/model")
    assert caught.value.code == "model_not_available"
    assert "not configured" in caught.value.message
