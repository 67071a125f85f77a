"""How the app builds the Replicate provider: on when ``REPLICATE_API_TOKEN`` is set; its cards
come from ``models.yaml`` beside this module, and a user's Replicate cards are checked here (their
``provider_options``), so a card whose inputs cannot be known stops the server at start."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from imagegate.catalog.catalog import CatalogError
from imagegate.providers.base import Deployment, Provider
from imagegate.providers.clients import upstream_client
from imagegate.providers.replicate.adapter import ReplicateProvider
from imagegate.providers.replicate.convert import PROVIDER
from imagegate.providers.replicate.inputs import check_entry

if TYPE_CHECKING:
    from imagegate.config import Settings


@functools.cache
def _shipped() -> tuple[dict[str, Any], ...]:
    text = (
        resources.files("imagegate.providers.replicate").joinpath("models.yaml").read_text("utf-8")
    )
    return tuple(yaml.safe_load(text)["models"])


class ReplicateSpec:
    name = PROVIDER

    def enabled(self, settings: Settings) -> bool:
        return settings.replicate_api_token is not None

    def cards(self, settings: Settings) -> list[dict[str, Any]]:
        shipped = {str(entry["id"]): entry for entry in _shipped()}
        for entry in settings.models:
            if isinstance(entry, Mapping) and "id" in entry:
                _check_user_card(entry, shipped.get(str(entry["id"])))
        return copy.deepcopy(list(shipped.values()))

    def deployments(self, settings: Settings) -> list[Deployment]:
        base_url = settings.replicate_base_url
        return [
            Deployment(
                provider=self.name,
                base_url=base_url,
                api_key=settings.replicate_api_token,
                timeout_seconds=settings.replicate_poll_timeout_seconds,
                options={
                    "wait_seconds": str(settings.replicate_wait_seconds),
                    "poll_interval_seconds": str(settings.replicate_poll_interval_seconds),
                },
                client=upstream_client(settings, base_url),
            )
        ]

    def build(self, settings: Settings) -> Provider:
        return ReplicateProvider()


def _check_user_card(entry: Mapping[str, Any], shipped: Mapping[str, Any] | None) -> None:
    """A user's card (or override of a shipped one) served by Replicate: its inputs known."""
    merged = {**(shipped or {}), **entry}
    model_id = str(merged["id"])
    prefix, _, rest = model_id.partition("/")
    if (merged.get("provider") or prefix) != PROVIDER:
        return
    upstream = str(merged.get("upstream_model") or rest)
    options = merged.get("provider_options") or {}
    extra_fields = merged.get("extra_fields") or []
    if not isinstance(options, Mapping) or not isinstance(extra_fields, list):
        return  # the catalog refuses the wrong types itself, naming the field
    try:
        check_entry(upstream, options, [str(name) for name in extra_fields])
    except ValueError as exc:
        raise CatalogError(f"model {model_id}: {exc}") from None


SPEC = ReplicateSpec()
