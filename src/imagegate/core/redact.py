"""Scrubbing keys and image data out of text that leaves the process: error messages and logs.

Messages echo what a client sent (a field name, a value cut short, a prompt the engine could not
read) and a provider's error may quote the request it was given; tracebacks carry exception
text. None of that may carry a key or an image onward, so every ``GatewayError`` message and
every log record passes through ``redact``. It knows the secrets this process was configured
with (``register_secret``) and the shapes keys and image data take:

- ``Bearer <token>``, ``sk-...`` style keys and the gateway's own virtual keys (``ig-...``);
- a ``data:`` URL's payload;
- a run of 32 or more base64 or key characters mixing letters and digits (base64 of an image,
  most providers' keys), except the gateway's own request ids and lower-case file paths;
- a ``bytes`` repr with escaped binary in it (``b'\\x89PNG\\r\\n...'``), and runs of such
  escapes outside one.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

_SHAPES = re.compile(
    r"(?P<bearer>(?i:\bbearer\s+)[A-Za-z0-9._~+/=-]{8,})"
    r"|(?P<key>\b(?:sk|pk|rk|ig)-[A-Za-z0-9_-]{8,})"
    r"|(?P<data_url>(?i:data:)[^,\s'\"]{0,200};base64,[A-Za-z0-9+/=_-]{16,})"
    r"|(?P<bytes_repr>\bb'(?:\\.|[^'\\]){0,4096}'|\bb\"(?:\\.|[^\"\\]){0,4096}\")"
    r"|(?P<raw_bytes>(?:\\x[0-9a-fA-F]{2}|\\[rnt0]){6,})"
    r"|(?P<run>[A-Za-z0-9+/_-]{32,}=*)"
)
_REQUEST_ID = re.compile(r"req_[0-9a-f]{32}")
_DIGIT = re.compile(r"[0-9]")
_LETTER = re.compile(r"[A-Za-z]")
_UPPER = re.compile(r"[A-Z]")

_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """A configured secret (the master key, a provider key) to scrub wherever it appears."""
    if value and len(value) >= 4:
        _secrets.add(value)


def _looks_like_data(run: str) -> bool:
    if _REQUEST_ID.fullmatch(run) or not (_DIGIT.search(run) and _LETTER.search(run)):
        return False  # our own request id, or a long word
    # base64 and keys mix cases; a lower-case run with slashes is a file path in a traceback
    return "/" not in run or _UPPER.search(run) is not None


def _scrub(match: re.Match[str]) -> str:
    if match.lastgroup == "run" and not _looks_like_data(match[0]):
        return match[0]
    if match.lastgroup == "bytes_repr" and match[0].count("\\x") < 4:
        return match[0]  # b'abc' is a short literal, not a file's bytes
    return REDACTED


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _SHAPES.sub(_scrub, text)
