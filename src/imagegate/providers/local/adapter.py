"""``local/pillow``: the engine behind the provider protocol, run off the event loop."""

from __future__ import annotations

import asyncio
import os

from imagegate.core.result import EditResult, ResultImage, Usage
from imagegate.providers.base import Deployment, EditJob, EventSink
from imagegate.providers.local.engine import render
from imagegate.providers.local.prompt import parse_prompt


class LocalProvider:
    name = "local"

    def __init__(self, max_concurrency: int | None = None) -> None:
        # CPU-bound work: more threads than cores only adds latency to everyone.
        self._slots = asyncio.Semaphore(max_concurrency or max(1, os.cpu_count() or 1))

    def check(self, job: EditJob) -> None:
        parse_prompt(job.request.prompt, model=job.card.id)  # a prompt it cannot read is a 400

    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        async with self._slots:
            rendered = await asyncio.to_thread(render, job)
        for index, preview in enumerate(rendered.partials):
            await events.partial(
                ResultImage(rendered.format, rendered.width, rendered.height, data=preview), index
            )
        revised = "; ".join(rendered.labels)
        # The engine is deterministic, so n copies are the same image, encoded once.
        images = [
            ResultImage(
                rendered.format,
                rendered.width,
                rendered.height,
                data=rendered.data,
                revised_prompt=revised,
            )
            for _ in range(job.request.n)
        ]
        return EditResult(
            images=images,
            model=job.card.id,
            provider=self.name,
            usage=Usage(),
            background=rendered.background,
        )

    async def aclose(self) -> None:
        return None
