"""The narrow protocol every provider implements, and the registry that holds them.

A provider is one object with a name, a ``check`` of what only it knows (before any work, so a
stream request still gets a plain 400), an ``edit`` call and an ``aclose``. Synchronous, queued
and polled upstream protocols all hide behind ``edit``; so does fanning ``n`` out into
concurrent calls where the upstream has no ``n``. Providers never import each other.

Each provider package also declares a ``ProviderSpec``: whether the settings turn it on, the
deployments those settings describe (each with its own pooled HTTP client), any cards the
settings add (Azure deployments under ids the user chooses), and how to build the provider.
``app.py`` builds the registry from the specs; no provider is wired by hand.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from pydantic import SecretStr

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.sizing import ResolvedSizing
from imagegate.core.request import EditRequest, ImageInput
from imagegate.core.result import EditResult, ResultImage

if TYPE_CHECKING:
    from imagegate.config import Settings


@dataclass(frozen=True, slots=True)
class EditJob:
    """A request that passed its card: what a provider is asked to do."""

    request: EditRequest
    card: ModelCard
    sizing: ResolvedSizing
    request_id: str = ""
    # A mask the provider is not sent (its model takes none): the service applies it to the
    # result afterwards. ``request.mask`` is then None.
    emulated_mask: ImageInput | None = None
    # Other models that may serve this request, each already checked against its own card:
    # a route's other targets, then fallbacks (routing/dispatch.py says when each is tried).
    # A budget hold covers the dearest of the job and these.
    fallbacks: tuple[EditJob, ...] = ()
    route: str | None = None  # the route name the client sent, when it sent one
    # Candidates that could not honour the request, with why (for the log line).
    unfit: tuple[str, ...] = ()

    def candidates(self) -> tuple[EditJob, ...]:
        return (self, *self.fallbacks)


class GuardedFetch(Protocol):
    """Fetches a URL only if every address it resolves to is public (the gateway's SSRF guard,
    ``wire.fetch.ImageFetcher``); used for result URLs off the provider's own origin."""

    async def fetch(self, url: str, *, param: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where a model is served: one upstream account's base URL, credential, timeouts and pooled
    HTTP client (created at startup, closed at shutdown by the registry).

    ``cards`` lists the card ids it serves; empty means every card of its provider. ``options``
    holds what only its provider reads (Azure's deployment name and api-version).
    """

    provider: str
    name: str = "default"
    base_url: str = ""
    api_key: SecretStr | None = field(default=None, repr=False)
    timeout_seconds: float = 600.0
    options: Mapping[str, str] = field(default_factory=dict)
    cards: frozenset[str] = frozenset()
    weight: int = 1  # its share under the weighted strategy
    max_in_flight: int | None = None  # edits it may run at once in this process (None: any)
    client: httpx.AsyncClient | None = field(default=None, repr=False, compare=False)
    guard: GuardedFetch | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        """Unique among all deployments: where cooldowns and in-flight counts are kept."""
        return f"{self.provider}:{self.name}"

    def secret(self) -> str:
        return self.api_key.get_secret_value() if self.api_key is not None else ""

    def http(self) -> httpx.AsyncClient:
        if self.client is None:
            raise RuntimeError(f"the {self.provider} deployment {self.name} has no HTTP client")
        return self.client


class EventSink(Protocol):
    """Where a provider reports progress while it works (streamed to the client if asked)."""

    async def partial(self, image: ResultImage, index: int) -> None: ...


class DiscardEvents:
    """The sink for requests that did not ask to stream."""

    async def partial(self, image: ResultImage, index: int) -> None:
        return None


class Provider(Protocol):
    name: str

    def check(self, job: EditJob) -> None:
        """Refuse what this upstream cannot take, before any work (and before a stream opens)."""

    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult: ...

    async def aclose(self) -> None: ...


class ProviderSpec(Protocol):
    """What a provider package declares, so the app can build it from settings alone."""

    name: str

    def enabled(self, settings: Settings) -> bool:
        """Whether these settings turn the provider on (its credential is set)."""

    def cards(self, settings: Settings) -> list[dict[str, Any]]:
        """The cards this provider ships (and any its settings add), as catalog entries."""

    def deployments(self, settings: Settings) -> list[Deployment]:
        """Its deployments, each with a new pooled client; called once, at startup."""

    def build(self, settings: Settings) -> Provider: ...


class ProviderRegistry:
    def __init__(self) -> None:
        self._providers: dict[str, Provider] = {}

    def register(self, provider: Provider) -> None:
        if provider.name in self._providers:
            raise ValueError(f"provider {provider.name} is registered twice")
        self._providers[provider.name] = provider

    def get(self, name: str) -> Provider | None:
        return self._providers.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._providers.values())

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
