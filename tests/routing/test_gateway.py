"""Routing end to end: a real gateway, the official SDK, and strict fake providers.

One gateway for the module, with three OpenAI deployments declared in its config file (each on
its own fake server with its own key, read from the environment), a route over the same FLUX
Kontext model on Black Forest Labs, fal and Replicate, and a Gemini fallback for
gpt-image-1-mini. Cooldowns last 30 s after one failure, so each test uses its own deployments
or asserts only what holds whichever deployment is resting.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import OpenAI

from imagegate.testing.fake import Fault
from imagegate.testing.fakes import FAKES
from imagegate.testing.serve import ServedApp
from tests import imaging
from tests.server import Gateway
from tests.support import envelope, schema, sdk
from tests.support.metrics import scrape, value
from tests.upstream.conftest import KEYS, RunningFake, _provider_env

OPENAI_KEYS = {"a": "sk-fake-a-0123456789abcdef", "b": "sk-fake-b-0123456789abcdef"}
OPENAI_KEYS["c"] = "sk-fake-c-0123456789abcdef"
ROUTE = "flux-kontext"
ROUTE_TARGETS = {
    "bfl": "bfl/flux-kontext-pro",
    "fal": "fal/fal-ai/flux-pro/kontext",
    "replicate": "replicate/black-forest-labs/flux-kontext-pro",
}
FALLBACK = "gemini/gemini-2.5-flash-image"
PNG = imaging.png(64, 64)


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, RunningFake]]:
    running: dict[str, RunningFake] = {}
    try:
        for name, key in OPENAI_KEYS.items():
            fake = FAKES["openai"](key)
            running[f"openai-{name}"] = RunningFake(fake, ServedApp(fake.app).start())
        for name in ("gemini", "bfl", "fal", "replicate"):
            fake = FAKES[name](KEYS[name])
            running[name] = RunningFake(fake, ServedApp(fake.app).start())
        yield running
    finally:
        for item in running.values():
            item.served.stop()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, fakes: dict[str, RunningFake]
) -> Iterator[Gateway]:
    env = {
        "IMAGEGATE_RETRIES": "1",
        "IMAGEGATE_RETRY_BACKOFF_BASE_SECONDS": "0.05",
        "IMAGEGATE_RETRY_BACKOFF_MAX_SECONDS": "0.2",
        "IMAGEGATE_COOLDOWN_FAILURES": "1",
        "IMAGEGATE_COOLDOWN_SECONDS": "30",
        "IMAGEGATE_UPSTREAM_READ_TIMEOUT_SECONDS": "5",
    }
    for name in ("gemini", "bfl", "fal", "replicate"):
        env.update(_provider_env(name, fakes[name].base_url))
    deployments: list[dict[str, Any]] = []
    for name, key in OPENAI_KEYS.items():
        env[f"TEAM_OPENAI_{name.upper()}_KEY"] = key
        deployments.append(
            {
                "name": f"openai-{name}",
                "provider": "openai",
                "api_key_env": f"TEAM_OPENAI_{name.upper()}_KEY",
                "base_url": fakes[f"openai-{name}"].base_url + "/v1",
                "models": ["openai/gpt-image-1-mini" if name == "c" else "openai/gpt-image-1"],
            }
        )
    config = {
        "deployments": deployments,
        "routes": {ROUTE: {"strategy": "round_robin", "targets": list(ROUTE_TARGETS.values())}},
        "fallbacks": {"openai/gpt-image-1-mini": [FALLBACK]},
    }
    with Gateway(tmp_path_factory.mktemp("routing"), env=env, config=config) as running:
        yield running


@pytest.fixture()
def client(gateway: Gateway, fakes: dict[str, RunningFake]) -> OpenAI:
    for item in fakes.values():
        item.reset()
    return OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0)


def edits(fake: RunningFake) -> int:
    """Edits a fake was asked for (submits; polls and result downloads are GETs)."""
    return sum(1 for call in fake.fake.calls if call.method == "POST")


def raw_edit(client: OpenAI, **params: Any) -> Any:
    raw = client.images.with_raw_response.edit(image=("in.png", PNG, "image/png"), **params)
    schema.assert_images_response(raw.http_response.content)
    return raw


def test_a_failing_deployment_is_failed_over_and_cools_down_alone(
    client: OpenAI, fakes: dict[str, RunningFake], gateway: Gateway
) -> None:
    a, b = fakes["openai-a"], fakes["openai-b"]
    a.fake.faults.append(Fault("server_error", count=100))
    raw = raw_edit(client, model="gpt-image-1", prompt="make the box blue")
    assert raw.headers["x-imagegate-deployment"] == "openai-b"
    assert raw.headers["x-imagegate-attempts"] == "2"
    assert raw.headers["x-imagegate-model"] == "openai/gpt-image-1"
    assert raw.headers["x-imagegate-provider"] == "openai"
    served = raw.parse()
    assert served.model_extra["model"] == "openai/gpt-image-1"
    assert served.model_extra["provider"] == "openai"
    for _ in range(4):  # openai-a rests for 30 s: the fake sees no more traffic
        again = raw_edit(client, model="gpt-image-1", prompt="make the box blue")
        assert again.headers["x-imagegate-attempts"] == "1"
    assert (edits(a), edits(b)) == (1, 5)
    samples = scrape(gateway.base_url)
    cooled = value(
        samples, "imagegate_deployment_cooldowns_total", provider="openai", deployment="openai-a"
    )
    assert cooled == 1
    retried = value(
        samples, "imagegate_upstream_retries_total", provider="openai", code="upstream_error"
    )
    assert retried >= 1
    (line,) = gateway.log_lines(lambda line: line.get("attempts") == 2)
    assert line["deployment"] == "openai-b" and line["retries"] == 1


def test_retry_after_is_honoured_on_the_only_deployment(
    client: OpenAI, fakes: dict[str, RunningFake]
) -> None:
    c = fakes["openai-c"]
    c.fake.faults.append(Fault("rate_limit", retry_after=1))
    started = time.monotonic()
    raw = raw_edit(client, model="gpt-image-1-mini", prompt="make the box blue")
    assert time.monotonic() - started >= 1.0  # waited Retry-After, not the 0.05 s backoff
    assert raw.headers["x-imagegate-attempts"] == "2" and edits(c) == 2


def test_a_fallback_serves_when_the_model_fails_and_says_so(
    client: OpenAI, fakes: dict[str, RunningFake]
) -> None:
    c, gemini = fakes["openai-c"], fakes["gemini"]
    c.fake.faults.append(Fault("server_error", count=2))  # the first try and its retry
    raw = raw_edit(client, model="gpt-image-1-mini", prompt="make the box blue")
    assert raw.headers["x-imagegate-model"] == FALLBACK
    assert raw.headers["x-imagegate-provider"] == "gemini"
    assert raw.parse().model_extra["model"] == FALLBACK
    assert edits(c) == 2 and len(gemini.fake.calls) == 1


def test_a_masked_request_does_not_fall_back_to_a_model_without_masks(
    client: OpenAI, fakes: dict[str, RunningFake], gateway: Gateway
) -> None:
    c, gemini = fakes["openai-c"], fakes["gemini"]
    c.fake.faults.append(Fault("server_error", count=2))
    response = httpx.post(
        gateway.base_url + "/v1/images/edits",
        data={"model": "gpt-image-1-mini", "prompt": "fill the left half"},
        files=[
            ("image", ("in.png", imaging.png(), "image/png")),
            ("mask", ("mask.png", imaging.mask_left_half(), "image/png")),
        ],
        timeout=30,
    )
    error = envelope.error_of(response, 502, origin="provider")  # what gpt-image-1-mini said
    assert error["code"] == "upstream_error"
    assert edits(c) == 2 and gemini.fake.calls == []  # tried even while resting; no fallback
    (line,) = gateway.log_lines(lambda line: bool(line.get("unfit")))
    assert line["unfit"][0].startswith(FALLBACK)


def test_a_route_round_robins_across_providers(
    client: OpenAI, fakes: dict[str, RunningFake], gateway: Gateway
) -> None:
    served = [
        raw_edit(client, model=ROUTE, prompt="make the box blue").headers["x-imagegate-model"]
        for _ in range(6)
    ]
    assert sorted(served) == sorted(list(ROUTE_TARGETS.values()) * 2)
    assert served[:3] != served[3:6] or len(set(served[:3])) == 3  # in turn, not in bursts
    assert {name: edits(fakes[name]) for name in ROUTE_TARGETS} == {
        "bfl": 2,
        "fal": 2,
        "replicate": 2,
    }
    listed = httpx.get(gateway.base_url + "/v1/models").json()["data"]
    route = next(model for model in listed if model["id"] == ROUTE)
    assert [target["model"] for target in route["route"]["targets"]] == list(ROUTE_TARGETS.values())


def test_a_stream_says_who_served_it(client: OpenAI, fakes: dict[str, RunningFake]) -> None:
    events = sdk.stream(
        client,
        model="gpt-image-1",
        image=("in.png", PNG, "image/png"),
        prompt="p",
        partial_images=1,
    )
    completed = events[-1]
    assert completed.type == "image_edit.completed"
    assert completed.model_extra["model"] == "openai/gpt-image-1"
    assert completed.model_extra["provider"] == "openai"


def test_a_stream_that_sent_a_partial_image_is_not_retried(
    client: OpenAI, fakes: dict[str, RunningFake], gateway: Gateway
) -> None:
    a, b = fakes["openai-a"], fakes["openai-b"]
    for fake in (a, b):  # whichever is picked ends its stream cut short after a partial
        fake.fake.faults.append(Fault("truncated"))
    with httpx.stream(
        "POST",
        gateway.base_url + "/v1/images/edits",
        data={"model": "gpt-image-1", "prompt": "p", "stream": "true", "partial_images": "1"},
        files=[("image", ("in.png", PNG, "image/png"))],
        timeout=30,
    ) as response:
        body = response.read().decode()
    assert "event: image_edit.partial_image" in body and "event: error" in body
    assert "image_edit.completed" not in body
    assert edits(a) + edits(b) == 1


def test_deployment_keys_never_reach_the_log(gateway: Gateway) -> None:
    logs = gateway.logs()
    assert "openai-a" in logs  # the deployments did log (by name)
    for key in OPENAI_KEYS.values():
        assert key not in logs
