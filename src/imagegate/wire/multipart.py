"""A streaming ``multipart/form-data`` reader that enforces limits while the body arrives.

Parts are told apart by name, never by filename or declared type: ``image``, ``image[]`` and
``image[N]`` are images (in the order they arrive), ``mask`` is the mask, anything else is a text
field. A body that breaks a limit is refused as soon as the limit is crossed, before the rest of
it is read.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from imagegate.core.blob import Blob, BlobWriter
from imagegate.core.errors import InvalidRequest, PayloadTooLarge
from imagegate.core.memory import MemoryLease
from imagegate.core.units import human_bytes, shorten
from imagegate.wire.limits import WireLimits

_IMAGE_NAME = re.compile(r"^image(\[\d*\])?$")
MASK_NAME = "mask"


@dataclass(slots=True)
class RawFile:
    param: str
    blob: Blob  # the one copy of the part's bytes (in memory, or spilled past the threshold)
    filename: str | None


@dataclass(slots=True)
class ParsedForm:
    fields: dict[str, object] = field(default_factory=dict)
    images: list[RawFile] = field(default_factory=list)
    mask: RawFile | None = None


def boundary_of(content_type: str) -> bytes:
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidRequest(
            "The multipart body has no boundary in its Content-Type header; let your HTTP "
            "client set Content-Type for multipart/form-data itself.",
            param=None,
            code="invalid_multipart",
        )
    return boundary


class _Reader:
    """Callback state for one body; python-multipart calls these as bytes arrive."""

    def __init__(self, limits: WireLimits, lease: MemoryLease) -> None:
        self.limits = limits
        self.lease = lease
        self.form = ParsedForm()
        self.parts = 0
        self.ended = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._name: str = ""
        self._filename: str | None = None
        self._kind: str = "field"
        self._data = bytearray()  # a text field's bytes (small: max_field_bytes)
        self._writer: BlobWriter | None = None  # an image's or the mask's bytes

    # -- python-multipart callbacks ---------------------------------------------------------
    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise InvalidRequest(
                f"The body has more than {self.limits.max_parts} parts.", code="too_many_parts"
            )
        self._headers = {}
        self._data = bytearray()
        self._writer = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_field).strip().lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition")
        if disposition is None:
            raise InvalidRequest(
                "A multipart part has no Content-Disposition header.", code="invalid_multipart"
            )
        _, options = parse_options_header(disposition)
        raw_name = options.get(b"name")
        if raw_name is None:
            raise InvalidRequest(
                "A multipart part has no name in its Content-Disposition.", code="invalid_multipart"
            )
        self._name = raw_name.decode("utf-8", "replace")
        raw_filename = options.get(b"filename")
        self._filename = raw_filename.decode("utf-8", "replace") if raw_filename else None
        if _IMAGE_NAME.match(self._name):
            self._kind = "image"
            if len(self.form.images) >= self.limits.max_images:
                raise InvalidRequest(
                    f"Too many images: at most {self.limits.max_images} images per request.",
                    param="image",
                    code="too_many_images",
                )
        elif self._name == MASK_NAME:
            self._kind = "mask"
            if self.form.mask is not None:
                raise InvalidRequest(
                    "mask was sent twice; send one mask.", param="mask", code="duplicate_field"
                )
        elif self._filename is not None and self._name not in _TEXT_FIELDS_SENT_AS_FILES:
            self._kind = "ignored_file"  # an unknown file part: not kept
        else:
            self._kind = "field"

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._kind == "ignored_file":
            return
        piece = memoryview(data)[start:end]
        if self._kind in ("image", "mask"):
            self._image_writer().write(piece)  # the one copy of an image's bytes
            return
        self.lease.reserve(len(piece))
        self._data += piece
        if len(self._data) > self.limits.max_field_bytes:
            raise PayloadTooLarge(
                f"The field {shorten(self._name)} is over {self.limits.max_field_bytes:,} bytes.",
                param=self._name,
                code="field_too_large",
            )

    def _image_writer(self) -> BlobWriter:
        if self._writer is None:
            param = "mask" if self._kind == "mask" else self._current_image_param()

            def too_large(limit: int) -> PayloadTooLarge:
                return PayloadTooLarge(
                    f"{param} is over the limit of {limit:,} bytes per image "
                    f"({human_bytes(limit)}).",
                    param=param,
                    code="image_too_large",
                )

            self._writer = BlobWriter(
                self.lease,
                spill_bytes=self.limits.spill_bytes,
                max_bytes=self.limits.max_image_bytes,
                on_limit=too_large,
            )
        return self._writer

    def on_part_end(self) -> None:
        if self._kind in ("image", "mask"):
            blob = self._image_writer().finish()
            self._writer = None
            if self._kind == "image":
                param = self._current_image_param()
                self.form.images.append(RawFile(param, blob, self._filename))
            else:
                self.form.mask = RawFile("mask", blob, self._filename)
        elif self._kind == "field":
            data = bytes(self._data)
            self._data = bytearray()
            self._add_field(data)

    def on_end(self) -> None:
        self.ended = True

    # -- helpers ----------------------------------------------------------------------------
    def _current_image_param(self) -> str:
        return f"image[{len(self.form.images)}]"

    def _add_field(self, data: bytes) -> None:
        name = self._name
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(
                f"The field {shorten(name)} is not valid UTF-8 text.",
                param=name,
                code="invalid_encoding",
            ) from None
        fields = self.form.fields
        if name in fields:
            existing = fields[name]
            if name.endswith("[]"):
                if isinstance(existing, list):
                    existing.append(value)
                else:
                    fields[name] = [existing, value]
                return
            raise InvalidRequest(
                f"The field {shorten(name)} was sent twice; send it once.",
                param=name,
                code="duplicate_field",
            )
        fields[name] = value


# curl's `-F prompt=@file.txt` uploads a text field as a file; honour it for the text fields.
_TEXT_FIELDS_SENT_AS_FILES = frozenset({"prompt", "model"})


async def read_multipart(
    content_type: str, chunks: AsyncIterator[bytes], limits: WireLimits, lease: MemoryLease
) -> ParsedForm:
    """Parse a multipart body as it streams in; images are collected into blobs."""
    boundary = boundary_of(content_type)
    reader = _Reader(limits, lease)
    try:
        parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": reader.on_part_begin,
                "on_part_data": reader.on_part_data,
                "on_part_end": reader.on_part_end,
                "on_header_field": reader.on_header_field,
                "on_header_value": reader.on_header_value,
                "on_header_end": reader.on_header_end,
                "on_headers_finished": reader.on_headers_finished,
                "on_end": reader.on_end,
            },
            max_header_size=limits.max_part_header_bytes,
        )
    except ValueError as exc:  # e.g. a boundary past the length RFC 2046 allows
        raise InvalidRequest(
            f"The multipart boundary is invalid: {exc}.", code="invalid_multipart"
        ) from None
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > limits.max_request_bytes:
                raise PayloadTooLarge(
                    f"The request body is over the limit of {limits.max_request_bytes:,} bytes "
                    f"({human_bytes(limits.max_request_bytes)}).",
                    code="request_too_large",
                )
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise InvalidRequest(
            f"The multipart body is malformed: {exc}.", code="invalid_multipart"
        ) from None
    if not reader.ended:
        raise InvalidRequest(
            "The multipart body ended before its closing boundary; the upload is truncated.",
            code="invalid_multipart",
        )
    return reader.form
