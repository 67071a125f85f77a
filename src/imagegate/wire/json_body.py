"""The ``application/json`` edit body: ``images: [{image_url} | {file_id}]`` and ``mask``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson

from imagegate.core.errors import InvalidRequest, PayloadTooLarge
from imagegate.core.units import shorten
from imagegate.wire.limits import WireLimits

_REF_KEYS = frozenset({"image_url", "file_id"})


@dataclass(frozen=True, slots=True)
class ImageRef:
    """One image reference as the client wrote it; ``url`` is a data URL or an http(s) URL."""

    param: str
    url: str


@dataclass(slots=True)
class ParsedJson:
    fields: dict[str, object] = field(default_factory=dict)
    images: list[ImageRef] = field(default_factory=list)
    mask: ImageRef | None = None


async def read_json_bytes(chunks: AsyncIterator[bytes], limits: WireLimits) -> bytes:
    body = bytearray()
    limit = limits.max_json_bytes
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(
                f"The JSON body is over the limit of {limit:,} bytes.", code="request_too_large"
            )
    return bytes(body)


def parse_json_body(raw: bytes, limits: WireLimits) -> ParsedJson:
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}.", code="invalid_json") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("The JSON body must be an object.", code="invalid_json")

    parsed = ParsedJson()
    for key, value in doc.items():
        if key == "images":
            parsed.images = _parse_images(value, limits)
        elif key == "mask":
            if value is not None:
                parsed.mask = _parse_ref(value, "mask")
        elif key == "image":
            raise InvalidRequest(
                'JSON bodies send images as images: [{"image_url": "..."}]; the field '
                "'image' is for multipart uploads.",
                param="image",
                code="unknown_parameter",
            )
        else:
            parsed.fields[key] = value
    return parsed


def _parse_images(value: object, limits: WireLimits) -> list[ImageRef]:
    if not isinstance(value, list):
        raise InvalidRequest(
            'images must be an array of {"image_url": ...} objects.',
            param="images",
            code="invalid_type",
        )
    if not value:
        raise InvalidRequest(
            "images is empty: send at least one image.",
            param="images",
            code="missing_required_parameter",
        )
    if len(value) > limits.max_images:
        raise InvalidRequest(
            f"Too many images: at most {limits.max_images} images per request.",
            param="images",
            code="too_many_images",
        )
    return [_parse_ref(item, f"images[{i}]") for i, item in enumerate(value)]


def _parse_ref(item: object, where: str) -> ImageRef:
    if not isinstance(item, dict):
        raise InvalidRequest(
            f"{where} must be an object with image_url or file_id.",
            param=where,
            code="invalid_type",
        )
    unknown = sorted(set(item) - _REF_KEYS)
    if unknown:
        raise InvalidRequest(
            f"{where} has the unknown key {shorten(unknown[0])}; an image reference has exactly "
            "one of image_url or file_id.",
            param=where,
            code="unknown_parameter",
        )
    present = [key for key in ("image_url", "file_id") if item.get(key) is not None]
    if len(present) != 1:
        raise InvalidRequest(
            f"{where} must have exactly one of image_url or file_id "
            f"({'both' if present else 'neither'} given).",
            param=where,
        )
    if present[0] == "file_id":
        raise InvalidRequest(
            f"{where}.file_id: file ids are not enabled on this gateway; send the image as "
            "image_url (a data URL or an http(s) URL) or upload it as multipart.",
            param=f"{where}.file_id",
            code="file_ids_not_enabled",
        )
    url = item["image_url"]
    if isinstance(url, dict) and isinstance(url.get("url"), str):
        url = url["url"]  # the chat-completions spelling {"image_url": {"url": ...}}
    if not isinstance(url, str) or not url:
        raise InvalidRequest(
            f"{where}.image_url must be a non-empty string.",
            param=f"{where}.image_url",
            code="invalid_type",
        )
    return ImageRef(f"{where}.image_url", url)
