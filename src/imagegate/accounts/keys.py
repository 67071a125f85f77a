"""Virtual API keys: what a key may do, stored as the SHA-256 of the key, never the key.

A key is ``ig-`` and 43 characters of ``secrets.token_urlsafe(32)`` (256 bits), so one unsalted
SHA-256 is enough to store it: nobody guesses a preimage of a random 256-bit string. The config
file's ``keys:`` list holds the records; ``KeyRing`` reads it again when the file changes (its
mtime, looked at no more than once a second), so ``imagegate keys create`` needs no restart.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

log = logging.getLogger("imagegate.accounts")

KEY_PREFIX = "ig-"
Period = Literal["day", "month", "total"]
MASTER = "master"  # the name the master key's usage is recorded under
ANONYMOUS = "anonymous"  # and a gateway's without any key
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
_RESERVED = frozenset({MASTER, ANONYMOUS})


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_glob(pattern: str) -> str | None:
    """Why a model glob is no good, or None."""
    if not pattern or pattern != pattern.strip() or any(c.isspace() for c in pattern):
        return f"model glob {pattern!r} is empty or has spaces"
    depth = 0
    for char in pattern:
        if char == "[":
            if depth:
                return f"model glob {pattern!r} has a '[' inside a '[...]'"
            depth = 1
        elif char == "]" and depth:
            depth = 0
    if depth:
        return f"model glob {pattern!r} opens a '[' it never closes"
    return None


class KeySpec(BaseModel):
    """One entry of the config file's ``keys:`` list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    key_sha256: str
    models: list[str] = Field(default_factory=lambda: ["*"])
    budget_usd: float | None = Field(None, ge=0)
    period: Period = "month"
    rpm: int | None = Field(None, ge=1)
    images_per_minute: int | None = Field(None, ge=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"key name {value!r} must be 1-64 letters, digits, '.', '_' or '-'")
        if value in _RESERVED:
            raise ValueError(f"key name {value!r} is reserved")
        return value

    @field_validator("key_sha256")
    @classmethod
    def _hash(cls, value: str) -> str:
        value = value.strip().lower()
        if not _HEX.match(value):
            raise ValueError(
                "key_sha256 must be the 64 hex digits of the key's SHA-256 "
                "(imagegate keys create writes it)"
            )
        return value

    @field_validator("models")
    @classmethod
    def _globs(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("models must list at least one model or glob, such as '*'")
        for pattern in value:
            problem = check_glob(pattern)
            if problem:
                raise ValueError(problem)
        return value


def parse_keys(raw: Iterable[object]) -> list[KeySpec]:
    """The ``keys:`` list validated whole: names unique, hashes unique. Raises ValueError."""
    specs: list[KeySpec] = []
    names: set[str] = set()
    hashes: set[str] = set()
    for index, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise ValueError(f"keys[{index}] must be a mapping (name, key_sha256, models, ...)")
        try:
            spec = KeySpec.model_validate(dict(entry))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(part) for part in err["loc"])
            raise ValueError(f"keys[{index}].{where}: {err['msg']}") from None
        if spec.name in names:
            raise ValueError(f"keys[{index}]: the key name {spec.name!r} is used twice")
        if spec.key_sha256 in hashes:
            raise ValueError(f"keys[{index}] ({spec.name}): the same key is listed twice")
        names.add(spec.name)
        hashes.add(spec.key_sha256)
        specs.append(spec)
    return specs


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """Who is asking, as the hooks see it. The master key has no limits and no budget."""

    name: str
    models: tuple[str, ...] = ("*",)
    budget_usd: float | None = None
    period: Period = "month"
    rpm: int | None = None
    images_per_minute: int | None = None
    master: bool = False

    @classmethod
    def of(cls, spec: KeySpec) -> KeyInfo:
        return cls(
            name=spec.name,
            models=tuple(spec.models),
            budget_usd=spec.budget_usd,
            period=spec.period,
            rpm=spec.rpm,
            images_per_minute=spec.images_per_minute,
        )


MASTER_KEY = KeyInfo(MASTER, master=True)
ANONYMOUS_KEY = KeyInfo(ANONYMOUS, master=True)  # no key configured at all: nothing is limited


class KeyRing:
    """The virtual keys, by hash; re-read from the config file when it changes."""

    RECHECK_SECONDS = 1.0

    def __init__(self, specs: Sequence[KeySpec], path: Path | None = None) -> None:
        self._by_hash = {spec.key_sha256: KeyInfo.of(spec) for spec in specs}
        self._names = [spec.name for spec in specs]
        self._path = path
        self._mtime = _mtime(path)
        self._checked = time.monotonic()

    def __len__(self) -> int:
        self.refresh()
        return len(self._by_hash)

    @property
    def names(self) -> list[str]:
        self.refresh()
        return list(self._names)

    def lookup(self, key: str) -> KeyInfo | None:
        self.refresh()
        return self._by_hash.get(hash_key(key))

    def by_name(self, name: str) -> KeyInfo | None:
        self.refresh()
        return next((info for info in self._by_hash.values() if info.name == name), None)

    def refresh(self) -> None:
        if self._path is None:
            return
        now = time.monotonic()
        if now - self._checked < self.RECHECK_SECONDS:
            return
        self._checked = now
        mtime = _mtime(self._path)
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            specs = parse_keys(_read_keys(self._path))
        except (OSError, ValueError) as exc:
            # A half-written or broken file must not lock everyone out: keep the last good keys.
            log.error("the keys in %s were not reloaded: %s", self._path, exc)
            return
        self._by_hash = {spec.key_sha256: KeyInfo.of(spec) for spec in specs}
        self._names = [spec.name for spec in specs]
        log.info("reloaded %d virtual keys from %s", len(specs), self._path)


def _mtime(path: Path | None) -> tuple[int, int] | None:
    """The file's change stamp: mtime in ns and size (two writes in one tick differ in size)."""
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _read_keys(path: Path) -> list[Any]:
    import yaml

    doc = yaml.safe_load(path.read_text("utf-8")) or {}
    if not isinstance(doc, dict):
        raise ValueError("the config file is not a mapping")
    keys = doc.get("keys") or []
    if not isinstance(keys, list):
        raise ValueError("keys must be a list")
    return keys
