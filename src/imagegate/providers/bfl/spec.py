"""How the app builds the Black Forest Labs provider: on when ``BFL_API_KEY`` is set; its cards
come from ``models.yaml`` beside this module. The deployment's ``timeout_seconds`` is the poll
deadline, and its ``poll_interval_seconds`` option the first wait between polls."""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from imagegate.providers.base import Deployment, Provider
from imagegate.providers.bfl.adapter import BflProvider
from imagegate.providers.clients import upstream_client

if TYPE_CHECKING:
    from imagegate.config import Settings


@functools.cache
def _shipped() -> tuple[dict[str, Any], ...]:
    text = resources.files("imagegate.providers.bfl").joinpath("models.yaml").read_text("utf-8")
    return tuple(yaml.safe_load(text)["models"])


class BflSpec:
    name = "bfl"

    def enabled(self, settings: Settings) -> bool:
        return settings.bfl_api_key is not None

    def cards(self, settings: Settings) -> list[dict[str, Any]]:
        return copy.deepcopy(list(_shipped()))

    def deployments(self, settings: Settings) -> list[Deployment]:
        base_url = settings.bfl_base_url
        return [
            Deployment(
                provider=self.name,
                base_url=base_url,
                api_key=settings.bfl_api_key,
                timeout_seconds=settings.bfl_poll_timeout_seconds,
                options={"poll_interval_seconds": str(settings.bfl_poll_interval_seconds)},
                client=upstream_client(settings, base_url),
            )
        ]

    def build(self, settings: Settings) -> Provider:
        return BflProvider()


SPEC = BflSpec()
