"""Freed memory kept for the next request while the gateway is busy, and handed back to the
operating system once it is idle.

glibc returns a freed block of more than 128 KiB (its starting mmap threshold, which it then
raises to the largest block freed so far) to the kernel at once, and every new request faults
those pages in again: for a 1 MB edit with a 2 MB answer, page faults were about a third of
the gateway's CPU (bench/RESULTS.md). ``keep_freed_memory`` sets the threshold to 32 MiB and
the top-trim threshold to 128 MiB, so buffers of an image's size are reused from the heap;
blocks larger than that (a 40 MB image) are still mapped and unmapped on their own.

An image edit allocates and frees megabytes. The C allocator keeps freed heap pages mapped for
the next request, so after a burst the process stays about as large as at its peak, however
long it then idles. When no request has held image bytes for ``quiet`` seconds after some did,
``malloc_trim(0)`` returns the free pages (in a thread: on a large heap it takes milliseconds),
after one full garbage collection: objects in reference cycles otherwise keep their share of
the heap until the collector gets round to them (after a load of 16 concurrent edits, 15-20 MiB
of a gateway that idles at 75-85 MiB; bench/RESULTS.md).
Under steady traffic the gate is rarely empty that long, so it costs nothing there. Where the C
library has no ``malloc_trim`` (musl, macOS) this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
from collections.abc import Callable

from imagegate.core.memory import MemoryGate

log = logging.getLogger("imagegate.memory")


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
KEEP_BLOCKS_BELOW = 32 << 20
KEEP_TOP_BELOW = 128 << 20


def keep_freed_memory() -> bool:
    """Tell glibc to keep freed image-sized blocks for reuse; False where it cannot be told."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    kept: bool = mallopt(_M_MMAP_THRESHOLD, KEEP_BLOCKS_BELOW) == 1
    kept = mallopt(_M_TRIM_THRESHOLD, KEEP_TOP_BELOW) == 1 and kept
    return kept


def malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None where there is none."""
    try:
        function = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return lambda: function(0)


async def trim_when_idle(
    gate: MemoryGate,
    trim: Callable[[], object] | None,
    *,
    tick: float = 1.0,
    quiet: int = 3,
) -> None:
    """Run until cancelled: trim once per idle spell of ``quiet`` ticks that followed work."""
    if trim is None:
        return
    trimmed_at = gate.taken
    idle_ticks = 0
    while True:
        await asyncio.sleep(tick)
        idle_ticks = idle_ticks + 1 if gate.held == 0 else 0
        if idle_ticks >= quiet and gate.taken != trimmed_at:
            trimmed_at = gate.taken
            gc.collect()
            await asyncio.to_thread(trim)
            log.debug("gave freed memory back to the system")
