"""How the app builds the Stability provider: on when ``STABILITY_API_KEY`` is set; its cards
come from ``models.yaml`` beside this module."""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from imagegate.providers.base import Deployment, Provider
from imagegate.providers.clients import upstream_client
from imagegate.providers.stability.adapter import StabilityProvider

if TYPE_CHECKING:
    from imagegate.config import Settings


@functools.cache
def _shipped() -> tuple[dict[str, Any], ...]:
    text = (
        resources.files("imagegate.providers.stability").joinpath("models.yaml").read_text("utf-8")
    )
    return tuple(yaml.safe_load(text)["models"])


class StabilitySpec:
    name = "stability"

    def enabled(self, settings: Settings) -> bool:
        return settings.stability_api_key is not None

    def cards(self, settings: Settings) -> list[dict[str, Any]]:
        return copy.deepcopy(list(_shipped()))

    def deployments(self, settings: Settings) -> list[Deployment]:
        base_url = settings.stability_base_url
        return [
            Deployment(
                provider=self.name,
                base_url=base_url,
                api_key=settings.stability_api_key,
                client=upstream_client(settings, base_url),
            )
        ]

    def build(self, settings: Settings) -> Provider:
        return StabilityProvider()


SPEC = StabilitySpec()
