"""Mask emulation, on pixels: the original outside the mask, the provider's image inside."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field

import pytest
from PIL import Image

from imagegate.catalog.catalog import Catalog
from imagegate.core.errors import InvalidRequest
from imagegate.core.images import probe
from imagegate.core.masking import NOTE, composite_outside_mask
from imagegate.core.request import EditRequest, ImageInput, SizingRequest
from imagegate.core.result import EditResult, ResultImage
from imagegate.providers.base import Deployment, DiscardEvents, EditJob, EventSink, ProviderRegistry
from imagegate.routing.router import Router
from imagegate.service import EditService
from tests import imaging
from tests.imaging import BLUE, GREEN, RED

W, H = 64, 48


def image_input(data: bytes, param: str) -> ImageInput:
    return ImageInput.of(data, probe(data, param=param), param)


ORIGINAL = image_input(imaging.png(W, H, background=RED, box=GREEN), "image[0]")
MASK = image_input(imaging.mask_left_half(W, H), "mask")  # the left half is transparent: edit


def provider_image(size: tuple[int, int] = (W, H)) -> ResultImage:
    out = io.BytesIO()
    Image.new("RGB", size, BLUE).save(out, format="PNG")
    return ResultImage("png", size[0], size[1], data=out.getvalue(), revised_prompt="blue")


def rgb(result: ResultImage) -> Image.Image:
    return imaging.decode(result.raw()).convert("RGB")


@pytest.mark.parametrize("size", [(W, H), (128, 96), (100, 100)])
def test_outside_the_mask_is_the_original_and_inside_is_the_providers(
    size: tuple[int, int],
) -> None:
    out = composite_outside_mask(provider_image(size), ORIGINAL, MASK)
    assert (out.width, out.height) == (W, H)  # the original's size, whatever the provider made
    pixels = rgb(out)
    original = imaging.decode(ORIGINAL.view().tobytes()).convert("RGB")
    seam = W // 2
    for y in range(H):
        for x in range(W):
            if x < seam - 6:
                assert pixels.getpixel((x, y)) == BLUE, (x, y)
            elif x >= seam + 6:
                assert pixels.getpixel((x, y)) == original.getpixel((x, y)), (x, y)
    # the seam is feathered, not a hard cut: a pixel on it is a blend of the two
    r, g, b = pixels.getpixel((seam, 0))
    assert (r, g, b) not in (BLUE, RED)
    assert out.revised_prompt == f"blue ({NOTE})"


# -- through the service, with a provider that takes no mask --------------------------------


@dataclass
class Maskless:
    name: str = "maskless"
    seen_masks: list[object] = field(default_factory=list)

    def check(self, job: EditJob) -> None:
        return None

    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        self.seen_masks.append(job.request.mask)
        image = provider_image((96, 72))
        return EditResult(images=[image] * job.request.n, model=job.card.id, provider=self.name)

    async def aclose(self) -> None:
        return None


def service(provider: Maskless, *, emulation: bool) -> EditService:
    card = {
        "id": "maskless/model",
        "edit": {"max_reference_images": 2, "mask": False, "mask_emulation": emulation},
        "sizing": {"style": "openai_size", "sizes": ["1024x1024", "auto"]},
        "n": {"max": 2},
    }
    registry = ProviderRegistry()
    registry.register(provider)
    return EditService(
        Catalog.build([card], shipped=[]),
        registry,
        Router([Deployment(provider="maskless")]),
        timeout_seconds=5,
    )


def masked_request(**fields: object) -> EditRequest:
    return EditRequest(model="maskless/model", prompt="p", images=(ORIGINAL,), mask=MASK, **fields)


def test_the_provider_is_sent_no_mask_and_the_result_is_composited() -> None:
    provider = Maskless()
    svc = service(provider, emulation=True)
    result = asyncio.run(svc.run(svc.prepare(masked_request(n=2)), DiscardEvents()))
    assert provider.seen_masks == [None]
    assert len(result.images) == 2
    for image in result.images:
        assert (image.width, image.height) == (W, H)
        assert rgb(image).getpixel((2, 2)) == BLUE  # inside the mask
        assert rgb(image).getpixel((W - 3, 2)) == RED  # outside: the original


def test_without_the_opt_in_a_mask_is_refused_before_any_call() -> None:
    provider = Maskless()
    svc = service(provider, emulation=False)
    with pytest.raises(InvalidRequest) as caught:
        svc.prepare(masked_request())
    assert caught.value.code == "mask_not_supported" and caught.value.param == "mask"
    assert provider.seen_masks == []


def test_an_emulated_mask_with_a_size_is_refused() -> None:
    svc = service(Maskless(), emulation=True)
    with pytest.raises(InvalidRequest) as caught:
        svc.prepare(masked_request(sizing=SizingRequest(size="1024x1024")))
    assert caught.value.code == "conflicting_parameters"
    svc.prepare(masked_request(sizing=SizingRequest(size="auto")))  # auto is the input's size
