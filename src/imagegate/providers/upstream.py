"""The one boundary between an adapter and its upstream's HTTP: foreign failures in, gateway
errors out.

Adapters build ``httpx.Request``s (pure converters) and send them through ``Upstream``, which
translates, in one place, every way a call can fail::

    httpx.ConnectError, ConnectTimeout, resets ─► UpstreamError 502   upstream_unreachable  retry
    httpx.ReadTimeout, WriteTimeout, PoolTimeout ► UpstreamTimeout 504 upstream_timeout     retry
    HTTP 429                                     ─► RateLimited 429     (Retry-After kept)   retry
    HTTP 401 / 403, or a refused key             ─► UpstreamError 502   provider_auth_failed
    content policy (any status)                  ─► ContentPolicyViolation 400
    HTTP 400 / 409 / 422                         ─► InvalidRequest 400  (the provider's words)
    HTTP 404                                     ─► NotFound 404
    HTTP 413                                     ─► PayloadTooLarge 413
    HTTP 5xx, a body that is not what it should  ─► UpstreamError 502                        retry
    HTTP 504                                     ─► UpstreamTimeout 504                      retry

Adapters only say how their provider spells an error (``ErrorReader``): its message, code, and,
where the status alone misleads (Gemini's 400 ``API_KEY_INVALID``, moderation under 200 or
403), what kind of failure it is. Every message that leaves here passes through ``redact``: no
key, whether in a header, a URL or an echoed request, reaches a client or a log line
(``core.redact``, which knows every deployment's key).
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson
import pybase64

from imagegate.core.errors import (
    ContentPolicyViolation,
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from imagegate.core.redact import redact
from imagegate.providers.base import Deployment
from imagegate.providers.transport import AnswerTooLarge

log = logging.getLogger("imagegate.upstream")

FailureKind = Literal[
    "invalid", "not_found", "moderation", "auth", "rate_limit", "too_large", "server"
]
_MESSAGE_LIMIT = 600


@dataclass(frozen=True, slots=True)
class ProviderFailure:
    """An error as the provider spelled it."""

    message: str
    code: str | None = None
    kind: FailureKind | None = None  # None: judge by the HTTP status
    param: str | None = None
    retry_after: float | None = None  # seconds, where the body says (Gemini's RetryInfo)


ErrorReader = Callable[[int, bytes], ProviderFailure]  # (status, body) -> the provider's words


def provider_words(text: str) -> str:
    """A provider's message as the client may see it: scrubbed of keys and image data (the
    deployment keys are registered with ``core.redact``), cut to a readable length."""
    text = redact(text)
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."


def json_message(body: bytes) -> tuple[dict[str, Any] | None, str]:
    """The body as a JSON object if it is one, and a short text of it for messages."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, body[:300].decode("utf-8", "replace").strip()
    return (doc if isinstance(doc, dict) else None), ""


class Upstream:
    """Sends one provider's requests over a deployment's pooled client, through the boundary."""

    def __init__(self, provider: str, read_error: ErrorReader) -> None:
        self.provider = provider
        self.read_error = read_error

    async def send(
        self, deployment: Deployment, request: httpx.Request, *, stream: bool = False
    ) -> httpx.Response:
        """The response to ``request`` if it is a 2xx; every failure raised as a gateway error.

        With ``stream=True`` the body is not read yet; the caller closes the response.
        """
        try:
            response = await deployment.http().send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, deployment) from None
        if response.is_success:
            if not stream:
                # httpx links a response and its stream both ways: a cycle that only the
                # garbage collector frees, which under load is long after the edit, with the
                # answer's megabytes in it (bench/RESULTS.md). Read, the stream has no use.
                response.stream = httpx.ByteStream(b"")
            return response
        try:
            body = await response.aread()
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, deployment) from None
        finally:
            await response.aclose()
        raise self.status_error(response.status_code, body, response.headers, deployment)

    def transport_error(self, exc: httpx.HTTPError, deployment: Deployment) -> GatewayError:
        kind = type(exc).__name__
        if isinstance(exc, AnswerTooLarge):
            log.warning(
                "upstream answer too large",
                extra={"provider": self.provider, "deployment": deployment.name},
            )
            return UpstreamError(
                f"{self.provider} answered with more than this gateway accepts from a provider "
                f"({exc}); the operator sets IMAGEGATE_UPSTREAM_MAX_ANSWER_BYTES.",
                code="upstream_answer_too_large",
                origin="provider",
                retryable=False,
            )
        log.warning(
            "upstream transport failure",
            extra={"provider": self.provider, "deployment": deployment.name, "error": kind},
        )
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return UpstreamTimeout(
                f"{self.provider} did not answer in time ({kind}).", origin="provider"
            )
        return UpstreamError(
            f"{self.provider} could not be reached ({kind}); try again.",
            code="upstream_unreachable",
            origin="provider",
        )

    def status_error(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        deployment: Deployment,
    ) -> GatewayError:
        try:
            failure = self.read_error(status, body)
        except Exception:  # a body the adapter cannot read is still an upstream error
            failure = ProviderFailure(json_message(body)[1] or f"HTTP {status}")
        message = provider_words(failure.message)
        name = self.provider
        kind = failure.kind or _kind_of(status)
        log.warning(
            "upstream refused",
            extra={
                "provider": name,
                "deployment": deployment.name,
                "upstream_status": status,
                "upstream_code": failure.code,
                "failure": kind,
            },
        )
        if kind == "moderation":
            return ContentPolicyViolation(
                f"{name} refused the request under its content policy: {message}",
                param=failure.param,
                origin="provider",
            )
        if kind == "auth":
            log.error(
                "the %s credential of deployment %s was refused (HTTP %s): check its key",
                name,
                deployment.name,
                status,
                extra={"provider": name, "deployment": deployment.name},
            )
            return UpstreamError(
                f"{name} refused this gateway's credential; the operator has to fix the "
                f"gateway's {name} key (this is not about your API key).",
                code="provider_auth_failed",
                origin="provider",
                retryable=False,
            )
        if kind == "rate_limit":
            wait = failure.retry_after or retry_after(headers)
            extra = {"Retry-After": str(max(1, round(wait)))} if wait else {}
            return RateLimited(
                f"{name} is rate limiting this gateway: {message}",
                code="rate_limit_exceeded",
                origin="provider",
                headers=extra,
            )
        if kind == "too_large":
            return PayloadTooLarge(f"{name}: {message}", param=failure.param, origin="provider")
        if kind == "not_found":
            return NotFound(f"{name}: {message}", code=failure.code, origin="provider")
        if kind == "invalid":
            return InvalidRequest(
                f"{name}: {message}",
                param=failure.param,
                code=failure.code or "invalid_value",
                origin="provider",
            )
        if status == 504:
            return UpstreamTimeout(f"{name} timed out: {message}", origin="provider")
        return UpstreamError(
            f"{name} failed (HTTP {status}): {message}", code="upstream_error", origin="provider"
        )

    async def download(self, deployment: Deployment, url: str, *, max_bytes: int) -> bytes:
        """An image the provider answered with as a URL, fetched before the gateway answers
        (provider URLs expire within minutes to hours; clients get bytes, not a dead link).

        A URL on the deployment's own origin is trusted as the provider is. Any other host (a
        CDN) goes through the gateway's SSRF guard, as a client's ``image_url`` does, so a
        compromised or spoofed answer cannot point the gateway at an internal address.
        """
        if url.startswith("data:"):
            _, _, payload = url.partition(",")
            try:
                return pybase64.b64decode(payload, validate=False)
            except (binascii.Error, ValueError):
                raise self.malformed("a data URI that is not base64") from None
        if not url.startswith(("https://", "http://")):
            raise self.malformed("an image URL that is not http(s)")
        if not same_origin(url, deployment.base_url):
            return await self._download_guarded(deployment, url)
        received = bytearray()
        try:
            async with deployment.http().stream("GET", url) as response:
                if not response.is_success:
                    raise UpstreamError(
                        f"{self.provider}'s result URL answered HTTP {response.status_code}.",
                        code="upstream_result_unavailable",
                        origin="provider",
                    )
                async for chunk in response.aiter_bytes():
                    received += chunk
                    if len(received) > max_bytes:
                        raise self.malformed(f"a result image over {max_bytes:,} bytes")
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, deployment) from None
        return bytes(received)

    async def _download_guarded(self, deployment: Deployment, url: str) -> bytes:
        if deployment.guard is None:
            raise self.malformed("a result URL on another host, with no guard to fetch it")
        try:
            return await deployment.guard.fetch(url, param="result")
        except GatewayError as exc:
            log.warning("result URL refused", extra={"provider": self.provider, "code": exc.code})
            raise UpstreamError(
                f"{self.provider} answered with a result URL the gateway will not fetch: "
                f"{exc.message}",
                code="upstream_result_refused",
                origin="provider",
            ) from None

    def malformed(self, what: str) -> UpstreamError:
        """A success answer that is not what the provider's API promises."""
        log.warning("upstream answered malformed", extra={"provider": self.provider, "what": what})
        return UpstreamError(
            f"{self.provider} answered with {what}.", code="upstream_malformed", origin="provider"
        )


def same_origin(url: str, base_url: str) -> bool:
    """Whether ``url`` is on the origin (scheme, host, port) of ``base_url``."""
    try:
        a, b = httpx.URL(url), httpx.URL(base_url)
    except (httpx.InvalidURL, ValueError):
        return False
    return bool(base_url) and (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def _kind_of(status: int) -> FailureKind:
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limit"
    if status == 413:
        return "too_large"
    if status == 404:
        return "not_found"
    if 400 <= status < 500:
        return "invalid"
    return "server"


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The seconds a Retry-After asks for: a provider's headers (any case), or a gateway error's
    as it will answer them. None for none, a negative number, or an HTTP date (rare from these
    APIs; the caller picks its own delay)."""
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
