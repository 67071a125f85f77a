"""The text fields of an edit request: one table, coerced the same way for both wire shapes.

Multipart sends every value as a string (``n=2``, ``stream=true``); JSON sends typed values. Each
field is coerced by its spec and refused with a message that says what to send instead. Fields
outside the table are kept, uninterpreted, in ``EditRequest.extra``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

import orjson

from imagegate.core.errors import InvalidRequest
from imagegate.core.images import ImageFormat
from imagegate.core.request import (
    Background,
    EditRequest,
    ImageInput,
    OutputOptions,
    ResponseFormat,
    SizingRequest,
)

Kind = Literal["str", "int", "bool", "enum", "size", "ratio", "tier"]

_SIZE_RE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_RATIO_RE = re.compile(r"^\d{1,4}(\.\d{1,3})?:\d{1,4}(\.\d{1,3})?$")
_TIER_RE = re.compile(r"^(\d{1,4}(\.\d)?[kK]?|\d{3,4})$")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: Kind
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None


MAX_PROMPT_CHARS = 32_000
# OpenAI's metadata convention: up to 16 pairs, keys up to 64 characters, values up to 512.
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512

FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec("model", "str", max_length=256),
        FieldSpec("prompt", "str", max_length=MAX_PROMPT_CHARS),
        FieldSpec("n", "int", minimum=1, maximum=10),
        FieldSpec("size", "size"),
        FieldSpec(
            "quality", "enum", ("auto", "low", "medium", "high", "standard", "hd", "xhigh", "max")
        ),
        FieldSpec("response_format", "enum", ("b64_json", "url")),
        FieldSpec("output_format", "enum", ("png", "jpeg", "webp")),
        FieldSpec("output_compression", "int", minimum=0, maximum=100),
        FieldSpec("background", "enum", ("transparent", "opaque", "auto")),
        FieldSpec("input_fidelity", "enum", ("high", "low")),
        FieldSpec("partial_images", "int", minimum=0, maximum=3),
        FieldSpec("stream", "bool"),
        FieldSpec("user", "str", max_length=256),
        FieldSpec("moderation", "enum", ("low", "auto")),
        FieldSpec("seed", "int", minimum=0, maximum=2**32 - 1),
        FieldSpec("width", "int", minimum=1, maximum=16_384),
        FieldSpec("height", "int", minimum=1, maximum=16_384),
        FieldSpec("aspect_ratio", "ratio"),
        FieldSpec("resolution", "tier"),
        FieldSpec("image_size", "str", max_length=64),
    )
}

# Spellings people use for a value we know under another name.
_ENUM_ALIASES: dict[str, dict[str, str]] = {"output_format": {"jpg": "jpeg"}}
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def coerce(spec: FieldSpec, raw: object, *, from_json: bool) -> object:
    """Return the typed value of one field, or raise InvalidRequest naming the field."""
    name = spec.name
    if spec.kind == "bool":
        return _coerce_bool(name, raw, from_json=from_json)
    if spec.kind == "int":
        return _coerce_int(spec, raw, from_json=from_json)
    if not isinstance(raw, str):
        raise InvalidRequest(
            f"{name} must be a string, not {_json_type(raw)}.", param=name, code="invalid_type"
        )
    if spec.max_length is not None and len(raw) > spec.max_length:
        raise InvalidRequest(
            f"{name} is {len(raw):,} characters long; the limit is {spec.max_length:,}.",
            param=name,
            code="string_above_max_length",
        )
    if spec.kind == "enum":
        value = raw.strip().lower()
        value = _ENUM_ALIASES.get(name, {}).get(value, value)
        if value not in spec.choices:
            raise InvalidRequest(
                f"{name} must be one of {', '.join(spec.choices)}; got {_show(raw)}.", param=name
            )
        return value
    if spec.kind == "size":
        value = raw.strip().lower()
        if value == "auto":
            return value
        match = _SIZE_RE.match(value)
        # A zero side is no size for any model (and 64x0 with an aspect_ratio divided by zero
        # further down): refused here, where every model's request passes.
        if match and int(match[1]) > 0 and int(match[2]) > 0:
            return value
        if match:
            raise InvalidRequest(
                f"size must have both sides above 0, such as '1024x1024'; got {_show(raw)}.",
                param=name,
            )
        raise InvalidRequest(
            f"size must be 'auto' or WIDTHxHEIGHT in pixels, such as '1024x1024'; got "
            f"{_show(raw)}.",
            param=name,
        )
    if spec.kind == "ratio":
        value = raw.strip().lower()
        if value in ("auto", "match_input_image"):
            return value
        if _RATIO_RE.match(value) and all(float(side) > 0 for side in value.split(":")):
            return value
        raise InvalidRequest(
            f"aspect_ratio must be W:H with both sides above 0, such as '16:9', or 'auto'; got "
            f"{_show(raw)}.",
            param=name,
        )
    if spec.kind == "tier":
        value = raw.strip()
        if _TIER_RE.match(value):
            return value.upper()
        raise InvalidRequest(
            f"resolution must be a tier such as '1K', '2K' or '4K'; got {_show(raw)}.", param=name
        )
    return raw


def _coerce_bool(name: str, raw: object, *, from_json: bool) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and not from_json:
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
    raise InvalidRequest(
        f"{name} must be true or false; got {_show(raw)}.", param=name, code="invalid_type"
    )


def _coerce_int(spec: FieldSpec, raw: object, *, from_json: bool) -> int:
    name = spec.name
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and raw.is_integer() and from_json:
        value = int(raw)
    elif isinstance(raw, str) and not from_json:
        text = raw.strip()
        if re.fullmatch(r"[+-]?\d{1,20}", text):
            value = int(text)
    if value is None:
        raise InvalidRequest(
            f"{name} must be an integer; got {_show(raw)}.", param=name, code="invalid_type"
        )
    if spec.minimum is not None and value < spec.minimum:
        raise InvalidRequest(
            f"{name} must be at least {spec.minimum}; got {value}.",
            param=name,
            code="integer_below_min_value",
        )
    if spec.maximum is not None and value > spec.maximum:
        raise InvalidRequest(
            f"{name} must be at most {spec.maximum}; got {value}.",
            param=name,
            code="integer_above_max_value",
        )
    return value


def coerce_metadata(raw: object, *, from_json: bool) -> dict[str, str]:
    """``metadata``: a JSON object of strings (in multipart, that object as a JSON string)."""
    if isinstance(raw, str) and not from_json:
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequest(
                "metadata must be a JSON object of strings, such as "
                '\'{"project": "spring-sale"}\'.',
                param="metadata",
                code="invalid_type",
            ) from None
    if not isinstance(raw, dict):
        raise InvalidRequest(
            f"metadata must be an object of string keys and values, not {_json_type(raw)}.",
            param="metadata",
            code="invalid_type",
        )
    if len(raw) > MAX_METADATA_PAIRS:
        raise InvalidRequest(
            f"metadata has {len(raw)} keys; the limit is {MAX_METADATA_PAIRS}.",
            param="metadata",
            code="invalid_value",
        )
    for key, value in raw.items():
        if not isinstance(value, str):
            raise InvalidRequest(
                f"metadata values must be strings; {_show(key)} is {_json_type(value)}.",
                param="metadata",
                code="invalid_type",
            )
        if not key or len(key) > MAX_METADATA_KEY_CHARS:
            raise InvalidRequest(
                f"metadata keys must be 1-{MAX_METADATA_KEY_CHARS} characters; got {_show(key)}.",
                param="metadata",
                code="invalid_value",
            )
        if len(value) > MAX_METADATA_VALUE_CHARS:
            raise InvalidRequest(
                f"metadata values must be at most {MAX_METADATA_VALUE_CHARS} characters; "
                f"{_show(key)} has {len(value):,}.",
                param="metadata",
                code="invalid_value",
            )
    return dict(raw)


def _show(raw: object) -> str:
    """A short echo of what the client sent. Containers are named, not printed: the repr of a
    thousand nested arrays raises RecursionError, and a long one says nothing useful."""
    if isinstance(raw, list | dict):
        return _json_type(raw)
    text = repr(raw[:40] if isinstance(raw, str) else raw)
    return text if len(text) <= 40 else text[:37] + "..."


def _json_type(raw: object) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "a boolean"
    if isinstance(raw, int | float):
        return "a number"
    if isinstance(raw, list):
        return "an array"
    if isinstance(raw, dict):
        return "an object"
    return type(raw).__name__


@dataclass(frozen=True, slots=True)
class Fields:
    """The text fields of a request, coerced: known ones in ``values``, the rest in ``extra``."""

    model: str
    values: Mapping[str, object]
    extra: Mapping[str, object]
    from_json: bool


def coerce_fields(
    raw_fields: Mapping[str, object], *, from_json: bool, default_model: str | None
) -> Fields:
    """Coerce every known field; refuse a missing model or prompt before any image is loaded."""
    values: dict[str, object] = {}
    extra: dict[str, object] = {}
    for name, raw in raw_fields.items():
        if name == "metadata":
            if raw is not None and raw != "":
                values[name] = coerce_metadata(raw, from_json=from_json)
            continue
        spec = FIELDS.get(name)
        if spec is None:
            extra[name] = raw
            continue
        if raw is None or (raw == "" and not from_json and name != "prompt"):
            continue  # absent: JSON null, or an empty form field as HTML forms send
        values[name] = coerce(spec, raw, from_json=from_json)

    model = cast("str | None", values.get("model")) or default_model
    if not model:
        raise InvalidRequest(
            "model is required: name the model to edit with, such as 'local/pillow' "
            "(GET /v1/models lists them).",
            param="model",
            code="missing_required_parameter",
        )
    prompt = cast("str | None", values.get("prompt"))
    if prompt is None or not prompt.strip():
        raise InvalidRequest(
            "prompt is required: describe the edit to make.",
            param="prompt",
            code="missing_required_parameter",
        )
    return Fields(model=model, values=values, extra=extra, from_json=from_json)


def assemble_request(
    fields: Fields, images: list[ImageInput], mask: ImageInput | None
) -> EditRequest:
    if not images:
        hint = "images: [{image_url: ...}]" if fields.from_json else "an 'image' or 'image[]' file"
        raise InvalidRequest(
            f"At least one image is required: send {hint}.",
            param="images" if fields.from_json else "image",
            code="missing_required_parameter",
        )
    values = fields.values
    sizing = SizingRequest(
        size=cast("str | None", values.get("size")),
        width=cast("int | None", values.get("width")),
        height=cast("int | None", values.get("height")),
        aspect_ratio=cast("str | None", values.get("aspect_ratio")),
        resolution=cast("str | None", values.get("resolution")),
        image_size=cast("str | None", values.get("image_size")),
    )
    output = OutputOptions(
        response_format=cast(ResponseFormat, values.get("response_format", "b64_json")),
        output_format=cast("ImageFormat | None", values.get("output_format")),
        output_compression=cast("int | None", values.get("output_compression")),
        background=cast("Background | None", values.get("background")),
        quality=cast("str | None", values.get("quality")),
    )
    return EditRequest(
        model=fields.model,
        prompt=cast(str, values["prompt"]),
        images=tuple(images),
        mask=mask,
        n=cast(int, values.get("n", 1)),
        sizing=sizing,
        output=output,
        stream=cast(bool, values.get("stream", False)),
        partial_images=cast(int, values.get("partial_images", 0)),
        input_fidelity=cast("str | None", values.get("input_fidelity")),
        moderation=cast("str | None", values.get("moderation")),
        seed=cast("int | None", values.get("seed")),
        user=cast("str | None", values.get("user")),
        metadata=cast("dict[str, str] | None", values.get("metadata")),
        extra=fields.extra,
    )
