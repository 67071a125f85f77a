"""What the Black Forest Labs fake checks in a submit body, as BFL's OpenAPI schema says: the
keys each model takes, the prompt, the images (raw base64 of real images, in order, up to the
model's count), the size fields, ``output_format``, ``seed`` and the options with their ranges.
Every refusal is an ``Invalid``: FastAPI's 422 ``{"detail": [{loc, msg, type}]}``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import orjson
from PIL import Image
from starlette.requests import Request
from starlette.responses import Response

from imagegate.testing.fake import decode_image, json_response

KONTEXT_MAX_RATIO = Fraction(21, 9)
MAX_PIXELS = 2048 * 2048
LONG_SIDE = 128  # a result's long side for an aspect ratio, kept small for the tests
FORMATS = ("png", "jpeg")
_RATIO = re.compile(r"^([0-9]{1,4}):([0-9]{1,4})$")
_BASE64 = re.compile(rb"^[A-Za-z0-9+/]+={0,2}$")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    family: Literal["kontext", "flux2"]
    max_images: int
    max_safety: int
    first_mp: float  # credits (Kontext: per image)
    extra_mp: float
    default_format: str

    @property
    def keys(self) -> frozenset[str]:
        common = {"prompt", "seed", "output_format", "safety_tolerance", "webhook_url"}
        common |= {"webhook_secret"} | {image_key(i) for i in range(self.max_images)}
        if self.family == "kontext":
            return frozenset(common | {"aspect_ratio", "prompt_upsampling"})
        return frozenset(common | {"width", "height"})


MODELS = {
    "flux-kontext-pro": ModelSpec("kontext", 4, 6, 4.0, 0.0, "png"),
    "flux-kontext-max": ModelSpec("kontext", 4, 6, 8.0, 0.0, "png"),
    "flux-2-pro": ModelSpec("flux2", 8, 5, 3.0, 1.5, "jpeg"),
    "flux-2-max": ModelSpec("flux2", 8, 5, 7.0, 3.0, "jpeg"),
}


class Invalid(Exception):
    """A 422 in FastAPI's shape."""

    def __init__(self, loc: str, msg: str, kind: str = "value_error") -> None:
        super().__init__(msg)
        self.loc, self.msg, self.kind = loc, msg, kind

    def response(self) -> Response:
        loc = ["body", self.loc] if self.loc else ["body"]
        return json_response({"detail": [{"loc": loc, "msg": self.msg, "type": self.kind}]}, 422)


@dataclass(frozen=True, slots=True)
class Checked:
    """A body that passed: what the fake renders."""

    prompt: str
    images: list[Image.Image]
    seed: int | None
    output_format: str
    size: tuple[int, int]


def check_body(spec: ModelSpec, doc: dict[str, Any]) -> Checked:
    for key in doc:
        if key not in spec.keys:
            raise Invalid(key, "Extra inputs are not permitted", "extra_forbidden")
    prompt = doc.get("prompt")
    if "prompt" not in doc:
        raise Invalid("prompt", "Field required", "missing")
    if not isinstance(prompt, str):
        raise Invalid("prompt", "Input should be a valid string", "string_type")
    images = images_of(doc, spec)
    seed = doc.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise Invalid("seed", "Input should be a valid integer", "int_type")
    output_format = doc.get("output_format") or spec.default_format
    if output_format not in FORMATS:
        raise Invalid("output_format", "Input should be 'jpeg' or 'png'", "enum")
    tolerance = doc.get("safety_tolerance", 2)
    if not isinstance(tolerance, int) or isinstance(tolerance, bool):
        raise Invalid("safety_tolerance", "Input should be a valid integer", "int_type")
    high = spec.max_safety if not (images and spec.family == "kontext") else 2
    if not 0 <= tolerance <= high:
        raise Invalid(
            "safety_tolerance",
            f"Input should be between 0 and {high}"
            + (" when input images are used" if high == 2 else ""),
            "less_than_equal",
        )
    first = images[0] if images else None
    size = first.size if first is not None else (64, 64)
    if spec.family == "kontext":
        upsampling = doc.get("prompt_upsampling", False)
        if not isinstance(upsampling, bool):
            raise Invalid("prompt_upsampling", "Input should be a valid boolean", "bool_type")
        ratio = doc.get("aspect_ratio")
        if ratio is not None:
            size = ratio_size(ratio)
    else:
        pixels = pixels_of(doc.get("width"), doc.get("height"))
        if pixels is not None:
            size = pixels
    return Checked(prompt, images, seed, output_format, size)


def image_key(index: int) -> str:
    return "input_image" if index == 0 else f"input_image_{index + 1}"


async def json_body(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    raw = await request.body()
    if content_type != "application/json":
        raise Invalid(
            "",
            "Input should be a valid dictionary or object to extract fields from",
            "model_attributes_type",
        )
    try:
        doc = orjson.loads(raw)
    except ValueError:
        raise Invalid("", "JSON decode error", "json_invalid") from None
    if not isinstance(doc, dict):
        raise Invalid("", "Input should be a valid dictionary", "model_attributes_type")
    return doc


def summary_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The body as a test checks it: its keys and every value that is not an image."""
    summary: dict[str, Any] = {"keys": sorted(doc)}
    for key in ("prompt", "seed", "aspect_ratio", "width", "height", "output_format"):
        if key in doc:
            summary[key] = doc[key]
    for key in ("safety_tolerance", "prompt_upsampling"):
        if key in doc:
            summary[key] = doc[key]
    return summary


def images_of(doc: dict[str, Any], spec: ModelSpec) -> list[Image.Image]:
    present = [i for i in range(8) if doc.get(image_key(i)) is not None]
    if present and present != list(range(len(present))):
        gap = next(i for i in range(8) if i not in present)
        raise Invalid(image_key(gap), "Input images must be given in order, without gaps")
    if len(present) > spec.max_images:
        raise Invalid(
            image_key(spec.max_images), "Extra inputs are not permitted", "extra_forbidden"
        )
    images = []
    for index in present:
        key = image_key(index)
        value = doc[key]
        if not isinstance(value, str):
            raise Invalid(key, "Input should be a valid string", "string_type")
        if value.startswith(("http://", "https://", "data:")):
            raise Invalid(key, "This fake takes raw base64 only (it fetches nothing)")
        raw = value.encode()
        if not _BASE64.match(raw):
            raise Invalid(key, "Invalid base64-encoded string")
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(key, "Invalid base64-encoded string") from None
        image = decode_image(data)
        if image is None:
            raise Invalid(key, "Could not decode the image")
        images.append(image)
    return images


def ratio_size(ratio: object) -> tuple[int, int]:
    match = _RATIO.match(ratio) if isinstance(ratio, str) else None
    if match is None or not int(match[1]) or not int(match[2]):
        raise Invalid("aspect_ratio", "Aspect ratio must be W:H, such as 16:9")
    shape = Fraction(int(match[1]), int(match[2]))
    if not 1 / KONTEXT_MAX_RATIO <= shape <= KONTEXT_MAX_RATIO:
        raise Invalid("aspect_ratio", "Aspect ratio must be between 21:9 and 9:21")
    if shape >= 1:
        return LONG_SIDE, max(1, round(LONG_SIDE / shape))
    return max(1, round(LONG_SIDE * shape)), LONG_SIDE


def pixels_of(width: object, height: object) -> tuple[int, int] | None:
    for name, value in (("width", width), ("height", height)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise Invalid(name, "Input should be a valid integer", "int_type")
    w, h = width or 0, height or 0
    assert isinstance(w, int) and isinstance(h, int)
    if not w and not h:
        return None
    if not w or not h:
        raise Invalid("width" if not w else "height", "width and height go together")
    for name, value in (("width", w), ("height", h)):
        if value < 64:
            raise Invalid(name, "Input should be greater than or equal to 64", "greater_than_equal")
        if value % 16:
            raise Invalid(name, "Input should be a multiple of 16", "multiple_of")
    if w * h > MAX_PIXELS:
        raise Invalid("width", "The image must be at most 4 megapixels")
    return w, h
