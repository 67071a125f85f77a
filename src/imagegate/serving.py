"""uvicorn with draining: SIGTERM, unready, (drain delay), stop accepting, finish, exit 0.

uvicorn's own SIGTERM handling stops accepting at once and, once it has finished, raises the
signal again so the process dies of it. Here the first SIGTERM (or Ctrl-C) only starts the drain
(``imagegate.drain``); the server keeps serving for ``drain_delay_seconds``, then shuts down as
uvicorn does (in-flight requests, streams included, get ``graceful_shutdown_seconds``), and the
process exits 0: it stopped because it was asked to. A second signal during the delay cuts it
short; a second Ctrl-C after that forces the exit, as in plain uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors.multiprocess import Multiprocess

from imagegate.drain import DRAIN_FILE_ENV, Drain

log = logging.getLogger("imagegate")

STARTUP_FAILURE = 3  # uvicorn's exit status when the app could not start
# After the listener closes: time for a connection accepted in its last moments to deliver its
# request before idle connections are closed (a balancer does not retry a POST it has sent).
LAST_ACCEPTED_SECONDS = 0.5


class DrainingServer(uvicorn.Server):
    """One process: the signal handler flips the drain; ``on_tick`` (every 0.1 s) ends it."""

    def __init__(self, config: uvicorn.Config, drain: Drain, delay: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.delay = delay
        self._stop_at: float | None = None
        self._announced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Runs in signal context: set flags only (logging could deadlock on its lock). Not
        # super(): it records the signal to raise again after shutdown, which would turn a clean
        # drain into an exit "killed by SIGTERM".
        self.drain.start()
        if self._stop_at is None and self.delay > 0 and not self.should_exit:
            self._stop_at = time.monotonic() + self.delay
            return
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._stop_at is not None and not self._announced:
            self._announced = True
            log.info(
                "draining: /readyz answers 503; no longer accepting connections in %.1f s",
                max(0.0, self._stop_at - time.monotonic()),
            )
        if self._stop_at is not None and time.monotonic() >= self._stop_at:
            self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn closes the listener and, at once, every connection without a request in
        # progress -- including one accepted a moment ago whose request is still on its way.
        # Close the listener first, let such requests arrive (they are then served, with
        # Connection: close), and only then let uvicorn close what is idle.
        if self._stop_at is not None and not self.force_exit:
            for server in self.servers:
                server.close()
            await asyncio.sleep(LAST_ACCEPTED_SECONDS)
        await super().shutdown(sockets)


class DrainingMultiprocess(Multiprocess):
    """Several workers: the supervisor drains (its ``Drain`` creates the marker the workers
    read), then after the delay terminates them as uvicorn does; each finishes in flight."""

    def __init__(
        self, config: uvicorn.Config, sockets: list[socket.socket], drain: Drain, delay: float
    ) -> None:
        super().__init__(config, sockets)
        self.drain = drain
        self.delay = delay
        self._stop_at: float | None = None

    def handle_term(self) -> None:
        self._begin("SIGTERM")

    def handle_int(self) -> None:
        self._begin("SIGINT")

    def _begin(self, name: str) -> None:
        # Called from the supervisor's loop (uvicorn queues signals), so logging is fine here.
        self.drain.start()
        if self._stop_at is None and self.delay > 0:
            self._stop_at = time.monotonic() + self.delay
            log.info("%s: draining: /readyz answers 503; workers stop in %.1f s", name, self.delay)
            return
        log.info("%s: stopping the workers", name)
        self.should_exit.set()

    def terminate_all(self) -> None:
        # The supervisor's copy of the listening socket would keep it open after the workers
        # close theirs: connections would then wait in its backlog (and be reset when it exits)
        # instead of being refused, which a balancer retries on another replica.
        for sock in self.sockets:
            sock.close()
        super().terminate_all()

    def keep_subprocess_alive(self) -> None:
        if self._stop_at is not None and time.monotonic() >= self._stop_at:
            self.should_exit.set()
            return
        super().keep_subprocess_alive()


def serve(app: FastAPI, options: dict[str, Any], delay: float) -> int:
    """Serve ``app`` in this process until it has drained; the exit status."""
    drain: Drain = app.state.drain
    server = DrainingServer(uvicorn.Config(app, **options), drain, delay)
    server.run()
    return 0 if server.started else STARTUP_FAILURE


def serve_workers(factory: str, options: dict[str, Any], workers: int, delay: float) -> int:
    """Serve ``workers`` processes, each building its app with ``factory``; the exit status."""
    marker_dir = Path(tempfile.mkdtemp(prefix="imagegate-drain-"))
    marker = marker_dir / "draining"
    os.environ[DRAIN_FILE_ENV] = str(marker)  # the workers are spawned with this environment
    try:
        config = uvicorn.Config(factory, factory=True, workers=workers, **options)
        sock = config.bind_socket()
        DrainingMultiprocess(config, [sock], Drain(marker), delay).run()
        return 0
    finally:
        os.environ.pop(DRAIN_FILE_ENV, None)
        shutil.rmtree(marker_dir, ignore_errors=True)
