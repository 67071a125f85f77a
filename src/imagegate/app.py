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
from imagegate.api import edits, health, models
from imagegate.api import metrics as metrics_api
from imagegate.api.errors import install_error_handlers
from imagegate.api.middleware import RequestContextMiddleware
from imagegate.catalog.catalog import Catalog, CatalogError, load_shipped_entries
from imagegate.config import Settings, did_you_mean
from imagegate.core.memory import MemoryGate
from imagegate.core.redact import register_secret
from imagegate.core.trim import malloc_trim, trim_when_idle
from imagegate.providers.base import Deployment, ProviderRegistry
from imagegate.providers.specs import SPECS
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


def enabled_providers(settings: Settings) -> set[str]:
    """The providers this configuration turns on; their models are the ones served."""
    return {spec.name for spec in SPECS if spec.enabled(settings)}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    catalog = build_catalog(settings)
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
        deployments: list[Deployment] = []
        for spec in SPECS:
            if spec.enabled(settings):
                registry.register(spec.build(settings))
                # Result URLs off a provider's own origin pass the same guard as image_urls.
                deployments += [replace(d, guard=fetcher) for d in spec.deployments(settings)]
        router = Router(deployments)
        app.state.service = EditService(
            catalog,
            registry,
            router,
            timeout_seconds=settings.request_timeout_seconds,
            hooks=[metrics.MetricsHook()],
        )
        app.state.ready = True
        trimmer = asyncio.create_task(trim_when_idle(app.state.memory, malloc_trim()))
        try:
            yield
        finally:
            trimmer.cancel()
            app.state.ready = False
            await registry.aclose()
            await router.aclose()
            await fetch_client.aclose()
            metrics.mark_this_process_dead()  # a worker's live gauges stop counting

    app = FastAPI(
        title="imagegate",
        version=__version__,
        lifespan=lifespan,
        description="An OpenAI-compatible image-edit gateway.",
    )
    app.state.settings = settings
    app.state.catalog = catalog
    app.state.started_at = int(time.time())
    app.state.ready = False
    install_error_handlers(app)
    app.include_router(edits.router)
    app.include_router(models.router)
    app.include_router(health.router)
    app.include_router(metrics_api.router)
    app.state.memory = MemoryGate(settings.max_inflight_bytes)
    app.add_middleware(RequestContextMiddleware, memory=app.state.memory)
    return app


def app_from_env() -> FastAPI:
    """The factory uvicorn workers call (``imagegate.app:app_from_env``)."""
    from imagegate.logs import setup_logging

    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)
    return create_app(settings)
