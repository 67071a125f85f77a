"""The pooled HTTP client each upstream deployment gets, configured from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from imagegate import __version__
from imagegate.providers.transport import Http11Transport

if TYPE_CHECKING:
    from imagegate.config import Settings


def upstream_client(settings: Settings, base_url: str) -> httpx.AsyncClient:
    """One client per deployment: connections pooled for its host, and timeouts in minutes,
    because an edit takes 60-150 s upstream. The provider-level deadline is the service's."""
    timeout = httpx.Timeout(
        settings.upstream_read_timeout_seconds,
        connect=settings.upstream_connect_timeout_seconds,
        pool=settings.upstream_connect_timeout_seconds,
    )
    # Environment proxies still apply: httpx mounts its own transport for proxied origins.
    transport = Http11Transport(
        max_connections=settings.upstream_max_connections,
        max_keepalive_connections=min(20, settings.upstream_max_connections),
        max_body_bytes=settings.upstream_max_answer_bytes,
    )
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        transport=transport,
        headers={"User-Agent": f"imagegate/{__version__}"},
        follow_redirects=False,
    )
