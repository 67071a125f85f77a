"""The catalog: the shipped cards, merged with a user's additions and overrides.

A user's config file may add cards (a new ``id``), override fields of shipped cards (the same
``id`` with only the fields to change; nested mappings merge), and add aliases. Every card and
alias is checked when the catalog loads, so a bad config stops the server at start with a message
naming the card, never at the first request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

import yaml
from pydantic import ValidationError

from imagegate.catalog.cards import ModelCard
from imagegate.core.errors import NotFound


class CatalogError(ValueError):
    """A card or alias that cannot be loaded; raised at start, never during a request."""


def load_shipped_entries() -> list[dict[str, Any]]:
    text = resources.files("imagegate.catalog").joinpath("models.yaml").read_text("utf-8")
    doc = yaml.safe_load(text) or {}
    models = doc.get("models", [])
    if not isinstance(models, list):
        raise CatalogError("the shipped models.yaml has no models list")
    return models


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class Catalog:
    def __init__(self, cards: Iterable[ModelCard], aliases: Mapping[str, str] | None = None):
        self._cards: dict[str, ModelCard] = {}
        self._aliases: dict[str, str] = {}
        for card in cards:
            if card.id in self._cards:
                raise CatalogError(f"model {card.id} is declared twice")
            self._cards[card.id] = card
        for card in self._cards.values():
            for alias in card.aliases:
                self._add_alias(alias, card.id)
        for alias, target in (aliases or {}).items():
            self._add_alias(alias, target)

    @classmethod
    def build(
        cls,
        user_models: Sequence[Mapping[str, Any]] = (),
        user_aliases: Mapping[str, str] | None = None,
        *,
        shipped: Sequence[Mapping[str, Any]] | None = None,
    ) -> Catalog:
        entries: dict[str, dict[str, Any]] = {}
        for entry in shipped if shipped is not None else load_shipped_entries():
            entries[str(entry["id"])] = dict(entry)
        for entry in user_models:
            if not isinstance(entry, Mapping) or "id" not in entry:
                raise CatalogError("each entry under models: needs an id")
            model_id = str(entry["id"])
            entries[model_id] = (
                _merge(entries[model_id], entry) if model_id in entries else dict(entry)
            )
        cards = []
        for model_id, entry in entries.items():
            try:
                cards.append(ModelCard.model_validate(entry))
            except ValidationError as exc:
                raise CatalogError(f"model {model_id}: {_first_error(exc)}") from None
        return cls(cards, user_aliases)

    def _add_alias(self, alias: str, target: str) -> None:
        if target not in self._cards:
            raise CatalogError(f"alias {alias} points at {target}, which is not in the catalog")
        if alias in self._cards and alias != target:
            raise CatalogError(f"alias {alias} is already a model id")
        existing = self._aliases.get(alias)
        if existing is not None and existing != target:
            raise CatalogError(f"alias {alias} points at both {existing} and {target}")
        self._aliases[alias] = target

    def __len__(self) -> int:
        return len(self._cards)

    def cards(self) -> list[ModelCard]:
        return list(self._cards.values())

    def aliases_of(self, model_id: str) -> list[str]:
        return sorted(alias for alias, target in self._aliases.items() if target == model_id)

    def find(self, name: str) -> ModelCard | None:
        card = self._cards.get(name)
        if card is None and name in self._aliases:
            card = self._cards[self._aliases[name]]
        return card

    def resolve(self, name: str) -> ModelCard:
        card = self.find(name)
        if card is None:
            raise NotFound(
                f"The model {name!r} does not exist on this gateway; GET /v1/models lists the "
                "models it serves.",
                param="model",
                code="model_not_found",
            )
        return card


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])
