"""Which models a key may use: shell-style globs (``gemini/*``, ``openai/gpt-image-1``).

A glob is matched against the card id the request resolved to, the name the client sent, and
the card's aliases: allowing an alias (``bw``) allows the model it names under any of its
names; allowing ``local/*`` allows every local card, whatever alias reaches it. Case-sensitive,
as card ids are.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase


def allowed(globs: Iterable[str], *names: str) -> bool:
    return any(fnmatchcase(name, glob) for glob in globs for name in names)
