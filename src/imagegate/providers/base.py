"""The narrow protocol every provider implements, and the registry that holds them.

A provider is one object with a name, a ``check`` of what only it knows (before any work, so a
stream request still gets a plain 400), an ``edit`` call and an ``aclose``. Synchronous, queued
and polled upstream protocols all hide behind ``edit``; so does fanning ``n`` out into
concurrent calls where the upstream has no ``n``. Providers never import each other.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.sizing import ResolvedSizing
from imagegate.core.request import EditRequest
from imagegate.core.result import EditResult, ResultImage


@dataclass(frozen=True, slots=True)
class EditJob:
    """A request that passed its card: what a provider is asked to do."""

    request: EditRequest
    card: ModelCard
    sizing: ResolvedSizing
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where a model is served: credentials, base URL and timeouts for one upstream account.

    With one deployment per model this is trivial; the router later picks among several.
    """

    provider: str
    name: str = "default"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_seconds: float = 600.0
    options: Mapping[str, str] = field(default_factory=dict)


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
