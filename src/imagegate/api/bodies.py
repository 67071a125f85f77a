"""Sending a serialized ``Body``: at once when it is small, piece by piece when it is not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response, StreamingResponse

from imagegate.api.errors import JsonBytes
from imagegate.core.response import Body

# Below this a body goes out in one write; above it, in pieces with the loop free between them.
ONE_WRITE_BYTES = 1 << 20


async def body_pieces(body: Body) -> AsyncIterator[bytes]:
    """The body's pieces, yielding to the event loop between them (other requests, probes)."""
    for piece in body.pieces():
        if piece:
            yield piece
            await asyncio.sleep(0)


def json_response(body: Body, headers: Mapping[str, str]) -> Response:
    length = body.length
    if length <= ONE_WRITE_BYTES:
        return JsonBytes(body.join(), headers=dict(headers))
    return StreamingResponse(
        body_pieces(body),
        media_type="application/json",
        headers={**headers, "content-length": str(length)},
    )
