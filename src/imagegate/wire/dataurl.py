"""``data:`` URLs: decoded strictly, with the size checked before a byte is decoded."""

from __future__ import annotations

import binascii

import pybase64

from imagegate.core.errors import InvalidRequest, PayloadTooLarge
from imagegate.core.units import human_bytes

# Declared types that say nothing about the format; anything else must match the bytes.
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "image/*", "binary/octet-stream"})
_URLSAFE = str.maketrans("-_", "+/")
_FORMAT_TYPES = {
    "png": {"image/png"},
    "jpeg": {"image/jpeg", "image/jpg", "image/pjpeg"},
    "webp": {"image/webp"},
}


def is_data_url(url: str) -> bool:
    return url[:5].lower() == "data:"


def decode_data_url(url: str, *, param: str, max_bytes: int) -> tuple[str, bytes]:
    """Return the declared media type and the decoded bytes of a base64 ``data:`` URL."""
    header, sep, payload = url.partition(",")
    if not sep:
        raise InvalidRequest(
            f"{param} is a data URL without a ',' before its data.",
            param=param,
            code="invalid_data_url",
        )
    meta = header[5:].split(";")
    media_type = meta[0].strip().lower()
    if "base64" not in (part.strip().lower() for part in meta[1:]):
        raise InvalidRequest(
            f"{param} must be a base64 data URL, such as 'data:image/png;base64,iVBOR...'.",
            param=param,
            code="invalid_data_url",
        )
    payload = payload.strip()
    if (len(payload) * 3) // 4 > max_bytes + 2:
        raise PayloadTooLarge(
            f"{param} decodes to over {max_bytes:,} bytes, the limit per image "
            f"({human_bytes(max_bytes)}).",
            param=param,
            code="image_too_large",
        )
    try:  # the common case first: no copy of a payload that may be tens of MB
        data = pybase64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        # Line-wrapped base64, the URL-safe alphabet, or dropped padding: still base64.
        cleaned = "".join(payload.split()).translate(_URLSAFE)
        try:
            data = pybase64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(
                f"{param} has invalid base64 data.", param=param, code="invalid_base64"
            ) from None
    return media_type, data


def check_declared_type(media_type: str, sniffed: str, *, param: str) -> None:
    """Refuse a data URL whose declared image type contradicts its bytes."""
    if media_type in _GENERIC_TYPES:
        return
    if media_type not in _FORMAT_TYPES.get(sniffed, set()):
        raise InvalidRequest(
            f"{param} declares {media_type} but its bytes are {sniffed.upper()}; fix the media "
            f"type in the data URL (data:image/{sniffed};base64,...).",
            param=param,
            code="mismatched_media_type",
        )
