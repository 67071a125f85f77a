"""The one settings object. Nothing else in imagegate reads the environment.

Sources, strongest first: arguments (the CLI's flags), ``IMAGEGATE_*`` environment variables, a
``.env`` file in the working directory, the YAML config file (``--config`` or
``IMAGEGATE_CONFIG``), then the defaults below. The config file takes the same names as the
settings (lower case, without the prefix) plus ``models`` and ``aliases`` for the catalog and
``keys`` for the virtual keys.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from imagegate.wire.limits import MiB, WireLimits
from imagegate.wire.pacing import BodyPace

ENV_PREFIX = "IMAGEGATE_"


def provider_env(name: str) -> AliasChoices:
    """A provider setting read from the environment under the provider's own well-known name
    (``OPENAI_API_KEY``, as its SDK reads it), and from the config file in lower case."""
    return AliasChoices(name, name.lower())


class ConfigFileError(ValueError):
    """The config file is missing, unreadable, not a mapping, or names a setting that is not."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigFileError(f"cannot read the config file {path}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"the config file {path} is not valid YAML: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigFileError(f"the config file {path} must be a mapping of settings")
    return doc


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Settings from the YAML file named by the ``config`` argument or ``IMAGEGATE_CONFIG``."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._values = read_config_file(path) if path else {}
        known = sorted(set(settings_cls.model_fields) - {"config"})
        unknown = [str(key) for key in self._values if key not in known]
        if unknown:
            # A typo would otherwise be ignored and the default used without a word.
            names = ", ".join(f"{key}{did_you_mean(_normalized(key), known)}" for key in unknown)
            raise ConfigFileError(
                f"the config file {path} has unknown settings: {names}. It takes the "
                "settings in lower case without IMAGEGATE_ (see .env.example), plus models, "
                "aliases and keys."
            )

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {
            key: value
            for key, value in self._values.items()
            if key in self.settings_cls.model_fields and key != "config"
        }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # Serving
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    config: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    graceful_shutdown_seconds: float = Field(30.0, ge=0)
    # After SIGTERM, how long /readyz answers 503 while the gateway still serves, so a load
    # balancer's health check takes it out of rotation before it stops accepting connections.
    # 0 (a lone process: nothing polls it) stops accepting at once; behind a balancer, set
    # more than its check interval times its failure threshold (docker/compose.yaml: 5).
    drain_delay_seconds: float = Field(0.0, ge=0, le=300)
    # Proxies whose X-Forwarded-For/-Proto are believed (comma-separated IPs or CIDRs, or *).
    forwarded_allow_ips: str = "127.0.0.1"

    # Access
    master_key: SecretStr | None = None
    allow_unauthenticated: bool = False
    # GET /metrics without the master key (when one is set); e.g. for a scraper on a private net.
    metrics_public: bool = False
    # Virtual keys (config file only; `imagegate keys create` appends them): name, key_sha256,
    # models (globs), budget_usd, period (day, month, total), rpm, images_per_minute.
    keys: list[dict[str, Any]] = Field(default_factory=list)

    # Shared state: rate windows, budget holds, spend and usage in Redis (else in-process).
    redis_url: SecretStr | None = None
    # Redis unreachable: closed refuses edits of limited keys (503), open admits them unchecked.
    redis_failure: Literal["closed", "open"] = "closed"
    redis_timeout_seconds: float = Field(0.5, gt=0, le=30)

    # Requests
    default_model: str | None = None
    max_image_bytes: int = Field(50 * MiB, ge=1)
    max_request_bytes: int = Field(128 * MiB, ge=1)
    max_images: int = Field(16, ge=1, le=64)
    max_image_pixels: int = Field(40_000_000, ge=1)
    request_timeout_seconds: float = Field(600.0, gt=0)
    # Bounded work: what one request, and all of them together, may hold.
    spill_image_bytes: int = Field(8 * MiB, ge=0)
    spill_held_bytes: int = Field(8 * MiB, ge=0)
    max_inflight_bytes: int = Field(512 * MiB, ge=1)
    body_timeout_seconds: float = Field(300.0, gt=0)
    body_min_rate_bytes: int = Field(32 * 1024, ge=1)
    body_rate_grace_seconds: float = Field(10.0, ge=0)
    stream_keepalive_seconds: float = Field(5.0, gt=0)

    # Fetching image_url
    fetch_enabled: bool = True
    fetch_timeout_seconds: float = Field(15.0, gt=0)
    fetch_max_redirects: int = Field(5, ge=0, le=20)
    fetch_allow_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # The embedded engine
    local_engine: bool = True
    local_max_concurrency: int | None = Field(None, ge=1)

    # Upstream providers: a provider whose key is set is served. Names as each provider's own
    # SDK reads them; the config file takes them in lower case.
    openai_api_key: SecretStr | None = Field(None, validation_alias=provider_env("OPENAI_API_KEY"))
    openai_base_url: str = Field(
        "https://api.openai.com/v1", validation_alias=provider_env("OPENAI_BASE_URL")
    )
    azure_openai_api_key: SecretStr | None = Field(
        None, validation_alias=provider_env("AZURE_OPENAI_API_KEY")
    )
    azure_openai_endpoint: str | None = Field(
        None, validation_alias=provider_env("AZURE_OPENAI_ENDPOINT")
    )
    azure_api_version: str = "2025-04-01-preview"
    azure_deployments: list[dict[str, Any]] = Field(default_factory=list)  # config file only
    gemini_api_key: SecretStr | None = Field(None, validation_alias=provider_env("GEMINI_API_KEY"))
    gemini_base_url: str = Field(
        "https://generativelanguage.googleapis.com",
        validation_alias=provider_env("GEMINI_BASE_URL"),
    )
    gemini_api_version: str = "v1beta"
    stability_api_key: SecretStr | None = Field(
        None, validation_alias=provider_env("STABILITY_API_KEY")
    )
    stability_base_url: str = Field(
        "https://api.stability.ai", validation_alias=provider_env("STABILITY_BASE_URL")
    )
    xai_api_key: SecretStr | None = Field(None, validation_alias=provider_env("XAI_API_KEY"))
    xai_base_url: str = Field("https://api.x.ai/v1", validation_alias=provider_env("XAI_BASE_URL"))
    bfl_api_key: SecretStr | None = Field(None, validation_alias=provider_env("BFL_API_KEY"))
    bfl_base_url: str = Field("https://api.bfl.ai", validation_alias=provider_env("BFL_BASE_URL"))
    # Black Forest Labs queues each edit: the gateway polls it, first after this many seconds,
    # then backing off up to 5 s between polls, and gives up (504) after the timeout.
    bfl_poll_interval_seconds: float = Field(0.5, gt=0, le=60)
    bfl_poll_timeout_seconds: float = Field(300.0, gt=0)
    fal_key: SecretStr | None = Field(None, validation_alias=provider_env("FAL_KEY"))
    fal_base_url: str = Field(
        "https://queue.fal.run", validation_alias=provider_env("FAL_BASE_URL")
    )
    # fal's queue: how long to wait for a submitted job (then it is cancelled, 504), and the
    # first wait between status polls (growing by half each time, to at most 5 s).
    fal_poll_timeout_seconds: float = Field(300.0, gt=0)
    fal_poll_interval_seconds: float = Field(0.5, gt=0)
    replicate_api_token: SecretStr | None = Field(
        None, validation_alias=provider_env("REPLICATE_API_TOKEN")
    )
    replicate_base_url: str = Field(
        "https://api.replicate.com", validation_alias=provider_env("REPLICATE_BASE_URL")
    )
    # Replicate predictions are queued: the create call holds up to this many seconds for the
    # result (Prefer: wait; 0 = answer at once), then the prediction is polled, first after
    # the interval and backing off to 5 s, until the deadline (counted from the create), when
    # it is cancelled and the edit answered 504.
    replicate_wait_seconds: int = Field(60, ge=0, le=60)
    replicate_poll_interval_seconds: float = Field(0.5, gt=0, le=60)
    replicate_poll_timeout_seconds: float = Field(300.0, gt=0)
    # One pooled HTTP client per deployment; edits take minutes, so reads wait that long.
    upstream_connect_timeout_seconds: float = Field(10.0, gt=0)
    upstream_read_timeout_seconds: float = Field(300.0, gt=0)
    upstream_max_connections: int = Field(100, ge=1)
    upstream_max_answer_bytes: int = Field(512 * MiB, ge=1)

    # The catalog (config file only)
    models: list[dict[str, Any]] = Field(default_factory=list)
    aliases: dict[str, str] = Field(default_factory=dict)

    # Routing (imagegate.routing): extra deployments, public route names, fallbacks (config
    # file only), and how a model's deployments share the load and recover from failures.
    deployments: list[dict[str, Any]] = Field(default_factory=list)
    routes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    routing_strategy: Literal["round_robin", "weighted", "least_in_flight"] = "round_robin"
    # Extra upstream attempts per model after a retryable failure (429, 5xx, timeouts).
    retries: int = Field(2, ge=0, le=10)
    retry_backoff_base_seconds: float = Field(0.5, ge=0, le=60)
    retry_backoff_max_seconds: float = Field(8.0, ge=0, le=600)
    # A deployment that failed this many times in a row (retryably) is skipped for a while.
    cooldown_failures: int = Field(3, ge=1, le=100)
    cooldown_seconds: float = Field(30.0, ge=0, le=3600)
    cooldown_max_seconds: float = Field(300.0, ge=0, le=86400)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, values: object) -> object:
        # A copied .env.example has NAME= lines; they mean "use the default".
        if isinstance(values, dict):
            return {key: value for key, value in values.items() if value != ""}
        return values

    @field_validator("keys")
    @classmethod
    def _valid_keys(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from imagegate.accounts.keys import parse_keys

        parse_keys(value)  # names unique, globs and periods valid; raises ValueError
        return value

    @field_validator("fetch_allow_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("fetch_allow_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for spec in value:
            try:
                ipaddress.ip_network(spec, strict=False)
            except ValueError:
                raise ValueError(f"{spec!r} is not an IP network such as 10.20.0.0/16") from None
        return value

    @field_validator(
        "master_key",
        "redis_url",
        "openai_api_key",
        "azure_openai_api_key",
        "gemini_api_key",
        "stability_api_key",
        "xai_api_key",
        "bfl_api_key",
        "fal_key",
        "replicate_api_token",
        mode="before",
    )
    @classmethod
    def _blank_key_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _config_path(init_settings(), env_settings(), dotenv_settings())
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            _ConfigFileSource(settings_cls, path),
            file_secret_settings,
        )

    @property
    def limits(self) -> WireLimits:
        return WireLimits(
            max_image_bytes=self.max_image_bytes,
            max_request_bytes=self.max_request_bytes,
            max_images=self.max_images,
            max_pixels=self.max_image_pixels,
            spill_bytes=self.spill_image_bytes,
        )

    @property
    def body_pace(self) -> BodyPace:
        return BodyPace(
            timeout=self.body_timeout_seconds,
            min_rate=self.body_min_rate_bytes,
            grace=self.body_rate_grace_seconds,
        )

    @property
    def auth_required(self) -> bool:
        return self.master_key is not None or bool(self.keys)


def env_value(name: str, env_file: Path | None = Path(".env")) -> str | None:
    """The value of an environment variable a config entry points at (``api_key_env``), from
    the environment or ``.env``; None when unset or blank."""
    value = os.environ.get(name)
    if value is None and env_file is not None and env_file.is_file():
        value = dotenv_values(env_file).get(name)
    return value if value and value.strip() else None


def _normalized(key: str) -> str:
    """``IMAGEGATE_MAX-IMAGES`` and ``max-images`` are both near ``max_images``."""
    key = key.lower().replace("-", "_")
    return key.removeprefix(ENV_PREFIX.lower())


def unknown_env_names(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> list[str]:
    """``IMAGEGATE_*`` names in the environment or ``.env`` that are no setting, as warnings.

    Only warnings: the environment is shared with other tools (an orchestrator may well set
    IMAGEGATE_SERVICE_HOST for a service named imagegate), so it is not ours to refuse.
    """
    known = {"IMAGEGATE_IMAGE", "IMAGEGATE_HTTP_PORT"}  # docker/compose.yaml's own variables
    read_as: dict[str, str] = {}  # provider settings: read under the provider's own name
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
            read_as[ENV_PREFIX + name.upper()] = alias.choices[0]
        else:
            known.add(ENV_PREFIX + name.upper())
    sources: list[tuple[str, Iterable[str]]] = [
        ("the environment", (os.environ if environ is None else environ).keys())
    ]
    if env_file is not None and env_file.is_file():
        sources.append((str(env_file), dotenv_values(env_file).keys()))
    warnings = []
    for where, names in sources:
        for name in names:
            upper = name.upper()
            if upper in read_as:
                warnings.append(
                    f"{name} (in {where}) is not read; this setting is {read_as[upper]}"
                )
            elif upper.startswith(ENV_PREFIX) and upper not in known:
                hint = did_you_mean(upper.replace("-", "_"), sorted(known))
                warnings.append(f"{name} (in {where}) is not a setting{hint}; it is ignored")
    return warnings


def _config_path(*sources: dict[str, Any]) -> Path | None:
    for values in sources:
        value = values.get("config")
        if value:
            return Path(os.path.expanduser(str(value)))
    return None
