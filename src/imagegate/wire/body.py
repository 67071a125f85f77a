"""From an HTTP body of either shape to one ``EditRequest``.

Both shapes are read as they stream, and every image lands in its ``Blob`` as it arrives (a
multipart part, or a data URL decoded by ``json_stream``): no image is held twice, and no
megabyte-sized step runs on the event loop at once. Then the same steps: every image (uploaded,
decoded or fetched) is sniffed from its header and checked against the size and pixel limits,
the mask is checked against the first image, and the text fields are coerced by
``fields.coerce_fields``. Every byte kept in memory is charged to the request's ``MemoryLease``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from imagegate.core.blob import Blob, MemoryBlob
from imagegate.core.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from imagegate.core.images import check_size, probe
from imagegate.core.memory import MemoryLease
from imagegate.core.request import EditRequest, ImageInput
from imagegate.core.units import human_bytes
from imagegate.wire.dataurl import check_declared_type, decode_data_url, is_data_url
from imagegate.wire.fields import Fields, assemble_request, coerce_fields
from imagegate.wire.json_body import ImageRef, parse_json_body
from imagegate.wire.json_stream import JsonBodyScanner
from imagegate.wire.limits import ByteBudget, WireLimits
from imagegate.wire.multipart import read_multipart


class UrlFetcher(Protocol):
    async def fetch(self, url: str, *, param: str, budget: ByteBudget | None = None) -> bytes: ...


async def read_edit_request(
    content_type: str,
    content_length: int | None,
    chunks: AsyncIterator[bytes],
    *,
    limits: WireLimits,
    lease: MemoryLease,
    fetcher: UrlFetcher | None,
    default_model: str | None,
    precheck: Callable[[Fields, int], None] | None = None,
) -> EditRequest:
    """Parse the body; ``precheck(fields, image_count)`` runs before any image is probed or
    fetched. Images live in blobs held by ``lease``, closed when the request ends."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        if content_length is not None and content_length > limits.max_request_bytes:
            raise _body_too_large(limits.max_request_bytes)
        form = await read_multipart(content_type, chunks, limits, lease)
        fields = coerce_fields(form.fields, from_json=False, default_model=default_model)
        if precheck is not None:
            precheck(fields, len(form.images))
        images = [check_image(raw.blob, raw.param, raw.filename, limits) for raw in form.images]
        mask = None
        if form.mask is not None:
            mask = check_image(form.mask.blob, "mask", form.mask.filename, limits)
        return _finish(fields, images, mask)
    if media_type == "application/json" or media_type.endswith("+json"):
        if content_length is not None and content_length > limits.max_json_bytes:
            raise _body_too_large(limits.max_json_bytes)
        scanner = JsonBodyScanner(limits, lease)
        async for chunk in chunks:
            scanner.feed(chunk)
        parsed = parse_json_body(scanner.finish(), limits, data_urls=scanner)
        fields = coerce_fields(parsed.fields, from_json=True, default_model=default_model)
        if precheck is not None:
            precheck(fields, len(parsed.images))
        refs = [*parsed.images, *([parsed.mask] if parsed.mask else [])]
        loaded = await _load_all(refs, limits, lease, fetcher, scanner)
        mask = loaded.pop() if parsed.mask else None
        return _finish(fields, loaded, mask)
    shown = media_type or "no Content-Type"
    raise UnsupportedMediaType(
        f"POST /v1/images/edits takes multipart/form-data or application/json, not {shown}.",
        code="unsupported_media_type",
    )


def _finish(fields: Fields, images: list[ImageInput], mask: ImageInput | None) -> EditRequest:
    # The total was enforced while reading: by the body's byte count for multipart, by the
    # shared ByteBudget for JSON references.
    request = assemble_request(fields, images, mask)
    if mask is not None:
        check_mask(mask, request.images[0])
    return request


def check_mask(mask: ImageInput, first: ImageInput) -> None:
    if mask.format != "png":
        raise InvalidRequest(
            f"The mask must be a PNG with an alpha channel; it is a {mask.format.upper()}.",
            param="mask",
            code="invalid_mask",
        )
    if not mask.info.has_alpha:
        raise InvalidRequest(
            "The mask must be a PNG with an alpha channel: fully transparent pixels mark where "
            "to edit. This PNG has no alpha.",
            param="mask",
            code="invalid_mask",
        )
    if (mask.width, mask.height) != (first.width, first.height):
        raise InvalidRequest(
            f"The mask is {mask.width}x{mask.height} but the first image is "
            f"{first.width}x{first.height}; they must be the same size.",
            param="mask",
            code="invalid_mask",
        )


def check_image(
    source: Blob | bytes, param: str, filename: str | None, limits: WireLimits
) -> ImageInput:
    """Size, format and pixel checks every image passes, however it arrived."""
    blob = MemoryBlob(source) if isinstance(source, bytes) else source
    check_size(blob.nbytes, limits.max_image_bytes, param=param)
    info = probe(blob.view(), param=param, max_pixels=limits.max_pixels)
    return ImageInput(blob=blob, info=info, param=param, filename=filename)


async def _load_all(
    refs: list[ImageRef],
    limits: WireLimits,
    lease: MemoryLease,
    fetcher: UrlFetcher | None,
    scanner: JsonBodyScanner,
) -> list[ImageInput]:
    """Load every reference at once; the first failure cancels the rest and is the answer."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(_load_ref(ref, limits, lease, fetcher, scanner)) for ref in refs
            ]
    except ExceptionGroup as group_error:
        raise _first_error(group_error) from None
    return [task.result() for task in tasks]


def _first_error(group_error: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group_error.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first


async def _load_ref(
    ref: ImageRef,
    limits: WireLimits,
    lease: MemoryLease,
    fetcher: UrlFetcher | None,
    scanner: JsonBodyScanner,
) -> ImageInput:
    decoded = scanner.lookup(ref.url)
    if decoded is not None:  # decoded while the body streamed in
        if decoded.failure is not None:
            raise decoded.failure(ref.param)
        assert decoded.blob is not None
        image = check_image(decoded.blob, ref.param, None, limits)
        check_declared_type(decoded.media_type, image.format, param=ref.param)
        return image
    budget = scanner.budget
    if is_data_url(ref.url):  # one the scanner left as text (escapes in its header)
        media_type, data = decode_data_url(
            ref.url, param=ref.param, max_bytes=limits.max_image_bytes
        )
        budget.spend(len(data))
        lease.reserve(len(data))
        image = check_image(data, ref.param, None, limits)
        check_declared_type(media_type, image.format, param=ref.param)
        return image
    if fetcher is None:
        raise InvalidRequest(
            f"{ref.param}: fetching image URLs is turned off on this gateway; send the image "
            "as a data URL.",
            param=ref.param,
            code="image_url_disabled",
        )
    data = await fetcher.fetch(ref.url, param=ref.param, budget=budget)
    lease.reserve(len(data))
    return check_image(data, ref.param, None, limits)


def _body_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is over the limit of {limit:,} bytes ({human_bytes(limit)}).",
        code="request_too_large",
    )
