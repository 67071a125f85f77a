"""What each Stability edit endpoint takes: its options (the fields OpenAI has no name for, a
card's ``extra_fields``), with their types and ranges, and the limits of its input image.

Options arrive as multipart strings (``"5"``) or JSON values (``5``) and are read alike; each is
checked and written back as the form value Stability takes. An option of another Stability
endpoint is refused by name; any other unknown field is left out, never forwarded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from imagegate.core.errors import InvalidRequest
from imagegate.core.images import ImageFormat
from imagegate.core.units import show_value
from imagegate.providers.options import checked_number

MAX_TEXT = 10_000  # prompt, negative_prompt, search_prompt, select_prompt
MAX_SEED = 4_294_967_294  # 0 means "a random seed"
MAX_MARGIN = 2_000  # outpaint: pixels per side
MIN_SIDE = 64
MIN_PIXELS = 4_096
MAX_PIXELS = 9_437_184
MAX_RATIO = 2.5  # outpaint and search-*: 1:2.5 to 2.5:1
STYLE_PRESETS = (
    "3d-model",
    "analog-film",
    "anime",
    "cinematic",
    "comic-book",
    "digital-art",
    "enhance",
    "fantasy-art",
    "isometric",
    "line-art",
    "low-poly",
    "modeling-compound",
    "neon-punk",
    "origami",
    "photographic",
    "pixel-art",
    "tile-texture",
)

Kind = Literal["text", "int", "number", "enum"]


@dataclass(frozen=True, slots=True)
class Option:
    """A form field of an endpoint that OpenAI has no name for (a card's ``extra_fields``)."""

    name: str
    kind: Kind
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    options: tuple[Option, ...]
    prompt: Literal["required", "optional", "unused"]
    mask: bool  # takes a mask file
    needs_area: bool  # a mask, or an image whose transparent pixels mark the area
    max_pixels: int = MAX_PIXELS
    limit_ratio: bool = False
    output_formats: tuple[ImageFormat, ...] = ("png", "jpeg", "webp")
    grows: bool = False  # outpaint: the output is the input plus its margins

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)


def _text(name: str, *, required: bool = False) -> Option:
    return Option(name, "text", maximum=MAX_TEXT, required=required)


_NEGATIVE = _text("negative_prompt")
_GROW = Option("grow_mask", "int", 0, 100)
_STYLE = Option("style_preset", "enum", choices=STYLE_PRESETS)
_MARGINS = tuple(Option(side, "int", 0, MAX_MARGIN) for side in ("left", "right", "up", "down"))

ENDPOINTS: dict[str, Endpoint] = {
    endpoint.name: endpoint
    for endpoint in (
        Endpoint("inpaint", (_NEGATIVE, _GROW, _STYLE), "required", mask=True, needs_area=True),
        Endpoint("erase", (_GROW,), "unused", mask=True, needs_area=True),
        Endpoint(
            "search-and-replace",
            (_text("search_prompt", required=True), _NEGATIVE, _GROW),
            "required",
            mask=False,
            needs_area=False,
            limit_ratio=True,
        ),
        Endpoint(
            "search-and-recolor",
            (_text("select_prompt", required=True), _NEGATIVE, _GROW),
            "required",
            mask=False,
            needs_area=False,
            limit_ratio=True,
        ),
        Endpoint(
            "outpaint",
            (*_MARGINS, Option("creativity", "number", 0, 1), _STYLE),
            "optional",
            mask=False,
            needs_area=False,
            limit_ratio=True,
            grows=True,
        ),
        Endpoint(
            "remove-background",
            (),
            "unused",
            mask=False,
            needs_area=False,
            max_pixels=4_194_304,
            output_formats=("png", "webp"),
        ),
    )
}
# Every option of every endpoint: one sent to an endpoint that does not take it is a 400.
STABILITY_OPTIONS: frozenset[str] = frozenset(
    option.name for endpoint in ENDPOINTS.values() for option in endpoint.options
)


def read_options(
    extra: Mapping[str, object], model: str, endpoint: Endpoint, taken: list[str]
) -> dict[str, str]:
    """The card's options the client sent, checked and written as form values."""
    out: dict[str, str] = {}
    offered = [option for option in endpoint.options if option.name in taken]
    for name, raw in extra.items():
        option = next((o for o in offered if o.name == name), None)
        if option is None:
            if name in STABILITY_OPTIONS:
                takes = ", ".join(o.name for o in offered) or "none of them"
                raise InvalidRequest(
                    f"{name} is an option of other Stability endpoints; {model} does not take "
                    f"it (its options: {takes}).",
                    param=name,
                    code="unsupported_parameter",
                )
            continue  # not Stability's: never forwarded
        if raw is None or raw == "":
            continue
        out[name] = _coerce(option, raw, model)
    for option in offered:
        if option.required and option.name not in out:
            raise InvalidRequest(
                f"{model} needs {option.name}: send it as a form field (or with extra_body).",
                param=option.name,
                code="missing_required_parameter",
            )
    return out


def _coerce(option: Option, raw: object, model: str) -> str:
    name = option.name
    if option.kind == "text":
        if not isinstance(raw, str):
            raise InvalidRequest(f"{name} must be a string.", param=name, code="invalid_type")
        if option.required and not raw.strip():
            raise InvalidRequest(
                f"{name} must not be blank.", param=name, code="missing_required_parameter"
            )
        if option.maximum is not None and len(raw) > option.maximum:
            raise InvalidRequest(
                f"{name} is {len(raw):,} characters; {model} takes at most {option.maximum:,.0f}.",
                param=name,
                code="string_above_max_length",
            )
        return raw
    if option.kind == "enum":
        value = raw.strip().lower() if isinstance(raw, str) else ""
        if value not in option.choices:
            raise InvalidRequest(
                f"{name} must be one of {', '.join(option.choices)}; got {show_value(raw)}.",
                param=name,
                code="invalid_value",
            )
        return value
    number = checked_number(
        name,
        raw,
        integer=option.kind == "int",
        minimum=option.minimum,
        maximum=option.maximum,
        model=model,
    )
    return str(int(number)) if option.kind == "int" else f"{number:g}"
