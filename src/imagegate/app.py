"""``create_app(settings)``: the catalog is built and checked here; clients live in the lifespan."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
from fastapi import FastAPI
from PIL import Image

from imagegate import __version__, metrics
from imagegate.accounts.hook import AccountsHook
from imagegate.accounts.keys import KeyRing, parse_keys
from imagegate.accounts.memory import MemoryStore
from imagegate.accounts.store import StateStore
from imagegate.api import edits, health, models, usage
from imagegate.api import metrics as metrics_api
from imagegate.api.draining import CloseWhileDraining
from imagegate.api.errors import install_error_handlers
from imagegate.api.middleware import RequestContextMiddleware
from imagegate.catalog.catalog import Catalog, CatalogError, load_shipped_entries
from imagegate.config import Settings, did_you_mean
from imagegate.core.memory import MemoryGate
from imagegate.core.redact import register_secret
from imagegate.core.trim import keep_freed_memory, malloc_trim, trim_when_idle
from imagegate.drain import DRAIN_FILE_ENV, Drain
from imagegate.providers.base import Deployment, ProviderRegistry
from imagegate.providers.clients import upstream_client
from imagegate.providers.specs import SPECS
from imagegate.routing.cooldown import Cooldowns
from imagegate.routing.dispatch import RetryPolicy
from imagegate.routing.plan import RoutingPlan, parse_plan
from imagegate.routing.router import Router
from imagegate.service import EditService
from imagegate.wire.fetch import ImageFetcher
from imagegate.wire.netguard import parse_networks


def build_catalog(settings: Settings) -> Catalog:
    """Every provider's cards, served or not (so a config is checked whole), and the user's."""
    shipped = [entry for spec in SPECS for entry in spec.cards(settings)]
    shipped += load_shipped_entries()
    catalog = Catalog.build(settings.models, settings.aliases, shipped=shipped)
    _check_default_model(settings, catalog)
    return catalog


def _check_default_model(settings: Settings, catalog: Catalog) -> None:
    """A default model must be one this gateway serves, or every request without one fails."""
    name = settings.default_model
    if name is None:
        return
    card = catalog.find(name)
    if card is None:
        ids = [model.id for model in catalog.cards()]
        names = ids + [alias for model_id in ids for alias in catalog.aliases_of(model_id)]
        raise CatalogError(
            f"default_model {name!r} is not in the catalog{did_you_mean(name, names)}; "
            "`imagegate models` lists the models this configuration serves"
        )
    if card.provider not in enabled_providers(settings):
        raise CatalogError(
            f"default_model {name!r} is {card.id}, whose provider {card.provider!r} is not "
            "enabled on this gateway"
        )


def keyed_providers(settings: Settings) -> set[str]:
    """The providers whose own settings (their key) turn them on."""
    return {spec.name for spec in SPECS if spec.enabled(settings)}


def enabled_providers(settings: Settings) -> set[str]:
    """The providers this configuration turns on (by their key, or by a ``deployments`` entry
    in the config file); their models are the ones served."""
    providers = keyed_providers(settings)
    names = {spec.name for spec in SPECS}
    for raw in settings.deployments:  # checked whole by build_plan
        if isinstance(raw, dict) and raw.get("provider") in names:
            providers.add(str(raw["provider"]))
    return providers


def build_plan(settings: Settings, catalog: Catalog) -> RoutingPlan:
    """The config file's deployments, routes and fallbacks, checked against the catalog."""
    return parse_plan(
        settings, catalog, keyed_providers(settings), known=[spec.name for spec in SPECS]
    )


async def build_deployments(
    settings: Settings, plan: RoutingPlan, guard: ImageFetcher
) -> list[Deployment]:
    """Each keyed provider's own deployment (named ``default``), then the config file's, each
    with its own pooled client; result URLs off a provider's origin pass ``guard``."""
    keyed = keyed_providers(settings)
    deployments: list[Deployment] = []
    for spec in SPECS:
        if spec.name in keyed:
            deployments += [replace(d, guard=guard) for d in spec.deployments(settings)]
    for extra in plan.deployments:
        spec = next(spec for spec in SPECS if spec.name == extra.provider)
        # The provider's own deployment carries what its adapter reads from the settings (API
        # version, poll intervals); an extra one differs in URL, key, cards, weight, timeout.
        template = spec.deployments(settings)[0]
        if template.client is not None:
            await template.client.aclose()
        base_url = extra.base_url or template.base_url
        deployments.append(
            replace(
                template,
                name=extra.name,
                base_url=base_url,
                api_key=extra.api_key or template.api_key,
                cards=extra.cards,
                weight=extra.weight,
                timeout_seconds=extra.timeout_seconds or template.timeout_seconds,
                max_in_flight=extra.max_in_flight,
                client=upstream_client(settings, base_url),
                guard=guard,
            )
        )
    return deployments


def build_store(settings: Settings) -> StateStore:
    """Redis when IMAGEGATE_REDIS_URL is set (shared by replicas), else this process's memory."""
    if settings.redis_url is None:
        return MemoryStore()
    from imagegate.accounts.redis import RedisStore

    return RedisStore(settings.redis_url.get_secret_value(), timeout=settings.redis_timeout_seconds)


def create_app(settings: Settings | None = None, drain: Drain | None = None) -> FastAPI:
    """``drain`` is what the server flips on SIGTERM (``imagegate.serving``); without one the
    app gets a fresh ``Drain`` that nothing flips, as under a test client."""
    settings = settings or Settings()
    catalog = build_catalog(settings)
    plan = build_plan(settings, catalog)
    allowed_networks = parse_networks(settings.fetch_allow_networks)
    # Pillow refuses to decode past this; our header check refuses earlier with a clear message.
    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels
    if settings.master_key is not None:  # scrubbed from every error message and log line
        register_secret(settings.master_key.get_secret_value())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        fetch_client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.fetch_timeout_seconds),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            headers={"User-Agent": f"imagegate/{__version__}"},
            trust_env=False,  # never send fetched-URL traffic through an ambient proxy
        )
        fetcher = ImageFetcher(
            fetch_client,
            max_bytes=settings.max_image_bytes,
            timeout=settings.fetch_timeout_seconds,
            max_redirects=settings.fetch_max_redirects,
            allowed_networks=allowed_networks,
        )
        app.state.fetcher = fetcher
        registry = ProviderRegistry()
        enabled = enabled_providers(settings)
        for spec in SPECS:
            if spec.name in enabled:
                registry.register(spec.build(settings))
        # Result URLs off a provider's own origin pass the same guard as image_urls.
        router = Router(
            await build_deployments(settings, plan, fetcher),
            plan,
            cooldowns=Cooldowns(
                settings.cooldown_failures,
                settings.cooldown_seconds,
                settings.cooldown_max_seconds,
            ),
        )
        store = app.state.store = build_store(settings)
        accounts = AccountsHook(
            store,
            hold_seconds=settings.request_timeout_seconds,
            failure=settings.redis_failure,
            aliases_of=catalog.aliases_of,
        )
        app.state.service = EditService(
            catalog,
            registry,
            router,
            timeout_seconds=settings.request_timeout_seconds,
            hooks=[accounts, metrics.MetricsHook()],
            retry=RetryPolicy(
                settings.retries,
                settings.retry_backoff_base_seconds,
                settings.retry_backoff_max_seconds,
            ),
        )
        app.state.ready = True
        keep_freed_memory()  # reused while busy; trim_when_idle gives it back when quiet
        trimmer = asyncio.create_task(trim_when_idle(app.state.memory, malloc_trim()))
        try:
            yield
        finally:
            trimmer.cancel()
            app.state.ready = False
            await registry.aclose()
            await router.aclose()
            await fetch_client.aclose()
            await store.aclose()
            metrics.mark_this_process_dead()  # a worker's live gauges stop counting

    app = FastAPI(
        title="imagegate",
        version=__version__,
        lifespan=lifespan,
        description="An OpenAI-compatible image-edit gateway.",
    )
    app.state.settings = settings
    app.state.catalog = catalog
    # The config file is read again when it changes: `imagegate keys create` needs no restart.
    app.state.keyring = KeyRing(parse_keys(settings.keys), settings.config)
    app.state.started_at = int(time.time())
    app.state.ready = False
    app.state.drain = drain = drain or Drain()
    install_error_handlers(app)
    app.include_router(edits.router)
    app.include_router(models.router)
    app.include_router(usage.router)
    app.include_router(health.router)
    app.include_router(metrics_api.router)
    app.state.memory = MemoryGate(
        settings.max_inflight_bytes, spill_above=settings.spill_held_bytes
    )
    app.add_middleware(RequestContextMiddleware, memory=app.state.memory)
    app.add_middleware(CloseWhileDraining, drain=drain)
    return app


def app_from_env() -> FastAPI:
    """The factory uvicorn workers call (``imagegate.app:app_from_env``)."""
    import os
    from pathlib import Path

    from imagegate.logs import setup_logging

    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)
    # The supervisor's drain marker (imagegate.serving): the worker is unready once it exists.
    marker = os.environ.get(DRAIN_FILE_ENV)
    return create_app(settings, Drain(Path(marker)) if marker else None)
