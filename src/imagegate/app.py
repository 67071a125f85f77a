"""``create_app(settings)``: the catalog is built and checked here; clients live in the lifespan."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from PIL import Image

from imagegate import __version__
from imagegate.api import edits, health, models
from imagegate.api.errors import install_error_handlers
from imagegate.api.middleware import RequestContextMiddleware
from imagegate.catalog.catalog import Catalog, load_shipped_entries
from imagegate.config import Settings
from imagegate.core.redact import register_secret
from imagegate.providers.base import Deployment, ProviderRegistry
from imagegate.providers.local.adapter import LocalProvider
from imagegate.providers.local.card import LOCAL_CARDS
from imagegate.routing.router import Router
from imagegate.service import EditService
from imagegate.wire.fetch import ImageFetcher
from imagegate.wire.netguard import parse_networks


def build_catalog(settings: Settings) -> Catalog:
    shipped = [*LOCAL_CARDS, *load_shipped_entries()]
    return Catalog.build(settings.models, settings.aliases, shipped=shipped)


def enabled_providers(settings: Settings) -> set[str]:
    """The providers this configuration turns on; their models are the ones served."""
    return {"local"} if settings.local_engine else set()


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
        registry = ProviderRegistry()
        deployments: dict[str, Deployment] = {}
        if "local" in enabled_providers(settings):
            registry.register(LocalProvider(settings.local_max_concurrency))
            deployments["local"] = Deployment(provider="local")
        fetch_client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.fetch_timeout_seconds),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            headers={"User-Agent": f"imagegate/{__version__}"},
            trust_env=False,  # never send fetched-URL traffic through an ambient proxy
        )
        app.state.fetcher = ImageFetcher(
            fetch_client,
            max_bytes=settings.max_image_bytes,
            timeout=settings.fetch_timeout_seconds,
            max_redirects=settings.fetch_max_redirects,
            allowed_networks=allowed_networks,
        )
        app.state.service = EditService(
            catalog, registry, Router(deployments), timeout_seconds=settings.request_timeout_seconds
        )
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            await registry.aclose()
            await fetch_client.aclose()

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
    app.add_middleware(RequestContextMiddleware)
    return app


def app_from_env() -> FastAPI:
    """The factory uvicorn workers call (``imagegate.app:app_from_env``)."""
    from imagegate.logs import setup_logging

    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)
    return create_app(settings)
