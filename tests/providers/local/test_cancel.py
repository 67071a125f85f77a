"""A render whose request ends stops soon, and its slot stays taken until its thread returns.

Ordering is asserted with events, not wall-clock: the machine running the suite may be busy.
Times appear only as generous deadlines, so a stuck render fails instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from PIL import Image

from imagegate.catalog.catalog import Catalog
from imagegate.core.errors import ServiceUnavailable, UpstreamTimeout
from imagegate.core.request import EditRequest
from imagegate.providers.base import Deployment, DiscardEvents, EditJob, ProviderRegistry
from imagegate.providers.local import adapter, bands, cancel, encode, ops
from imagegate.providers.local.adapter import LocalProvider
from imagegate.providers.local.cancel import CancelFlag, RenderCancelled
from imagegate.providers.local.card import LOCAL_CARDS
from imagegate.providers.local.decode import decode
from imagegate.providers.local.engine import Rendered, render
from imagegate.routing.router import Router
from imagegate.service import EditService
from tests import imaging
from tests.providers.local.test_engine import make_job, part

DEADLINE = 20.0  # seconds: only ever hit if a render fails to stop
# A stop waits for the step in progress: well under a second for these 6 MP steps, and a few
# seconds leaves room for a machine busy with other work.
STOP_WITHIN = 5.0
LOCAL = Deployment(provider="local")

# Far more work than the tests wait for: 32 operations (8 of them filters) on 6 MP. Uncancelled
# it runs for seconds; every test cancels it within a step or two of starting.
SLOW_PROMPT = ", ".join(
    ["blur radius 25, increase contrast, invert, sharpen, sepia, brighten, posterize, solarize"] * 4
)


@pytest.fixture(scope="module")
def big_png() -> bytes:
    return imaging.encode(Image.new("RGB", (2500, 2500), (120, 80, 40)))


@dataclass
class Timeline:
    """What the worker threads did, in order, as the tracked render saw it."""

    events: list[tuple[str, str]] = field(default_factory=list)
    ended: dict[str, float] = field(default_factory=dict)
    started: dict[str, threading.Event] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, what: str, name: str) -> None:
        with self.lock:
            self.events.append((what, name))

    def start_event(self, name: str) -> threading.Event:
        return self.started.setdefault(name, threading.Event())


@pytest.fixture()
def timeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[Timeline]:
    seen = Timeline()

    def tracked(job: EditJob, flag: CancelFlag) -> Rendered:
        name = job.request.user or "?"
        seen.note("start", name)
        seen.start_event(name).set()
        try:
            return render(job, flag)
        except RenderCancelled:
            seen.note("stopped", name)
            raise
        finally:
            seen.ended[name] = time.monotonic()
            seen.note("end", name)

    monkeypatch.setattr(adapter, "render", tracked)
    yield seen


def named(job: EditJob, name: str) -> EditJob:
    request = job.request
    renamed = EditRequest(
        model=request.model,
        prompt=request.prompt,
        images=request.images,
        output=request.output,
        user=name,
    )
    return EditJob(request=renamed, card=job.card, sizing=job.sizing)


async def started(timeline: Timeline, name: str) -> None:
    assert await asyncio.to_thread(timeline.start_event(name).wait, DEADLINE)


def test_a_cancelled_render_stops_and_keeps_its_slot_until_its_thread_returns(
    timeline: Timeline, big_png: bytes
) -> None:
    slow = named(make_job(big_png, SLOW_PROMPT), "slow")
    quick = named(make_job(imaging.png(), "invert"), "quick")

    async def scenario() -> None:
        provider = LocalProvider(max_concurrency=1)
        first = asyncio.create_task(provider.edit(slow, LOCAL, DiscardEvents()))
        await started(timeline, "slow")
        second = asyncio.create_task(provider.edit(quick, LOCAL, DiscardEvents()))
        await asyncio.sleep(0.05)  # room for the second to start, were the slot free
        assert ("start", "quick") not in timeline.events
        cancelled_at = time.monotonic()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(first, DEADLINE)
        # The cancelled edit returned only after its thread did.
        assert ("end", "slow") in timeline.events
        assert timeline.ended["slow"] - cancelled_at < STOP_WITHIN
        result = await asyncio.wait_for(second, DEADLINE)
        assert result.images[0].revised_prompt == "invert colours"
        await provider.aclose()

    asyncio.run(scenario())
    assert timeline.events == [
        ("start", "slow"),
        ("stopped", "slow"),  # stopped by its flag, not run to the end
        ("end", "slow"),
        ("start", "quick"),  # only once the first thread was free
        ("end", "quick"),
    ]


def test_a_cancel_during_the_wait_for_a_slot_runs_nothing(
    timeline: Timeline, big_png: bytes
) -> None:
    slow = named(make_job(big_png, SLOW_PROMPT), "slow")
    queued = named(make_job(imaging.png(), "invert"), "queued")

    async def scenario() -> None:
        provider = LocalProvider(max_concurrency=1)
        first = asyncio.create_task(provider.edit(slow, LOCAL, DiscardEvents()))
        await started(timeline, "slow")
        second = asyncio.create_task(provider.edit(queued, LOCAL, DiscardEvents()))
        await asyncio.sleep(0.01)
        second.cancel()
        first.cancel()
        for task in (first, second):
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, DEADLINE)
        await provider.aclose()

    asyncio.run(scenario())
    assert ("start", "queued") not in timeline.events


def test_a_deadline_stops_the_render_before_the_504(timeline: Timeline, big_png: bytes) -> None:
    registry = ProviderRegistry()
    provider = LocalProvider(max_concurrency=1)
    registry.register(provider)
    service = EditService(
        Catalog.build([], shipped=LOCAL_CARDS),
        registry,
        Router([LOCAL]),
        timeout_seconds=0.2,
    )
    request = EditRequest(
        model="local/pillow", prompt=SLOW_PROMPT, images=(part(big_png),), user="slow"
    )

    async def scenario() -> None:
        job = service.prepare(request)
        with pytest.raises(UpstreamTimeout):
            await asyncio.wait_for(service.run(job, DiscardEvents()), DEADLINE)
        assert ("end", "slow") in timeline.events  # the thread is done when the 504 is raised
        await provider.aclose()

    asyncio.run(scenario())
    assert ("stopped", "slow") in timeline.events


def test_shutdown_stops_every_render_in_flight(timeline: Timeline, big_png: bytes) -> None:
    slow = named(make_job(big_png, SLOW_PROMPT), "slow")

    async def scenario() -> None:
        provider = LocalProvider(max_concurrency=1)
        edit = asyncio.create_task(provider.edit(slow, LOCAL, DiscardEvents()))
        await started(timeline, "slow")
        await asyncio.wait_for(provider.aclose(), DEADLINE)
        assert ("end", "slow") in timeline.events  # aclose waited for the thread
        with pytest.raises(ServiceUnavailable) as caught:
            await asyncio.wait_for(edit, DEADLINE)
        assert caught.value.code == "shutting_down"
        late = named(make_job(imaging.png(), "invert"), "late")
        with pytest.raises(ServiceUnavailable):  # and takes no new work
            await provider.edit(late, LOCAL, DiscardEvents())

    asyncio.run(scenario())
    assert ("stopped", "slow") in timeline.events
    assert ("start", "late") not in timeline.events


# --- the steps Pillow runs in C: decoding and encoding ----------------------------------------


def test_a_set_flag_stops_a_render_before_it_decodes_anything(big_png: bytes) -> None:
    flag = CancelFlag()
    flag.set()
    with pytest.raises(RenderCancelled):
        render(make_job(big_png, "invert"), flag)


def test_decoding_stops_between_the_chunks_it_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    noisy = imaging.encode(Image.effect_noise((600, 600), 80))  # many 64 KB reads
    flag = CancelFlag()
    reads: list[int] = []
    stop_at = [0]
    read = cancel.CheckedReader.read

    def counted(self: cancel.CheckedReader, size: int = -1) -> bytes:
        reads.append(size)
        if len(reads) == stop_at[0]:
            flag.set()  # as if the request went away mid-decode
        return read(self, size)

    monkeypatch.setattr(cancel.CheckedReader, "read", counted)
    decode(part(noisy), flag)
    whole = len(reads)
    reads.clear()
    stop_at[0] = 4
    with pytest.raises(RenderCancelled):  # not a 400 "could not be decoded"
        decode(part(noisy), flag)
    assert len(reads) == 4 < whole  # it stopped at the read that saw the flag


def test_encoding_stops_between_the_chunks_it_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    noisy = Image.effect_noise((800, 800), 80).convert("RGBA")
    flag = CancelFlag()
    writes: list[int] = []
    stop_at = [0]
    write = cancel.CheckedWriter.write

    def counted(self: cancel.CheckedWriter, data: bytes) -> int:
        writes.append(len(data))
        if len(writes) == stop_at[0]:
            flag.set()
        return write(self, data)

    monkeypatch.setattr(cancel.CheckedWriter, "write", counted)
    encode.encode(noisy, "png", flag)
    whole = len(writes)
    writes.clear()
    stop_at[0] = 3
    with pytest.raises(RenderCancelled):
        encode.encode(noisy, "png", flag)
    assert len(writes) == 3 < whole  # it stopped at the write that saw the flag


# --- the slow filters run in bands, checking between them -------------------------------------


@pytest.mark.parametrize(
    "op",
    [
        ops.blur(0.5),
        ops.blur(4),
        ops.blur(25),
        ops.blur(100),
        ops.sharpen(),
        ops.edges(),
        ops.emboss(),
    ],
    ids=lambda op: op.label,
)
@pytest.mark.parametrize("size", [(211, 173), (97, 2900)])
def test_a_filter_in_bands_gives_the_same_bytes_as_in_one_pass(
    monkeypatch: pytest.MonkeyPatch, op: ops.Op, size: tuple[int, int]
) -> None:
    monkeypatch.setattr(bands, "BAND_PIXELS", 5000)  # bands of a few dozen rows
    image = Image.effect_noise(size, 70).convert("RGBA")
    image.putalpha(Image.effect_noise(size, 90))
    assert op.run(image, CancelFlag()).tobytes() == op.apply(image).tobytes()


def test_a_filter_in_bands_stops_between_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bands, "BAND_PIXELS", 5000)
    image = Image.effect_noise((100, 2000), 70).convert("RGBA")
    flag = CancelFlag()
    cut: list[object] = []
    crop = Image.Image.crop

    def counted(self: Image.Image, box: tuple[int, int, int, int] | None = None) -> Image.Image:
        if self.size == (100, 2000):  # a band cut from the source
            cut.append(box)
            if len(cut) == 3:
                flag.set()
        return crop(self, box)

    monkeypatch.setattr(Image.Image, "crop", counted)
    with pytest.raises(RenderCancelled):
        ops.edges().run(image, flag)
    assert len(cut) == 3  # of 40
