"""How the app builds ``openai``: on when ``OPENAI_API_KEY`` is set, one deployment at
``OPENAI_BASE_URL``."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from imagegate.providers.base import Deployment, Provider
from imagegate.providers.clients import upstream_client
from imagegate.providers.openai.adapter import OpenAIProvider

if TYPE_CHECKING:
    from imagegate.config import Settings


def shipped_cards() -> list[dict[str, Any]]:
    """The cards in ``models.yaml`` beside this module (fresh copies each call)."""
    text = resources.files("imagegate.providers.openai").joinpath("models.yaml").read_text("utf-8")
    doc = yaml.safe_load(text) or {}
    models = doc.get("models")
    if not isinstance(models, list):
        raise ValueError("imagegate/providers/openai/models.yaml has no models list")
    return [dict(entry) for entry in models]


class OpenAISpec:
    name = "openai"

    def enabled(self, settings: Settings) -> bool:
        return settings.openai_api_key is not None

    def cards(self, settings: Settings) -> list[dict[str, Any]]:
        return shipped_cards()

    def deployments(self, settings: Settings) -> list[Deployment]:
        base_url = settings.openai_base_url.rstrip("/")
        return [
            Deployment(
                provider=self.name,
                base_url=base_url,
                api_key=settings.openai_api_key,
                client=upstream_client(settings, base_url),
            )
        ]

    def build(self, settings: Settings) -> Provider:
        return OpenAIProvider()


SPEC = OpenAISpec()
