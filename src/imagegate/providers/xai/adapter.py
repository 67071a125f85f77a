"""The xAI provider: one JSON call for all ``n`` images (xAI has ``n``), through the upstream
boundary. The only module of this package that touches httpx."""

from __future__ import annotations

import asyncio

from imagegate.core.convert import convert_bytes
from imagegate.core.result import EditResult, ResultImage, Usage
from imagegate.providers.base import Deployment, EditJob, EventSink
from imagegate.providers.upstream import Upstream
from imagegate.providers.xai.convert import (
    EDIT_PATH,
    AnsweredImage,
    Malformed,
    check_request,
    edit_body,
    read_answer,
    read_error,
)

MAX_RESULT_BYTES = 50 * 1024 * 1024  # a result answered as a URL, downloaded at most this big
_INLINE_BODY_BYTES = 1024 * 1024  # bigger inputs are base64-encoded off the event loop


class XaiProvider:
    name = "xai"

    def __init__(self) -> None:
        self._upstream = Upstream(self.name, read_error)

    def check(self, job: EditJob) -> None:
        check_request(job)

    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        check_request(job)
        if job.request.image_bytes > _INLINE_BODY_BYTES:
            body = await asyncio.to_thread(edit_body, job)
        else:
            body = edit_body(job)
        request = deployment.http().build_request(
            "POST",
            EDIT_PATH,
            content=body,
            headers={
                "Authorization": f"Bearer {deployment.secret()}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        response = await self._upstream.send(deployment, request)
        try:
            answer = read_answer(response.content)
        except Malformed as exc:
            raise self._upstream.malformed(exc.what) from None
        images = await asyncio.gather(
            *(self._image(entry, deployment) for entry in answer.images)
        )  # URLs (when xAI answers them) are downloaded at once
        images = await _compress(list(images), job)
        return EditResult(
            images=images,
            model=job.card.id,
            provider=self.name,
            usage=Usage(provider_cost_usd=answer.cost_usd),
            background="opaque",
        )

    async def _image(self, entry: AnsweredImage, deployment: Deployment) -> ResultImage:
        try:
            if entry.b64 is not None:
                return ResultImage.from_base64(entry.b64, revised_prompt=entry.revised_prompt)
            assert entry.url is not None
            data = await self._upstream.download(deployment, entry.url, max_bytes=MAX_RESULT_BYTES)
            return ResultImage.from_bytes(data, revised_prompt=entry.revised_prompt)
        except ValueError:
            raise self._upstream.malformed("a result that is not an image") from None

    async def aclose(self) -> None:
        return None


async def _compress(images: list[ResultImage], job: EditJob) -> list[ResultImage]:
    """``output_compression`` for results already in the asked format (xAI makes JPEGs); the
    service converts the others, with the compression, itself."""
    output = job.request.output
    if output.output_compression is None or output.output_format is None:
        return images
    wanted = output.output_format
    out = []
    for image in images:
        if image.format == wanted:
            data, width, height, _ = await asyncio.to_thread(
                convert_bytes, image.raw(), wanted, compression=output.output_compression
            )
            image = ResultImage(
                wanted, width, height, data=data, revised_prompt=image.revised_prompt
            )
        out.append(image)
    return out
