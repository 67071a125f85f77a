"""What each Black Forest Labs endpoint takes: its image count, size control, output formats and
options (the fields OpenAI has no name for, a card's ``extra_fields``), with their ranges.

From BFL's OpenAPI (docs.bfl.ai API reference, checked 2026-12)::

    /v1/flux-kontext-pro, -max   input_image, input_image_2..4 (2-4 "Experimental Multiref")
                                 aspect_ratio "between 21:9 and 9:21"; output_format jpeg|png
                                 (default png); prompt_upsampling; safety_tolerance 0-6
    /v1/flux-2-pro, -max         input_image, input_image_2..8; width, height >= 64 (0: match
                                 the input); output_format jpeg|png (default jpeg);
                                 safety_tolerance 0-5 (no prompt_upsampling in the schema)

Kontext's ``safety_tolerance`` is 0-6 for text-to-image only: "2 is currently the maximum allowed
when input images are used" (BFL's own model page on Replicate; an edit always has one), so an
edit takes 0-2. FLUX.2 sizes are multiples of 16 up to 4 MP (BFL's FLUX.2 docs).

Options arrive as multipart strings (``"2"``, ``"true"``) or JSON values and are read alike. An
option of another BFL endpoint is refused by name; the request fields the gateway fills itself
(``input_image*``, webhooks) are refused with what to send instead; any other unknown field is
left out, never forwarded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from imagegate.core.errors import InvalidRequest
from imagegate.core.images import ImageFormat
from imagegate.core.units import show_value

KONTEXT_MAX_RATIO = Fraction(21, 9)  # aspect_ratio between 21:9 and 9:21
FLUX2_MULTIPLE = 16
FLUX2_MIN_SIDE = 64
FLUX2_MAX_PIXELS = 2048 * 2048  # "up to 4 MP"
UPSTREAM_FORMATS: tuple[ImageFormat, ...] = ("jpeg", "png")
BFL_OPTIONS = frozenset({"safety_tolerance", "prompt_upsampling", "steps", "guidance"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

Family = Literal["kontext", "flux2"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One BFL model endpoint, ``POST /v1/{name}``."""

    name: str
    family: Family
    max_images: int
    max_safety_tolerance: int  # with input images, as every edit has
    options: tuple[str, ...]
    default_format: ImageFormat

    @property
    def path(self) -> str:
        return f"/v1/{self.name}"


def _kontext(name: str) -> Endpoint:
    return Endpoint(name, "kontext", 4, 2, ("prompt_upsampling", "safety_tolerance"), "png")


def _flux2(name: str) -> Endpoint:
    return Endpoint(name, "flux2", 8, 5, ("safety_tolerance",), "jpeg")


ENDPOINTS: dict[str, Endpoint] = {
    endpoint.name: endpoint
    for endpoint in (
        _kontext("flux-kontext-pro"),
        _kontext("flux-kontext-max"),
        _flux2("flux-2-pro"),
        _flux2("flux-2-max"),
    )
}


def read_options(
    extra: Mapping[str, object], model: str, endpoint: Endpoint, offered: list[str]
) -> dict[str, object]:
    """The card's options the client sent, checked and typed as BFL's JSON takes them."""
    out: dict[str, object] = {}
    taken = [name for name in endpoint.options if name in offered]
    for name, raw in extra.items():
        if name in taken:
            if raw is None or raw == "":
                continue
            out[name] = _coerce(name, raw, model, endpoint)
        elif name in BFL_OPTIONS:
            takes = ", ".join(taken) or "none of them"
            raise InvalidRequest(
                f"{name} is an option of other Black Forest Labs models; {model} does not take "
                f"it (its options: {takes}).",
                param=name,
                code="unsupported_parameter",
            )
        elif name.startswith("input_image"):
            raise InvalidRequest(
                f"{name} is filled in by the gateway from the request's images; send the images "
                "as image (multipart) or images (JSON) instead.",
                param=name,
                code="unsupported_parameter",
            )
        elif name in ("webhook_url", "webhook_secret"):
            raise InvalidRequest(
                f"{name} is not supported: the gateway waits for the result itself and answers "
                "with the image.",
                param=name,
                code="unsupported_parameter",
            )
        # anything else is not BFL's: never forwarded
    return out


def _coerce(name: str, raw: object, model: str, endpoint: Endpoint) -> object:
    if name == "prompt_upsampling":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise InvalidRequest(
            f"prompt_upsampling must be true or false; got {show_value(raw)}.",
            param=name,
            code="invalid_type",
        )
    # safety_tolerance: an integer in the endpoint's range
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        value = int(raw.strip())
    if value is None:
        raise InvalidRequest(
            f"safety_tolerance must be an integer; got {show_value(raw)}.",
            param=name,
            code="invalid_type",
        )
    high = endpoint.max_safety_tolerance
    if not 0 <= value <= high:
        why = (
            " (BFL allows at most 2 when input images are sent, as an edit always has)"
            if endpoint.family == "kontext"
            else ""
        )
        raise InvalidRequest(
            f"safety_tolerance must be 0 (strictest) to {high} for {model}{why}; got {value}.",
            param=name,
            code="integer_above_max_value" if value > high else "integer_below_min_value",
        )
    return value
