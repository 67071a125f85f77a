"""Server-Sent Events as the OpenAI SDKs read them: one ``event:`` and one ``data:`` line each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class SseEvent:
    name: str
    data: dict[str, Any]


def frame(raw: bytes | str) -> SseEvent:
    """One event frame, exactly as the gateway writes it: ``event: x\\ndata: {...}\\n\\n``."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    assert text.endswith("\n\n"), f"an event must end with a blank line: {text[:80]!r}"
    lines = text.strip("\n").split("\n")
    assert len(lines) == 2, f"expected one event line and one data line, got {lines!r}"
    assert lines[0].startswith("event: ") and lines[1].startswith("data: "), lines
    return SseEvent(lines[0][len("event: ") :], orjson.loads(lines[1][len("data: ") :]))


def events(body: bytes | str) -> list[SseEvent]:
    """Every event in a whole stream body; ``:`` comments (keepalives) are skipped."""
    text = body.decode() if isinstance(body, bytes) else body
    text = text.replace("\r\n", "\n")
    out = []
    for chunk in text.split("\n\n"):
        lines = [line for line in chunk.split("\n") if line and not line.startswith(":")]
        if lines:
            out.append(frame("\n".join(lines) + "\n\n"))
    return out
