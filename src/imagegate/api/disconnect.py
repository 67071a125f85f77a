"""Stop the work of a client that has gone.

Starlette runs a route to completion even when its client disconnects, which for an edit
means rendering (or paying a provider) for nobody. Once the body has been read, the next ASGI
``receive`` message is ``http.disconnect`` if the client goes away, so the edit runs in a task
beside a watcher of that message, and whichever ends first decides: a disconnect cancels the
edit (the engine and adapters stop on cancellation) and ends the request as a 499.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import ClientDisconnect
from starlette.types import Receive

T = TypeVar("T")


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """``await work``, or cancel it and raise ``ClientDisconnect`` if the client goes first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # let it stop (the engine frees its slot only when its thread ends)
        watcher.cancel()
    if task.cancelled():
        raise ClientDisconnect()
    return task.result()
