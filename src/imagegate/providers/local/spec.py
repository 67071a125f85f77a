"""How the app builds ``local/pillow`` from settings: on unless ``IMAGEGATE_LOCAL_ENGINE=false``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagegate.providers.base import Deployment, Provider
from imagegate.providers.local.adapter import LocalProvider
from imagegate.providers.local.card import LOCAL_CARDS

if TYPE_CHECKING:
    from imagegate.config import Settings


class LocalSpec:
    name = "local"

    def enabled(self, settings: Settings) -> bool:
        return settings.local_engine

    def cards(self, settings: Settings) -> list[dict[str, Any]]:
        return list(LOCAL_CARDS)

    def deployments(self, settings: Settings) -> list[Deployment]:
        return [Deployment(provider=self.name)]  # in process: no URL, key or client

    def build(self, settings: Settings) -> Provider:
        return LocalProvider(settings.local_max_concurrency)


SPEC = LocalSpec()
