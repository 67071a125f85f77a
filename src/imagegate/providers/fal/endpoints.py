"""What each fal edit endpoint takes: its image field, how it is sized, whether it has
``num_images``, ``seed`` and ``output_format``, and its options (a card's ``extra_fields``) with
their types and ranges, from fal's input schemas (the reference's fal section).

Options arrive as multipart strings (``"3.5"``, ``"true"``) or JSON values (``3.5``, ``true``)
and are read alike, then written as the JSON type fal's schema has: ``safety_tolerance`` is a
string enum (``"2"``) although clients send it as a number. An option of another fal endpoint
is refused by name; any other unknown field is left out, never forwarded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from imagegate.core.errors import InvalidRequest
from imagegate.core.images import ImageFormat
from imagegate.core.units import show_value
from imagegate.providers.options import checked_number

OptionKind = Literal["number", "int", "bool", "enum", "text"]
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True, slots=True)
class Option:
    """A body field of an endpoint that OpenAI has no name for (a card's ``extra_fields``)."""

    name: str
    kind: OptionKind
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Endpoint:
    model: str  # fal's endpoint id, the path submitted to
    image_field: Literal["image_url", "image_urls"]  # one data URI, or a list of them
    size_field: Literal["aspect_ratio", "image_size"]
    output_formats: tuple[ImageFormat, ...]  # its output_format values; () when it has none
    seed: bool = True
    num_images: bool = True  # else n is fanned out, one job per image
    options: tuple[Option, ...] = ()
    min_pixels: int | None = None  # the least area exact pixels may have (Seedream)

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)


_GUIDANCE_FLUX = Option("guidance_scale", "number", 1, 20)
_SAFETY_TOLERANCE = Option("safety_tolerance", "enum", choices=("1", "2", "3", "4", "5", "6"))
_ENHANCE_PROMPT = Option("enhance_prompt", "bool")
_SAFETY_CHECKER = Option("enable_safety_checker", "bool")
_KONTEXT = (_GUIDANCE_FLUX, _SAFETY_TOLERANCE, _ENHANCE_PROMPT)

ENDPOINTS: dict[str, Endpoint] = {
    endpoint.model: endpoint
    for endpoint in (
        Endpoint(
            "fal-ai/flux-pro/kontext",
            "image_url",
            "aspect_ratio",
            ("jpeg", "png"),
            options=_KONTEXT,
        ),
        Endpoint(
            "fal-ai/flux-pro/kontext/multi",
            "image_urls",
            "aspect_ratio",
            ("jpeg", "png"),
            options=_KONTEXT,
        ),
        Endpoint(
            "fal-ai/bytedance/seedream/v4/edit",
            "image_urls",
            "image_size",
            (),
            options=(
                _SAFETY_CHECKER,
                Option("enhance_prompt_mode", "enum", choices=("standard", "fast")),
            ),
            min_pixels=960 * 960,
        ),
        Endpoint(
            "fal-ai/nano-banana/edit",
            "image_urls",
            "aspect_ratio",
            ("jpeg", "png", "webp"),
            seed=False,
        ),
        Endpoint(
            "fal-ai/qwen-image-edit",
            "image_url",
            "image_size",
            ("jpeg", "png"),
            options=(
                Option("negative_prompt", "text", maximum=10_000),
                Option("guidance_scale", "number", 0, 20),
                Option("num_inference_steps", "int", 2, 50),
                Option("acceleration", "enum", choices=("none", "regular", "high")),
                _SAFETY_CHECKER,
            ),
        ),
    )
}
FAL_OPTIONS: frozenset[str] = frozenset(
    option.name for endpoint in ENDPOINTS.values() for option in endpoint.options
)
# Body fields the gateway sets itself, from the OpenAI fields that mean them.
MANAGED: dict[str, str] = {
    "num_images": "send n instead",
    "image_url": "send the image as image (or images[])",
    "image_urls": "send the images as image[] (or images[])",
    "sync_mode": "the gateway fetches fal's results itself",
    "max_images": "the gateway asks for one image per generation; send n for more",
}


def read_options(
    extra: Mapping[str, object], model: str, endpoint: Endpoint, taken: list[str]
) -> dict[str, object]:
    """The card's options the client sent, checked and written as the JSON values fal takes."""
    out: dict[str, object] = {}
    offered = [option for option in endpoint.options if option.name in taken]
    for name, raw in extra.items():
        if name in MANAGED:
            raise InvalidRequest(
                f"{name} is set by the gateway for {model}: {MANAGED[name]}.",
                param=name,
                code="unsupported_parameter",
            )
        option = next((o for o in offered if o.name == name), None)
        if option is None:
            if name in FAL_OPTIONS:
                takes = ", ".join(o.name for o in offered) or "none"
                raise InvalidRequest(
                    f"{name} is an option of other fal endpoints; {model} does not take it "
                    f"(its options: {takes}).",
                    param=name,
                    code="unsupported_parameter",
                )
            continue  # not fal's: never forwarded
        if raw is None or raw == "":
            continue
        out[name] = _coerce(option, raw, model)
    return out


def _coerce(option: Option, raw: object, model: str) -> object:
    name = option.name
    if option.kind == "bool":
        if isinstance(raw, bool):
            return raw
        value = raw.strip().lower() if isinstance(raw, str) else ""
        if value in _TRUE or value in _FALSE:
            return value in _TRUE
        raise InvalidRequest(
            f"{name} must be true or false; got {show_value(raw)}.", param=name, code="invalid_type"
        )
    if option.kind == "text":
        if not isinstance(raw, str):
            raise InvalidRequest(f"{name} must be a string.", param=name, code="invalid_type")
        if option.maximum is not None and len(raw) > option.maximum:
            raise InvalidRequest(
                f"{name} is {len(raw):,} characters; {model} takes at most {option.maximum:,.0f}.",
                param=name,
                code="string_above_max_length",
            )
        return raw
    if option.kind == "enum":
        # A number is read as its text: safety_tolerance=2 means fal's "2".
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = str(raw)
        else:
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
    return int(number) if option.kind == "int" else number
