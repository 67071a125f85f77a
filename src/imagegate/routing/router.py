"""Choosing the deployment that serves a model.

Today every provider has one deployment, so this is a lookup. Retries, cooldowns and fallbacks
slot in here later without touching the catalog or the providers.
"""

from __future__ import annotations

from collections.abc import Mapping

from imagegate.catalog.cards import ModelCard
from imagegate.core.errors import NotFound
from imagegate.core.redact import register_secret
from imagegate.providers.base import Deployment


class Router:
    def __init__(self, deployments: Mapping[str, Deployment]) -> None:
        self._by_provider = dict(deployments)
        for deployment in self._by_provider.values():
            # An upstream's error may quote the key it was sent; scrub it wherever it shows.
            register_secret(deployment.api_key)

    def serves(self, card: ModelCard) -> bool:
        return card.provider in self._by_provider

    def pick(self, card: ModelCard) -> Deployment:
        deployment = self._by_provider.get(card.provider)
        if deployment is None:
            raise NotFound(
                f"{card.id} is in the catalog, but its provider {card.provider!r} is not "
                "configured on this gateway (so /v1/models does not list it).",
                param="model",
                code="model_not_available",
            )
        return deployment
