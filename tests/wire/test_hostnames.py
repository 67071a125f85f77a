"""Host names no resolver would take are the client's 400, decided when the URL is parsed.

Before, ``http://a..b/x.png`` (an empty label), a label over 63 characters and a broken punycode
label (``xn--zz``) reached ``getaddrinfo`` or httpx's IDNA decoder and came back as a 500. Now
``host_problem`` refuses them up front: no name is looked up and no request is sent.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagegate.core.errors import InvalidRequest
from imagegate.wire.fetch import host_problem
from tests.wire.test_fetch import PARAM, PUBLIC_V4, fetch, never, refused

BAD_HOSTS = [
    "a..b",
    ".a",
    "a" * 64 + ".com",
    "x." + "a" * 64,
    ".".join(["a" * 60] * 5),  # 304 characters
    "xn--zz.com",
    "a.xn--zz",
    "xn--.com",
    "xn--ls8h.la",  # punycode for an emoji: IDNA 2008 refuses it
    "exa mple.com",
    "a%00b",
    "%41.com",
]


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_a_host_no_resolver_takes_is_refused_before_any_lookup(host: str) -> None:
    result, recorder, stub = asyncio.run(fetch(f"http://{host}/x.png", never, {host: [PUBLIC_V4]}))
    error = refused(result, "invalid_image_url")
    assert "host name" in error.message
    assert recorder.requests == [] and stub.calls == []


@pytest.mark.parametrize("port", ["99999", "0", "65536"])
def test_a_port_out_of_range_is_refused_before_any_lookup(port: str) -> None:
    result, recorder, stub = asyncio.run(
        fetch(f"http://example.com:{port}/x.png", never, {"example.com": [PUBLIC_V4]})
    )
    error = refused(result, "invalid_image_url")
    assert "port" in error.message
    assert recorder.requests == [] and stub.calls == []


@pytest.mark.parametrize(
    "host", ["example.com", "a_b.example.com", "xn--9ca.com", "é.com", "a.", "a" * 63 + ".com"]
)
def test_ordinary_hosts_pass(host: str) -> None:
    raw = httpx.URL(f"http://{host}/").raw_host
    assert host_problem(raw) is None


def test_the_resolver_is_asked_for_the_ascii_name() -> None:
    # The Host header carries punycode; the name judged must be the same one.
    result, _recorder, stub = asyncio.run(
        fetch("http://é.com/x.png", dns={"xn--9ca.com": [PUBLIC_V4]})
    )
    assert isinstance(result, bytes)
    assert stub.calls == [("xn--9ca.com", 80)]


_LABEL_CHARS = st.sampled_from([*"abcxyz019-_.%é", "xn--", "..", "\u200d", "ß", "\x00"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    host=st.lists(_LABEL_CHARS, min_size=0, max_size=30).map("".join)
    | st.text(min_size=0, max_size=80)
    | st.integers(0, 300).map(lambda n: "a" * n + ".com")
)
def test_any_host_is_fetched_or_refused_never_crashes(host: str) -> None:
    result, recorder, _stub = asyncio.run(fetch(f"http://{host}/x.png", never))
    # The stub resolver knows no names, so every URL ends in a 400 of the fetcher's own.
    assert isinstance(result, InvalidRequest), result
    assert result.param == PARAM
    assert result.code in {"invalid_image_url", "image_url_failed", "image_url_forbidden"}
    assert recorder.requests == []
