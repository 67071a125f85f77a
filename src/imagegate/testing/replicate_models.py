"""The input schemas of the Replicate models the fake serves, and their validation, as Replicate
checks a prediction's ``input`` against a model's OpenAPI schema.

Written from the models' replicate.com API pages, independently of the gateway's own table
(``providers/replicate/inputs.py``), so a wrong key there is a 422 here. Every problem is one
``invalid_fields`` entry (``{type, field: "input.<key>", description}``); unknown keys are
refused (Replicate's schemas are closed).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

from PIL import Image

from imagegate.testing.fake import decode_image

Kind = Literal["string", "uri", "uris", "int", "bool", "enum"]
_DATA_URI = re.compile(r"^data:(image/(?:png|jpeg|jpg|webp|gif));base64,(.*)$", re.S)
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
TIERS = {"1K": 64, "2K": 128, "4K": 256}  # the long side of a result, kept small for the tests
CUSTOM_SCALE = 16  # size=custom results are width/16 x height/16


@dataclass(frozen=True)
class Input:
    kind: Kind
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_items: int | None = None


@dataclass(frozen=True)
class Schema:
    inputs: dict[str, Input]
    output: Literal["string", "array"]  # one URI, or a list of them
    default_format: Literal["png", "jpeg"]
    default_ratio: str = "match_input_image"


KONTEXT_RATIOS = (
    "match_input_image",
    *("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "4:5", "5:4", "21:9", "9:21"),
    *("2:1", "1:2"),
)
NANO_RATIOS = (
    "match_input_image",
    *("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"),
)
SEEDREAM_RATIOS = (
    "match_input_image",
    *("1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3", "21:9"),
)

SCHEMAS: dict[str, Schema] = {
    "black-forest-labs/flux-kontext-pro": Schema(
        {
            "prompt": Input("string", required=True),
            "input_image": Input("uri"),
            "aspect_ratio": Input("enum", choices=KONTEXT_RATIOS),
            "prompt_upsampling": Input("bool"),
            "seed": Input("int"),
            "output_format": Input("enum", choices=("jpg", "png")),
            "safety_tolerance": Input("int", minimum=0, maximum=6),
        },
        output="string",
        default_format="png",
    ),
    "google/nano-banana": Schema(
        {
            "prompt": Input("string", required=True),
            "image_input": Input("uris"),
            "aspect_ratio": Input("enum", choices=NANO_RATIOS),
            "output_format": Input("enum", choices=("jpg", "png")),
        },
        output="string",
        default_format="jpeg",
    ),
    "bytedance/seedream-4": Schema(
        {
            "prompt": Input("string", required=True),
            "image_input": Input("uris", max_items=10),
            "size": Input("enum", choices=("1K", "2K", "4K", "custom")),
            "aspect_ratio": Input("enum", choices=SEEDREAM_RATIOS),
            "width": Input("int", minimum=1024, maximum=4096),
            "height": Input("int", minimum=1024, maximum=4096),
            "sequential_image_generation": Input("enum", choices=("disabled", "auto")),
            "max_images": Input("int", minimum=1, maximum=15),
            "enhance_prompt": Input("bool"),
        },
        output="array",
        default_format="jpeg",
    ),
}


@dataclass
class Checked:
    """An input that passed: its values (images decoded) and what was wrong, if anything."""

    values: dict[str, Any] = field(default_factory=dict)
    images: list[tuple[Image.Image, str]] = field(default_factory=list)  # (image, PIL format)
    image_field: str | None = None  # "string" or "list"
    problems: list[dict[str, str]] = field(default_factory=list)

    def refuse(self, key: str, kind: str, description: str) -> None:
        self.problems.append(
            {"type": kind, "field": f"input.{key}" if key else "input", "description": description}
        )


def check_input(schema: Schema, doc: object) -> Checked:
    checked = Checked()
    if not isinstance(doc, dict):
        checked.refuse("", "type", "input must be an object")
        return checked
    for key, wanted in schema.inputs.items():
        if wanted.required and key not in doc:
            checked.refuse("", "required", f"{key} is required")
    for key, value in doc.items():
        spec = schema.inputs.get(key)
        if spec is None:
            checked.refuse(key, "additional_property_not_allowed", f"{key} is not an input")
            continue
        problem = _check_value(spec, key, value, checked)
        if problem is not None:
            checked.refuse(key, *problem)
        else:
            checked.values[key] = value
    return checked


def _check_value(spec: Input, key: str, value: object, checked: Checked) -> tuple[str, str] | None:
    if spec.kind == "string":
        return None if isinstance(value, str) and value.strip() else ("type", f"{key}: string")
    if spec.kind == "bool":
        return (
            None if isinstance(value, bool) else ("type", f"{key}: Invalid type. Expected: boolean")
        )
    if spec.kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return "type", f"{key}: Invalid type. Expected: integer, given: {type(value).__name__}"
        if spec.minimum is not None and value < spec.minimum:
            return "number_gte", f"{key}: Must be greater than or equal to {spec.minimum}"
        if spec.maximum is not None and value > spec.maximum:
            return "number_lte", f"{key}: Must be less than or equal to {spec.maximum}"
        return None
    if spec.kind == "enum":
        if value not in spec.choices:
            return "enum", f"{key} must be one of the following: {', '.join(spec.choices)}"
        return None
    if spec.kind == "uri":
        if not isinstance(value, str):
            return "type", f"{key}: Invalid type. Expected: string"
        checked.image_field = "string"
        return _image(value, key, checked)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return "type", f"{key}: Invalid type. Expected: array of strings"
    if spec.max_items is not None and len(value) > spec.max_items:
        return "array_max_items", f"{key}: Array must have at most {spec.max_items} items"
    checked.image_field = "list"
    for index, item in enumerate(value):
        problem = _image(item, f"{key}.{index}", checked)
        if problem is not None:
            return problem
    return None


def _image(value: str, key: str, checked: Checked) -> tuple[str, str] | None:
    match = _DATA_URI.match(value)
    if match is None:
        return "format", f"{key}: this fake takes base64 data URIs only"
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return "format", f"{key}: the data URI is not base64"
    image = decode_image(data)
    if image is None:
        return "format", f"{key}: the file is not an image"
    with Image.open(io.BytesIO(data)) as opened:
        fmt = str(opened.format)
    if _MIME.get(fmt) != match.group(1).replace("jpg", "jpeg"):
        return "format", f"{key}: the data URI says {match.group(1)} but the file is {fmt}"
    checked.images.append((image, fmt))
    return None


def check_combined(model: str, checked: Checked) -> None:
    """The limits that span inputs, as the models state them."""
    values = checked.values
    if model == "black-forest-labs/flux-kontext-pro":
        tolerance = values.get("safety_tolerance")
        if isinstance(tolerance, int) and tolerance > 2 and "input_image" in values:
            checked.refuse(
                "safety_tolerance",
                "number_lte",
                "safety_tolerance: 2 is currently the maximum allowed when input images are used",
            )
    if model == "bytedance/seedream-4":
        outputs = values.get("max_images", 1)
        if values.get("sequential_image_generation") != "auto":
            outputs = 1
        if len(checked.images) + outputs > 15:
            checked.refuse(
                "max_images", "number_lte", "Total images (input + generated) cannot exceed 15"
            )
        if values.get("size") != "custom" and ("width" in values or "height" in values):
            checked.refuse("width", "unused", "width and height are used only with size=custom")


def result_size(
    schema: Schema, values: dict[str, Any], first: Image.Image | None
) -> tuple[int, int]:
    """The size the fake makes: the first input's for match_input_image, else the asked shape
    (and tier) at a small long side; size=custom at a sixteenth of its pixels."""
    source = first.size if first is not None else (64, 64)
    if values.get("size") == "custom":
        return values.get("width", 2048) // CUSTOM_SCALE, values.get("height", 2048) // CUSTOM_SCALE
    ratio = values.get("aspect_ratio", schema.default_ratio)
    long_side = TIERS.get(values.get("size", "2K"), 128) if "size" in schema.inputs else None
    if ratio == "match_input_image":
        if long_side is None:
            return source
        shape = Fraction(source[0], source[1])
    else:
        left, right = str(ratio).split(":")
        shape = Fraction(left) / Fraction(right)
        long_side = long_side or 128
    if shape >= 1:
        return long_side, max(1, round(long_side / shape))
    return max(1, round(long_side * shape)), long_side


def encode(png: bytes, fmt: str) -> bytes:
    if fmt == "png":
        return png
    with Image.open(io.BytesIO(png)) as opened:
        out = io.BytesIO()
        opened.convert("RGB").save(out, format="JPEG", quality=90)
        return out.getvalue()
