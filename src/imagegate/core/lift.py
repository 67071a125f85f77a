"""A provider's JSON answer parsed without turning its base64 images into Python strings.

An image answer is megabytes of base64 inside a few hundred bytes of JSON. Parsing it whole
makes a new multi-megabyte ``str`` per image, which the gateway then encodes back to bytes to
send it on: two fresh allocations per image, and under load fresh megabytes are mostly page
faults (bench/RESULTS.md). ``loads_lifting`` finds the long values of one key in the raw bytes,
parses the JSON with a short placeholder in their place, and hands back each value as a
``memoryview`` of the body it came in: no copy, and the bytes go out as they came.

Only values that are plain, padded, standard base64 are lifted (no escapes, ``-``/``_`` or
whitespace); anything else stays in the JSON and is parsed as before. The caller says where
the values belong (``expect``); a placeholder found anywhere else, or missing, means the raw
scan misread the document, and the body is parsed whole instead, so the result never differs
from ``orjson.loads``'s but for the type of the lifted values.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any

import orjson

MIN_LIFT = 4096  # shorter values are cheaper to parse than to lift
_SLOT = "@imagegate-lift-" + secrets.token_hex(8) + "-{}@"
_REFUSED = (b"\\", b"-", b"_", b" ", b"\n", b"\r", b"\t")
_BLANK = b" \t\r\n"


def loads_lifting(
    body: bytes, key: str, expect: Callable[[Any], Iterable[tuple[dict[str, Any], str]]]
) -> Any:
    """``orjson.loads(body)``, with long base64 values of ``key`` as memoryviews of ``body``.

    ``expect(doc)`` yields ``(object, key)`` for every place such a value may be; a lifted
    value is put back there. Raises ``orjson.JSONDecodeError`` as ``orjson.loads`` does.
    """
    needle = b'"' + key.encode() + b'"'
    pieces: list[bytes] = []
    lifted: dict[str, memoryview] = {}
    view = memoryview(body)
    at = search = 0
    while (found := body.find(needle, search)) >= 0:
        i = _skip_blank(body, found + len(needle))
        search = i
        if body[i : i + 1] != b":":
            continue
        i = _skip_blank(body, i + 1)
        search = i
        if body[i : i + 1] != b'"':
            continue
        start = i + 1
        end = body.find(b'"', start)
        if end < 0:
            break
        search = end + 1
        if (end - start) < MIN_LIFT or (end - start) % 4:
            continue
        if any(body.find(char, start, end) >= 0 for char in _REFUSED):
            continue
        slot = _SLOT.format(len(lifted))
        pieces += (body[at:start], slot.encode())
        lifted[slot] = view[start:end]
        at = end
    if not lifted:
        return orjson.loads(body)
    pieces.append(body[at:])
    doc = orjson.loads(b"".join(pieces))
    placed = 0
    for holder, name in expect(doc):
        value = holder.get(name)
        if isinstance(value, str) and value in lifted:
            holder[name] = lifted[value]
            placed += 1
    if placed != len(lifted):  # a placeholder somewhere unexpected: take the slow, sure way
        return orjson.loads(body)
    return doc


def _skip_blank(body: bytes, i: int) -> int:
    while body[i : i + 1] and body[i] in _BLANK:
        i += 1
    return i
