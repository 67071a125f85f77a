"""Fetching an ``image_url`` for a client, with guards.

Only http and https; no credentials in the URL; every address the host resolves to must pass
``netguard.refusal_reason``, and the connection goes to the address that was judged (with the
original Host header and TLS server name), on the first request and on every redirect. The body
is capped while it streams and the whole fetch, redirects included, has one deadline. The bytes
must then be an image; that check belongs to the caller, which sniffs every image the same way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence

import httpx
import idna

from imagegate.core.errors import InvalidRequest, PayloadTooLarge
from imagegate.core.units import shorten
from imagegate.wire.limits import ByteBudget
from imagegate.wire.netguard import IPAddress, IPNetwork, refusal_reason

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in seen:
            seen.append(ip)
    return seen


class ImageFetcher:
    """Fetches image URLs through one pooled client; created and closed by the app lifespan."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        max_bytes: int,
        timeout: float,
        max_redirects: int = 5,
        allowed_networks: Sequence[IPNetwork] = (),
        resolver: Resolver = system_resolver,
    ) -> None:
        self._client = client
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._max_redirects = max_redirects
        self._allowed = tuple(allowed_networks)
        self._resolve = resolver

    async def fetch(self, url: str, *, param: str, budget: ByteBudget | None = None) -> bytes:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._follow(url, param, budget)
        except TimeoutError:
            raise InvalidRequest(
                f"{param}: fetching the image took longer than {self._timeout:g} s; host it "
                "somewhere faster or send it as a data URL.",
                param=param,
                code="image_url_timeout",
            ) from None

    async def _follow(self, url: str, param: str, budget: ByteBudget | None) -> bytes:
        current = _parse(url, param)
        for _hop in range(self._max_redirects + 1):
            ip = await self._vet(current, param)
            response = await self._open(current, ip, param)
            try:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise InvalidRequest(
                            f"{param}: the server redirected without a Location.",
                            param=param,
                            code="image_url_failed",
                        )
                    current = _parse(_join(current, location, param), param)
                    continue
                if response.status_code != 200:
                    raise InvalidRequest(
                        f"{param}: the server answered HTTP {response.status_code} for the "
                        "image URL.",
                        param=param,
                        code="image_url_failed",
                    )
                return await self._read_capped(response, param, budget)
            finally:
                await response.aclose()
        raise InvalidRequest(
            f"{param}: more than {self._max_redirects} redirects.",
            param=param,
            code="image_url_failed",
        )

    async def _vet(self, url: httpx.URL, param: str) -> IPAddress:
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                # The ASCII (punycode) form: what the Host header carries, so the name judged is
                # the name asked for, and the C resolver never runs its own IDNA codec on it.
                addresses = await self._resolve(url.raw_host.decode("ascii"), port)
            except (OSError, UnicodeError):
                raise InvalidRequest(
                    f"{param}: the host {shorten(host)} does not resolve.",
                    param=param,
                    code="image_url_failed",
                ) from None
            if not addresses:
                raise InvalidRequest(
                    f"{param}: the host {shorten(host)} does not resolve.",
                    param=param,
                    code="image_url_failed",
                )
        for ip in addresses:
            reason = refusal_reason(ip, self._allowed)
            if reason is not None:
                raise InvalidRequest(
                    f"{param}: the URL's host resolves to {reason}, which the gateway does not "
                    "fetch from. Use a public URL or send the image as a data URL.",
                    param=param,
                    code="image_url_forbidden",
                )
        return addresses[0]

    async def _open(self, url: httpx.URL, ip: IPAddress, param: str) -> httpx.Response:
        host_header = url.netloc.decode("ascii")
        pinned = url.copy_with(host=str(ip))
        headers = {"Host": host_header, "Accept": "image/*", "Accept-Encoding": "identity"}
        extensions = {}
        if url.scheme == "https":
            extensions["sni_hostname"] = url.host
            # The pool is keyed by the pinned IP, not the name: a kept-alive TLS connection
            # verified for one host must not carry a request for another host on that IP.
            headers["Connection"] = "close"
        request = self._client.build_request("GET", pinned, headers=headers, extensions=extensions)
        try:
            return await self._client.send(request, stream=True, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise InvalidRequest(
                f"{param}: the image URL could not be fetched ({type(exc).__name__}).",
                param=param,
                code="image_url_failed",
            ) from None

    async def _read_capped(
        self, response: httpx.Response, param: str, budget: ByteBudget | None
    ) -> bytes:
        declared = response.headers.get("content-length", "").strip()
        # A server may send any text here; '²' passes isdigit() but not int(), and more than
        # 4300 digits make int() raise. Only a plain number is believed; the cap still counts.
        if re.fullmatch(r"[0-9]{1,30}", declared) and int(declared) > self._max_bytes:
            raise self._too_large(param)
        # The request asks for identity. A compressed body is refused, not decoded: httpx would
        # inflate each network chunk whole (``gzip, gzip`` nests) before the cap could count it.
        # After this check ``aiter_bytes`` decodes nothing: the cap counts bytes off the wire.
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            raise InvalidRequest(
                f"{param}: the server sent the image with Content-Encoding {encoding!r}; the "
                "gateway only takes uncompressed image bytes.",
                param=param,
                code="image_url_failed",
            )
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise self._too_large(param)
                if budget is not None:
                    budget.spend(len(chunk))
        except httpx.HTTPError as exc:
            raise InvalidRequest(
                f"{param}: the image download broke off ({type(exc).__name__}).",
                param=param,
                code="image_url_failed",
            ) from None
        return bytes(body)

    def _too_large(self, param: str) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"{param}: the image at that URL is over {self._max_bytes:,} bytes, the limit per "
            "image.",
            param=param,
            code="image_too_large",
        )


def _join(base: httpx.URL, location: str, param: str) -> str:
    try:
        return str(base.join(location))
    except (httpx.InvalidURL, ValueError, TypeError):
        raise InvalidRequest(
            f"{param}: the server redirected to an invalid URL.",
            param=param,
            code="image_url_failed",
        ) from None


def _parse(url: str, param: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise InvalidRequest(
            f"{param} is not a valid URL.", param=param, code="invalid_image_url"
        ) from None
    if parsed.scheme not in ("http", "https"):
        raise InvalidRequest(
            f"{param} must be an http(s) URL or a data URL; the scheme {parsed.scheme!r} is not "
            "fetched.",
            param=param,
            code="invalid_image_url",
        )
    if not parsed.raw_host:
        raise InvalidRequest(f"{param} has no host.", param=param, code="invalid_image_url")
    # httpx takes any number of digits as a port; one past 65535 would only fail after the
    # name was looked up, so it is refused with the rest of the URL's form.
    if parsed.port is not None and not 0 < parsed.port <= 65535:
        raise InvalidRequest(
            f"{param} has the port {parsed.port}; ports run from 1 to 65535.",
            param=param,
            code="invalid_image_url",
        )
    problem = host_problem(parsed.raw_host)
    if problem is not None:
        raise InvalidRequest(
            f"{param} has an invalid host name: {problem}.", param=param, code="invalid_image_url"
        )
    if parsed.userinfo:
        raise InvalidRequest(
            f"{param} must not carry a user name or password.",
            param=param,
            code="invalid_image_url",
        )
    return parsed


_LABEL = re.compile(rb"^[A-Za-z0-9_-]{1,63}$")


def host_problem(raw_host: bytes) -> str | None:
    """Why ``raw_host`` (a URL's ASCII host) cannot be looked up, or None when it can.

    Checked when the URL is parsed, so a name no resolver would take (an empty label, one over
    63 characters, a broken punycode label) is the client's 400, not an exception deep in
    ``getaddrinfo``'s IDNA codec, and nothing is looked up or connected to.
    """
    if b":" in raw_host:  # an IPv6 literal, already checked by the URL parser
        return None
    name = raw_host[:-1] if raw_host.endswith(b".") else raw_host
    if not name:
        return "it is empty"
    if len(name) > 253:
        return f"it is {len(name)} characters long; the limit is 253"
    for label in name.split(b"."):
        if not label:
            return "it has an empty label (two dots in a row, or a leading dot)"
        if len(label) > 63:
            return f"a label is {len(label)} characters long; the limit is 63"
        if not _LABEL.match(label):
            return "it has characters a host name cannot have"
        if label[:4].lower() == b"xn--":
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                return f"{shorten(label.decode('ascii'))} is not a valid internationalized label"
    return None
