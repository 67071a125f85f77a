"""How the app builds the Gemini provider from settings: on when ``GEMINI_API_KEY`` is set.

One deployment: ``GEMINI_BASE_URL`` (default ``https://generativelanguage.googleapis.com``) with
the API version ``gemini_api_version`` (``v1beta``; ``v1`` works too), and its own pooled client.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from imagegate.providers.base import Deployment, Provider
from imagegate.providers.clients import upstream_client
from imagegate.providers.gemini.adapter import GeminiProvider

if TYPE_CHECKING:
    from imagegate.config import Settings


def load_cards() -> list[dict[str, Any]]:
    text = resources.files("imagegate.providers.gemini").joinpath("models.yaml").read_text("utf-8")
    doc = yaml.safe_load(text) or {}
    models = doc.get("models", [])
    if not isinstance(models, list):
        raise ValueError("imagegate/providers/gemini/models.yaml has no models list")
    return models


class GeminiSpec:
    name = "gemini"

    def enabled(self, settings: Settings) -> bool:
        return settings.gemini_api_key is not None

    def cards(self, settings: Settings) -> list[dict[str, Any]]:
        return load_cards()

    def deployments(self, settings: Settings) -> list[Deployment]:
        base_url = settings.gemini_base_url.rstrip("/")
        return [
            Deployment(
                provider=self.name,
                base_url=base_url,
                api_key=settings.gemini_api_key,
                timeout_seconds=settings.upstream_read_timeout_seconds,
                options={"api_version": settings.gemini_api_version.strip("/")},
                client=upstream_client(settings, base_url),
            )
        ]

    def build(self, settings: Settings) -> Provider:
        return GeminiProvider()


SPEC = GeminiSpec()
