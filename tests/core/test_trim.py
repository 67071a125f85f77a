"""Freed memory given back after a burst: once per idle spell, never while bytes are held."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import weakref

from imagegate.core.memory import MemoryGate
from imagegate.core.trim import malloc_trim, trim_when_idle


def test_trims_once_after_work_and_not_while_busy() -> None:
    calls: list[int] = []

    async def scenario() -> None:
        gate = MemoryGate(limit=1 << 30)
        task = asyncio.create_task(
            trim_when_idle(gate, lambda: calls.append(gate.held), tick=0.01, quiet=3)
        )
        await asyncio.sleep(0.08)
        assert calls == []  # no work yet: nothing to give back
        lease = gate.lease()
        lease.reserve(5_000_000)
        await asyncio.sleep(0.08)
        assert calls == []  # bytes held: never trims under a request
        lease.close()
        await asyncio.sleep(0.08)
        assert calls == [0]  # idle after work: once
        await asyncio.sleep(0.08)
        assert calls == [0]  # and not again until there is new work
        task.cancel()

    asyncio.run(scenario())


def test_the_real_trim_runs_here() -> None:
    trim = malloc_trim()
    assert trim is not None  # glibc on the machines this runs on (Debian, the Docker image)
    assert trim() in (0, 1)


_PROBE = """
import os, sys
from imagegate.core.trim import keep_freed_memory, malloc_trim
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
if sys.argv[1] == "keep":
    assert keep_freed_memory()
block = b"x" * (8 << 20)
before = rss()
del block
after_free = rss()
malloc_trim()()
print(before - after_free, before - rss())
"""


def _freed(mode: str) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
    )
    given_back_at_free, given_back_at_trim = map(int, done.stdout.split())
    return given_back_at_free, given_back_at_trim


def test_an_image_sized_block_is_kept_for_reuse_until_the_idle_trim() -> None:
    mib = 1 << 20
    # glibc's default: an 8 MiB block goes back to the kernel as soon as it is freed.
    assert _freed("default")[0] >= 7 * mib
    # Kept: freeing it leaves it mapped for the next request; the idle trim gives it back.
    at_free, at_trim = _freed("keep")
    assert at_free < mib
    assert at_trim >= 7 * mib


class _Cyclic:
    def __init__(self) -> None:
        self.me = self  # only the garbage collector frees it
        self.payload = bytearray(4 << 20)


def test_cyclic_garbage_is_collected_before_the_trim() -> None:
    seen: list[bool] = []

    async def scenario() -> None:
        gate = MemoryGate(limit=1 << 30)
        held = _Cyclic()
        ref = weakref.ref(held)
        del held
        task = asyncio.create_task(
            trim_when_idle(gate, lambda: seen.append(ref() is None), tick=0.01, quiet=2)
        )
        await asyncio.sleep(0.02)  # the trimmer has started and seen no work yet
        lease = gate.lease()
        lease.reserve(1)
        lease.close()
        await asyncio.sleep(0.1)
        task.cancel()

    gc.disable()
    try:
        asyncio.run(scenario())
    finally:
        gc.enable()
    assert seen == [True]  # the 4 MiB in the cycle were freed when the trim ran
