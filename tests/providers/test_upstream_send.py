"""``Upstream.send``: what an answer leaves behind once the edit is done with it."""

from __future__ import annotations

import asyncio
import gc
import weakref

import httpx
from pydantic import SecretStr

from imagegate.providers.base import Deployment
from imagegate.providers.upstream import ProviderFailure, Upstream

UPSTREAM = Upstream("openai", lambda status, body: ProviderFailure("no"))
ANSWER = b'{"data":[{"b64_json":"' + b"A" * (2 << 20) + b'"}]}'


def test_a_read_answer_is_freed_with_its_last_reference_not_by_the_garbage_collector() -> None:
    # httpx binds a response and its stream to each other; left so, every 2 MB answer waited
    # for a cyclic collection, and under load the gateway's memory grew with them.
    client = httpx.AsyncClient(
        base_url="https://api.openai.test",
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=ANSWER)),
    )
    dep = Deployment(
        "openai", base_url="https://api.openai.test", api_key=SecretStr("k" * 32), client=client
    )

    async def main() -> weakref.ref[httpx.Response]:
        response = await UPSTREAM.send(dep, client.build_request("POST", "/v1/images/edits"))
        assert response.content == ANSWER and response.status_code == 200
        return weakref.ref(response)

    gc.collect()
    gc.disable()
    try:
        ref = asyncio.run(main())
        assert ref() is None
    finally:
        gc.enable()


def test_an_answer_over_the_cap_is_a_502_that_is_not_retried_and_names_the_setting() -> None:
    from imagegate.providers.transport import AnswerTooLarge

    dep = Deployment(
        "openai",
        base_url="https://api.openai.test",
        api_key=SecretStr("k" * 32),
        client=httpx.AsyncClient(),
    )
    error = UPSTREAM.transport_error(AnswerTooLarge("The answer is over 1,024 bytes."), dep)
    assert (error.status, error.code, error.retryable) == (502, "upstream_answer_too_large", False)
    assert "IMAGEGATE_UPSTREAM_MAX_ANSWER_BYTES" in error.message
    assert "over 1,024 bytes" in error.message
