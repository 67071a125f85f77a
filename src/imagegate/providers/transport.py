"""The HTTP/1.1 transport under every upstream client: an asyncio ``Protocol`` with ``httptools``
(llhttp, the parser uvicorn serves with) reading the answers.

httpx's default transport (httpcore) reads a response 64 KiB at a time, and each read is a trip
through anyio (a cancel scope, ``current_task``), h11's receive buffer (two copies) and a
``bytes()`` copy; requests go through h11, which joins every piece it sends. For a 2 MB image
answer that was about half of the gateway's CPU under load (bench/RESULTS.md). Here::

    request ──► head (one bytes) + body pieces ──► transport.write (memoryviews, not copied)
    socket  ──► data_received ──► llhttp ──► on_body chunks ──► the response stream
                                  (one copy)    (a deque; reading pauses past 1 MiB unread)

Everything else is httpx's: the client builds the request (headers, Host, Content-Length or
chunked), decodes ``Content-Encoding``, follows the mounts for environment proxies. Timeouts
come per request in ``request.extensions["timeout"]`` and raise httpx's own exceptions, so
``providers.upstream`` maps failures the same for either transport.

An answer's body larger than ``max_body_bytes`` (checked against its Content-Length before it
comes, and as it arrives) ends the exchange with ``AnswerTooLarge``: a provider, or whatever
answers in its place, cannot make the gateway hold more than that for one call.

Connections are pooled per origin (``max_connections`` open at most, ``max_keepalive_connections``
kept idle, each for ``keepalive_expiry`` seconds). One goes back to the pool only when its
answer was read to the end and both sides allow keep-alive; a cancelled or half-read exchange
closes it. A kept-alive connection the server closed is seen closed (``connection_lost``) and
not used again. A request is never sent twice here: a server that read it may have acted on it,
and whether to try again is the router's decision (``routing.dispatch``).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, cast

import httptools
import httpx

_HIGH_WATER = 1 << 20  # unread answer bytes at which the socket stops being read
_LOW_WATER = 1 << 18  # ... and starts again
_NO_BODY_STATUS = frozenset({204, 304})
_MAX_HEAD = 100 * 1024  # bytes of status line and headers at most (h11's limit too)

Origin = tuple[bytes, str, int]


def _timeout(request: httpx.Request, name: str) -> float | None:
    timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
    return timeouts.get(name)


def _request_head(request: httpx.Request) -> bytes:
    """The request line and headers as they go on the wire."""
    lines = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    raw = request.headers.raw
    # Host first, as RFC 9110 asks of clients (and h11 writes it), wherever the caller set it.
    ordered = [h for h in raw if h[0].lower() == b"host"] + [
        h for h in raw if h[0].lower() != b"host"
    ]
    for name, value in ordered:
        if _unsafe(name) or _unsafe(value):  # a newline would let a value write a header
            raise httpx.LocalProtocolError(f"Illegal header {name!r}", request=request)
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def _unsafe(text: bytes) -> bool:
    return b"\r" in text or b"\n" in text or b"\x00" in text


def _is_chunked(request: httpx.Request) -> bool:
    encoding = request.headers.get("transfer-encoding", "")
    return "chunked" in encoding.lower()


def _declared_length(request: httpx.Request) -> int | None:
    """The body's Content-Length (-1 if it is not a number), or None without one."""
    value = request.headers.get("content-length")
    if value is None:
        return None
    return int(value) if value.strip().isdigit() else -1


def _check_length(request: httpx.Request, declared: int | None, sent: int, *, final: bool) -> None:
    """A body must be as long as its Content-Length says: more would be read by the server as
    the start of the next request on the connection, less would leave it waiting for ever."""
    if declared is None:
        return
    if sent > declared:
        raise httpx.LocalProtocolError("Too much data for declared Content-Length", request=request)
    if final and sent < declared:
        raise httpx.LocalProtocolError(
            "Too little data for declared Content-Length", request=request
        )


class _Refused(Exception):
    """An answer llhttp would read but this client does not (raised from a parser callback)."""


class AnswerTooLarge(httpx.RemoteProtocolError):
    """The answer's body is over the transport's ``max_body_bytes``."""


class _TooLarge(_Refused):
    pass


class _Exchange:
    """What one request's answer has produced so far, filled by the connection's callbacks."""

    __slots__ = (
        "body_bytes",
        "buffered",
        "chunks",
        "complete",
        "error",
        "got_bytes",
        "head",
        "head_bytes",
        "head_only",
        "headers",
        "keep_alive",
        "reason",
        "status",
        "waiter",
    )

    def __init__(self, head: asyncio.Future[None], head_only: bool) -> None:
        self.head = head
        self.status = 0
        self.reason = bytearray()
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.head_only = head_only
        self.got_bytes = False
        self.head_bytes = 0  # received before the head was complete
        self.body_bytes = 0

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; at most one exchange at a time."""

    def __init__(
        self, origin: Origin, loop: asyncio.AbstractEventLoop, max_body: int | None
    ) -> None:
        self.origin = origin
        self.loop = loop
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.exchange: _Exchange | None = None
        self.parser: Any = None
        self.reading_paused = False
        self.drain: asyncio.Future[None] | None = None
        self.write_paused = False

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have the methods but not the class: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None or exchange.complete:
            self.close()  # bytes nobody asked for: this connection cannot be trusted again
            return
        exchange.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("The server switched protocols."))
        except httptools.HttpParserError as exc:
            refused = exc.__context__
            if isinstance(refused, _TooLarge):
                self._fail(AnswerTooLarge(str(refused)))
            else:
                why = refused if isinstance(refused, _Refused) else exc
                self._fail(httpx.RemoteProtocolError(f"Malformed HTTP answer: {why}"))
            return
        if not exchange.head.done() and exchange.error is None:
            exchange.head_bytes += len(data)  # llhttp keeps a header until it ends: bound it
            if exchange.head_bytes > _MAX_HEAD:
                self._fail(httpx.RemoteProtocolError("The answer's head is over 100 KiB."))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        exchange = self.exchange
        if exchange is not None and not exchange.complete and exchange.error is None:
            if exchange.head.done() and self._until_close(exchange):
                exchange.complete = True  # the body was "everything until the server closes"
                exchange.keep_alive = False
                exchange.wake()
            elif not exchange.got_bytes and exc is not None:
                self._fail(httpx.ReadError(str(exc) or type(exc).__name__))
            else:
                self._fail(
                    httpx.RemoteProtocolError(
                        "Server disconnected without sending a complete response."
                    )
                )
        drain = self.drain
        if drain is not None and not drain.done():
            drain.set_exception(httpx.WriteError("The server closed the connection."))

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        drain = self.drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- httptools callbacks -------------------------------------------------------------------
    def on_status(self, status: bytes) -> None:
        assert self.exchange is not None
        self.exchange.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        exchange = self.exchange
        assert exchange is not None
        if exchange.status:  # a chunked body's trailers: not headers of the answer (as httpx)
            return
        exchange.headers.append((name, value.strip(b" \t")))

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            exchange.headers = []
            exchange.reason = bytearray()
            return
        for name, value in exchange.headers:
            lowered = name.lower()
            if lowered == b"transfer-encoding" and value.lower() != b"chunked":
                raise _Refused("Only Transfer-Encoding: chunked is supported.")
            if lowered == b"content-length" and self._over_max(value):  # before the body comes
                raise _TooLarge(f"The answer is over {self.max_body:,} bytes.")
        exchange.status = status
        if not exchange.head.done():
            exchange.head.set_result(None)
        if exchange.head_only:  # the answer to HEAD: headers describe a body that never comes
            self._complete(exchange)

    def _over_max(self, length: bytes) -> bool:
        return self.max_body is not None and length.isdigit() and int(length) > self.max_body

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        assert exchange is not None
        if exchange.head_only:
            return
        exchange.body_bytes += len(body)
        if self.max_body is not None and exchange.body_bytes > self.max_body:
            raise _TooLarge(f"The answer is over {self.max_body:,} bytes.")
        exchange.chunks.append(body)
        exchange.buffered += len(body)
        if exchange.buffered > _HIGH_WATER and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        exchange.wake()

    def on_message_complete(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        if exchange.status == 0:  # the end of an interim answer
            return
        if not exchange.complete:
            self._complete(exchange)

    # -- for the transport ---------------------------------------------------------------------
    def begin(self, head_only: bool) -> _Exchange:
        exchange = _Exchange(self.loop.create_future(), head_only)
        self.exchange = exchange
        self.parser = httptools.HttpResponseParser(self)
        return exchange

    async def write(self, data: bytes | memoryview, within: float | None) -> None:
        if self.closed or self.transport is None:
            raise httpx.WriteError("The server closed the connection.")
        self.transport.write(data)
        if self.write_paused:
            self.drain = self.loop.create_future()
            await _wait(self.drain, within, httpx.WriteTimeout)

    async def next_chunk(self, within: float | None) -> bytes:
        """The next piece of the answer's body; ``b""`` at its end."""
        exchange = self.exchange
        assert exchange is not None
        while True:
            if exchange.chunks:
                chunk = exchange.chunks.popleft()
                exchange.buffered -= len(chunk)
                if self.reading_paused and exchange.buffered < _LOW_WATER and self.transport:
                    self.reading_paused = False
                    self.transport.resume_reading()
                return chunk
            if exchange.error is not None:
                raise exchange.error
            if exchange.complete:
                return b""
            exchange.waiter = self.loop.create_future()
            await _wait(exchange.waiter, within, httpx.ReadTimeout)

    def reusable(self) -> bool:
        exchange = self.exchange
        return (
            not self.closed
            and exchange is not None
            and exchange.complete
            and exchange.error is None
            and exchange.keep_alive
            and not exchange.chunks
        )

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _complete(self, exchange: _Exchange) -> None:
        exchange.complete = True
        exchange.keep_alive = bool(self.parser.should_keep_alive())
        exchange.wake()

    def _fail(self, error: Exception) -> None:
        exchange = self.exchange
        if exchange is not None and exchange.error is None and not exchange.complete:
            exchange.error = error
            if not exchange.head.done():
                exchange.head.set_exception(error)
                exchange.head.exception()  # read: a failure nobody awaits is not "never retrieved"
            exchange.wake()
        self.close()

    def _until_close(self, exchange: _Exchange) -> bool:
        """Whether the answer's body is framed by the end of the connection."""
        if exchange.status in _NO_BODY_STATUS or exchange.head_only:
            return False
        for name, value in exchange.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                return False
            if lowered == b"transfer-encoding" and b"chunked" in value.lower():
                return False
        return True


async def _wait(
    future: asyncio.Future[None], within: float | None, error: type[httpx.TimeoutException]
) -> None:
    """Await ``future``, raising httpx's ``error`` after ``within`` seconds (a timer, no task)."""
    if within is None:
        await future
        return

    def expire() -> None:
        if not future.done():
            future.set_exception(error(f"No answer within {within:g} s."))

    handle = asyncio.get_running_loop().call_later(within, expire)
    try:
        await future
    finally:
        handle.cancel()


class _ResponseBody(httpx.AsyncByteStream):
    """The answer's body as it arrives; its connection goes back to the pool at the end."""

    def __init__(
        self, transport: Http11Transport, connection: _Connection, read_timeout: float | None
    ) -> None:
        self._transport = transport
        self._connection: _Connection | None = connection
        self._read_timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            raise httpx.StreamClosed()
        try:
            while chunk := await connection.next_chunk(self._read_timeout):
                yield chunk
        except BaseException:
            self._give_back(reuse=False)
            raise
        self._give_back(reuse=True)

    async def aclose(self) -> None:
        self._give_back(reuse=True)

    def _give_back(self, *, reuse: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._transport._release(connection, reuse=reuse and connection.reusable())


class Http11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio, pooled per origin; a drop-in for ``httpx.AsyncHTTPTransport``."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        max_body_bytes: int | None = None,
    ) -> None:
        self._max_body = max_body_bytes
        self._max_connections = max(1, max_connections)
        self._max_idle = max(0, max_keepalive_connections)
        self._expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("The transport is closed.")
        scheme = request.url.raw_scheme
        if scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol {scheme!r}.")
        origin: Origin = (scheme, request.url.host, request.url.port or _PORTS[scheme])
        head = _request_head(request)
        connection = await self._acquire(origin, request)
        return await self._exchange(connection, request, head)

    async def _exchange(
        self, connection: _Connection, request: httpx.Request, head: bytes
    ) -> httpx.Response:
        exchange = connection.begin(head_only=request.method == "HEAD")
        write_timeout = _timeout(request, "write")
        read_timeout = _timeout(request, "read")
        try:
            try:
                await self._send_body(connection, request, head, write_timeout)
            except httpx.WriteError:
                if not exchange.head.done():
                    raise
                # The server answered before taking the whole body (a 413, say): that answer.
            await _wait(exchange.head, read_timeout, httpx.ReadTimeout)
        except BaseException:
            self._release(connection, reuse=False)
            raise
        return httpx.Response(
            exchange.status,
            headers=exchange.headers,
            stream=_ResponseBody(self, connection, read_timeout),
            extensions={
                "http_version": b"HTTP/" + connection.parser.get_http_version().encode("ascii"),
                "reason_phrase": bytes(exchange.reason),
            },
        )

    async def _send_body(
        self, connection: _Connection, request: httpx.Request, head: bytes, within: float | None
    ) -> None:
        stream = request.stream
        chunked = _is_chunked(request)
        declared = _declared_length(request)
        if isinstance(stream, httpx.ByteStream) and not chunked:  # bytes: one write with the head
            body = b"".join(stream)
            _check_length(request, declared, len(body), final=True)
            if len(body) < 65536:
                await connection.write(head + body, within)
            else:
                await connection.write(head, within)
                await connection.write(body, within)
            return
        await connection.write(head, within)
        sent = 0
        assert isinstance(stream, httpx.AsyncByteStream)
        async for piece in stream:
            if not piece:
                continue
            if chunked:
                await connection.write(b"%x\r\n" % len(piece), within)
                await connection.write(piece, within)
                await connection.write(b"\r\n", within)
                continue
            sent += len(piece)
            _check_length(request, declared, sent, final=False)  # before a byte too many leaves
            await connection.write(piece, within)
        if chunked:
            await connection.write(b"0\r\n\r\n", within)
        else:
            _check_length(request, declared, sent, final=True)

    # -- the pool ------------------------------------------------------------------------------
    async def _acquire(self, origin: Origin, request: httpx.Request) -> _Connection:
        while True:
            connection = self._take_idle(origin)
            if connection is not None:
                return connection
            if self._open < self._max_connections or self._drop_any_idle():
                self._open += 1
                try:
                    return await self._connect(origin, request)
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await _wait(waiter, _timeout(request, "pool"), httpx.PoolTimeout)
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._wake_one()  # it was woken for a slot it will not take: pass it on
                raise

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be stale
            if connection.closed or now - connection.idle_since > self._expiry:
                self._discard(connection)
                continue
            return connection
        return None

    def _drop_any_idle(self) -> bool:
        """Make room by closing an idle connection to any origin; whether there was one."""
        for idle in self._idle.values():
            if idle:
                self._discard(idle.pop(0))
                return True
        return False

    async def _connect(self, origin: Origin, request: httpx.Request) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        ssl_context = self._tls() if scheme == b"https" else None
        try:
            async with asyncio.timeout(_timeout(request, "connect")):
                _, connection = await loop.create_connection(
                    lambda: _Connection(origin, loop, self._max_body),
                    host,
                    port,
                    ssl=ssl_context,
                    server_hostname=host if ssl_context is not None else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"Could not connect to {host}:{port} in time.") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        return connection

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    def _release(self, connection: _Connection, *, reuse: bool) -> None:
        if reuse and not self._closed:
            idle = self._idle.setdefault(connection.origin, [])
            if len(idle) < self._max_idle:
                connection.exchange = None
                connection.idle_since = time.monotonic()
                idle.append(connection)
                self._wake_one()
                return
        if not connection.closed:
            connection.abort()
        self._open -= 1
        self._wake_one()

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._open -= 1

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                self._discard(idle.pop())
        self._idle.clear()


_PORTS = {b"http": 80, b"https": 443}
