"""The gateway's ASGI app in this process, its lifespan running on a portal thread.

Hypothesis wants a plain function it can call hundreds of times; a subprocess round trip per
example would cost more than the example. Requests go through ``httpx.ASGITransport`` (no
socket at all), and ``image_url`` fetches go to a resolver that knows no names and a transport
that records instead of connecting, so a generated URL never leaves this process.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from imagegate.app import create_app
from imagegate.config import Settings
from imagegate.wire.fetch import ImageFetcher
from imagegate.wire.netguard import IPAddress


async def no_dns(host: str, port: int) -> list[IPAddress]:
    raise OSError(f"no DNS in these tests ({host})")


def _refuse_to_connect(request: httpx.Request) -> httpx.Response:
    return httpx.Response(404)


class CrashLog(logging.Handler):
    """Keeps the tracebacks the gateway logs, so a 500 shows where it came from."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.traces: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.traces.append(logging.Formatter().formatException(record.exc_info))


class InProcessGateway:
    def __init__(self, **settings: Any) -> None:
        self.settings = Settings(_env_file=None, **settings)  # type: ignore[call-arg]
        self.app = create_app(self.settings)
        self.crashes = CrashLog()
        self._stack = ExitStack()
        self.portal: BlockingPortal | None = None
        self.client: httpx.AsyncClient | None = None

    def __enter__(self) -> InProcessGateway:
        portal = self._stack.enter_context(start_blocking_portal())
        self.portal = portal
        lifespan: AbstractContextManager[None] = portal.wrap_async_context_manager(
            self.app.router.lifespan_context(self.app)
        )
        self._stack.enter_context(lifespan)
        fetch_client = httpx.AsyncClient(transport=httpx.MockTransport(_refuse_to_connect))
        self.app.state.fetcher = ImageFetcher(
            fetch_client, max_bytes=self.settings.max_image_bytes, timeout=5, resolver=no_dns
        )
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, raise_app_exceptions=False),
            base_url="http://127.0.0.1",
            timeout=60,
        )
        logging.getLogger("imagegate").addHandler(self.crashes)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("imagegate").removeHandler(self.crashes)
        if self.portal is not None and self.client is not None:
            self.portal.call(self.client.aclose)
        self._stack.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        assert self.portal is not None and self.client is not None
        self.crashes.traces.clear()
        # Header values as latin-1 bytes: what a server hands the app for any octet a client sent.
        raw = {key: value.encode("latin-1") for key, value in (headers or {}).items()}
        call = functools.partial(self.client.request, method, path, content=content, headers=raw)
        return self.portal.call(call)

    def post_edit(self, content: bytes, content_type: str, **headers: str) -> httpx.Response:
        return self.request(
            "POST",
            "/v1/images/edits",
            content=content,
            headers={"content-type": content_type, **headers},
        )

    def last_trace(self) -> str:
        return self.crashes.traces[-1] if self.crashes.traces else "(no traceback logged)"


def gateway() -> Iterator[InProcessGateway]:
    with InProcessGateway(
        max_image_bytes=2_000_000, max_request_bytes=8_000_000, local_max_concurrency=1
    ) as running:
        yield running
