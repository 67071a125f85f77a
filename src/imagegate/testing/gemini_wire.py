"""What the Gemini fake checks in a generateContent call, as Google checks it: every field name
(snake_case or camelCase, as REST takes both; an unknown one is "Unknown name ... Cannot find
field"), the parts and their images, and the generation config each model takes. Every refusal
is a ``Refusal`` carrying Google's RPC error envelope.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any

import orjson
from PIL import Image
from starlette.responses import Response

from imagegate.testing.fake import decode_image, json_response

BASE_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
EXTREME_RATIOS = ("1:4", "4:1", "1:8", "8:1")
# Output pixels at 1K (Gemini's published table); "512" halves them, 2K doubles, 4K quadruples.
MAX_IMAGES = 14
MAX_PAYLOAD = 100 * 1024 * 1024
IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
OTHER_IMAGE_TYPES = frozenset({"image/heic", "image/heif"})
TOP_LEVEL = {"contents", "tools", "toolConfig", "safetySettings", "systemInstruction"}
TOP_LEVEL |= {"generationConfig", "cachedContent", "model"}
GENERATION = {"stopSequences", "responseMimeType", "responseSchema", "candidateCount"}
GENERATION |= {"maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty"}
GENERATION |= {"frequencyPenalty", "responseLogprobs", "logprobs", "responseModalities"}
GENERATION |= {"mediaResolution", "thinkingConfig", "imageConfig", "speechConfig"}
IMAGE_CONFIG = {"aspectRatio", "imageSize"}  # Vertex adds outputMimeType, personGeneration...


@dataclass(frozen=True)
class Model:
    ratios: tuple[str, ...]
    sizes: tuple[str, ...]  # empty: imageSize is ignored (always 1K)
    input_tokens: int  # per input image
    output_tokens: dict[str, int]  # by tier
    thinking: bool


FLASH_25 = Model(BASE_RATIOS, (), 258, {"1K": 1290}, thinking=False)
PRO_3 = Model(BASE_RATIOS, ("1K", "2K", "4K"), 560, {"1K": 1120, "2K": 1120, "4K": 2000}, True)
FLASH_31 = Model(
    BASE_RATIOS + EXTREME_RATIOS,
    ("512", "1K", "2K", "4K"),
    1120,
    {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520},
    thinking=True,
)
MODELS = {
    "gemini-2.5-flash-image": FLASH_25,
    "gemini-3-pro-image-preview": PRO_3,
    "gemini-3-pro-image": PRO_3,
    "gemini-3.1-flash-image-preview": FLASH_31,
    "gemini-3.1-flash-image": FLASH_31,
}


class Refusal(Exception):
    """A request the real service refuses: raised while checking, answered in its envelope."""

    def __init__(self, status: int, state: str, message: str, details: list[Any] | None = None):
        super().__init__(message)
        self.response = google_error(status, state, message, details)


def google_error(
    status: int, state: str, message: str, details: list[Any] | None = None
) -> Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": state}
    if details:
        error["details"] = details
    return json_response({"error": error}, status)


def _unknown(name: str, where: str = "") -> Refusal:
    at = f" at '{where}'" if where else ""
    return Refusal(
        400,
        "INVALID_ARGUMENT",
        f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.',
        [{"@type": "type.googleapis.com/google.rpc.BadRequest"}],
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _fields(doc: dict[str, Any], known: set[str], where: str = "") -> dict[str, Any]:
    """``doc`` with snake_case names read as camelCase (REST takes both); unknown names refused."""
    out: dict[str, Any] = {}
    for name, value in doc.items():
        camel = _camel(name)
        if camel not in known:
            raise _unknown(name, where)
        out[camel] = value
    return out


def bad_key() -> Refusal:
    return Refusal(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    )


@dataclass
class Checked:
    """A body that passed: what the fake records and answers from."""

    top_level: list[str]
    parts: list[dict[str, Any]]
    images: list[Image.Image]
    config: dict[str, Any]


def check_body(body: bytes, content_type: str, model_name: str, model: Model) -> Checked:
    """The body of a generateContent call, checked as Google checks it."""
    if len(body) > MAX_PAYLOAD:
        raise Refusal(
            400, "INVALID_ARGUMENT", f"Request payload size exceeds the limit: {MAX_PAYLOAD}"
        )
    content_type = content_type.split(";")[0].strip().lower()
    if content_type != "application/json":
        raise Refusal(
            400, "INVALID_ARGUMENT", f"Invalid JSON payload: Content-Type {content_type!r}."
        )
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Refusal(400, "INVALID_ARGUMENT", "Invalid JSON payload received.") from None
    if not isinstance(doc, dict):
        raise Refusal(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
    top = _fields(doc, TOP_LEVEL)
    contents = top.get("contents")
    if not isinstance(contents, list) or not contents:
        raise Refusal(
            400,
            "INVALID_ARGUMENT",
            "* GenerateContentRequest.contents: contents is not specified",
        )
    parts: list[dict[str, Any]] = []
    images: list[Image.Image] = []
    for c, content in enumerate(contents):
        if not isinstance(content, dict):
            raise Refusal(400, "INVALID_ARGUMENT", f"Invalid value at 'contents[{c}]'.")
        content = _fields(content, {"role", "parts"}, f"contents[{c}]")
        if content.get("role", "user") not in ("user", "model"):
            raise Refusal(400, "INVALID_ARGUMENT", "Please use a valid role: user, model.")
        for p, part in enumerate(content.get("parts") or []):
            parts.append(check_part(part, f"contents[{c}].parts[{p}]", images))
    if len(images) > MAX_IMAGES:
        raise Refusal(
            400,
            "INVALID_ARGUMENT",
            f"{len(images)} images were sent; {model_name} takes at most {MAX_IMAGES}.",
        )
    config = check_config(top.get("generationConfig"), model_name, model)
    return Checked(sorted(top), parts, images, config)


def check_part(part: object, where: str, images: list[Image.Image]) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise Refusal(400, "INVALID_ARGUMENT", f"Invalid value at '{where}'.")
    known = {"text", "inlineData", "fileData", "thought", "thoughtSignature"}
    names = [name for name in part if _camel(name) in known - {"thought", "thoughtSignature"}]
    fields = _fields(part, known, where)
    if len(names) != 1:
        raise Refusal(
            400, "INVALID_ARGUMENT", f"Invalid value at '{where}': a part holds one datum."
        )
    if "text" in fields:
        if not isinstance(fields["text"], str):
            raise Refusal(400, "INVALID_ARGUMENT", f"Invalid value at '{where}.text'.")
        return {"kind": "text", "chars": len(fields["text"])}
    if "fileData" in fields:
        raise Refusal(400, "INVALID_ARGUMENT", f"{where}: the fake takes inline data only.")
    spelling = names[0]
    inline = fields["inlineData"]
    if not isinstance(inline, dict):
        raise Refusal(400, "INVALID_ARGUMENT", f"Invalid value at '{where}.{spelling}'.")
    inline = _fields(inline, {"mimeType", "data", "displayName"}, f"{where}.{spelling}")
    mime, data = inline.get("mimeType"), inline.get("data")
    if mime not in IMAGE_TYPES:
        state = "" if mime in OTHER_IMAGE_TYPES else " Unsupported MIME type."
        raise Refusal(400, "INVALID_ARGUMENT", f"{where}: mime type {mime!r}.{state}")
    raw, alphabet = decode_b64(data, f"{where}.{spelling}.data")
    image = decode_image(raw)
    if image is None:
        raise Refusal(
            400,
            "INVALID_ARGUMENT",
            "Unable to process input image. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
        )
    actual = format_of(raw)
    if actual != IMAGE_TYPES[mime]:
        raise Refusal(
            400, "INVALID_ARGUMENT", f"{where}: mime type {mime} but the data is {actual}."
        )
    images.append(image)
    return {
        "kind": "image",
        "spelling": spelling,
        "mime_type": mime,
        "bytes": len(raw),
        "width": image.width,
        "height": image.height,
        "alphabet": alphabet,
    }


def check_config(config: object, model_name: str, model: Model) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise Refusal(400, "INVALID_ARGUMENT", "Invalid value at 'generation_config'.")
    fields = _fields(config, GENERATION, "generation_config")
    modalities = fields.get("responseModalities", ["TEXT", "IMAGE"])
    if not isinstance(modalities, list) or any(m not in ("TEXT", "IMAGE") for m in modalities):
        raise Refusal(
            400,
            "INVALID_ARGUMENT",
            f"Invalid value at 'generation_config.response_modalities': {modalities!r}",
        )
    if "IMAGE" not in modalities:
        raise Refusal(
            400,
            "INVALID_ARGUMENT",
            "Model does not support the requested response modalities: "
            + ",".join(m.lower() for m in modalities),
        )
    if fields.get("candidateCount", 1) != 1:
        raise Refusal(
            400, "INVALID_ARGUMENT", f"Multiple candidates is not enabled for {model_name}"
        )
    image = fields.get("imageConfig")
    if image is not None:
        if not isinstance(image, dict):
            raise Refusal(400, "INVALID_ARGUMENT", "Invalid value at 'image_config'.")
        image = _fields(image, IMAGE_CONFIG, "generation_config.image_config")
        fields["imageConfig"] = image
        ratio, size = image.get("aspectRatio"), image.get("imageSize")
        if ratio is not None and ratio not in model.ratios:
            raise Refusal(
                400, "INVALID_ARGUMENT", f"Unsupported aspect ratio {ratio!r} for {model_name}."
            )
        if size is not None and model.sizes and size not in model.sizes:
            raise Refusal(
                400, "INVALID_ARGUMENT", f"Unsupported image size {size!r} for {model_name}."
            )
    return fields


def decode_b64(data: object, where: str) -> tuple[bytes, str]:
    """Bytes of a JSON ``bytes`` field: standard or URL-safe base64, padded or not."""
    if not isinstance(data, str) or not data:
        raise Refusal(400, "INVALID_ARGUMENT", f"Invalid value at '{where}' (TYPE_BYTES).")
    urlsafe = "-" in data or "_" in data
    padded = data + "=" * (-len(data) % 4)
    try:
        if urlsafe:
            return base64.urlsafe_b64decode(padded.encode()), "urlsafe"
        return base64.b64decode(padded, validate=True), "standard"
    except (binascii.Error, ValueError):
        raise Refusal(
            400,
            "INVALID_ARGUMENT",
            f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed.",
        ) from None


def format_of(raw: bytes) -> str | None:
    with Image.open(io.BytesIO(raw)) as opened:
        return opened.format
