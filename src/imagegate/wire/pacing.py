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
import time
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
    """Yield ``chunks`` as they come, or raise ``RequestTimeout`` when the client falls behind."""
    now = time.monotonic
    started = now()
    received = 0
    iterator = aiter(chunks)
    while True:
        # The moment the average rate would drop below min_rate without another byte.
        behind_at = started + max(pace.grace, received / pace.min_rate)
        limit_at = min(started + pace.timeout, behind_at)
        try:
            async with asyncio.timeout(max(0.0, limit_at - now())):
                chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise _too_slow(pace, received, now() - started) from None
        received += len(chunk)
        yield chunk


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
