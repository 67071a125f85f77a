"""imagegate's HTTP/1.1 upstream transport against httpx's own, case by case.

Every test runs twice per event loop: on ``httpx.AsyncHTTPTransport`` (httpcore and h11, what the
gateway used) and on ``imagegate.providers.transport.Http11Transport``, and asserts the same
observable result on both: the bytes the server received, the response httpx hands back, the
connections the server saw, the httpx exception class. The httpx run is the reference: a test
that fails only on the imagegate run is a difference to fix there, not here. Each test also runs
on asyncio's own loop and on uvloop, the loop the gateway serves on.

The servers are raw ``asyncio.start_server`` scripts on 127.0.0.1: they read each request as it
is on the wire (head and body, chunked framing included), record it, and write exactly the bytes
the test scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import random
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import h11
import httpx
import pytest
import uvloop

from imagegate.providers.formdata import PIECE_BYTES, FormBody, FormFile

T = TypeVar("T")
GUARD_SECONDS = 4.0  # a transport that hangs fails its test instead of the run
TIMEOUT = httpx.Timeout(2.0)


# The server -------------------------------------------------------------------------------------


@dataclass
class Received:
    """One request as the server read it off the socket."""

    conn: int  # which connection it came on, in the order the server accepted them
    head: bytes  # request line and headers, up to and including the blank line
    wire: bytes  # the body bytes as sent: chunked framing and all
    body: bytes  # the body, de-chunked

    @property
    def request_line(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0]

    @property
    def path(self) -> str:
        return self.request_line.split(b" ")[1].decode()

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        lines = self.head[:-4].split(b"\r\n")[1:]
        return [(name, value.strip()) for name, _, value in (ln.partition(b":") for ln in lines)]


@dataclass(frozen=True)
class Reply:
    data: bytes
    close: bool = False  # close the connection once ``data`` is written


class Conn:
    def __init__(self, server: Server, index: int, reader: Any, writer: Any) -> None:
        self.server, self.index = server, index
        self.reader: asyncio.StreamReader = reader
        self.writer: asyncio.StreamWriter = writer
        self.eof = asyncio.Event()  # the client closed its end (or reset it)
        self.closed = asyncio.Event()  # the server's end is closed

    async def request(self) -> Received | None:
        """The next request on this connection, or None once the client closed it."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.eof.set()
            return None
        fields = {name.lower(): value for name, value in Received(0, head, b"", b"").headers}
        wire, body = bytearray(), bytearray()
        if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            while True:
                size_line = await self.reader.readuntil(b"\r\n")
                wire += size_line
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    while True:
                        line = await self.reader.readuntil(b"\r\n")
                        wire += line
                        if line == b"\r\n":
                            break
                    break
                chunk = await self.reader.readexactly(size + 2)
                wire += chunk
                body += chunk[:-2]
        elif b"content-length" in fields:
            wire += await self.reader.readexactly(int(fields[b"content-length"]))
            body = wire
        received = Received(self.index, head, bytes(wire), bytes(body))
        self.server.requests.append(received)
        return received

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def wait_eof(self) -> None:
        """Read (and drop) whatever the client still sends, until it closes."""
        try:
            while await self.reader.read(1 << 16):
                pass
        except ConnectionError:
            pass
        self.eof.set()


Script = Callable[[Conn], Awaitable[None]]


class Server:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.conns: list[Conn] = []
        self.requests: list[Received] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = Conn(self, len(self.conns), reader, writer)
        self.conns.append(conn)
        try:
            await self.script(conn)
        except (ConnectionError, asyncio.IncompleteReadError):
            conn.eof.set()
        except asyncio.CancelledError:
            pass  # the test is over; ending quietly keeps asyncio's server from logging it
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            conn.closed.set()


def serve(*replies: bytes | Reply) -> Script:
    """Answer each request, on whichever connection it comes, with the next reply in order."""
    pending = [r if isinstance(r, Reply) else Reply(r) for r in replies]

    async def script(conn: Conn) -> None:
        while await conn.request() is not None:
            reply = pending.pop(0)
            await conn.send(reply.data)
            if reply.close:
                return

    return script


def ok(body: bytes, *headers: bytes) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def wire_head(request: httpx.Request) -> bytes:
    """The head httpx's transport (h11) writes: the request line, Host first (RFC 9110 asks a
    client to send it first), then the request's other headers in order, names as given."""
    raw = request.headers.raw
    ordered = [h for h in raw if h[0].lower() == b"host"] + [
        h for h in raw if h[0].lower() != b"host"
    ]
    line = b"%s %s HTTP/1.1\r\n" % (request.method.encode(), request.url.raw_path)
    return line + b"".join(b"%s: %s\r\n" % (n, v) for n, v in ordered) + b"\r\n"


def free_port() -> int:
    """A port nothing listens on (bound for a moment, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def eventually(event: asyncio.Event, seconds: float = 1.0) -> bool:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


# The two arms -----------------------------------------------------------------------------------


@dataclass
class Arm:
    name: str
    make: Callable[..., httpx.AsyncBaseTransport]
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(
        self,
        timeout: httpx.Timeout = TIMEOUT,
        *,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        keepalive_expiry: float = 5.0,
    ) -> httpx.AsyncClient:
        transport = self.make(
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
        )
        client = httpx.AsyncClient(transport=transport, timeout=timeout)
        self.clients.append(client)
        return client

    def run(self, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
        async def guarded() -> T:
            try:
                return await asyncio.wait_for(main(), GUARD_SECONDS)
            finally:
                for client in self.clients:
                    await client.aclose()

        with asyncio.Runner(loop_factory=self.loop_factory) as runner:
            return runner.run(guarded())


_TLS = ssl.create_default_context()  # unused on plain TCP; one load of the CAs, not one a test


def _httpx(**limits: Any) -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(verify=_TLS, limits=httpx.Limits(**limits))


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_factory(request: pytest.FixtureRequest) -> Callable[[], asyncio.AbstractEventLoop] | None:
    return None if request.param == "asyncio" else uvloop.new_event_loop


@pytest.fixture(params=["httpx", "imagegate"])
def arm(
    request: pytest.FixtureRequest,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
) -> Arm:
    if request.param == "httpx":
        return Arm("httpx", _httpx, loop_factory)
    # Until the transport lands this import fails, and so does every imagegate case: loudly.
    from imagegate.providers.transport import Http11Transport

    return Arm("imagegate", Http11Transport, loop_factory)


# 1. Request and response bytes ------------------------------------------------------------------


def test_get_sends_the_exact_head_and_returns_the_response_as_sent(arm: Arm) -> None:
    reply = (
        b"HTTP/1.1 200 Okay Then\r\n"
        b"Content-Length: 5\r\n"
        b"Set-Cookie: a=1; Path=/\r\n"
        b"Set-Cookie: b=2\r\n"
        b"X-Empty:\r\n"
        b"content-TYPE: text/plain\r\n"
        b"\r\n"
        b"hello"
    )

    async def main() -> None:
        async with Server(serve(reply, b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok")) as server:
            client = arm.client()
            user = [("X-Trace", "t1"), ("authorization", "Bearer k"), ("X-Trace", "t2")]
            r = await client.get(f"{server.url}/v1/a%20b/c?x=1&y=%2F&z", headers=user)
            [got] = server.requests
            assert got.head == wire_head(r.request)
            assert got.request_line == b"GET /v1/a%20b/c?x=1&y=%2F&z HTTP/1.1"
            assert got.headers[0] == (b"Host", b"127.0.0.1:%d" % server.port)
            assert got.headers[-3:] == [
                (b"X-Trace", b"t1"),
                (b"authorization", b"Bearer k"),
                (b"X-Trace", b"t2"),
            ]
            assert not {b"content-length", b"transfer-encoding"} & {
                n.lower() for n, _ in got.headers
            }
            assert got.wire == b""

            assert (r.status_code, r.reason_phrase, r.http_version) == (
                200,
                "Okay Then",
                "HTTP/1.1",
            )
            assert r.headers.raw == [
                (b"Content-Length", b"5"),
                (b"Set-Cookie", b"a=1; Path=/"),
                (b"Set-Cookie", b"b=2"),
                (b"X-Empty", b""),
                (b"content-TYPE", b"text/plain"),
            ]
            assert r.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2"]
            assert r.content == b"hello"

            # No reason phrase at all: httpx reports it empty, not a made-up "OK".
            r = await client.get(server.url)
            assert (r.status_code, r.reason_phrase, r.content) == (200, "", b"ok")
            assert len(server.conns) == 1

    arm.run(main)


def test_post_sends_a_bytes_body_byte_exact(arm: Arm) -> None:
    small = bytes(range(256)) * 4 + b"\r\n\r\n0\r\n\r\n"  # body bytes that look like framing
    big = random.Random(1).randbytes(2 << 20)

    async def main() -> None:
        replies = [
            b"HTTP/1.1 201 Created\r\nContent-Length: 11\r\nContent-Type: application/json\r\n"
            b'\r\n{"id": "x"}',
            ok(hashlib.sha256(big).hexdigest().encode()),
        ]
        async with Server(serve(*replies)) as server:
            client = arm.client()
            ctype = {"Content-Type": "application/octet-stream"}
            r = await client.post(f"{server.url}/upload", content=small, headers=ctype)
            assert (r.status_code, r.reason_phrase) == (201, "Created")
            assert r.json() == {"id": "x"}
            r2 = await client.post(f"{server.url}/big", content=big)
            assert r2.text == hashlib.sha256(big).hexdigest()

            first, second = server.requests
            assert first.head == wire_head(r.request)
            assert first.request_line == b"POST /upload HTTP/1.1"
            assert (b"Content-Length", b"%d" % len(small)) in first.headers
            assert first.wire == small
            assert second.head == wire_head(r2.request)
            assert hashlib.sha256(second.wire).digest() == hashlib.sha256(big).digest()
            assert [q.conn for q in server.requests] == [0, 0]

    arm.run(main)


def test_a_caller_set_host_header_goes_on_the_wire_and_the_socket_to_the_url(arm: Arm) -> None:
    async def main() -> None:
        async with Server(serve(ok(b"x"))) as server:
            client = arm.client()
            r = await client.get(server.url + "/p", headers={"Host": "api.provider.test"})
            [got] = server.requests
            assert got.head == wire_head(r.request)
            assert got.headers[0] == (b"Host", b"api.provider.test")  # first, though set last
            assert [n for n, _ in got.headers].count(b"Host") == 1
            assert r.content == b"x"

    arm.run(main)


# 2. Streamed request bodies ---------------------------------------------------------------------


def test_an_async_iterator_body_goes_chunked_with_exact_framing(arm: Arm) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b""  # an empty piece is not the end of the body
        yield b"x" * 300
        yield b"\r\n0\r\n\r\n"

    async def main() -> None:
        async with Server(serve(ok(b"done"), ok(b"again"))) as server:
            client = arm.client()
            r = await client.post(f"{server.url}/stream", content=pieces())
            assert r.content == b"done"
            got = server.requests[0]
            assert got.head == wire_head(r.request)
            assert (b"Transfer-Encoding", b"chunked") in got.headers
            assert b"content-length" not in {n.lower() for n, _ in got.headers}
            assert got.wire == (
                b"3\r\nabc\r\n12c\r\n" + b"x" * 300 + b"\r\n7\r\n\r\n0\r\n\r\n\r\n0\r\n\r\n"
            )
            assert got.body == b"abc" + b"x" * 300 + b"\r\n0\r\n\r\n"
            # The framing ended where it should: the connection carries the next request.
            assert (await client.get(server.url)).content == b"again"
            assert [q.conn for q in server.requests] == [0, 0]

    arm.run(main)


def test_memoryview_pieces_with_the_callers_content_length_go_unchunked(arm: Arm) -> None:
    image = memoryview(random.Random(2).randbytes(PIECE_BYTES * 2 + 12345))
    form = FormBody(
        {"model": "gpt-image-1", "prompt": "a cat"},
        [FormFile("image", "cat.png", "image/png", image)],
    )

    async def expected() -> bytes:
        return b"".join([bytes(piece) async for piece in form])

    async def main() -> None:
        body = await expected()
        async with Server(serve(ok(b"edited"), ok(b"again"))) as server:
            client = arm.client()
            r = await client.post(
                f"{server.url}/v1/images/edits", content=form, headers=form.headers
            )
            assert r.content == b"edited"
            got = server.requests[0]
            assert got.head == wire_head(r.request)
            assert (b"Content-Length", str(form.length).encode()) in got.headers
            assert b"transfer-encoding" not in {n.lower() for n, _ in got.headers}
            assert got.wire == body
            assert (await client.get(server.url)).content == b"again"
            assert [q.conn for q in server.requests] == [0, 0]

    arm.run(main)


@pytest.mark.parametrize("sent", [b"12345", b"x" * 20], ids=["short", "long"])
def test_a_body_that_breaks_its_declared_length_is_refused(arm: Arm, sent: bytes) -> None:
    # httpx's transport lets h11's own LocalProtocolError out here (httpcore maps h11's errors
    # only around the head), so the class can't be the same; either LocalProtocolError will do.
    class Lying:
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield sent

    async def main() -> None:
        async with Server(serve(ok(b"first"), ok(b"second"))) as server:
            client = arm.client(httpx.Timeout(2.0, read=0.5))
            with pytest.raises(Exception) as caught:
                await client.post(server.url, content=Lying(), headers={"Content-Length": "10"})
            assert caught.type in (h11.LocalProtocolError, httpx.LocalProtocolError)
            # The half request is never completed by the next one on the same connection.
            r = await client.get(server.url + "/after")
            assert r.content == b"first"
            assert [(q.conn, q.path) for q in server.requests] == [(1, "/after")]
            assert await eventually(server.conns[0].eof)

    arm.run(main)


def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent(arm: Arm) -> None:
    async def main() -> None:
        async with Server(serve(ok(b"after"))) as server:
            client = arm.client()
            with pytest.raises(httpx.HTTPError) as caught:
                await client.get(server.url, headers={"X-Note": "a\r\nX-Injected: 1"})
            assert caught.type is httpx.LocalProtocolError
            assert (await client.get(server.url + "/after")).content == b"after"
            assert [q.path for q in server.requests] == ["/after"]
            assert all(b"X-Injected" not in q.head for q in server.requests)

    arm.run(main)


# 3. Response framings ---------------------------------------------------------------------------


def test_a_chunked_response_with_extensions_and_trailers(arm: Arm) -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
        b"5;name=value\r\nhello\r\n"
        b"A\r\n world!!!!\r\n"
        b"1;a=b;c\r\n.\r\n"
        b"0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n"
    )

    async def main() -> None:
        async with Server(serve(reply, ok(b"next"))) as server:
            client = arm.client()
            r = await client.get(server.url)
            assert r.status_code == 200
            assert r.content == b"hello world!!!!."
            assert (await client.get(server.url)).content == b"next"
            assert len(server.conns) == 1  # the trailers were read, the connection reused
            # httpx hands back no trailers: they are not headers.
            assert r.headers.raw == [
                (b"Transfer-Encoding", b"chunked"),
                (b"Content-Type", b"text/plain"),
            ]

    arm.run(main)


def test_a_body_read_until_the_server_closes(arm: Arm) -> None:
    until_close_11 = Reply(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it\r\n", True)
    until_close_10 = Reply(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold server", True)
    http10_length = Reply(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc")  # left open

    async def main() -> None:
        script = serve(until_close_11, until_close_10, http10_length, ok(b"last"))
        async with Server(script) as server:
            client = arm.client()
            rs = [await client.get(server.url) for _ in range(3)]
            assert [r.content for r in rs] == [b"all of it\r\n", b"old server", b"abc"]
            # An HTTP/1.0 response without keep-alive ends its connection, even left open.
            assert (await client.get(server.url)).content == b"last"
            assert [q.conn for q in server.requests] == [0, 1, 2, 3]
            assert [r.http_version for r in rs] == ["HTTP/1.1", "HTTP/1.0", "HTTP/1.0"]

    arm.run(main)


def test_responses_without_a_body_end_at_their_head(arm: Arm) -> None:
    async def main() -> None:
        replies = [
            b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
            b'HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: "e"\r\n\r\n',
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: image/png\r\n\r\n",
            ok(b"after"),
        ]
        async with Server(serve(*replies)) as server:
            client = arm.client(httpx.Timeout(2.0, read=1.0))
            r = await client.get(server.url)
            assert (r.status_code, r.content, r.headers["x-a"]) == (204, b"", "1")
            r = await client.get(server.url)
            assert (r.status_code, r.content, r.headers["content-length"]) == (304, b"", "1234")
            r = await client.head(server.url)
            assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "1000")
            assert (await client.get(server.url)).content == b"after"
            assert [q.conn for q in server.requests] == [0, 0, 0, 0]
            assert server.requests[2].request_line.startswith(b"HEAD / ")

    arm.run(main)


def test_informational_responses_before_the_final_one_are_skipped(arm: Arm) -> None:
    reply = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        + ok(b"final", b"X-Final: yes")
    )

    async def main() -> None:
        async with Server(serve(reply, ok(b"next"))) as server:
            client = arm.client()
            r = await client.post(server.url, content=b"data")
            assert (r.status_code, r.content, r.headers["x-final"]) == (200, b"final", "yes")
            assert "link" not in r.headers
            assert (await client.get(server.url)).content == b"next"
            assert len(server.conns) == 1

    arm.run(main)


def test_a_two_megabyte_body_byte_exact(arm: Arm) -> None:
    data = random.Random(3).randbytes(2 << 20)
    chunked = bytearray(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for start in range(0, len(data), 100_003):
        piece = data[start : start + 100_003]
        chunked += b"%x\r\n%s\r\n" % (len(piece), piece)
    chunked += b"0\r\n\r\n"

    async def main() -> None:
        async with Server(serve(ok(data), bytes(chunked))) as server:
            client = arm.client()
            for _ in range(2):
                r = await client.get(server.url)
                assert len(r.content) == len(data)
                assert hashlib.sha256(r.content).digest() == hashlib.sha256(data).digest()
            assert len(server.conns) == 1

    arm.run(main)


# Replies httpx's transport accepts though they bend the rules, and what it makes of them.
ACCEPTED_REPLIES = {
    "chunked-wins-over-content-length": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n",
        [(b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"3")],
        b"hello",
    ),
    "spaces-around-a-header-value": (
        b"HTTP/1.1 200 OK\r\nX-Spaced:   padded value \t \r\nContent-Length: 5\r\n\r\nhello",
        [(b"X-Spaced", b"padded value"), (b"Content-Length", b"5")],
        b"hello",
    ),
    "same-content-length-twice": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        [(b"Content-Length", b"5")],
        b"hello",
    ),
    "bare-lf-line-ends": (
        b"HTTP/1.1 200 OK\nContent-Length: 5\nX-A: 1\n\nhello",
        [(b"Content-Length", b"5"), (b"X-A", b"1")],
        b"hello",
    ),
    "folded-header-line": (
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 5\r\n\r\nhello",
        [(b"X-A", b"1 continued"), (b"Content-Length", b"5")],
        b"hello",
    ),
    "latin-1-header-value": (
        b"HTTP/1.1 200 OK\r\nX-A: caf\xe9\r\nContent-Length: 5\r\n\r\nhello",
        [(b"X-A", b"caf\xe9"), (b"Content-Length", b"5")],
        b"hello",
    ),
}


REFUSED_BY_LLHTTP = frozenset(
    {
        "chunked-wins-over-content-length",
        "same-content-length-twice",
        "bare-lf-line-ends",
        "folded-header-line",
    }
)


@pytest.mark.parametrize("case", list(ACCEPTED_REPLIES))
def test_a_reply_that_bends_the_rules_reads_as_httpx_reads_it(arm: Arm, case: str) -> None:
    """h11 reads all of these. llhttp refuses four, and imagegate keeps that on purpose: conflicting
    framing (chunked and a length, two lengths), bare LF line ends and folded headers are how
    responses are split and desynchronized. Refused, the connection is dropped, not reused."""
    data, headers, body = ACCEPTED_REPLIES[case]

    async def main() -> None:
        async with Server(serve(data, ok(b"next"))) as server:
            client = arm.client(httpx.Timeout(2.0, read=1.0))
            if arm.name == "imagegate" and case in REFUSED_BY_LLHTTP:
                with pytest.raises(httpx.RemoteProtocolError):
                    await client.get(server.url)
                assert (await client.get(server.url)).content == b"next"
                assert len(server.conns) == 2
                return
            r = await client.get(server.url)
            assert (r.status_code, r.headers.raw, r.content) == (200, headers, body)
            assert (await client.get(server.url)).content == b"next"
            assert len(server.conns) == 1

    arm.run(main)


def test_an_unknown_status_code_passes_through(arm: Arm) -> None:
    async def main() -> None:
        async with Server(serve(b"HTTP/1.1 599 Odd\r\nContent-Length: 2\r\n\r\nno")) as server:
            r = await arm.client().get(server.url)
            assert (r.status_code, r.reason_phrase, r.content) == (599, "Odd", b"no")

    arm.run(main)


def test_a_reply_trickled_a_byte_at_a_time(arm: Arm) -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Slow: yes\r\n\r\n"
        b"4;x=y\r\nslow\r\n6\r\n reply\r\n0\r\nX-T: 1\r\n\r\n"
    )

    async def main() -> None:
        async def script(conn: Conn) -> None:
            while await conn.request() is not None:
                for i in range(len(reply)):
                    await conn.send(reply[i : i + 1])
                    await asyncio.sleep(0)

        async with Server(script) as server:
            client = arm.client()
            for _ in range(2):
                r = await client.get(server.url)
                assert (r.status_code, r.headers["x-slow"], r.content) == (
                    200,
                    "yes",
                    b"slow reply",
                )
            assert len(server.conns) == 1

    arm.run(main)


# 4. Keep-alive ----------------------------------------------------------------------------------


def test_sequential_requests_share_one_connection(arm: Arm) -> None:
    async def main() -> None:
        async with Server(serve(ok(b"one"), ok(b"two"), ok(b"three"))) as server:
            client = arm.client()
            bodies = [(await client.get(f"{server.url}/{i}")).content for i in range(3)]
            assert bodies == [b"one", b"two", b"three"]
            assert len(server.conns) == 1
            assert [q.path for q in server.requests] == ["/0", "/1", "/2"]

    arm.run(main)


@pytest.mark.parametrize("server_closes", [True, False], ids=["server-closes", "left-open"])
def test_connection_close_from_the_server_means_a_new_connection(
    arm: Arm, server_closes: bool
) -> None:
    async def main() -> None:
        closing = Reply(ok(b"bye", b"Connection: close"), close=server_closes)
        async with Server(serve(closing, ok(b"hello again"))) as server:
            client = arm.client()
            assert (await client.get(server.url)).content == b"bye"
            assert (await client.get(server.url)).content == b"hello again"
            assert [q.conn for q in server.requests] == [0, 1]
            if not server_closes:
                assert await eventually(server.conns[0].eof)  # the client closed it instead

    arm.run(main)


@pytest.mark.parametrize("pause", [0.05, 0.0], ids=["after-a-pause", "at-once"])
def test_an_idle_connection_the_server_closed_is_not_used(arm: Arm, pause: float) -> None:
    async def main() -> None:
        # The first connection answers once, as keep-alive, then the server drops it.
        async with Server(serve(Reply(ok(b"first"), close=True), ok(b"second"))) as server:
            client = arm.client()
            assert (await client.get(server.url)).content == b"first"
            assert await eventually(server.conns[0].closed)
            await asyncio.sleep(pause)
            assert (await client.get(server.url)).content == b"second"
            assert [q.conn for q in server.requests] == [0, 1]

    arm.run(main)


def test_a_request_the_server_read_and_dropped_is_not_sent_again(arm: Arm) -> None:
    # The server reads the second request on a kept-alive connection in full, then closes it
    # unanswered (a crash, a restart). It may have acted on it: an edit is billed. httpx's
    # transport raises and sends nothing more; a resend would run the edit twice.
    async def main() -> None:
        async def script(conn: Conn) -> None:
            if conn.index == 0:
                await conn.request()
                await conn.send(ok(b"first"))
                await conn.request()  # read in full, then dropped
            else:
                await serve(ok(b"answer to a resend"))(conn)

        async with Server(script) as server:
            client = arm.client()
            assert (await client.post(server.url + "/1", content=b"edit one")).content == b"first"
            with pytest.raises(httpx.HTTPError) as caught:
                await client.post(server.url + "/2", content=b"edit two")
            assert caught.type is httpx.RemoteProtocolError
            assert [(q.conn, q.path, q.body) for q in server.requests] == [
                (0, "/1", b"edit one"),
                (0, "/2", b"edit two"),
            ]

    arm.run(main)


def test_an_idle_connection_past_keepalive_expiry_is_not_used(arm: Arm) -> None:
    async def main() -> None:
        async with Server(serve(ok(b"a"), ok(b"b"), ok(b"c"))) as server:
            client = arm.client(keepalive_expiry=0.1)
            assert (await client.get(server.url)).content == b"a"
            assert (await client.get(server.url)).content == b"b"  # within the expiry: reused
            await asyncio.sleep(0.15)
            assert (await client.get(server.url)).content == b"c"
            assert [q.conn for q in server.requests] == [0, 0, 1]
            assert await eventually(server.conns[0].eof)  # the expired one was closed

    arm.run(main)


def test_only_max_keepalive_connections_stay_open(arm: Arm) -> None:
    async def main() -> None:
        all_in = asyncio.Event()

        async def script(conn: Conn) -> None:
            while (req := await conn.request()) is not None:
                if len(conn.server.requests) == 3:
                    all_in.set()
                await all_in.wait()  # hold every answer until three connections are open
                await conn.send(ok(req.path.encode()))

        async with Server(script) as server:
            client = arm.client(max_connections=3, max_keepalive_connections=1)
            rs = await asyncio.gather(*(client.get(f"{server.url}/{i}") for i in range(3)))
            assert sorted(r.content for r in rs) == [b"/0", b"/1", b"/2"]
            assert len(server.conns) == 3
            for _ in range(100):
                if sum(c.eof.is_set() for c in server.conns) >= 2:
                    break
                await asyncio.sleep(0.01)
            assert sum(c.eof.is_set() for c in server.conns) == 2
            [kept] = [c for c in server.conns if not c.eof.is_set()]
            assert (await client.get(f"{server.url}/3")).content == b"/3"
            assert len(server.conns) == 3
            assert server.requests[-1].conn == kept.index

    arm.run(main)


# 5. Streaming responses -------------------------------------------------------------------------


def test_a_streamed_body_arrives_as_the_server_sends_it(arm: Arm) -> None:
    half = 100_000
    first, second = b"a" * half, b"b" * half

    async def main() -> None:
        release = asyncio.Event()

        async def script(conn: Conn) -> None:
            await conn.request()
            await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 * half) + first)
            await release.wait()
            await conn.send(second)
            await conn.wait_eof()

        async with Server(script) as server:
            client = arm.client()
            got = bytearray()
            async with client.stream("GET", server.url) as r:
                assert r.status_code == 200
                async for chunk in r.aiter_bytes():
                    assert chunk
                    got += chunk
                    if len(got) >= half and not release.is_set():
                        assert bytes(got) == first  # all of the first half, none of the second
                        release.set()
            assert bytes(got) == first + second
            assert release.is_set()

    arm.run(main)


def test_a_stream_closed_early_does_not_hand_its_connection_on(arm: Arm) -> None:
    big = random.Random(4).randbytes(1 << 20)

    async def main() -> None:
        async with Server(serve(ok(big), ok(b"second"))) as server:
            client = arm.client()
            async with client.stream("GET", server.url + "/big") as r:
                async for chunk in r.aiter_raw():
                    assert big.startswith(chunk)
                    break
            r2 = await client.get(server.url + "/small")
            assert (r2.status_code, r2.content) == (200, b"second")
            assert [q.conn for q in server.requests] == [0, 1]
            assert await eventually(server.conns[0].eof)  # the abandoned one was closed

    arm.run(main)


# 6. Failures ------------------------------------------------------------------------------------


def test_a_refused_connection_is_a_connect_error(arm: Arm) -> None:
    async def main() -> None:
        client = arm.client()
        with pytest.raises(httpx.HTTPError) as caught:
            await client.get(f"http://127.0.0.1:{free_port()}/")
        assert caught.type is httpx.ConnectError

    arm.run(main)


def test_a_server_that_never_answers_is_a_read_timeout(arm: Arm) -> None:
    async def main() -> None:
        async def script(conn: Conn) -> None:
            if conn.index == 0:
                await conn.request()
                await conn.wait_eof()  # says nothing
            else:
                await serve(ok(b"alive"))(conn)

        async with Server(script) as server:
            client = arm.client(httpx.Timeout(2.0, read=0.2))
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(httpx.HTTPError) as caught:
                await client.get(server.url)
            elapsed = loop.time() - start
            assert caught.type is httpx.ReadTimeout
            assert 0.18 <= elapsed < 1.0
            assert (await client.get(server.url)).content == b"alive"
            assert [q.conn for q in server.requests] == [0, 1]
            assert await eventually(server.conns[0].eof)

    arm.run(main)


def test_a_body_that_stalls_is_a_read_timeout(arm: Arm) -> None:
    async def main() -> None:
        async def script(conn: Conn) -> None:
            if conn.index == 0:
                await conn.request()
                await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
                await conn.wait_eof()
            else:
                await serve(ok(b"alive"))(conn)

        async with Server(script) as server:
            client = arm.client(httpx.Timeout(2.0, read=0.2))
            with pytest.raises(httpx.HTTPError) as caught:
                await client.get(server.url)
            assert caught.type is httpx.ReadTimeout
            assert (await client.get(server.url)).content == b"alive"
            assert [q.conn for q in server.requests] == [0, 1]

    arm.run(main)


# What httpx's transport raises for each (the httpx arm checks this table; ours must match it).
BROKEN_REPLIES = {
    "closed-without-answer": (b"", httpx.RemoteProtocolError),
    "closed-mid-head": (b"HTTP/1.1 200 OK\r\nContent-Len", httpx.RemoteProtocolError),
    "closed-mid-body": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
        httpx.RemoteProtocolError,
    ),
    "closed-mid-chunk": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
        httpx.RemoteProtocolError,
    ),
    "closed-before-last-chunk": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        httpx.RemoteProtocolError,
    ),
    "garbage-status-line": (
        b"HTTP/1.1 two hundred OK\r\nContent-Length: 0\r\n\r\n",
        httpx.RemoteProtocolError,
    ),
    "not-http": (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", httpx.RemoteProtocolError),
    "header-without-colon": (
        b"HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n",
        httpx.RemoteProtocolError,
    ),
    "bad-content-length": (
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        httpx.RemoteProtocolError,
    ),
    "conflicting-content-lengths": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        httpx.RemoteProtocolError,
    ),
    "negative-content-length": (
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello",
        httpx.RemoteProtocolError,
    ),
    "transfer-coding-other-than-chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        httpx.RemoteProtocolError,
    ),
    "two-digit-status": (b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", httpx.RemoteProtocolError),
    "http-2-status-line": (
        b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
        httpx.RemoteProtocolError,
    ),
    "space-before-colon": (
        b"HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 0\r\n\r\n",
        httpx.RemoteProtocolError,
    ),
    "nul-in-header-value": (
        b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n",
        httpx.RemoteProtocolError,
    ),
    "head-over-100-kib": (
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\nContent-Length: 0\r\n\r\n",
        httpx.RemoteProtocolError,
    ),
    "switching-protocols-unasked": (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        httpx.RemoteProtocolError,
    ),
    "chunk-longer-than-its-size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n",
        httpx.RemoteProtocolError,
    ),
    "bad-chunk-size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        httpx.RemoteProtocolError,
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_REPLIES))
def test_a_broken_reply_raises_the_same_class(arm: Arm, case: str) -> None:
    data, expected = BROKEN_REPLIES[case]

    async def main() -> None:
        async with Server(serve(Reply(data, close=True), ok(b"alive"))) as server:
            client = arm.client(httpx.Timeout(2.0, read=1.0))
            with pytest.raises(httpx.HTTPError) as caught:
                await client.get(server.url)
            assert caught.type is expected, repr(caught.value)
            assert (await client.get(server.url)).content == b"alive"
            assert [q.conn for q in server.requests] == [0, 1]

    arm.run(main)


def test_an_early_413_from_a_server_that_drains_the_body(arm: Arm) -> None:
    body = b"x" * (8 << 20)

    async def main() -> None:
        async def script(conn: Conn) -> None:
            await conn.reader.readuntil(b"\r\n\r\n")  # the head only: answer before the body
            await conn.send(
                ok(b"too big!", b"Connection: close").replace(b"200 OK", b"413 Payload Too Large")
            )
            await conn.wait_eof()  # a lingering close: drain what the client still sends

        async with Server(script) as server:
            client = arm.client()
            r = await client.post(server.url, content=body)
            assert (r.status_code, r.content) == (413, b"too big!")

    arm.run(main)


def test_an_early_413_from_a_server_that_closes_at_once(arm: Arm) -> None:
    # The server closes with the body unread, so its kernel resets the connection. httpx's
    # transport reads the reply only after its write fails, and by then the reset has dropped
    # the 413: on Linux it raises ReadError, every time. imagegate's reads the answer as it
    # arrives, during the upload, so the client gets the provider's 413 and its words: a
    # deliberate difference (a too-large image is the client's to fix, not a retry).
    body = b"x" * (8 << 20)

    async def main() -> None:
        async def script(conn: Conn) -> None:
            await conn.reader.readuntil(b"\r\n\r\n")
            await conn.send(
                ok(b"too big!", b"Connection: close").replace(b"200 OK", b"413 Payload Too Large")
            )

        async with Server(script) as server:
            client = arm.client()
            if arm.name == "imagegate":
                r = await client.post(server.url, content=body)
                assert (r.status_code, r.content) == (413, b"too big!")
                return
            with pytest.raises(httpx.HTTPError) as caught:
                await client.post(server.url, content=body)
            assert caught.type is httpx.ReadError

    arm.run(main)


# 7. The pool limit ------------------------------------------------------------------------------


def _held_script(arrived: asyncio.Event, release: asyncio.Event) -> Script:
    """Answers ``/slow`` only once ``release`` is set; everything else at once."""

    async def script(conn: Conn) -> None:
        while (req := await conn.request()) is not None:
            if req.path == "/slow":
                arrived.set()
                await release.wait()
            await conn.send(ok(req.path.encode()))

    return script


def test_a_second_request_waits_for_the_only_connection(arm: Arm) -> None:
    async def main() -> None:
        arrived, release = asyncio.Event(), asyncio.Event()
        async with Server(_held_script(arrived, release)) as server:
            client = arm.client(httpx.Timeout(2.0, pool=0.2), max_connections=1)
            slow = asyncio.create_task(client.get(server.url + "/slow"))
            await arrived.wait()
            fast = asyncio.create_task(client.get(server.url + "/fast"))
            await asyncio.sleep(0.05)
            assert not fast.done()
            assert [q.path for q in server.requests] == ["/slow"]
            release.set()
            assert (await slow).content == b"/slow"
            assert (await fast).content == b"/fast"
            assert len(server.conns) == 1

    arm.run(main)


def test_a_request_that_waits_too_long_for_a_connection_is_a_pool_timeout(arm: Arm) -> None:
    async def main() -> None:
        arrived, release = asyncio.Event(), asyncio.Event()
        async with Server(_held_script(arrived, release)) as server:
            client = arm.client(httpx.Timeout(2.0, pool=0.2), max_connections=1)
            slow = asyncio.create_task(client.get(server.url + "/slow"))
            await arrived.wait()
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(httpx.HTTPError) as caught:
                await client.get(server.url + "/fast")
            elapsed = loop.time() - start
            assert caught.type is httpx.PoolTimeout
            assert 0.18 <= elapsed < 1.0
            release.set()
            assert (await slow).content == b"/slow"
            assert (await client.get(server.url + "/after")).content == b"/after"
            assert [q.path for q in server.requests] == ["/slow", "/after"]
            assert len(server.conns) == 1

    arm.run(main)


def test_concurrent_requests_each_get_their_own_answer(arm: Arm) -> None:
    async def main() -> None:
        rng = random.Random(5)
        delays = [rng.random() * 0.01 for _ in range(40)]

        async def script(conn: Conn) -> None:
            while (req := await conn.request()) is not None:
                n = int(req.path.strip("/"))
                await asyncio.sleep(delays[n])
                await conn.send(ok(req.path.encode() * (n * 997 % 5000), b"X-N: %d" % n))

        async with Server(script) as server:
            client = arm.client(max_connections=5)
            rs = await asyncio.gather(*(client.get(f"{server.url}/{n}") for n in range(40)))
            for n, r in enumerate(rs):
                assert r.headers["x-n"] == str(n)
                assert r.content == f"/{n}".encode() * (n * 997 % 5000)
            assert len(server.requests) == 40
            assert 1 < len(server.conns) <= 5

    arm.run(main)


# 8. Cancellation --------------------------------------------------------------------------------


def test_a_request_cancelled_while_waiting_for_its_answer(arm: Arm) -> None:
    async def main() -> None:
        arrived, release, stale_sent = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def script(conn: Conn) -> None:
            if conn.index == 0:
                await conn.request()
                arrived.set()
                await release.wait()
                try:  # the late answer to the cancelled request, if anyone still listens
                    await conn.send(ok(b"stale"))
                finally:
                    stale_sent.set()
                await serve(ok(b"wrong connection"))(conn)
            else:
                await serve(ok(b"fresh"))(conn)

        async with Server(script) as server:
            client = arm.client(httpx.Timeout(2.0, pool=0.5), max_connections=1)
            task = asyncio.create_task(client.get(server.url + "/cancelled"))
            await arrived.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            release.set()
            assert await eventually(stale_sent)
            r = await client.get(server.url + "/next")
            assert (r.status_code, r.content) == (200, b"fresh")
            assert [(q.conn, q.path) for q in server.requests] == [(0, "/cancelled"), (1, "/next")]
            assert await eventually(server.conns[0].eof)

    arm.run(main)


def test_a_request_cancelled_while_waiting_for_the_pool(arm: Arm) -> None:
    async def main() -> None:
        async with Server(serve(ok(b"a"), ok(b"c"))) as server:
            client = arm.client(httpx.Timeout(2.0, pool=0.5), max_connections=1)
            async with client.stream("GET", server.url + "/a") as held:
                waiting = asyncio.create_task(client.get(server.url + "/b"))
                await asyncio.sleep(0.02)
                assert not waiting.done()
                waiting.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await waiting
                assert await held.aread() == b"a"
            r = await client.get(server.url + "/c")
            assert r.content == b"c"
            assert [(q.conn, q.path) for q in server.requests] == [(0, "/a"), (0, "/c")]

    arm.run(main)


# 9. Content-Encoding ----------------------------------------------------------------------------


def test_a_gzip_body_is_decoded_by_httpx_from_the_raw_bytes(arm: Arm) -> None:
    data = b"imagegate " * 2000
    packed = gzip.compress(data, mtime=0)
    half = len(packed) // 2
    chunked = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
        % (half, packed[:half], len(packed) - half, packed[half:])
    )

    async def main() -> None:
        async with Server(serve(ok(packed, b"Content-Encoding: gzip"), chunked)) as server:
            client = arm.client()
            r = await client.get(server.url)
            assert r.content == data
            assert r.headers["content-encoding"] == "gzip"
            assert r.num_bytes_downloaded == len(packed)
            async with client.stream("GET", server.url) as r:
                raw = b"".join([chunk async for chunk in r.aiter_raw()])
            assert raw == packed

    arm.run(main)


# 10. aclose -------------------------------------------------------------------------------------


def test_aclose_closes_idle_connections(arm: Arm) -> None:
    async def main() -> None:
        async with Server(serve(ok(b"1"), ok(b"2"))) as server:
            client = arm.client()
            await asyncio.gather(client.get(server.url), client.get(server.url))
            assert len(server.conns) == 2
            assert not any(c.eof.is_set() for c in server.conns)
            await client.aclose()
            for conn in server.conns:
                assert await eventually(conn.eof)

    arm.run(main)


# imagegate's own: a cap on an answer's body (httpx's transport has none) ------------------------


def _chunked(body: bytes, piece: int) -> bytes:
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + piece]), body[i : i + piece])
        for i in range(0, len(body), piece)
    )
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_answer_over_max_body_bytes_is_refused_and_its_connection_dropped(
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None, framing: str
) -> None:
    from imagegate.providers.transport import AnswerTooLarge, Http11Transport

    body = bytes(range(256)) * 20  # 5,120 bytes
    big = ok(body) if framing == "content-length" else _chunked(body, 1000)

    async def main() -> None:
        async with Server(serve(big, ok(b"next"), big)) as server:
            capped = Http11Transport(max_body_bytes=len(body) - 1)
            async with httpx.AsyncClient(transport=capped, timeout=TIMEOUT) as client:
                with pytest.raises(AnswerTooLarge, match="over 5,119 bytes"):
                    await client.get(server.url)
                assert (await client.get(server.url)).content == b"next"
            assert len(server.conns) == 2  # the refused exchange's connection was not reused
            exact = Http11Transport(max_body_bytes=len(body))
            async with httpx.AsyncClient(transport=exact, timeout=TIMEOUT) as client:
                assert (await client.get(server.url)).content == body  # at the cap: accepted

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(asyncio.wait_for(main(), GUARD_SECONDS))
