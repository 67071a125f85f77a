"""A deadline and a minimum rate for reading a request body, so slow clients cannot hold it.

A client that stops sending mid-upload, or trickles bytes to keep a connection open, would
otherwise hold its buffers (and a slot in every limit) for as long as it likes. The body must
arrive within ``timeout`` seconds in all, and after the first ``grace`` seconds at an average
of at least ``min_rate`` bytes a second; the wait for the next chunk is cut off at whichever
of the two comes first. A refusal is 408 with the envelope and ``Connection: close``, so
uvicorn ends the socket instead of waiting for the rest, and the request's scope releases what
it held.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from imagegate.core.errors import RequestTimeout
from imagegate.core.units import human_bytes


@dataclass(frozen=True, slots=True)
class BodyPace:
    timeout: float = 300.0  # seconds for the whole body
    min_rate: int = 32 * 1024  # bytes a second, on average, once the grace period is over
    grace: float = 10.0  # seconds before the rate counts (connection set-up, slow starts)


async def paced(chunks: AsyncIterator[bytes], pace: BodyPace) -> AsyncIterator[bytes]:
    """Yield ``chunks`` as they come, or raise ``RequestTimeout`` when the client falls behind.

    One lazy timer, not a timeout per chunk: a body arrives in 64-256 KiB chunks, and arming
    and disarming a timer around each wait was a few percent of a 5 MB upload's CPU. The timer
    stays at the earliest moment the client could be late; when it fires, it moves to the new
    moment if more bytes came meanwhile, and cancels the wait only if the client is really late.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    started = loop.time()
    received = 0
    waiting = expired = False
    handle: asyncio.TimerHandle | None = None

    def due() -> float:
        # The moment the average rate would drop below min_rate without another byte.
        return started + min(pace.timeout, max(pace.grace, received / pace.min_rate))

    def on_timer() -> None:
        nonlocal handle, expired
        handle = None
        at = due()
        if loop.time() < at:
            handle = loop.call_at(at, on_timer)
        elif waiting:
            expired = True
            task.cancel()
        # else: the client is late while its last chunk is being parsed; the next wait sees it

    iterator = aiter(chunks)
    try:
        while True:
            if loop.time() >= due():
                raise _too_slow(pace, received, loop.time() - started)
            if handle is None:
                handle = loop.call_at(due(), on_timer)
            waiting = True
            try:
                chunk = await anext(iterator)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if expired and task.uncancel() == 0:
                    raise _too_slow(pace, received, loop.time() - started) from None
                raise
            finally:
                waiting = False
            received += len(chunk)
            yield chunk
    finally:
        if handle is not None:
            handle.cancel()


def _too_slow(pace: BodyPace, received: int, elapsed: float) -> RequestTimeout:
    if elapsed >= pace.timeout:
        reason = f"the whole body must arrive within {pace.timeout:g} s"
    else:
        reason = (
            f"after the first {pace.grace:g} s it must arrive at {human_bytes(pace.min_rate)}/s "
            "or faster"
        )
    return RequestTimeout(
        f"The request body arrived too slowly ({human_bytes(received)} in {elapsed:.0f} s); "
        f"{reason}. Send it again from a faster connection, or send smaller images.",
        code="request_timeout",
        headers={"Connection": "close"},  # the rest of the body is never read: end the socket
    )
