"""``local/pillow``: the engine behind the provider protocol, on a bounded pool of its own.

Renders run on a ``ThreadPoolExecutor`` with one thread per concurrency slot. A render whose
request ends (client gone, deadline, shutdown) is told to stop through its ``CancelFlag`` and
stops at its next step, within about a second; until its thread has really returned, its slot
stays taken, so the number of renders at work never exceeds the cap, cancelled or not.
"""

from __future__ import annotations

import asyncio
import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from imagegate.core.errors import ServiceUnavailable
from imagegate.core.result import EditResult, ResultImage, Usage
from imagegate.providers.base import Deployment, EditJob, EventSink
from imagegate.providers.local.cancel import CancelFlag, RenderCancelled
from imagegate.providers.local.checks import check_job
from imagegate.providers.local.engine import Rendered, render

# How long shutdown waits for stopped renders to unwind; they check their flag every step.
SHUTDOWN_GRACE_SECONDS = 5.0


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
        workers = max_concurrency or available_cpus()
        self._slots = asyncio.Semaphore(workers)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imagegate-local")
        self._running: dict[CancelFlag, Future[Rendered]] = {}
        self._closed = False

    def check(self, job: EditJob) -> None:
        check_job(job)

    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        async with self._slots:
            rendered = await self._render(job)
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

    async def _render(self, job: EditJob) -> Rendered:
        if self._closed:
            raise _stopping()
        cancel = CancelFlag()
        work = self._pool.submit(render, job, cancel)
        self._running[cancel] = work
        try:
            return await _outcome(work, cancel)
        finally:
            del self._running[cancel]

    async def aclose(self) -> None:
        """Stop every render in flight, wait (briefly) for their threads, and end the pool."""
        self._closed = True
        for cancel in self._running:
            cancel.set()
        pending = [_settled(work) for work in self._running.values()]
        self._pool.shutdown(wait=False, cancel_futures=True)
        if pending:
            await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_SECONDS)


async def _outcome(work: Future[Rendered], cancel: CancelFlag) -> Rendered:
    """The render's result; if the awaiting task is cancelled, stop the render and wait for it.

    Cancelling the task does not stop its thread: the flag does, at the render's next step.
    Waiting for that before re-raising keeps the caller's concurrency slot taken until the
    thread is free again.
    """
    done = _settled(work)
    try:
        await asyncio.wait({done})  # unlike awaiting `done`, this never cancels it
    except asyncio.CancelledError:
        cancel.set()
        await _until_done(done)
        raise
    try:
        return done.result()
    except RenderCancelled:  # stopped by aclose, not by this request going away
        raise _stopping() from None


async def _until_done(done: asyncio.Future[Rendered]) -> None:
    while not done.done():
        try:
            await asyncio.wait({done})
        except asyncio.CancelledError:
            continue  # cancelled again (a deadline on top of a disconnect): keep waiting


def _settled(work: Future[Rendered]) -> asyncio.Future[Rendered]:
    """``work`` as an asyncio future whose exception counts as seen even if nobody asks.

    Otherwise a render stopped after its request went away leaves a future that logs "exception
    never retrieved" when collected, and on CPython 3.11 that logging, run by the collector in
    the middle of an unrelated ``ast.parse``, can fail it with a SystemError.
    """
    done = asyncio.wrap_future(work)
    done.add_done_callback(_seen)
    return done


def _seen(done: asyncio.Future[Rendered]) -> None:
    if not done.cancelled():
        done.exception()


def _stopping() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The gateway is shutting down; the edit was stopped before it finished. Send it again.",
        code="shutting_down",
    )
