"""Choosing the deployment that serves a model.

Every deployment names its provider and, optionally, the cards it serves (Azure deployments
serve the ids the user chose); the first that fits is picked. Retries, cooldowns and fallbacks
slot in here later without touching the catalog or the providers. The router owns the
deployments' HTTP clients and closes them at shutdown.
"""

from __future__ import annotations

from collections.abc import Iterable

from imagegate.catalog.cards import ModelCard
from imagegate.core.errors import NotFound
from imagegate.core.redact import register_secret
from imagegate.providers.base import Deployment


class Router:
    def __init__(self, deployments: Iterable[Deployment]) -> None:
        self._deployments = list(deployments)
        for deployment in self._deployments:
            # An upstream's error may quote the key it was sent; scrub it wherever it shows.
            register_secret(deployment.secret())

    def _candidates(self, card: ModelCard) -> list[Deployment]:
        return [
            deployment
            for deployment in self._deployments
            if deployment.provider == card.provider
            and (not deployment.cards or card.id in deployment.cards)
        ]

    def serves(self, card: ModelCard) -> bool:
        return bool(self._candidates(card))

    def pick(self, card: ModelCard) -> Deployment:
        candidates = self._candidates(card)
        if not candidates:
            raise NotFound(
                f"{card.id} is in the catalog, but its provider {card.provider!r} is not "
                "configured on this gateway (so /v1/models does not list it).",
                param="model",
                code="model_not_available",
            )
        return candidates[0]

    async def aclose(self) -> None:
        for deployment in self._deployments:
            if deployment.client is not None:
                await deployment.client.aclose()
