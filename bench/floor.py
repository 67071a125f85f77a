"""The floor: the least a plain-Python gateway can do, as a yardstick for imagegate's overhead.

A minimal buffered pass-through proxy on the same server stack as imagegate (uvicorn with uvloop
and httptools, Starlette, one shared ``httpx.AsyncClient``): it reads the whole request body,
sends it to the upstream with the same method, path, query and the few headers that matter
(``Host`` kept, so a queued upstream's absolute URLs point back through the floor), and answers
the upstream's body. No auth, no parsing, no validation, no metrics, no logs.

    .venv/bin/python bench/floor.py --port 9200 --upstream http://127.0.0.1:9100
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_FORWARDED = ("content-type", "authorization", "x-goog-api-key", "host", "accept")


def floor_app(upstream: str) -> Starlette:
    client: httpx.AsyncClient | None = None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal client
        client = httpx.AsyncClient(
            base_url=upstream,
            timeout=httpx.Timeout(600.0, connect=10.0),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
        yield
        await client.aclose()

    async def forward(request: Request) -> Response:
        assert client is not None
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k in _FORWARDED}
        answer = await client.request(
            request.method,
            request.url.path,
            params=request.url.query or None,
            content=body,
            headers=headers,
        )
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type"),
        )

    async def ready(request: Request) -> Response:
        return Response(b"ok")

    methods = ["GET", "POST", "PUT", "DELETE"]
    routes = [
        Route("/readyz", ready, methods=["GET"]),
        Route("/{path:path}", forward, methods=methods),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the fake upstream's base URL")
    args = parser.parse_args()
    uvicorn.run(
        floor_app(args.upstream),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()
