"""``ImageFetcher``: the guards around fetching an ``image_url``.

Most tests run the fetcher with a stub resolver and an httpx transport that records each request
and answers it itself, so a refused address is shown to be refused with no socket ever opened.
The last group uses a real HTTP server on 127.0.0.1 (opened with the allow-list) to show the
deadline and the size cap hold on a real connection. ``tests/support/tripwire.py`` fails any
test whose sockets try to reach anything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import orjson
import pytest

from imagegate.core.errors import InvalidRequest, PayloadTooLarge
from imagegate.wire.fetch import ImageFetcher, system_resolver
from imagegate.wire.netguard import IPAddress, parse_networks
from tests import imaging
from tests.support.imageserver import BIG_TOTAL, CAT, ImageServer

T = TypeVar("T")
PARAM = "images[0].image_url"
PNG = CAT  # the image server's /cat.png: a 64x48 PNG

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V4_B = "151.101.1.69"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class StubResolver:
    """DNS from a table; a name not in it does not resolve."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = table or {}
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in self.table[host]]


@dataclass
class Recorder:
    """An httpx transport that records every request and hands it to ``handler``."""

    handler: Handler
    requests: list[httpx.Request] = field(default_factory=list)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.handler(request)
        if isinstance(response, Awaitable):
            response = await response
        return response

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    @property
    def hosts(self) -> list[str]:
        return [request.url.host for request in self.requests]


class Raw(httpx.AsyncByteStream):
    """A body httpx has not read yet, as from a real connection (``content=`` is read eagerly)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


def ok_png(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, stream=Raw(PNG), headers={"content-type": "image/png"})


def never(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request should have been sent, got {request.url}")


async def fetch(
    url: str,
    handler: Handler = ok_png,
    dns: dict[str, list[str]] | None = None,
    *,
    resolver: Callable[[str, int], Awaitable[list[IPAddress]]] | None = None,
    max_bytes: int = 1_000_000,
    deadline: float = 5.0,
    max_redirects: int = 5,
    allowed: tuple[str, ...] = (),
) -> tuple[bytes | Exception, Recorder, StubResolver]:
    """One fetch through a recording transport; returns the bytes or the refusal."""
    recorder = Recorder(handler)
    stub = StubResolver(dns)
    async with httpx.AsyncClient(transport=recorder.transport()) as client:
        fetcher = ImageFetcher(
            client,
            max_bytes=max_bytes,
            timeout=deadline,
            max_redirects=max_redirects,
            allowed_networks=parse_networks(list(allowed)),
            resolver=resolver or stub,
        )
        try:
            result: bytes | Exception = await fetcher.fetch(url, param=PARAM)
        except (InvalidRequest, PayloadTooLarge) as exc:
            result = exc
    return result, recorder, stub


def refused(result: bytes | Exception, code: str) -> InvalidRequest | PayloadTooLarge:
    assert isinstance(result, InvalidRequest | PayloadTooLarge), result
    assert result.code == code, (result.code, result.message)
    assert result.param == PARAM
    assert result.origin == "gateway"
    return result


# --- what a URL may be -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "file://localhost/etc/passwd",
        "ftp://example.com/cat.png",
        "gopher://example.com:70/_GET",
        "data:image/png;base64,iVBORw0KGgo=",
        "ws://example.com/cat.png",
        "dict://example.com:11211/stats",
        "//example.com/cat.png",
        "example.com/cat.png",
    ],
)
def test_only_http_and_https_are_fetched(url: str) -> None:
    result, recorder, stub = run(fetch(url, never, {"example.com": [PUBLIC_V4]}))
    refused(result, "invalid_image_url")
    assert recorder.requests == [] and stub.calls == []


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pass@example.com/cat.png",
        "https://user@example.com/cat.png",
        "https://:secret@example.com/cat.png",
        "http://169.254.169.254@example.com/cat.png",
    ],
)
def test_credentials_in_the_url_are_refused(url: str) -> None:
    result, recorder, stub = run(fetch(url, never, {"example.com": [PUBLIC_V4]}))
    error = refused(result, "invalid_image_url")
    assert "user name or password" in error.message
    assert recorder.requests == [] and stub.calls == []


@pytest.mark.parametrize(
    "url", ["http:///cat.png", "http://[::1/cat.png", "http://0177.0.0.1/", "http://:80/"]
)
def test_malformed_urls_are_refused(url: str) -> None:
    result, recorder, stub = run(fetch(url, never))
    refused(result, "invalid_image_url")
    assert recorder.requests == [] and stub.calls == []


# --- every resolved address is judged, before any connection ---------------------------------


@pytest.mark.parametrize(
    "address",
    [
        *("10.0.0.5", "192.168.1.10", "172.20.0.3", "127.0.0.1", "169.254.169.254", "100.64.1.1"),
        *("::1", "fd00:ec2::254", "fe80::1", "fc00::7", "::ffff:10.0.0.5", "64:ff9b::a9fe:a9fe"),
    ],
)
def test_a_name_resolving_to_a_private_address_is_refused_unsent(address: str) -> None:
    result, recorder, stub = run(
        fetch("https://images.example.com/cat.png", never, {"images.example.com": [address]})
    )
    error = refused(result, "image_url_forbidden")
    assert isinstance(error, InvalidRequest) and error.status == 400
    assert "does not fetch from" in error.message
    assert recorder.requests == []
    assert stub.calls == [("images.example.com", 443)]


@pytest.mark.parametrize(
    "answer",
    [[PUBLIC_V4, "10.0.0.5"], ["10.0.0.5", PUBLIC_V4], [PUBLIC_V6, PUBLIC_V4, "::1"]],
)
def test_one_private_address_among_the_answers_refuses_the_name(answer: list[str]) -> None:
    result, recorder, _ = run(
        fetch("http://mixed.example/cat.png", never, {"mixed.example": answer})
    )
    refused(result, "image_url_forbidden")
    assert recorder.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/cat.png",
        "http://127.0.0.1:8080/cat.png",
        "http://[::1]/cat.png",
        "http://[::ffff:127.0.0.1]/cat.png",
        "http://[::ffff:7f00:1]/cat.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://[fe80::1%25eth0]/cat.png",
        "http://0.0.0.0/cat.png",
        "http://[::]/cat.png",
        "http://10.0.0.1/cat.png",
        "http://[64:ff9b::a00:1]/cat.png",
        "http://[2002:7f00:1::]/cat.png",
    ],
)
def test_an_ip_literal_is_judged_without_dns(url: str) -> None:
    result, recorder, stub = run(fetch(url, never))
    refused(result, "image_url_forbidden")
    assert recorder.requests == [] and stub.calls == []


NUMERIC_LOOPBACK = ["2130706433", "017700000001", "0x7f000001", "127.1", "0x7f.0.0.1", "127.0.1"]


async def numeric_only_system_resolver(host: str, port: int) -> list[IPAddress]:
    """``system_resolver``, but only for hosts the C library reads as numbers.

    ``AI_NUMERICHOST`` never consults /etc/hosts or DNS, so the first call proves the spelling is
    numeric before the real resolver (which takes the same inet_aton path) sees it.
    """
    socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    return await system_resolver(host, port)


@pytest.mark.parametrize("spelling", NUMERIC_LOOPBACK)
def test_the_os_reads_odd_spellings_as_127_0_0_1(spelling: str) -> None:
    with pytest.raises(ValueError):
        ipaddress.ip_address(spelling)  # not a literal to Python: the fetcher asks the resolver
    assert socket.inet_aton(spelling) == b"\x7f\x00\x00\x01"
    assert run(numeric_only_system_resolver(spelling, 80)) == [ipaddress.ip_address("127.0.0.1")]


@pytest.mark.parametrize("spelling", NUMERIC_LOOPBACK)
def test_odd_spellings_of_loopback_are_refused_through_the_system_resolver(spelling: str) -> None:
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        return await numeric_only_system_resolver(host, port)

    result, recorder, _ = run(fetch(f"http://{spelling}/cat.png", never, resolver=resolver))
    error = refused(result, "image_url_forbidden")
    assert "loopback" in error.message
    assert asked == [spelling]
    assert recorder.requests == []


@pytest.mark.parametrize("answer", [[], None])
def test_a_name_that_does_not_resolve_is_refused(answer: list[str] | None) -> None:
    dns = {"gone.example": answer} if answer is not None else {}
    result, recorder, _ = run(fetch("http://gone.example/cat.png", never, dns))
    error = refused(result, "image_url_failed")
    assert "does not resolve" in error.message
    assert recorder.requests == []


# --- the connection goes to the judged address ----------------------------------------------


def test_https_is_pinned_to_the_judged_ip_with_host_header_and_sni() -> None:
    dns = {"images.example.com": [PUBLIC_V4, PUBLIC_V4_B]}
    result, recorder, stub = run(fetch("https://images.example.com/a/cat.png?v=2", dns=dns))
    assert result == PNG
    (request,) = recorder.requests
    assert request.url.scheme == "https"
    assert request.url.host == PUBLIC_V4  # the first judged address, not a second DNS answer
    assert request.url.port is None
    assert request.url.raw_path == b"/a/cat.png?v=2"
    assert request.headers["host"] == "images.example.com"
    assert request.extensions["sni_hostname"] == "images.example.com"
    assert request.headers["connection"] == "close"  # no TLS connection reused for another name
    assert request.headers["accept-encoding"] == "identity"
    assert request.headers["accept"] == "image/*"
    assert request.method == "GET"
    assert stub.calls == [("images.example.com", 443)]


def test_http_is_pinned_with_the_port_in_the_host_header_and_no_sni() -> None:
    dns = {"images.example.com": [PUBLIC_V4]}
    result, recorder, stub = run(fetch("http://images.example.com:8080/cat.png", dns=dns))
    assert result == PNG
    (request,) = recorder.requests
    assert str(request.url) == f"http://{PUBLIC_V4}:8080/cat.png"
    assert request.headers["host"] == "images.example.com:8080"
    assert "sni_hostname" not in request.extensions
    assert stub.calls == [("images.example.com", 8080)]


def test_an_ipv6_answer_is_pinned_in_brackets() -> None:
    dns = {"v6.example": [PUBLIC_V6]}
    result, recorder, _ = run(fetch("https://v6.example/cat.png", dns=dns))
    assert result == PNG
    (request,) = recorder.requests
    assert request.url.host == PUBLIC_V6
    assert request.url.netloc == f"[{PUBLIC_V6}]".encode()
    assert request.headers["host"] == "v6.example"
    assert request.extensions["sni_hostname"] == "v6.example"


def test_a_public_ip_literal_is_fetched_without_dns() -> None:
    result, recorder, stub = run(fetch(f"http://{PUBLIC_V4}/cat.png"))
    assert result == PNG
    assert recorder.hosts == [PUBLIC_V4] and stub.calls == []


def test_the_allow_list_opens_exactly_its_network() -> None:
    dns = {"store.internal": ["10.1.2.3"], "other.internal": ["10.1.3.1"]}
    result, recorder, _ = run(
        fetch("http://store.internal/cat.png", dns=dns, allowed=("10.1.2.0/24",))
    )
    assert result == PNG and recorder.hosts == ["10.1.2.3"]
    result, recorder, _ = run(
        fetch("http://other.internal/cat.png", dns=dns, allowed=("10.1.2.0/24",))
    )
    refused(result, "image_url_forbidden")
    assert recorder.requests == []


# --- redirects: every hop is judged again ----------------------------------------------------


def redirects(chain: dict[str, tuple[int, str]]) -> Handler:
    """Answer ``path -> (status, Location)`` for the paths in ``chain``, else the PNG."""

    def handler(request: httpx.Request) -> httpx.Response:
        hop = chain.get(request.url.path)
        if hop is None:
            return ok_png(request)
        return httpx.Response(hop[0], headers={"location": hop[1]} if hop[1] else {})

    return handler


@pytest.mark.parametrize(
    ("location", "dns"),
    [
        ("http://127.0.0.1/cat.png", {}),
        ("http://169.254.169.254/latest/meta-data/iam/", {}),
        ("http://[::ffff:169.254.169.254]/latest/", {}),
        ("http://[fd00:ec2::254]/latest/", {}),
        ("http://internal.example/cat.png", {"internal.example": ["10.0.0.5"]}),
        ("https://2130706433/cat.png", {"2130706433": ["127.0.0.1"]}),
    ],
)
def test_a_redirect_to_a_private_address_is_refused(
    location: str, dns: dict[str, list[str]]
) -> None:
    table = {"images.example.com": [PUBLIC_V4], **dns}
    handler = redirects({"/start": (302, location)})
    result, recorder, _ = run(fetch("https://images.example.com/start", handler, table))
    refused(result, "image_url_forbidden")
    assert recorder.hosts == [PUBLIC_V4]  # the first hop was sent, the second never


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_each_redirect_status_is_followed_and_pinned(status: int) -> None:
    dns = {"a.example": [PUBLIC_V4], "cdn.example": [PUBLIC_V4_B]}
    handler = redirects({"/start": (status, "https://cdn.example/img/cat.png")})
    result, recorder, stub = run(fetch("http://a.example/start", handler, dns))
    assert result == PNG
    assert recorder.hosts == [PUBLIC_V4, PUBLIC_V4_B]
    second = recorder.requests[1]
    assert second.method == "GET"
    assert second.headers["host"] == "cdn.example"
    assert second.extensions["sni_hostname"] == "cdn.example"
    assert stub.calls == [("a.example", 80), ("cdn.example", 443)]


def test_relative_redirects_resolve_against_the_original_url() -> None:
    dns = {"a.example": [PUBLIC_V4], "b.example": [PUBLIC_V4_B]}
    handler = redirects(
        {
            "/one/start": (302, "next"),  # -> /one/next
            "/one/next": (301, "../two/hop?x=1"),  # -> /two/hop?x=1
            "/two/hop": (307, "/three/hop"),  # -> /three/hop
            "/three/hop": (308, "//b.example/final.png"),  # scheme-relative, another host
        }
    )
    result, recorder, stub = run(fetch("https://a.example:8443/one/start", handler, dns))
    assert result == PNG
    assert [str(r.url) for r in recorder.requests] == [
        f"https://{PUBLIC_V4}:8443/one/start",
        f"https://{PUBLIC_V4}:8443/one/next",
        f"https://{PUBLIC_V4}:8443/two/hop?x=1",
        f"https://{PUBLIC_V4}:8443/three/hop",
        f"https://{PUBLIC_V4_B}/final.png",
    ]
    assert [r.headers["host"] for r in recorder.requests] == ["a.example:8443"] * 4 + ["b.example"]
    # Each hop is resolved again: a name may not keep a judged address across hops.
    assert stub.calls == [("a.example", 8443)] * 4 + [("b.example", 443)]


def test_a_name_that_changes_its_answer_between_hops_is_judged_each_time() -> None:
    answers = iter([[PUBLIC_V4], ["10.0.0.5"]])

    async def rebinding(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in next(answers)]

    handler = redirects({"/start": (302, "/cat.png")})
    result, recorder, _ = run(fetch("http://rebind.example/start", handler, resolver=rebinding))
    refused(result, "image_url_forbidden")
    assert recorder.hosts == [PUBLIC_V4]


def _chain(length: int) -> Handler:
    return redirects({f"/{i}": (302, f"/{i + 1}") for i in range(length)})


def test_redirects_up_to_the_limit_are_followed() -> None:
    dns = {"a.example": [PUBLIC_V4]}
    result, recorder, _ = run(fetch("http://a.example/0", _chain(3), dns, max_redirects=3))
    assert result == PNG
    assert [r.url.path for r in recorder.requests] == ["/0", "/1", "/2", "/3"]


@pytest.mark.parametrize("limit", [0, 1, 3])
def test_one_redirect_over_the_limit_is_refused(limit: int) -> None:
    dns = {"a.example": [PUBLIC_V4]}
    result, recorder, _ = run(
        fetch("http://a.example/0", _chain(limit + 1), dns, max_redirects=limit)
    )
    error = refused(result, "image_url_failed")
    assert "redirects" in error.message
    assert len(recorder.requests) == limit + 1


def test_a_redirect_loop_is_refused() -> None:
    dns = {"a.example": [PUBLIC_V4]}
    handler = redirects({"/a": (302, "/b"), "/b": (302, "/a")})
    result, recorder, _ = run(fetch("http://a.example/a", handler, dns))
    refused(result, "image_url_failed")
    assert len(recorder.requests) == 6


@pytest.mark.parametrize(
    ("location", "code"),
    [
        ("", "image_url_failed"),  # no Location at all
        ("file:///etc/passwd", "invalid_image_url"),
        ("gopher://a.example/", "invalid_image_url"),
        ("http://user:pw@a.example/cat.png", "invalid_image_url"),
        ("http://a.example:port/cat.png", "image_url_failed"),  # not a URL
        ("http://[::1/cat.png", "image_url_failed"),
    ],
)
def test_a_bad_redirect_is_refused(location: str, code: str) -> None:
    dns = {"a.example": [PUBLIC_V4]}
    handler = redirects({"/start": (302, location)})
    result, recorder, _ = run(fetch("http://a.example/start", handler, dns))
    refused(result, code)
    assert len(recorder.requests) == 1


# --- what comes back -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [201, 203, 204, 206, 304, 400, 403, 404, 410, 429, 500, 503])
def test_anything_but_200_is_refused(status: int) -> None:
    dns = {"a.example": [PUBLIC_V4]}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=PNG)

    result, _, _ = run(fetch("http://a.example/cat.png", handler, dns))
    error = refused(result, "image_url_failed")
    assert f"HTTP {status}" in error.message


class CountingStream(httpx.AsyncByteStream):
    """``chunks`` chunks of ``size`` bytes, counting how many were read."""

    def __init__(self, chunks: int, size: int = 10_000, delay: float = 0.0) -> None:
        self.chunks, self.size, self.delay = chunks, size, delay
        self.read = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            if self.delay:
                await asyncio.sleep(self.delay)
            self.read += 1
            yield b"\0" * self.size

    async def aclose(self) -> None:
        self.closed = True


def test_a_content_length_over_the_cap_is_refused_before_reading() -> None:
    stream = CountingStream(chunks=200)
    dns = {"a.example": [PUBLIC_V4]}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-length": "2000000"}, stream=stream)

    result, _, _ = run(fetch("http://a.example/big.png", handler, dns, max_bytes=1_000_000))
    error = refused(result, "image_too_large")
    assert isinstance(error, PayloadTooLarge) and error.status == 413
    assert stream.read == 0
    assert stream.closed


@pytest.mark.parametrize("declared", [None, "1000"])
def test_a_body_streaming_past_the_cap_is_cut_off(declared: str | None) -> None:
    # No Content-Length, or one that lies: the cap is counted on the bytes themselves.
    stream = CountingStream(chunks=1000, size=10_000)
    dns = {"a.example": [PUBLIC_V4]}

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-length": declared} if declared else {}
        return httpx.Response(200, headers=headers, stream=stream)

    result, _, _ = run(fetch("http://a.example/big.png", handler, dns, max_bytes=55_000))
    error = refused(result, "image_too_large")
    assert isinstance(error, PayloadTooLarge) and error.status == 413
    assert stream.read == 6  # stopped at the first chunk past 55,000 bytes, not at 1,000
    assert stream.closed


def test_a_body_of_exactly_the_cap_is_taken() -> None:
    dns = {"a.example": [PUBLIC_V4]}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=CountingStream(chunks=5, size=1000))

    result, _, _ = run(fetch("http://a.example/x.png", handler, dns, max_bytes=5000))
    assert result == b"\0" * 5000


@functools.cache
def gzip_bomb() -> bytes:
    """Under 1 kB on the wire; httpx would inflate it to 64 MB in one step, before any cap."""
    return gzip.compress(gzip.compress(b"\0" * (64 * 1024 * 1024)))


@pytest.mark.parametrize("encoding", ["gzip", "gzip, gzip", "deflate", "br", "x-custom"])
def test_a_compressed_body_is_refused_not_inflated(encoding: str) -> None:
    bomb = gzip_bomb()
    assert len(bomb) < 1000
    dns = {"a.example": [PUBLIC_V4]}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-encoding": encoding}, stream=Raw(bomb))

    result, _, _ = run(fetch("http://a.example/x.png", handler, dns, max_bytes=1_000_000))
    error = refused(result, "image_url_failed")
    assert "Content-Encoding" in error.message


def test_an_identity_content_encoding_is_fine() -> None:
    dns = {"a.example": [PUBLIC_V4]}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-encoding": "identity"}, stream=Raw(PNG))

    result, _, _ = run(fetch("http://a.example/x.png", handler, dns))
    assert result == PNG


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.RemoteProtocolError("x")],
)
def test_a_connection_failure_is_refused_cleanly(exc: Exception) -> None:
    dns = {"a.example": [PUBLIC_V4]}

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    result, _, _ = run(fetch("http://a.example/x.png", handler, dns))
    error = refused(result, "image_url_failed")
    assert type(exc).__name__ in error.message


def test_a_download_that_breaks_off_is_refused_cleanly() -> None:
    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield PNG[:10]
            raise httpx.ReadError("connection reset")

    dns = {"a.example": [PUBLIC_V4]}
    result, _, _ = run(
        fetch("http://a.example/x.png", lambda r: httpx.Response(200, stream=Broken()), dns)
    )
    error = refused(result, "image_url_failed")
    assert "broke off" in error.message


# --- one deadline for the whole fetch --------------------------------------------------------


def test_a_slow_body_hits_the_deadline() -> None:
    stream = CountingStream(chunks=1000, size=10, delay=0.05)
    dns = {"a.example": [PUBLIC_V4]}
    started = time.monotonic()
    result, _, _ = run(
        fetch(
            "http://a.example/x.png",
            lambda r: httpx.Response(200, stream=stream),
            dns,
            deadline=0.3,
        )
    )
    elapsed = time.monotonic() - started
    error = refused(result, "image_url_timeout")
    assert isinstance(error, InvalidRequest) and error.status == 400
    assert "0.3 s" in error.message
    assert 0.25 < elapsed < 2.0
    assert stream.read < 20
    assert stream.closed


def test_the_deadline_covers_dns() -> None:
    async def slow_dns(host: str, port: int) -> list[IPAddress]:
        await asyncio.sleep(10)
        return [ipaddress.ip_address(PUBLIC_V4)]

    started = time.monotonic()
    result, recorder, _ = run(
        fetch("http://a.example/x.png", never, resolver=slow_dns, deadline=0.2)
    )
    refused(result, "image_url_timeout")
    assert time.monotonic() - started < 2.0
    assert recorder.requests == []


def test_the_deadline_is_one_for_all_redirects() -> None:
    # Each hop answers in 0.15 s, well inside the deadline; the six hops allowed are not.
    async def slow_hop(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.15)
        n = int(request.url.path.strip("/"))
        return httpx.Response(302, headers={"location": f"/{n + 1}"})

    dns = {"a.example": [PUBLIC_V4]}
    result, recorder, _ = run(fetch("http://a.example/0", slow_hop, dns, deadline=0.8))
    refused(result, "image_url_timeout")  # the deadline, not the redirect limit
    assert 2 <= len(recorder.requests) <= 6


# --- real sockets on 127.0.0.1 ----------------------------------------------------------------


@pytest.fixture()
def server() -> Iterator[ImageServer]:
    with ImageServer() as srv:
        yield srv


async def no_dns(host: str, port: int) -> list[IPAddress]:
    raise AssertionError(f"{host} should not have needed DNS")


async def real_fetch(
    url: str,
    *,
    allowed: tuple[str, ...] = ("127.0.0.1/32",),
    resolver: Callable[[str, int], Awaitable[list[IPAddress]]] = no_dns,
    max_bytes: int = 1_000_000,
    deadline: float = 5.0,
) -> bytes | Exception:
    async with httpx.AsyncClient(trust_env=False, timeout=deadline) as client:
        fetcher = ImageFetcher(
            client,
            max_bytes=max_bytes,
            timeout=deadline,
            allowed_networks=parse_networks(list(allowed)),
            resolver=resolver,
        )
        try:
            return await fetcher.fetch(url, param=PARAM)
        except (InvalidRequest, PayloadTooLarge) as exc:
            return exc


def test_the_tripwire_stops_a_connection_off_127_0_0_1() -> None:
    # 127.0.0.2 is still this machine: a safe way to show the tripwire is armed.
    with pytest.raises(AssertionError, match=r"only 127\.0\.0\.1"):
        socket.create_connection(("127.0.0.2", 9), timeout=1)
    with pytest.raises(AssertionError, match=r"only 127\.0\.0\.1"):
        run(asyncio.open_connection("127.0.0.2", 9))
    with pytest.raises(BaseException) as info:  # httpx's connect runs in an anyio task group
        run(real_fetch("http://127.0.0.2:9/cat.png", allowed=("127.0.0.0/8",)))
    assert info.group_contains(AssertionError, match=r"only 127\.0\.0\.1", depth=None)


def test_a_real_fetch_from_an_allowed_loopback_server(server: ImageServer) -> None:
    port = server.port
    assert run(real_fetch(f"http://127.0.0.1:{port}/cat.png")) == PNG
    assert run(real_fetch(f"http://127.0.0.1:{port}/hop")) == PNG
    assert server.seen == [
        ("/cat.png", f"127.0.0.1:{port}"),
        ("/hop", f"127.0.0.1:{port}"),
        ("/cat.png", f"127.0.0.1:{port}"),
    ]


def test_a_real_fetch_by_name_is_pinned_with_its_host_header(server: ImageServer) -> None:
    port = server.port
    stub = StubResolver({"images.test": ["127.0.0.1"]})
    assert run(real_fetch(f"http://images.test:{port}/cat.png", resolver=stub)) == PNG
    assert server.seen == [("/cat.png", f"images.test:{port}")]


def test_a_slow_drip_hits_the_deadline_on_a_real_socket(server: ImageServer) -> None:
    port = server.port
    started = time.monotonic()
    result = run(real_fetch(f"http://127.0.0.1:{port}/drip.png", deadline=0.5))
    elapsed = time.monotonic() - started
    refused(result, "image_url_timeout")
    assert 0.4 < elapsed < 3.0


@pytest.mark.parametrize("path", ["/big.png", "/big-declared.png"])
def test_an_oversized_body_is_cut_off_on_a_real_socket(server: ImageServer, path: str) -> None:
    port = server.port
    result = run(real_fetch(f"http://127.0.0.1:{port}{path}", max_bytes=100_000))
    error = refused(result, "image_too_large")
    assert isinstance(error, PayloadTooLarge)
    # The client hung up: the server could not push the rest of its 64 MB.
    assert server.big_done.wait(10)
    assert server.big_written < BIG_TOTAL


def test_without_the_allow_list_loopback_is_refused_before_connecting(server: ImageServer) -> None:
    port = server.port
    url = f"http://127.0.0.1:{port}/cat.png"
    refused(run(real_fetch(url, allowed=())), "image_url_forbidden")
    stub = StubResolver({"sneaky.test": ["127.0.0.1"]})
    refused(
        run(real_fetch(f"http://sneaky.test:{port}/cat.png", allowed=(), resolver=stub)),
        "image_url_forbidden",
    )
    refused(
        run(
            real_fetch(
                f"http://2130706433:{port}/cat.png",
                allowed=(),
                resolver=numeric_only_system_resolver,
            )
        ),
        "image_url_forbidden",
    )
    time.sleep(0.1)
    assert server.connections == 0 and server.seen == []
    # The same server does answer once the network is opened: the count above means something.
    assert run(real_fetch(url)) == PNG
    assert server.connections == 1


def test_images_fetched_together_share_the_request_budget() -> None:
    """Each image is under the per-image cap; together they are over the per-request one."""
    from imagegate.core.memory import unlimited_lease
    from imagegate.wire.body import read_edit_request
    from imagegate.wire.limits import WireLimits

    big = imaging.encode(imaging.Image.effect_noise((40, 40), 50), "PNG")  # ~4.8 KB of noise
    dns = {"a.example": [PUBLIC_V4]}
    limits = WireLimits(max_image_bytes=len(big) + 10, max_request_bytes=len(big) * 2)
    recorder = Recorder(lambda request: httpx.Response(200, content=big))
    doc = {
        "model": "local/pillow",
        "prompt": "invert",
        "images": [{"image_url": f"http://a.example/{i}.png"} for i in range(3)],
    }

    async def parse_with(count: int) -> object:
        body = orjson.dumps({**doc, "images": doc["images"][:count]})

        async def chunks() -> AsyncIterator[bytes]:
            yield body

        async with httpx.AsyncClient(transport=recorder.transport()) as client:
            fetcher = ImageFetcher(
                client, max_bytes=limits.max_image_bytes, timeout=5, resolver=StubResolver(dns)
            )
            try:
                return await read_edit_request(
                    "application/json",
                    len(body),
                    chunks(),
                    limits=limits,
                    lease=unlimited_lease(),
                    fetcher=fetcher,
                    default_model=None,
                )
            except PayloadTooLarge as exc:
                return exc

    assert not isinstance(run(parse_with(2)), Exception)  # exactly at the limit: fine
    err = run(parse_with(3))
    assert isinstance(err, PayloadTooLarge)
    assert err.code == "request_too_large" and "add up to" in err.message
