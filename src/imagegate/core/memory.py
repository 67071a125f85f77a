"""One process-wide cap on the request bytes held in memory, and each request's share of it.

Two levels. Past ``spill_above`` (IMAGEGATE_SPILL_HELD_BYTES) the process is crowded: images
that arrive now go to temporary files instead of memory (``core.blob``), so memory stays flat
however many edits are in flight and the page cache takes the rest. Past ``limit``
(IMAGEGATE_MAX_INFLIGHT_BYTES) a new reservation is refused.

Every byte of a request body the gateway keeps in memory (image parts below the spill
threshold, the JSON text it parses, decoded data URLs, fetched images) is reserved from the
``MemoryGate`` as it arrives, on the request's ``MemoryLease``. When the gate is full a new
reservation is refused with 503 and ``Retry-After`` instead of growing the process towards an
out-of-memory kill; the lease gives everything back when the exchange ends.

The event loop is single-threaded and reservations never await, so plain integers suffice.
"""

from __future__ import annotations

from typing import Protocol

from imagegate.core.errors import ServiceUnavailable
from imagegate.core.units import human_bytes

RETRY_AFTER_SECONDS = 2


class MemoryGate:
    def __init__(self, limit: int, *, spill_above: int | None = None) -> None:
        self.limit = limit
        self.spill_above = limit if spill_above is None else spill_above
        self.held = 0
        self.peak = 0
        self.taken = 0  # bytes ever reserved: tells ``core.trim`` whether work happened

    def lease(self) -> MemoryLease:
        return MemoryLease(self)

    def _take(self, count: int) -> None:
        if self.held + count > self.limit:
            raise ServiceUnavailable(
                "The gateway is holding as many request bytes in memory as it is configured "
                f"to ({human_bytes(self.limit)}, IMAGEGATE_MAX_INFLIGHT_BYTES); retry in a few "
                "seconds.",
                code="server_busy",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self.held += count
        self.taken += count
        self.peak = max(self.peak, self.held)

    def _give(self, count: int) -> None:
        self.held -= count

    @property
    def crowded(self) -> bool:
        """Whether new image bytes should go to a temporary file rather than memory."""
        return self.held >= self.spill_above


class Closeable(Protocol):
    def close(self) -> None: ...


class MemoryLease:
    """What one request holds: its share of the gate, and the blobs and temporary files its
    images live in. ``close`` (when the exchange ends) gives all of it back."""

    __slots__ = ("_gate", "_held_objects", "held", "peak")

    def __init__(self, gate: MemoryGate) -> None:
        self._gate = gate
        self.held = 0
        self.peak = 0  # the most this request held at once, for its log line
        self._held_objects: list[Closeable] = []

    def hold(self, resource: Closeable) -> None:
        """Close ``resource`` with the lease: a spilled file, a blob."""
        self._held_objects.append(resource)

    @property
    def crowded(self) -> bool:
        return self._gate.crowded

    def reserve(self, count: int) -> None:
        self._gate._take(count)
        self.held += count
        self.peak = max(self.peak, self.held)

    def release(self, count: int) -> None:
        count = min(count, self.held)
        self._gate._give(count)
        self.held -= count

    def close(self) -> None:
        resources, self._held_objects = self._held_objects, []
        for resource in resources:
            resource.close()
        self.release(self.held)


def unlimited_lease() -> MemoryLease:
    """A lease on a gate of its own with no limit: for callers outside a served request."""
    return MemoryGate(limit=1 << 62).lease()
