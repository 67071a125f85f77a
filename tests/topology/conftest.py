"""A slow strict OpenAI fake for the topology tests: edits take ``latency`` seconds upstream, so
they are still in flight when a replica is told to stop."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator

import pytest
from PIL import Image
from starlette.types import ASGIApp, Receive, Scope, Send

from imagegate.testing.openai import OpenAIFake
from imagegate.testing.serve import ServedApp
from tests.support.redis_server import redis_server  # noqa: F401  (a fixture, for the modules)

OPENAI_KEY = "sk-fake-openai-topology-0123456789abcdef"
MODEL = "gpt-image-1"


class Latency:
    """ASGI wrapper: each edit waits ``seconds`` before the fake sees it; counts edits in flight."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self.arrived = 0
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/images/edits":
            await self.app(scope, receive, send)
            return
        self.arrived += 1
        self.in_flight += 1
        try:
            await asyncio.sleep(self.seconds)
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class SlowOpenAI:
    def __init__(self, seconds: float) -> None:
        self.fake = OpenAIFake(OPENAI_KEY)
        self.latency = Latency(self.fake.app, seconds)
        self.served = ServedApp(self.latency)

    def env(self) -> dict[str, str]:
        """What a gateway needs to use this fake for OpenAI's models."""
        return {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": self.served.base_url + "/v1"}


@pytest.fixture(scope="module")
def slow_openai() -> Iterator[SlowOpenAI]:
    fake = SlowOpenAI(seconds=1.0)
    fake.served.start()
    try:
        yield fake
    finally:
        fake.served.stop()


def decoded(b64: str | None) -> Image.Image:
    """The image in a ``b64_json`` answer, fully decoded (a truncated one raises)."""
    assert b64, "no b64_json in the answer"
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image
