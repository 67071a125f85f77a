"""One set of strict fake upstreams and one gateway pointed at them, for the whole session.

Every fake in ``imagegate.testing.fakes.FAKES`` is served on its own loopback port; the gateway
gets each provider's key and base URL as a user would set them (``OPENAI_API_KEY``,
``OPENAI_BASE_URL`` ...), plus an Azure deployment in its config file. Tests reach a fake's
record and faults directly (``fakes["openai"].calls``), since it runs in this process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from openai import OpenAI

from imagegate.testing.fake import FakeUpstream
from imagegate.testing.fakes import FAKES
from imagegate.testing.serve import ServedApp
from tests.server import Gateway

KEYS = {
    "openai": "sk-fake-openai-0123456789abcdef",
    "azure": "azure-fake-key-0123456789abcdef",
    "gemini": "AIzaFakeGeminiKey0123456789abcdef",
    "stability": "sk-fake-stability-0123456789abcdef",
    "xai": "xai-fake-key-0123456789abcdef",
    "bfl": "bfl-fake-key-0123456789abcdef",
    "fal": "fal-key-id-4f2a9c:fal-secret-0123456789abcdef",
    "replicate": "r8_FakeReplicateToken0123456789abcdef",
}
AZURE_DEPLOYMENT = {
    "id": "azure/team-image",
    "deployment": "gpt-image-1-prod",
    "upstream_model": "gpt-image-1",
}
READ_TIMEOUT_SECONDS = 3  # the fakes' "timeout" fault waits longer than this
# A user's card that opts a maskless model in to mask emulation (the gateway applies the mask).
MASK_EMULATION_CARD = {
    "id": "xai/grok-imagine-masked",
    "provider": "xai",
    "upstream_model": "grok-imagine-image",
    "edit": {"supported": True, "max_reference_images": 3, "mask": False, "mask_emulation": True},
    "sizing": {"style": "aspect_ratio", "aspect_ratios": ["auto", "1:1", "4:3", "3:4"]},
    "output_formats": ["png", "jpeg", "webp"],
    "pricing": {"per_image": 0.02, "per_input_image": 0.002},
}
# Black Forest Labs' tasks are polled: quickly here, and given up on (504) after a short wait.
BFL_POLL_INTERVAL_SECONDS = 0.05
BFL_POLL_TIMEOUT_SECONDS = 2.0
# fal's queue: a fake job settles on its third poll (well under a second at these intervals);
# one that never settles is cancelled after this deadline.
FAL_POLL_TIMEOUT_SECONDS = 3
FAL_POLL_INTERVAL_SECONDS = 0.05
# Replicate's waiting, short: the create holds 1 s for a prediction that does not settle at once,
# polls start at 50 ms, and a prediction that never settles is cancelled after 4 s.
REPLICATE_WAIT_SECONDS, REPLICATE_DEADLINE_SECONDS = 1, 4


@dataclass
class RunningFake:
    fake: FakeUpstream
    served: ServedApp

    @property
    def base_url(self) -> str:
        return self.served.base_url

    def reset(self) -> None:
        self.fake.calls.clear()
        self.fake.faults.clear()


def _provider_env(name: str, base_url: str) -> dict[str, str]:
    key = KEYS[name]
    return {
        "openai": {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": base_url + "/v1"},
        "azure": {"AZURE_OPENAI_API_KEY": key, "AZURE_OPENAI_ENDPOINT": base_url},
        "gemini": {"GEMINI_API_KEY": key, "GEMINI_BASE_URL": base_url},
        "stability": {"STABILITY_API_KEY": key, "STABILITY_BASE_URL": base_url},
        "xai": {"XAI_API_KEY": key, "XAI_BASE_URL": base_url + "/v1"},
        "bfl": {
            "BFL_API_KEY": key,
            "BFL_BASE_URL": base_url,
            "IMAGEGATE_BFL_POLL_INTERVAL_SECONDS": str(BFL_POLL_INTERVAL_SECONDS),
            "IMAGEGATE_BFL_POLL_TIMEOUT_SECONDS": str(BFL_POLL_TIMEOUT_SECONDS),
        },
        "fal": {
            "FAL_KEY": key,
            "FAL_BASE_URL": base_url,
            "IMAGEGATE_FAL_POLL_TIMEOUT_SECONDS": str(FAL_POLL_TIMEOUT_SECONDS),
            "IMAGEGATE_FAL_POLL_INTERVAL_SECONDS": str(FAL_POLL_INTERVAL_SECONDS),
        },
        "replicate": {
            "REPLICATE_API_TOKEN": key,
            "REPLICATE_BASE_URL": base_url,
            "IMAGEGATE_REPLICATE_WAIT_SECONDS": str(REPLICATE_WAIT_SECONDS),
            "IMAGEGATE_REPLICATE_POLL_INTERVAL_SECONDS": "0.05",
            "IMAGEGATE_REPLICATE_POLL_TIMEOUT_SECONDS": str(REPLICATE_DEADLINE_SECONDS),
        },
    }[name]


@pytest.fixture(scope="session")
def fakes() -> Iterator[dict[str, RunningFake]]:
    running: dict[str, RunningFake] = {}
    try:
        for name, make in FAKES.items():
            fake = make(KEYS[name])
            running[name] = RunningFake(fake, ServedApp(fake.app).start())
        yield running
    finally:
        for item in running.values():
            item.served.stop()


@pytest.fixture(scope="session")
def upstream_gateway(
    tmp_path_factory: pytest.TempPathFactory, fakes: dict[str, RunningFake]
) -> Iterator[Gateway]:
    env = {
        "IMAGEGATE_UPSTREAM_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS),
        # Each fault is answered as the provider's own error, once: retries are tests/routing's.
        "IMAGEGATE_RETRIES": "0",
    }
    config: dict[str, object] = {}
    for name, item in fakes.items():
        env.update(_provider_env(name, item.base_url))
    if "azure" in fakes:
        config["azure_deployments"] = [AZURE_DEPLOYMENT]
    if "xai" in fakes:
        config["models"] = [MASK_EMULATION_CARD]
    with Gateway(tmp_path_factory.mktemp("upstream"), env=env, config=config) as running:
        yield running


@pytest.fixture()
def upstream_client(upstream_gateway: Gateway) -> OpenAI:
    return OpenAI(base_url=upstream_gateway.base_url + "/v1", api_key="unused", max_retries=0)
