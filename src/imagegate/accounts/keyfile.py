"""``imagegate keys create``: append one key record to the config file, keeping the rest as is.

The file is edited as text (its comments and order stay), the result parsed again and compared
with what was meant before it replaces the old file in one rename, so a running gateway never
reads half a file. Where the text edit cannot be made safely, nothing is written and the caller
prints the entry to paste.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from imagegate.accounts.keys import parse_keys

_TOP_KEYS = re.compile(r"^keys\s*:(?P<rest>.*)$")
_TOP_LEVEL = re.compile(r"^[^\s#-]")


class KeyFileError(ValueError):
    """The config file cannot take the new key (unreadable, invalid, or a duplicate name)."""


def entry_yaml(entry: dict[str, Any], indent: str = "  ") -> str:
    body = yaml.safe_dump([entry], sort_keys=False, default_flow_style=None)
    return "".join(indent + line + "\n" for line in body.splitlines())


def _load(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text) if text.strip() else {}
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise KeyFileError("the config file is not a mapping of settings")
    return doc


def add_key(path: Path, entry: dict[str, Any]) -> None:
    text = path.read_text("utf-8") if path.exists() else ""
    try:
        doc = _load(text)
    except yaml.YAMLError as exc:
        raise KeyFileError(f"the config file {path} is not valid YAML: {exc}") from None
    old = doc.get("keys") or []
    if not isinstance(old, list):
        raise KeyFileError("the config file's keys must be a list")
    parse_keys([*old, entry])  # a duplicate name or a bad field refuses here (ValueError)
    new_text = _insert(text, entry)
    expected = {**doc, "keys": [*old, entry]}
    if new_text is None or _parses_to(new_text) != expected:
        raise KeyFileError(
            f"could not add the key to {path} without rewriting it; paste the entry below "
            "under its keys: list"
        )
    _write_atomically(path, new_text)


def _parses_to(text: str) -> dict[str, Any] | None:
    try:
        return _load(text)
    except (yaml.YAMLError, KeyFileError):
        return None


def _insert(text: str, entry: dict[str, Any]) -> str | None:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start = next((i for i, line in enumerate(lines) if _TOP_KEYS.match(line)), None)
    if start is None:
        return "".join(lines) + "keys:\n" + entry_yaml(entry)
    rest = _TOP_KEYS.match(lines[start])
    assert rest is not None
    tail = rest["rest"].split("#")[0].strip()
    if tail in ("[]", "null", "~"):
        return "".join(lines[:start]) + "keys:\n" + entry_yaml(entry) + "".join(lines[start + 1 :])
    if tail == "":
        end = start + 1
        indent: str | None = None  # the list's own, from its first item
        while end < len(lines) and not _TOP_LEVEL.match(lines[end]):
            stripped = lines[end].lstrip(" ")
            if indent is None and stripped.startswith("- "):
                indent = lines[end][: len(lines[end]) - len(stripped)]
            end += 1
        while end > start + 1 and not lines[end - 1].strip():
            end -= 1  # keep blank lines after the list where they were
        added = entry_yaml(entry, "  " if indent is None else indent)
        return "".join(lines[:end]) + added + "".join(lines[end:])
    return None  # a flow list with entries: not edited as text


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
