"""What OpenAI's ``POST /images/edits`` checks in a multipart form, for the strict fakes
(``testing.openai``, ``testing.azure``): each mismatch is a ``Refusal`` carrying the error
OpenAI answers with."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from imagegate.testing.fake import decode_image, json_response

MB = 1024 * 1024
GPT_MODELS = frozenset(
    {"gpt-image-1", "gpt-image-1.5", "gpt-image-1-mini", "gpt-image-2", "chatgpt-image-latest"}
)
LEGACY_MODELS = frozenset({"dall-e-2"})
GPT_SIZES = frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"})
LEGACY_SIZES = frozenset({"256x256", "512x512", "1024x1024"})
CUSTOM_SIZE_MODELS = frozenset({"gpt-image-2"})
NO_FIDELITY_MODELS = frozenset({"gpt-image-1-mini", "gpt-image-2"})
FILE_FIELDS = frozenset({"image", "image[]", "mask"})
GPT_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "n",
        "size",
        "quality",
        "background",
        "output_format",
        "output_compression",
        "input_fidelity",
        "moderation",
        "stream",
        "partial_images",
        "user",
        "safety_identifier",
    }
)
LEGACY_FIELDS = frozenset({"model", "prompt", "n", "size", "quality", "response_format", "user"})
IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
EXTENSIONS = {"image/png": (".png",), "image/jpeg": (".jpg", ".jpeg"), "image/webp": (".webp",)}


class Refusal(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def openai_error(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    **more: Any,
) -> Response:
    error = {"message": message, "type": kind, "param": param, "code": code, **more}
    return json_response({"error": error}, status, headers)


def invalid(message: str, *, param: str | None = None, code: str = "invalid_value") -> Refusal:
    return Refusal(openai_error(400, message, param=param, code=code))


@dataclass
class Edit:
    """A request that passed every check."""

    model: str
    prompt: str
    images: list[Image.Image]
    n: int = 1
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str = "png"
    output_compression: int | None = None
    stream: bool = False
    partial_images: int = 0
    response_format: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


async def read_edit(form: FormData, model: str) -> Edit:
    """The edit a form asks for, or the ``Refusal`` OpenAI would answer it with."""
    if model in ("dall-e-3",):
        raise invalid(
            f"Invalid value: '{model}'. Image edits take dall-e-2 and the GPT image models.",
            param="model",
        )
    if model not in GPT_MODELS | LEGACY_MODELS:
        raise invalid(
            f"Invalid value: '{model}'. Supported values are: "
            + ", ".join(f"'{m}'" for m in sorted(GPT_MODELS | LEGACY_MODELS))
            + ".",
            param="model",
        )
    legacy = model in LEGACY_MODELS
    allowed = LEGACY_FIELDS if legacy else GPT_FIELDS
    for name, value in form.multi_items():
        if name in FILE_FIELDS:
            if not isinstance(value, UploadFile):
                raise invalid(
                    f"Invalid type for '{name}': expected a file, but got a string instead.",
                    param=name,
                    code="invalid_type",
                )
            continue
        if isinstance(value, UploadFile):
            raise invalid(
                f"Invalid type for '{name}': expected a string, but got a file instead.",
                param=name,
                code="invalid_type",
            )
        if name not in allowed:
            if name == "response_format" or name not in GPT_FIELDS:
                raise invalid(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
            raise invalid(
                f"'{name}' is not supported with {model}.",
                param=name,
                code="unsupported_parameter",
            )
    text = {name: str(value) for name, value in form.items() if name not in FILE_FIELDS}
    prompt = text.get("prompt", "")
    if not prompt:
        raise invalid(
            "Missing required parameter: 'prompt'.",
            param="prompt",
            code="missing_required_parameter",
        )
    limit = 1000 if legacy else 32000
    if len(prompt) > limit:
        raise invalid(
            f"Invalid 'prompt': string too long. Expected a string with maximum length "
            f"{limit}, but got a string with length {len(prompt)} instead.",
            param="prompt",
            code="string_above_max_length",
        )
    images = await _images(form, legacy)
    await _mask(form, images[0])
    edit = Edit(model=model, prompt=prompt, images=images)
    edit.n = _integer(text, "n", 1, 1, 10)
    edit.size = _size(text.get("size"), model, legacy)
    edit.quality = _choice(
        text, "quality", {"standard"} if legacy else {"low", "medium", "high", "auto"}
    )
    if legacy:
        edit.response_format = _choice(text, "response_format", {"url", "b64_json"})
        return edit
    edit.background = _choice(text, "background", {"transparent", "opaque", "auto"})
    edit.output_format = _choice(text, "output_format", {"png", "jpeg", "webp"}) or "png"
    if "output_compression" in text:
        edit.output_compression = _integer(text, "output_compression", 100, 0, 100)
        if edit.output_format == "png":
            raise invalid(
                "output_compression is only supported with output_format jpeg or webp.",
                param="output_compression",
            )
    if edit.background == "transparent" and edit.output_format == "jpeg":
        raise invalid("Transparent backgrounds need output_format png or webp.", param="background")
    fidelity = _choice(text, "input_fidelity", {"high", "low"})
    if fidelity is not None and model in NO_FIDELITY_MODELS:
        raise invalid(
            f"input_fidelity is not supported for {model}.",
            param="input_fidelity",
            code="unsupported_parameter",
        )
    _choice(text, "moderation", {"low", "auto"})
    edit.stream = _choice(text, "stream", {"true", "false"}) == "true"
    edit.partial_images = _integer(text, "partial_images", 0, 0, 3)
    return edit


async def _images(form: FormData, legacy: bool) -> list[Image.Image]:
    parts = [(name, part) for name, part in form.multi_items() if name in ("image", "image[]")]
    if not parts:
        raise invalid(
            "Missing required parameter: 'image'.",
            param="image",
            code="missing_required_parameter",
        )
    limit = 1 if legacy else 16
    if len(parts) > limit:
        raise invalid(
            f"Invalid 'image': too many images ({len(parts)}); the maximum is {limit}.",
            param="image",
            code="array_above_max_length",
        )
    images = []
    for name, part in parts:
        assert isinstance(part, UploadFile)
        image, size = await _read_part(part, name)
        if legacy:
            if image.format != "PNG" or image.width != image.height or size >= 4 * MB:
                raise invalid(
                    "Invalid 'image': dall-e-2 takes one square PNG image under 4 MB.",
                    param=name,
                )
        elif size >= 50 * MB:
            raise invalid(f"Invalid '{name}': each image must be under 50 MB.", param=name)
        images.append(image)
    return images


async def _mask(form: FormData, first: Image.Image) -> None:
    part = form.get("mask")
    if part is None:
        return
    assert isinstance(part, UploadFile)
    mask, size = await _read_part(part, "mask")
    if mask.format != "PNG" or size >= 4 * MB:
        raise invalid("Invalid 'mask': the mask must be a PNG under 4 MB.", param="mask")
    if mask.mode not in ("RGBA", "LA", "PA") and "transparency" not in mask.info:
        raise invalid("Invalid 'mask': the mask must have an alpha channel.", param="mask")
    if mask.size != first.size:
        raise invalid(
            f"Invalid 'mask': mask size {mask.width}x{mask.height} does not match image "
            f"size {first.width}x{first.height}.",
            param="mask",
        )


def _size(size: str | None, model: str, legacy: bool) -> str | None:
    if size is None:
        return None
    listed = LEGACY_SIZES if legacy else GPT_SIZES
    if size in listed:
        return size
    match = re.fullmatch(r"(\d+)x(\d+)", size)
    if model in CUSTOM_SIZE_MODELS and match:
        width, height = int(match.group(1)), int(match.group(2))
        if (
            width % 16 == 0
            and height % 16 == 0
            and max(width, height) <= 3840
            and width * height <= 3840 * 2160
            and max(width, height) <= 3 * min(width, height)
        ):
            return size
    raise invalid(
        f"Invalid value: '{size}'. Supported values are: "
        + ", ".join(f"'{s}'" for s in sorted(listed))
        + (", or WxH in multiples of 16" if model in CUSTOM_SIZE_MODELS else "")
        + ".",
        param="size",
    )


def describe(form: FormData) -> dict[str, Any]:
    """What a test checks about a form: names, part types and text values, never bytes."""
    files = [
        [name, value.filename, value.content_type]
        for name, value in form.multi_items()
        if isinstance(value, UploadFile)
    ]
    values = {
        name: str(value)
        for name, value in form.multi_items()
        if not isinstance(value, UploadFile) and name != "prompt"
    }
    prompt = form.get("prompt")
    return {
        "images": sum(1 for name, *_ in files if name in ("image", "image[]")),
        "mask": any(name == "mask" for name, *_ in files),
        "fields": sorted([*values, *(["prompt"] if prompt is not None else [])]),
        "files": files,
        "values": values,
        "prompt_chars": len(prompt) if isinstance(prompt, str) else 0,
    }


async def _read_part(part: UploadFile, name: str) -> tuple[Image.Image, int]:
    content_type = (part.content_type or "").split(";")[0].strip().lower()
    if content_type not in IMAGE_TYPES:
        raise invalid(
            f"Invalid file '{name}': unsupported mimetype ('{content_type or 'none'}'). Supported "
            "file formats are 'image/jpeg', 'image/png', and 'image/webp'.",
            param=name,
            code="unsupported_file_mimetype",
        )
    filename = (part.filename or "").lower()
    if not filename.endswith(EXTENSIONS[content_type]):
        raise invalid(
            f"Invalid file '{name}': the filename '{part.filename}' does not match its type "
            f"{content_type}.",
            param=name,
        )
    data = await part.read()
    image = decode_image(data)
    if image is not None:
        with Image.open(io.BytesIO(data)) as opened:
            image.format = opened.format  # a decoded copy forgets what it was
    if image is None or image.format != IMAGE_TYPES[content_type]:
        raise invalid(
            f"Invalid image file or mode for '{name}'; please check your image file.",
            param=name,
            code="invalid_image",
        )
    return image, len(data)


def _choice(text: dict[str, str], name: str, allowed: set[str]) -> str | None:
    value = text.get(name)
    if value is None:
        return None
    if value not in allowed:
        raise invalid(
            f"Invalid value: '{value}'. Supported values are: "
            + ", ".join(f"'{v}'" for v in sorted(allowed))
            + ".",
            param=name,
        )
    return value


def _integer(text: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = text.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?\d+", raw):
        raise invalid(
            f"Invalid type for '{name}': expected an integer.", param=name, code="invalid_type"
        )
    value = int(raw)
    if value < low:
        raise invalid(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}.",
            param=name,
            code="integer_below_min_value",
        )
    if value > high:
        raise invalid(
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}.",
            param=name,
            code="integer_above_max_value",
        )
    return value
