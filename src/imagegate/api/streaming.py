"""``stream=true``: the provider works in a task while the client gets events as they happen.

Keepalive comments (``: keepalive``) go out every few seconds while nothing else does; partial
images as the provider reports them; one ``image_edit.completed`` per output image; an
``event: error`` with ``{"error": {...}}`` if the edit fails after the stream began. If the
client goes away, the provider task is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from sse_starlette import EventSourceResponse
from sse_starlette.sse import AppStatus

from imagegate.api.bodies import body_pieces
from imagegate.core.errors import GatewayError, InternalError
from imagegate.core.response import completed_event_bodies, error_event, partial_event_body
from imagegate.core.result import EditResult, ResultImage
from imagegate.hooks import RequestContext
from imagegate.providers.base import EditJob
from imagegate.service import EditService

log = logging.getLogger("imagegate.stream")
KEEPALIVE = b": keepalive\n\n"

Partial = tuple[ResultImage, int]

# sse-starlette ends every open stream as soon as the server begins shutting down; a draining
# replica must instead finish them (imagegate.serving). Each stream ends by itself when its edit
# does, within the request deadline, and the graceful shutdown timeout bounds the wait.
AppStatus.enable_automatic_graceful_drain = False  # what disable_automatic_graceful_drain() does


class QueueEvents:
    """An event sink that queues each partial image; it is serialized only when sent."""

    def __init__(self, queue: asyncio.Queue[Partial | None]) -> None:
        self._queue = queue

    async def partial(self, image: ResultImage, index: int) -> None:
        await self._queue.put((image, index))


Outcome = Callable[[EditResult | GatewayError], None]  # told how the edit ended, for the log


async def _events(
    service: EditService,
    job: EditJob,
    created: int,
    keepalive: float,
    on_result: Outcome,
    ctx: RequestContext,
) -> AsyncIterator[bytes]:
    """Keepalives while the provider works, then each event in pieces, one event at a time.

    Keepalives come from here rather than from a timer beside the stream, so a comment can
    never land between two pieces of one event.
    """
    queue: asyncio.Queue[Partial | None] = asyncio.Queue()
    # Admitted by the route before the stream began (service.admit): the hooks ran there.
    task = asyncio.create_task(service.run(job, QueueEvents(queue), ctx, admitted=True))
    task.add_done_callback(lambda _t: queue.put_nowait(None))
    try:
        while True:
            try:
                async with asyncio.timeout(keepalive):
                    item = await queue.get()
            except TimeoutError:
                yield KEEPALIVE
                continue
            if item is None:
                break
            image, index = item
            async for piece in body_pieces(partial_event_body(image, index, job.request, created)):
                yield piece
        result = task.result()
        on_result(result)
        for event in completed_event_bodies(result, job.request, created):
            async for piece in body_pieces(event):
                yield piece
    except GatewayError as exc:
        on_result(exc)
        yield error_event(exc.to_dict())
    except Exception:
        log.exception("stream failed", extra={"request_id": job.request_id})
        error = InternalError(
            f"The edit failed unexpectedly; the error is logged under request id {job.request_id}."
        )
        on_result(error)
        yield error_event(error.to_dict())
    finally:
        if not task.done():
            task.cancel()


def stream_response(
    service: EditService,
    job: EditJob,
    created: int,
    keepalive: float,
    on_result: Outcome,
    ctx: RequestContext,
) -> EventSourceResponse:
    return EventSourceResponse(
        _events(service, job, created, keepalive, on_result, ctx),
        ping=0,  # keepalives come from _events, between events
        headers={"Cache-Control": "no-cache"},
    )
