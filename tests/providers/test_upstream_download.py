"""Result URLs: the provider's own origin is trusted; any other host passes the SSRF guard."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from imagegate.core.errors import UpstreamError
from imagegate.providers.base import Deployment
from imagegate.providers.upstream import ProviderFailure, Upstream, same_origin
from imagegate.wire.fetch import ImageFetcher
from tests import imaging
from tests.wire.test_fetch import PUBLIC_V4, Recorder, StubResolver

PNG = imaging.png()
UPSTREAM = Upstream("queued", lambda status, body: ProviderFailure("no"))


def deployment(recorder: Recorder, dns: dict[str, list[str]]) -> tuple[Deployment, Recorder]:
    client = httpx.AsyncClient(base_url="https://api.provider.test", transport=recorder.transport())
    guard_recorder = Recorder(lambda request: httpx.Response(200, content=PNG))
    guard = ImageFetcher(
        httpx.AsyncClient(transport=guard_recorder.transport()),
        max_bytes=1 << 20,
        timeout=5,
        resolver=StubResolver(dns),
    )
    dep = Deployment(
        "queued",
        base_url="https://api.provider.test",
        api_key=SecretStr("k" * 32),
        client=client,
        guard=guard,
    )
    return dep, guard_recorder


def test_same_origin() -> None:
    assert same_origin("https://api.provider.test/r/1.png", "https://api.provider.test/v1")
    assert not same_origin("https://cdn.provider.test/r/1.png", "https://api.provider.test/v1")
    assert not same_origin("http://api.provider.test/r.png", "https://api.provider.test")
    assert not same_origin("https://api.provider.test:8443/r.png", "https://api.provider.test")
    assert not same_origin("https://api.provider.test/r.png", "")


def test_a_url_on_the_providers_origin_uses_its_client() -> None:
    direct = Recorder(lambda request: httpx.Response(200, content=PNG))
    dep, guarded = deployment(direct, {})
    data = asyncio.run(
        UPSTREAM.download(dep, "https://api.provider.test/files/1", max_bytes=1 << 20)
    )
    assert data == PNG and len(direct.requests) == 1 and guarded.requests == []


def test_a_cdn_url_on_a_public_address_is_fetched_through_the_guard() -> None:
    direct = Recorder(lambda request: httpx.Response(500))
    dep, guarded = deployment(direct, {"cdn.provider.test": [PUBLIC_V4]})
    data = asyncio.run(UPSTREAM.download(dep, "https://cdn.provider.test/r.png", max_bytes=1 << 20))
    assert data == PNG and direct.requests == [] and len(guarded.requests) == 1


@pytest.mark.parametrize(
    "url, dns",
    [
        ("http://169.254.169.254/latest/meta-data/", {}),
        ("https://evil.provider.test/r.png", {"evil.provider.test": ["10.0.0.7"]}),
        ("http://127.0.0.1:8000/v1/models", {}),
    ],
)
def test_a_result_url_pointing_inside_is_refused_without_a_connection(
    url: str, dns: dict[str, list[str]]
) -> None:
    direct = Recorder(lambda request: httpx.Response(200, content=PNG))
    dep, guarded = deployment(direct, dns)
    with pytest.raises(UpstreamError) as caught:
        asyncio.run(UPSTREAM.download(dep, url, max_bytes=1 << 20))
    assert caught.value.status == 502 and caught.value.code == "upstream_result_refused"
    assert direct.requests == [] and guarded.requests == []
