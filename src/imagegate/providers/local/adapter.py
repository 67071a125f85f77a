"""``local/pillow``: the engine behind the provider protocol, run off the event loop."""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path

from imagegate.core.result import EditResult, ResultImage, Usage
from imagegate.providers.base import Deployment, EditJob, EventSink
from imagegate.providers.local.engine import check_input_pixels, render
from imagegate.providers.local.prompt import parse_prompt


def available_cpus(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may use: its affinity, capped by a container's CPU quota (cgroup v2)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    count = count or 1
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


class LocalProvider:
    name = "local"

    def __init__(self, max_concurrency: int | None = None) -> None:
        # CPU-bound work: more threads than cores only adds latency to everyone.
        self._slots = asyncio.Semaphore(max_concurrency or available_cpus())

    def check(self, job: EditJob) -> None:
        parse_prompt(job.request.prompt, model=job.card.id)  # a prompt it cannot read is a 400
        check_input_pixels(job.request.images, job.card.id)

    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        async with self._slots:
            rendered = await asyncio.to_thread(render, job)
        for index, preview in enumerate(rendered.partials):
            await events.partial(
                ResultImage(rendered.format, rendered.width, rendered.height, data=preview), index
            )
        revised = "; ".join(rendered.labels)
        # The engine is deterministic, so n copies are one image: encoded, and later turned
        # into base64, once.
        image = ResultImage(
            rendered.format,
            rendered.width,
            rendered.height,
            data=rendered.data,
            revised_prompt=revised,
        )
        images = [image] * job.request.n
        return EditResult(
            images=images,
            model=job.card.id,
            provider=self.name,
            usage=Usage(),
            background=rendered.background,
        )

    async def aclose(self) -> None:
        return None
