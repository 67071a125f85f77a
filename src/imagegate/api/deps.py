"""FastAPI dependencies as ``Annotated`` aliases: the app's state, and the key check.

All are ``async def``: FastAPI runs a plain ``def`` dependency on a worker thread, a thread hop
per dependency per request for what is an attribute lookup.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from imagegate.config import Settings
from imagegate.core.errors import AuthenticationFailed
from imagegate.service import EditService
from imagegate.wire.body import UrlFetcher


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_service(request: Request) -> EditService:
    service: EditService = request.app.state.service
    return service


async def get_fetcher(request: Request) -> UrlFetcher | None:
    fetcher: UrlFetcher | None = request.app.state.fetcher
    return fetcher


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[EditService, Depends(get_service)]
FetcherDep = Annotated["UrlFetcher | None", Depends(get_fetcher)]


async def require_key(request: Request, settings: SettingsDep) -> None:
    """With IMAGEGATE_MASTER_KEY set, every /v1 call must carry it as a bearer token."""
    if settings.master_key is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise AuthenticationFailed(
            "Missing API key: send it as 'Authorization: Bearer <key>'.",
            code="missing_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed(
            "The Authorization header must be 'Bearer <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    expected = settings.master_key.get_secret_value().encode()
    if not hmac.compare_digest(token.strip().encode(), expected):
        raise AuthenticationFailed("Invalid API key.", headers={"WWW-Authenticate": "Bearer"})


Authorized = Depends(require_key)
