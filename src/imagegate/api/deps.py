"""FastAPI dependencies as ``Annotated`` aliases: the app's state, and the key check.

All are ``async def``: FastAPI runs a plain ``def`` dependency on a worker thread, a thread hop
per dependency per request for what is an attribute lookup.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from imagegate.accounts.keys import KEY_PREFIX, MASTER_KEY, KeyInfo, KeyRing
from imagegate.config import Settings
from imagegate.core.errors import AuthenticationFailed, PermissionDenied
from imagegate.hooks import RequestContext
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
    """With IMAGEGATE_MASTER_KEY or virtual keys set, every /v1 call must carry one as a bearer
    token. The key found goes on the request's context (``RequestContext.key``), where the
    dispatch hooks check its models, rates and budget, and the log line names it."""
    keyring: KeyRing | None = getattr(request.app.state, "keyring", None)
    if settings.master_key is None and not (keyring is not None and len(keyring)):
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise AuthenticationFailed(
            "Missing API key: send it as 'Authorization: Bearer <key>'.",
            code="missing_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed(
            "The Authorization header must be 'Bearer <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found = _identify(token, settings, keyring)
    if found is None:
        raise AuthenticationFailed("Invalid API key.", headers={"WWW-Authenticate": "Bearer"})
    context = _context(request)
    if context is not None:
        context.key = found


def _identify(token: str, settings: Settings, keyring: KeyRing | None) -> KeyInfo | None:
    master = settings.master_key
    if master is not None and hmac.compare_digest(
        token.encode(), master.get_secret_value().encode()
    ):
        return MASTER_KEY
    if keyring is not None and token.startswith(KEY_PREFIX):
        return keyring.lookup(token)  # by SHA-256: the lookup leaks nothing of the key
    return None


def _context(request: Request) -> RequestContext | None:
    context: RequestContext | None = request.scope.get("state", {}).get("context")
    return context


def calling_key(request: Request) -> KeyInfo | None:
    """The key this request authenticated with; None when the gateway takes none."""
    context = _context(request)
    return context.key if context is not None else None


async def require_master(request: Request, settings: SettingsDep) -> None:
    """Operator routes: the master key, not a virtual key (open when no key is set at all)."""
    await require_key(request, settings)
    key = calling_key(request)
    if key is not None and not key.master:
        raise PermissionDenied(
            "This needs the master key; a virtual key cannot use it.", code="master_key_required"
        )


Authorized = Depends(require_key)
