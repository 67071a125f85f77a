"""The routing part of the config file, checked whole at load: ``deployments``, ``routes`` and
``fallbacks``.

::

    deployments:                      # more deployments of a provider, beside its env-key one
      - name: openai-eu               # unique; shows in logs, metrics and x-imagegate-deployment
        provider: openai
        api_key_env: OPENAI_EU_KEY    # or api_key: ... (keys in the environment are better)
        base_url: https://eu.api.openai.com/v1    # optional, else the provider's base URL
        models: [openai/gpt-image-1]  # optional, else every card of its provider
        weight: 3                     # for the weighted strategy
        timeout_seconds: 120          # each attempt on it
        max_in_flight: 8              # edits at once, per process (then the next deployment)
    routes:
      flux-kontext:                   # what clients send as model
        strategy: round_robin         # optional, else routing_strategy
        targets: [bfl/flux-kontext-pro, {model: fal/flux-kontext-pro, weight: 2}]
        fallbacks: [gemini/gemini-2.5-flash-image]
    fallbacks:                        # for clients naming a card itself
      openai/gpt-image-1: [gemini/gemini-2.5-flash-image]

A bad entry is refused here, with a message naming the entry and the field (``imagegate
check-config`` and ``serve`` stop on it), never at the first request. Nothing here does I/O
except reading an ``api_key_env`` variable through ``config.env_value``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from imagegate.catalog.catalog import Catalog, CatalogError
from imagegate.config import Settings, did_you_mean, env_value

Strategy = Literal["round_robin", "weighted", "least_in_flight"]
DEFAULT_DEPLOYMENT = "default"
# Providers whose deployments are declared elsewhere: Azure's in azure_deployments (each is a
# model id of its own); the embedded engine has no upstream at all.
_NOT_HERE = {
    "azure": "declare Azure deployments in azure_deployments (each gets its own model id) "
    "and put several of them in a route",
    "local": "the embedded engine runs in process and takes no deployments",
}


class DeploymentConfig(BaseModel):
    """One entry of ``deployments``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    provider: str = Field(min_length=1)
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    base_url: str | None = None
    models: list[str] | None = None
    weight: int = Field(1, ge=1, le=1000)
    timeout_seconds: float | None = Field(None, gt=0)
    max_in_flight: int | None = Field(None, ge=1, le=100_000)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL such as https://api.openai.com/v1")
        return value.rstrip("/")


class TargetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    weight: int = Field(1, ge=1, le=1000)


class RouteConfig(BaseModel):
    """One entry of ``routes``."""

    model_config = ConfigDict(extra="forbid")

    strategy: Strategy | None = None
    targets: list[TargetConfig | str] = Field(min_length=1, max_length=32)
    fallbacks: list[str] = Field(default_factory=list, max_length=8)


@dataclass(frozen=True, slots=True)
class ExtraDeployment:
    """A checked ``deployments`` entry, its key read (None: the provider's env key)."""

    name: str
    provider: str
    api_key: SecretStr | None
    base_url: str | None
    cards: frozenset[str]
    weight: int
    timeout_seconds: float | None
    max_in_flight: int | None = None


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    strategy: Strategy
    targets: tuple[tuple[str, int], ...]  # (card id, weight)
    fallbacks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RoutingPlan:
    deployments: tuple[ExtraDeployment, ...] = ()
    routes: Mapping[str, Route] = field(default_factory=dict)
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    strategy: Strategy = "round_robin"

    @property
    def providers(self) -> set[str]:
        """Providers the config file turns on by giving them a deployment."""
        return {deployment.provider for deployment in self.deployments}


def _field_error(where: str, exc: ValidationError) -> CatalogError:
    err = exc.errors()[0]
    field = ".".join(str(part) for part in err["loc"])
    return CatalogError(f"{where}.{field}: {err['msg']}" if field else f"{where}: {err['msg']}")


def parse_plan(
    settings: Settings, catalog: Catalog, providers: Iterable[str], known: Iterable[str]
) -> RoutingPlan:
    """Every routing entry, checked against the catalog. ``providers``: the ones the settings
    turn on by their own keys; ``known``: every provider name imagegate has."""
    known_names = sorted(known)
    keyed = set(providers)
    deployments = _parse_deployments(settings, catalog, known_names)
    for index, deployment in enumerate(deployments):
        if deployment.api_key is None and deployment.provider not in keyed:
            raise CatalogError(
                f"deployments[{index}] ({deployment.name}).api_key_env: no key; give this "
                f"entry api_key_env (or api_key), or set the {deployment.provider} provider's "
                "own key"
            )
    served = set(providers) | {d.provider for d in deployments}
    routes = _parse_routes(settings, catalog, served)
    fallbacks: dict[str, tuple[str, ...]] = {}
    for model, names in settings.fallbacks.items():
        where = f"fallbacks[{model}]"
        card = _served_card(catalog, model, served, where)
        fallbacks[card] = tuple(
            _served_card(catalog, name, served, f"{where}[{i}]") for i, name in enumerate(names)
        )
        if card in fallbacks[card]:
            raise CatalogError(f"{where}: a model cannot fall back to itself")
    return RoutingPlan(tuple(deployments), routes, fallbacks, settings.routing_strategy)


def _parse_deployments(
    settings: Settings, catalog: Catalog, known: list[str]
) -> list[ExtraDeployment]:
    out: list[ExtraDeployment] = []
    seen: set[tuple[str, str]] = set()
    for index, raw in enumerate(settings.deployments):
        where = f"deployments[{index}]"
        if not isinstance(raw, dict):
            raise CatalogError(f"{where}: each entry must be a mapping (name, provider, ...)")
        try:
            entry = DeploymentConfig.model_validate(raw)
        except ValidationError as exc:
            raise _field_error(where, exc) from None
        where = f"deployments[{index}] ({entry.name})"
        if entry.provider in _NOT_HERE:
            raise CatalogError(f"{where}.provider: {_NOT_HERE[entry.provider]}")
        if entry.provider not in known:
            choices = [name for name in known if name not in _NOT_HERE]
            raise CatalogError(
                f"{where}.provider: {entry.provider!r} is not a provider"
                f"{did_you_mean(entry.provider, choices)}; one of {', '.join(choices)}"
            )
        if entry.name == DEFAULT_DEPLOYMENT:
            raise CatalogError(
                f"{where}.name: {DEFAULT_DEPLOYMENT!r} is the name of the deployment the "
                "provider's environment key makes; choose another"
            )
        if (entry.provider, entry.name) in seen or entry.name in {name for _, name in seen}:
            raise CatalogError(f"{where}.name: the name {entry.name} is declared twice")
        seen.add((entry.provider, entry.name))
        if entry.api_key is not None and entry.api_key_env is not None:
            raise CatalogError(f"{where}: give api_key or api_key_env, not both")
        key = entry.api_key
        if entry.api_key_env is not None:
            value = env_value(entry.api_key_env)
            if value is None:
                raise CatalogError(
                    f"{where}.api_key_env: the environment variable {entry.api_key_env} is "
                    "not set (or empty)"
                )
            key = SecretStr(value)
        cards = frozenset(
            _card_of_provider(catalog, model, entry.provider, f"{where}.models[{i}]")
            for i, model in enumerate(entry.models or [])
        )
        out.append(
            ExtraDeployment(
                entry.name,
                entry.provider,
                key,
                entry.base_url,
                cards,
                entry.weight,
                entry.timeout_seconds,
                entry.max_in_flight,
            )
        )
    return out


def _card_of_provider(catalog: Catalog, name: str, provider: str, where: str) -> str:
    card = catalog.find(name)
    if card is None:
        ids = [c.id for c in catalog.cards() if c.provider == provider]
        hint = did_you_mean(name, ids)
        raise CatalogError(f"{where}: {name!r} is not a model in the catalog{hint}")
    if card.provider != provider:
        raise CatalogError(f"{where}: {card.id} is a {card.provider} model, not a {provider} one")
    return card.id


def _served_card(catalog: Catalog, name: str, served: set[str], where: str) -> str:
    card = catalog.find(name)
    if card is None:
        ids = [c.id for c in catalog.cards()]
        raise CatalogError(
            f"{where}: {name!r} is not a model in the catalog{did_you_mean(name, ids)}; "
            "`imagegate models` lists them"
        )
    if card.provider not in served:
        raise CatalogError(
            f"{where}: {card.id}'s provider {card.provider!r} is not enabled on this gateway "
            "(set its key, or declare a deployment for it)"
        )
    return card.id


def _parse_routes(settings: Settings, catalog: Catalog, served: set[str]) -> dict[str, Route]:
    routes: dict[str, Route] = {}
    for name, raw in settings.routes.items():
        where = f"routes[{name}]"
        if not re.fullmatch(r"[A-Za-z0-9._:/-]{1,128}", name):
            raise CatalogError(f"{where}: a route name takes letters, digits and . _ : / -")
        if catalog.find(name) is not None:
            # A route that shadowed a card would make the card unreachable by its own name.
            raise CatalogError(f"{where}: {name} is already a model id or alias; choose another")
        if not isinstance(raw, dict):
            raise CatalogError(f"{where}: a route is a mapping (strategy, targets, fallbacks)")
        try:
            entry = RouteConfig.model_validate(raw)
        except ValidationError as exc:
            raise _field_error(where, exc) from None
        targets: list[tuple[str, int]] = []
        for i, target in enumerate(entry.targets):
            spec = target if isinstance(target, TargetConfig) else TargetConfig(model=target)
            card = _served_card(catalog, spec.model, served, f"{where}.targets[{i}]")
            if card in {t for t, _ in targets}:
                raise CatalogError(f"{where}.targets[{i}]: {card} is listed twice")
            targets.append((card, spec.weight))
        fallbacks = tuple(
            _served_card(catalog, model, served, f"{where}.fallbacks[{i}]")
            for i, model in enumerate(entry.fallbacks)
        )
        if set(fallbacks) & {t for t, _ in targets}:
            raise CatalogError(f"{where}.fallbacks: a target cannot also be a fallback")
        routes[name] = Route(
            name, entry.strategy or settings.routing_strategy, tuple(targets), fallbacks
        )
    return routes


def describe(plan: RoutingPlan) -> dict[str, Any]:
    """A summary for ``check-config``."""
    return {
        "deployments": len(plan.deployments),
        "routes": sorted(plan.routes),
        "fallbacks": len(plan.fallbacks),
    }
