"""How the app builds ``azure`` from the config file's ``azure_deployments``.

Each entry is one Azure OpenAI deployment, served under a model id of the user's choosing::

    azure_deployments:
      - id: azure/team-image          # the model clients send
        deployment: gpt-image-1-prod  # Azure's deployment name
        upstream_model: gpt-image-1   # the OpenAI model it runs: its limits and prices
        endpoint: https://other.openai.azure.com   # optional, else AZURE_OPENAI_ENDPOINT
        api_version: 2025-04-01-preview             # optional, else azure_api_version
        api_key: ...                                # optional, else AZURE_OPENAI_API_KEY

Its card is a copy of the ``openai/<upstream_model>`` card under the entry's id. A bad entry is
refused while the catalog loads (``imagegate check-config`` and ``serve`` stop with a message
naming the entry and the field), never at the first request.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from imagegate.catalog.catalog import CatalogError
from imagegate.providers.azure.adapter import AzureProvider
from imagegate.providers.base import Deployment, Provider
from imagegate.providers.clients import upstream_client
from imagegate.providers.openai.spec import shipped_cards

if TYPE_CHECKING:
    from imagegate.config import Settings

SETTING = "azure_deployments"


class AzureDeploymentConfig(BaseModel):
    """One entry of ``azure_deployments``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9._-]+/[A-Za-z0-9._/-]+$")
    deployment: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    upstream_model: str = Field(min_length=1)
    endpoint: str | None = None
    api_version: str | None = Field(None, min_length=1)
    api_key: SecretStr | None = None

    @field_validator("endpoint")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL such as https://my-resource.openai.azure.com")
        return value.rstrip("/")


def parse_deployments(settings: Settings) -> list[AzureDeploymentConfig]:
    """Every entry, checked; a ``CatalogError`` naming the entry and field for the first bad
    one."""
    shipped = shipped_cards()
    openai_models = {str(card["id"]).partition("/")[2] for card in shipped}
    taken = {str(card["id"]) for card in shipped}
    taken |= {str(alias) for card in shipped for alias in card.get("aliases", [])}
    entries: list[AzureDeploymentConfig] = []
    seen: set[str] = set()
    has_key = settings.azure_openai_api_key is not None
    for index, raw in enumerate(settings.azure_deployments):
        where = f"{SETTING}[{index}]"
        if not isinstance(raw, dict):
            raise CatalogError(f"{where}: each entry must be a mapping (id, deployment, ...)")
        try:
            entry = AzureDeploymentConfig.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(part) for part in err["loc"])
            raise CatalogError(f"{where}.{field}: {err['msg']}") from None
        if entry.upstream_model not in openai_models:
            known = ", ".join(sorted(openai_models))
            raise CatalogError(
                f"{where}.upstream_model: {entry.upstream_model!r} is not an OpenAI model this "
                f"gateway knows ({known})"
            )
        if entry.id in seen:
            raise CatalogError(f"{where}.id: {entry.id} is declared twice")
        if entry.id in taken:
            raise CatalogError(f"{where}.id: {entry.id} is already an OpenAI model id or alias")
        if entry.endpoint is None and not settings.azure_openai_endpoint:
            raise CatalogError(
                f"{where}.endpoint: no endpoint; set AZURE_OPENAI_ENDPOINT or this entry's "
                "endpoint (https://<resource>.openai.azure.com)"
            )
        seen.add(entry.id)
        has_key = has_key or entry.api_key is not None
        entries.append(entry)
    if has_key:
        for index, entry in enumerate(entries):
            if entry.api_key is None and settings.azure_openai_api_key is None:
                raise CatalogError(
                    f"{SETTING}[{index}].api_key: no key; set AZURE_OPENAI_API_KEY or this "
                    "entry's api_key"
                )
    return entries


def card_for(entry: AzureDeploymentConfig) -> dict[str, Any]:
    """The ``openai/<upstream_model>`` card under the entry's id, served by azure."""
    base = next(card for card in shipped_cards() if card["id"] == f"openai/{entry.upstream_model}")
    card = {key: value for key, value in base.items() if key != "aliases"}
    card.update(
        id=entry.id,
        provider="azure",
        upstream_model=entry.upstream_model,
        description=f"Azure OpenAI deployment {entry.deployment} running {entry.upstream_model}.",
        source=f"the openai/{entry.upstream_model} card ({SETTING} in the config file)",
    )
    pricing = dict(card.get("pricing") or {})
    pricing["source"] = (
        f"OpenAI's {entry.upstream_model} prices (Azure prices GPT image models by token at "
        "about OpenAI's rates; override the card's pricing if yours differ)"
    )
    card["pricing"] = pricing
    return card


class AzureSpec:
    name = "azure"

    def enabled(self, settings: Settings) -> bool:
        if not settings.azure_deployments:
            return False
        return settings.azure_openai_api_key is not None or any(
            isinstance(raw, dict) and raw.get("api_key") for raw in settings.azure_deployments
        )

    def cards(self, settings: Settings) -> list[dict[str, Any]]:
        return [card_for(entry) for entry in parse_deployments(settings)]

    def deployments(self, settings: Settings) -> list[Deployment]:
        out = []
        for entry in parse_deployments(settings):
            endpoint = entry.endpoint or (settings.azure_openai_endpoint or "").rstrip("/")
            out.append(
                Deployment(
                    provider=self.name,
                    name=entry.id,
                    base_url=endpoint,
                    api_key=entry.api_key or settings.azure_openai_api_key,
                    options={
                        "deployment": entry.deployment,
                        "api_version": entry.api_version or settings.azure_api_version,
                    },
                    cards=frozenset({entry.id}),
                    client=upstream_client(settings, endpoint),
                )
            )
        return out

    def build(self, settings: Settings) -> Provider:
        return AzureProvider()


SPEC = AzureSpec()
