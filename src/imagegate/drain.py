"""Draining: the state of a replica between SIGTERM and closing its listener.

A load balancer must see a replica go unready before it stops accepting connections, or the
requests it routes there in between are refused. So SIGTERM first flips ``Drain`` (``/readyz``
answers 503 ``{"status":"draining"}`` and every response says ``Connection: close``, handing
keep-alive connections back to the balancer), then, ``drain_delay_seconds`` later, the server
stops accepting and finishes what is in flight (``imagegate.serving``).

With several workers the supervisor gets the signal, not the workers: it creates a marker file
whose path the workers read from ``DRAIN_FILE_ENV``, so each worker's ``Drain`` sees it without
signals of its own (a worker still starting could be killed by one it has no handler for yet).
"""

from __future__ import annotations

import time
from pathlib import Path

# Not an IMAGEGATE_* setting: the supervisor sets it for its own workers, never a user.
DRAIN_FILE_ENV = "_IMAGEGATE_DRAIN_FILE"


class Drain:
    def __init__(self, marker: Path | None = None) -> None:
        self._since: float | None = None
        self._marker = marker

    def start(self) -> None:
        """Begin draining (idempotent); safe in a signal handler: no locks, no logging."""
        if self._since is None:
            self._since = time.monotonic()
            if self._marker is not None:
                self._marker.touch()

    @property
    def draining(self) -> bool:
        if self._since is not None:
            return True
        if self._marker is not None and self._marker.exists():
            self._since = time.monotonic()
            return True
        return False
