"""Checking a provider option a client sent as an extra field: one number rule for every card.

Extra fields arrive as JSON values or multipart text; a number is taken from either, then held
to the card's range, with the same messages whatever the provider.
"""

from __future__ import annotations

import math
import re

from imagegate.core.errors import InvalidRequest
from imagegate.core.units import show_value

# Bounded digits: no option takes a number of more than 12, and float() of thousands is slow.
_NUMBER = re.compile(r"\s*[+-]?(\d{1,12}(\.\d{0,12})?|\.\d{1,12})\s*")


def parse_number(raw: object, *, integer: bool) -> float | None:
    """``raw`` as a finite number (a whole one if ``integer``), or None if it is not one."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return float(raw) if abs(raw) <= 10**15 else None  # float() of a huge int overflows
    if isinstance(raw, float):
        value = raw
    elif isinstance(raw, str) and _NUMBER.fullmatch(raw):
        value = float(raw)
    else:
        return None
    if not math.isfinite(value) or (integer and not value.is_integer()):
        return None
    return value


def checked_number(
    name: str,
    raw: object,
    *,
    integer: bool,
    minimum: float | None,
    maximum: float | None,
    model: str,
) -> float:
    """The number an option holds, within ``minimum``..``maximum``, or a 400 that says why."""
    number = parse_number(raw, integer=integer)
    if number is None:
        kind = "an integer" if integer else "a number"
        raise InvalidRequest(
            f"{name} must be {kind}; got {show_value(raw)}.", param=name, code="invalid_type"
        )
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        low = "-inf" if minimum is None else f"{minimum:g}"
        high = "inf" if maximum is None else f"{maximum:g}"
        raise InvalidRequest(
            f"{name} must be between {low} and {high} for {model}; got {number:g}.",
            param=name,
            code="integer_above_max_value"
            if maximum is not None and number > maximum
            else "integer_below_min_value",
        )
    return number
