"""``imagegate keys create | list``: virtual keys in the config file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from imagegate.accounts.keyfile import KeyFileError, add_key, entry_yaml
from imagegate.accounts.keys import hash_key, new_key, parse_keys
from imagegate.config import ConfigFileError, Settings


def _config_path(args: argparse.Namespace) -> Path | None:
    if args.config:
        return Path(args.config).expanduser()
    return Settings().config  # IMAGEGATE_CONFIG, from the environment or .env


def keys_command(args: argparse.Namespace) -> int:
    try:
        if args.keys_command == "create":
            return _create(args)
        return _list(args)
    except (ConfigFileError, KeyFileError, ValidationError, ValueError, OSError) as exc:
        print(f"imagegate: {exc}", file=sys.stderr)
        return 2


def _create(args: argparse.Namespace) -> int:
    models = [m.strip() for item in args.models or ["*"] for m in item.split(",") if m.strip()]
    key = new_key()
    entry: dict[str, Any] = {"name": args.name, "key_sha256": hash_key(key), "models": models}
    if args.budget_usd is not None:
        entry["budget_usd"] = args.budget_usd
        entry["period"] = args.period
    if args.rpm is not None:
        entry["rpm"] = args.rpm
    if args.images_per_minute is not None:
        entry["images_per_minute"] = args.images_per_minute
    parse_keys([entry])  # refuses a bad name, glob or limit before anything is printed
    path = None if args.print_only else _config_path(args)
    written = False
    if path is not None:
        try:
            add_key(path, entry)
            written = True
        except KeyFileError as exc:
            print(f"imagegate: {exc}", file=sys.stderr)
    print(f"key: {key}")
    print("(shown once: only its SHA-256 is stored; keep it now)", file=sys.stderr)
    if written:
        print(f"added {args.name!r} to {path}; a running gateway accepts it within a second")
    else:
        print("add this entry under keys: in the config file:")
        sys.stdout.write(entry_yaml(entry))
    return 0


def _list(args: argparse.Namespace) -> int:
    path = _config_path(args)
    specs = parse_keys(Settings(config=path).keys) if path else []
    if not specs:
        print("no virtual keys configured")
        return 0
    for spec in specs:
        limits = []
        if spec.budget_usd is not None:
            limits.append(f"${spec.budget_usd:,.2f}/{spec.period}")
        if spec.rpm is not None:
            limits.append(f"{spec.rpm} rpm")
        if spec.images_per_minute is not None:
            limits.append(f"{spec.images_per_minute} images/min")
        print(f"{spec.name}  models: {', '.join(spec.models)}  {'; '.join(limits) or 'no limits'}")
    return 0
