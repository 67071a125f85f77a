"""``imagegate serve | models | check-config | keys create | keys list``."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from imagegate import __version__
from imagegate.catalog.catalog import CatalogError
from imagegate.config import ENV_PREFIX, ConfigFileError, Settings, unknown_env_names
from imagegate.logs import setup_logging

# prometheus-client's own variable (imagegate.metrics.MULTIPROC_ENV), named here so that this
# module does not import prometheus-client before the variable is set.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

log = logging.getLogger("imagegate")

DESCRIPTION = "An OpenAI-compatible image-edit gateway: POST /v1/images/edits for many providers."
EPILOG = """\
examples:
  imagegate serve                              serve on http://127.0.0.1:8000
  imagegate serve --config imagegate.yaml      with settings, models and aliases from a file
  imagegate models                             the models this configuration serves
  imagegate check-config --config imagegate.yaml
  imagegate keys create --name team-a --models 'gemini/*' --budget-usd 50 --period month \
      --rpm 60 --images-per-minute 120 --config imagegate.yaml

Settings come from the flags, IMAGEGATE_* environment variables, a .env file in the working
directory, then the config file (.env.example lists them). 'imagegate COMMAND --help' tells more.
"""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_verdict(settings: Settings) -> Literal["ok", "warn", "refuse"]:
    """Without a key the gateway serves loopback only, unless the operator says otherwise."""
    if settings.auth_required or is_loopback(settings.host):
        return "ok"
    return "warn" if settings.allow_unauthenticated else "refuse"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagegate",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"imagegate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8000)")
    serve.add_argument("--config", help="YAML config file (or IMAGEGATE_CONFIG)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        default=None,
        help="allow a non-loopback bind without IMAGEGATE_MASTER_KEY",
    )

    models = sub.add_parser("models", help="list the models this configuration serves")
    models.add_argument("--config", help="YAML config file (or IMAGEGATE_CONFIG)")
    models.add_argument("--json", action="store_true", help="print JSON, as GET /v1/models")

    check = sub.add_parser("check-config", help="load the settings and catalog, then exit")
    check.add_argument("--config", help="YAML config file (or IMAGEGATE_CONFIG)")

    keys = sub.add_parser("keys", help="create and list virtual API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser(
        "create",
        help="make a key: print it once, append its hash to the config file",
        description="Makes a virtual key, prints it ONCE, and appends its record (the key's "
        "SHA-256, never the key) to the config file's keys: list; a running gateway picks it "
        "up within a second. Without a config file the record is printed to paste.",
    )
    create.add_argument("--name", required=True, help="a unique name (letters, digits, . _ -)")
    create.add_argument(
        "--models",
        action="append",
        help="a model or glob it may use (gemini/*, openai/gpt-image-1); repeat or comma-"
        "separate; default: every model",
    )
    create.add_argument("--budget-usd", type=float, help="budget in USD per period")
    create.add_argument("--period", choices=["day", "month", "total"], default="month")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--images-per-minute", type=int, help="images (n) per minute")
    create.add_argument("--config", help="YAML config file to append to (or IMAGEGATE_CONFIG)")
    create.add_argument(
        "--print-only", action="store_true", help="print the entry; do not touch the file"
    )
    listing = keys_sub.add_parser("list", help="the configured keys: names, models, limits")
    listing.add_argument("--config", help="YAML config file (or IMAGEGATE_CONFIG)")

    fake = sub.add_parser(
        "fake-upstream",
        help="serve a strict fake of a provider's API on loopback, for offline work",
    )
    fake.add_argument("provider", help="openai, azure, gemini, stability, xai or bfl")
    fake.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free)")
    fake.add_argument("--key", default="fake-key", help="the API key the fake accepts")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "config", "workers", "log_level", "allow_unauthenticated"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "fake-upstream":
        return _fake_upstream(args.provider, args.port, args.key)
    if args.command == "keys":
        from imagegate.accounts.cli import keys_command

        return keys_command(args)
    try:
        settings = _settings(args)
        warnings = unknown_env_names()
        if args.command == "serve":
            return _serve(settings, args, warnings)
        for warning in warnings:
            print(f"imagegate: warning: {warning}", file=sys.stderr)
        if args.command == "models":
            return _models(settings, as_json=args.json)

        return _check(settings)
    except (ConfigFileError, CatalogError) as exc:
        print(f"imagegate: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"])
        print(f"imagegate: invalid setting {where}: {err['msg']}", file=sys.stderr)
        return 2


def _fake_upstream(provider: str, port: int, key: str) -> int:
    import time

    from imagegate.testing.fakes import FAKES
    from imagegate.testing.serve import ServedApp

    if provider not in FAKES:
        known = ", ".join(sorted(FAKES)) or "none"
        print(f"imagegate: no fake for {provider!r} (known: {known})", file=sys.stderr)
        return 2
    with ServedApp(FAKES[provider](key).app, port=port) as served:
        print(f"fake {provider} on {served.base_url} (key {key!r}); Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def _serve(settings: Settings, args: argparse.Namespace, warnings: Sequence[str]) -> int:
    # Before prometheus-client is first imported (by the app): it picks its mode then.
    with _metrics_dir(settings.workers):
        return _serve_now(settings, args, warnings)


@contextmanager
def _metrics_dir(workers: int) -> Iterator[None]:
    """Several workers share their metrics through a fresh directory of prometheus-client's
    multiprocess mode, made for this run and removed after it (never one inherited: stale
    files would add an earlier run's counts). One process keeps them in memory."""
    os.environ.pop(MULTIPROC_ENV, None)
    if workers == 1:
        yield
        return
    path = tempfile.mkdtemp(prefix="imagegate-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def _serve_now(settings: Settings, args: argparse.Namespace, warnings: Sequence[str]) -> int:
    from imagegate import serving
    from imagegate.app import create_app

    setup_logging(settings.log_level, settings.log_format)
    for warning in warnings:
        log.warning(warning)
    verdict = bind_verdict(settings)
    if verdict == "refuse":
        print(
            f"imagegate: refusing to listen on {settings.host} without a key. Set "
            "IMAGEGATE_MASTER_KEY, bind 127.0.0.1, or pass --allow-unauthenticated "
            "if something in front of the gateway does the authentication.",
            file=sys.stderr,
        )
        return 2
    if verdict == "warn":
        log.warning(
            "serving on %s without authentication (--allow-unauthenticated): anyone "
            "who can reach this port can use it",
            settings.host,
        )
    app = create_app(settings)  # builds and checks the catalog before binding
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": settings.graceful_shutdown_seconds,
        "timeout_keep_alive": 75,  # longer than a load balancer's idle timeout
        "server_header": False,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "loop": _pick_loop(),
        "http": _pick_http(),
    }
    log.info(
        "imagegate %s starting on http://%s:%s",
        __version__,
        settings.host,
        settings.port,
        extra={"models": len(app.state.catalog)},
    )
    delay = settings.drain_delay_seconds
    if settings.workers == 1:
        return serving.serve(app, options, delay)
    # Workers build their own app from the environment; pass the flags on through it.
    for name in ("config", "log_level", "allow_unauthenticated"):
        value = getattr(args, name, None)
        if value is not None:
            os.environ[ENV_PREFIX + name.upper()] = str(value)
    return serving.serve_workers("imagegate.app:app_from_env", options, settings.workers, delay)


def _pick_loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def _pick_http() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def _models(settings: Settings, *, as_json: bool) -> int:
    from imagegate.app import build_catalog, build_plan, enabled_providers
    from imagegate.catalog.sizing import describe_sizing

    catalog = build_catalog(settings)
    plan = build_plan(settings, catalog)
    providers = enabled_providers(settings)
    cards = [card for card in catalog.cards() if card.provider in providers]
    routes = [
        {
            "id": route.name,
            "route": {
                "strategy": route.strategy,
                "targets": [card for card, _ in route.targets],
                "fallbacks": list(route.fallbacks),
            },
        }
        for route in plan.routes.values()
    ]
    if as_json:
        out = [
            {
                "id": card.id,
                "aliases": catalog.aliases_of(card.id),
                "edit": card.edit.model_dump(),
                "sizing": describe_sizing(card),
                "n": card.n.model_dump(),
                "pricing": card.pricing.model_dump(exclude_none=True),
            }
            for card in cards
        ]
        out += routes
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    for card in cards:
        edit = (
            f"edits, up to {card.edit.max_reference_images} image(s)"
            f"{', mask' if card.edit.mask else ''}"
            if card.edit.supported
            else "generate only"
        )
        aliases = ", ".join(catalog.aliases_of(card.id))
        print(f"{card.id}{f'  (aliases: {aliases})' if aliases else ''}")
        print(f"    {edit}; n {card.n.min}-{card.n.max}; {describe_sizing(card)}")
    for route in plan.routes.values():
        print(f"{route.name}  (route, {route.strategy})")
        print(f"    targets {', '.join(card for card, _ in route.targets)}")
        if route.fallbacks:
            print(f"    fallbacks {', '.join(route.fallbacks)}")
    return 0


def _check(settings: Settings) -> int:
    from imagegate.app import build_catalog, build_plan

    catalog = build_catalog(settings)
    plan = build_plan(settings, catalog)
    print(
        f"ok: {len(catalog)} models, {len(plan.deployments)} extra deployments, "
        f"{len(plan.routes)} routes; auth {'on' if settings.auth_required else 'off'}"
    )
    return 0
