"""The Stability provider: one multipart call per image (Stability has no ``n``), through the
upstream boundary. The only module of this package that touches httpx."""

from __future__ import annotations

import asyncio

from imagegate import __version__
from imagegate.core.result import EditResult, Usage
from imagegate.providers.base import Deployment, EditJob, EventSink
from imagegate.providers.fanout import fan_out
from imagegate.providers.stability.convert import (
    Malformed,
    Plan,
    form_fields,
    plan_edit,
    read_answer,
    read_error,
    stability_mask,
)
from imagegate.providers.upstream import Upstream


class StabilityProvider:
    name = "stability"

    def __init__(self) -> None:
        self._upstream = Upstream(self.name, read_error)

    def check(self, job: EditJob) -> None:
        plan_edit(job)

    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        plan = plan_edit(job)
        mask: bytes | None = None
        if plan.mask is not None:  # decoded once, shared by every call of a fan-out
            mask = await asyncio.to_thread(_convert_mask, plan)

        async def call(index: int) -> EditResult:
            return await self._call(job, plan, mask, deployment, index)

        return await fan_out(job.request.n, call)

    async def _call(
        self, job: EditJob, plan: Plan, mask: bytes | None, deployment: Deployment, index: int
    ) -> EditResult:
        image = plan.image
        reader = image.open()  # streamed as the file part, never copied whole
        try:
            files: list[tuple[str, tuple[str, object, str]]] = [
                ("image", (image.upload_name(), reader, image.mime_type))
            ]
            if mask is not None:
                files.append(("mask", ("mask.png", mask, "image/png")))
            request = deployment.http().build_request(
                "POST",
                plan.path,
                data=form_fields(plan, index),
                files=files,  # type: ignore[arg-type]  # httpx's file tuple types are narrow
                headers=_headers(job, deployment),
            )
            response = await self._upstream.send(deployment, request)
        finally:
            reader.close()
        try:
            answer = read_answer(response.headers, response.content)
        except Malformed as exc:
            raise self._upstream.malformed(exc.what) from None
        return EditResult(
            images=[answer.image],
            model=job.card.id,
            provider=self.name,
            usage=Usage(),
            background="transparent" if answer.transparent else "opaque",
        )

    async def aclose(self) -> None:
        return None


def _convert_mask(plan: Plan) -> bytes:
    assert plan.mask is not None
    with plan.mask.open() as reader:
        return stability_mask(reader)


def _headers(job: EditJob, deployment: Deployment) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {deployment.secret()}",
        "Accept": "image/*",
        "stability-client-id": "imagegate",
        "stability-client-version": __version__,
    }
    # Stability's own header for the end user, for its abuse reports (printable ASCII only).
    user = "".join(ch for ch in job.request.user or "" if " " <= ch <= "~").strip()[:256]
    if user:
        headers["stability-client-user-id"] = user
    return headers
