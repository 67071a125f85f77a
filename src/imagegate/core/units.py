"""Numbers in messages people read."""

from __future__ import annotations


def human_bytes(count: int) -> str:
    """1_048_576 -> '1 MiB', 1_500_000 -> '1.4 MiB', 300_000 -> '293 KiB'."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            value = count / size
            text = f"{value:.0f}" if value >= 10 or value.is_integer() else f"{value:.1f}"
            return f"{text} {unit}"
    return f"{count} bytes"


def shorten(text: str, limit: int = 60) -> str:
    """``text`` quoted, cut to ``limit`` characters: user input echoed in a message stays short."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def show_value(raw: object, limit: int = 40) -> str:
    """A client's value echoed in a message: scalars as their repr, cut short; lists and
    objects by their kind only (a deeply nested one would not even repr)."""
    if isinstance(raw, list | tuple):
        return "a list"
    if isinstance(raw, dict):
        return "an object"
    text = (
        repr(raw)
        if isinstance(raw, str | int | float | bool) or raw is None
        else type(raw).__name__
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."
