"""How the app builds the fal provider: on when ``FAL_KEY`` is set; its cards come from
``models.yaml`` beside this module. The deployment's deadline is the poll deadline
(``IMAGEGATE_FAL_POLL_TIMEOUT_SECONDS``); its first poll interval rides in its options."""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from imagegate.core.redact import register_secret
from imagegate.providers.base import Deployment, Provider
from imagegate.providers.clients import upstream_client
from imagegate.providers.fal.adapter import FalProvider

if TYPE_CHECKING:
    from imagegate.config import Settings


@functools.cache
def _shipped() -> tuple[dict[str, Any], ...]:
    text = resources.files("imagegate.providers.fal").joinpath("models.yaml").read_text("utf-8")
    return tuple(yaml.safe_load(text)["models"])


class FalSpec:
    name = "fal"

    def enabled(self, settings: Settings) -> bool:
        return settings.fal_key is not None

    def cards(self, settings: Settings) -> list[dict[str, Any]]:
        return copy.deepcopy(list(_shipped()))

    def deployments(self, settings: Settings) -> list[Deployment]:
        base_url = settings.fal_base_url
        if settings.fal_key is not None:
            # fal keys are KEY_ID:KEY_SECRET; an answer quoting either half is scrubbed too.
            for part in settings.fal_key.get_secret_value().split(":"):
                register_secret(part if len(part) >= 8 else None)
        return [
            Deployment(
                provider=self.name,
                base_url=base_url,
                api_key=settings.fal_key,
                timeout_seconds=settings.fal_poll_timeout_seconds,
                options={"poll_interval_seconds": str(settings.fal_poll_interval_seconds)},
                client=upstream_client(settings, base_url),
            )
        ]

    def build(self, settings: Settings) -> Provider:
        return FalProvider()


SPEC = FalSpec()
