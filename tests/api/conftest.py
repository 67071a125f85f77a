from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import OpenAI

from tests.server import Gateway

MASTER_KEY = "sk-test-master-0123456789"

# A config a platform team might write: an alias, a generate-only card, and a cheaper local
# card with tighter limits, to prove user cards are validated and served like shipped ones.
TEAM_CONFIG = {
    "aliases": {"bw": "local/pillow"},
    "models": [
        {
            "id": "local/pillow-draw",
            "description": "A generate-only card: refused for edits.",
            "edit": {"supported": False, "max_reference_images": 0},
            "sizing": {"style": "openai_size", "sizes": ["1024x1024"]},
        },
        {
            "id": "local/pillow-small",
            "edit": {"supported": True, "max_reference_images": 2, "mask": False},
            "sizing": {"style": "aspect_ratio", "aspect_ratios": ["1:1", "3:2", "2:3"]},
            "n": {"min": 1, "max": 2},
            "pricing": {
                "per_image": 0.01,
                "per_input_image": 0.002,
                "source": "a made-up internal price",
            },
        },
    ],
}


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The gateway as a new user starts it: no key, loopback, defaults."""
    with Gateway(tmp_path_factory.mktemp("open")) as running:
        yield running


@pytest.fixture(scope="session")
def team_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """With a master key and a team config file."""
    env = {"IMAGEGATE_MASTER_KEY": MASTER_KEY, "IMAGEGATE_MAX_IMAGE_BYTES": "1500000"}
    with Gateway(tmp_path_factory.mktemp("team"), env=env, config=TEAM_CONFIG) as running:
        yield running


@pytest.fixture()
def client(gateway: Gateway) -> OpenAI:
    return OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture()
def team_client(team_gateway: Gateway) -> OpenAI:
    return OpenAI(base_url=team_gateway.base_url + "/v1", api_key=MASTER_KEY, max_retries=0)
