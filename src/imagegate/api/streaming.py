"""``stream=true``: the provider works in a task while the client gets events as they happen.

Keepalive comments (``: keepalive``) go out every few seconds; partial images as the provider
reports them; one ``image_edit.completed`` per output image; an ``event: error`` with
``{"error": {...}}`` if the edit fails after the stream began. If the client goes away, the
provider task is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from sse_starlette import EventSourceResponse, ServerSentEvent

from imagegate.core.errors import GatewayError, InternalError
from imagegate.core.request import EditRequest
from imagegate.core.response import completed_events, error_event, partial_event
from imagegate.core.result import EditResult, ResultImage
from imagegate.providers.base import EditJob
from imagegate.service import EditService

log = logging.getLogger("imagegate.stream")
_DONE = object()


class QueueEvents:
    """An event sink that turns each partial image into an SSE event on a queue."""

    def __init__(self, queue: asyncio.Queue[object], request: EditRequest, created: int):
        self._queue = queue
        self._request = request
        self._created = created

    async def partial(self, image: ResultImage, index: int) -> None:
        await self._queue.put(partial_event(image, index, self._request, self._created))


Outcome = Callable[[EditResult | GatewayError], None]  # told how the edit ended, for the log


async def _events(
    service: EditService, job: EditJob, created: int, on_result: Outcome
) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[object] = asyncio.Queue()
    task = asyncio.create_task(service.run(job, QueueEvents(queue, job.request, created)))
    task.add_done_callback(lambda _t: queue.put_nowait(_DONE))
    try:
        while (item := await queue.get()) is not _DONE:
            assert isinstance(item, bytes)
            yield item
        result = task.result()
        on_result(result)
        for event in completed_events(result, job.request, created):
            yield event
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
) -> EventSourceResponse:
    return EventSourceResponse(
        _events(service, job, created, on_result),
        ping=keepalive,
        ping_message_factory=lambda: ServerSentEvent(comment="keepalive"),
        headers={"Cache-Control": "no-cache"},
    )
