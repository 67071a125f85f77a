"""The ``application/json`` edit body: ``images: [{image_url} | {file_id}]`` and ``mask``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from imagegate.core.errors import InvalidRequest
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


class DataUrlReferences(Protocol):
    """Data URLs decoded while the body streamed, replaced in its text by references."""

    @property
    def reference_prefix(self) -> str: ...


def parse_json_body(
    raw: bytes, limits: WireLimits, *, data_urls: DataUrlReferences | None = None
) -> ParsedJson:
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
    if data_urls is not None:
        _refuse_data_urls_outside_images(parsed.fields, data_urls.reference_prefix)
    return parsed


def _refuse_data_urls_outside_images(fields: dict[str, object], prefix: str) -> None:
    for key, value in fields.items():
        if any(text.startswith(prefix) for text in _strings(value)):
            raise InvalidRequest(
                f"{shorten(key)} holds a base64 data URL; images go in images[].image_url "
                "and mask.image_url.",
                param=key,
                code="invalid_value",
            )


def _strings(value: object) -> Iterator[str]:
    """Every string in a parsed JSON value (iteratively: clients may nest deeply)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


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
