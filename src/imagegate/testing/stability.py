"""A strict fake of Stability AI's v2beta Stable Image Edit endpoints.

``POST /v2beta/stable-image/edit/{inpaint|erase|search-and-replace|search-and-recolor|outpaint|
remove-background}``, multipart only, ``Authorization: Bearer <key>``, ``Accept: image/*`` (raw
bytes back, ``finish-reason`` and ``seed`` headers) or ``application/json``
(``{image, finish_reason, seed}``). It checks what Stability checks and answers Stability's
``{id, name, errors[]}`` on any mismatch: required fields per endpoint, value ranges, image
limits, images that decode, output formats.

Stricter than Stability on purpose, where leniency there would hide a gateway bug:

- a field the endpoint does not take is refused (Stability may ignore it): nothing the client
  sent beyond the endpoint's own options may reach it;
- a field sent twice is refused;
- a file part's Content-Type must be what its bytes are;
- the mask must be a grayscale image without alpha (white = edit), the input's size. Stability
  reads a mask's lightness and resizes a mask of another size; an OpenAI-style mask (black,
  transparent where to edit) would reach it as "edit nothing", so the fake refuses alpha masks
  instead of editing nothing.

Results are real images: the input inverted (``result_png``), in the asked format; outpaint's is
larger by its margins; remove-background's is transparent outside the subject (the middle).
``moderation_style`` picks how the ``moderation`` fault answers: ``filtered`` (a 200 with
``finish-reason: CONTENT_FILTERED`` and a blurred image, as Stability does for outputs) or
``refused`` (a 403 ``content_moderation``, as for prompts).
"""

from __future__ import annotations

import base64
import io
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image, ImageFilter
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from imagegate.testing.fake import (
    Call,
    FakeUpstream,
    Fault,
    decode_image,
    json_response,
    result_png,
)

PATH = "/v2beta/stable-image/edit/{endpoint}"
STYLE_PRESETS = frozenset(
    [
        "3d-model",
        "analog-film",
        "anime",
        "cinematic",
        "comic-book",
        "digital-art",
        "enhance",
        "fantasy-art",
        "isometric",
        "line-art",
        "low-poly",
        "modeling-compound",
        "neon-punk",
        "origami",
        "photographic",
        "pixel-art",
        "tile-texture",
    ]
)
MAX_SEED = 4_294_967_294
_PIL_TO_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@dataclass(frozen=True)
class _Spec:
    """What one endpoint takes, as Stability documents it."""

    required: frozenset[str]
    optional: frozenset[str]
    files: frozenset[str] = frozenset({"image"})
    formats: tuple[str, ...] = ("png", "jpeg", "webp")
    max_pixels: int = 9_437_184
    limit_ratio: bool = False
    needs_area: bool = False  # a mask, or an image with transparent pixels
    margins: bool = False
    text: frozenset[str] = field(default_factory=frozenset)


_COMMON = frozenset({"seed", "output_format"})
SPECS: dict[str, _Spec] = {
    "inpaint": _Spec(
        frozenset({"prompt"}),
        _COMMON | {"negative_prompt", "grow_mask", "style_preset"},
        files=frozenset({"image", "mask"}),
        needs_area=True,
    ),
    "erase": _Spec(
        frozenset(), _COMMON | {"grow_mask"}, files=frozenset({"image", "mask"}), needs_area=True
    ),
    "search-and-replace": _Spec(
        frozenset({"prompt", "search_prompt"}),
        _COMMON | {"negative_prompt", "grow_mask"},
        limit_ratio=True,
    ),
    "search-and-recolor": _Spec(
        frozenset({"prompt", "select_prompt"}),
        _COMMON | {"negative_prompt", "grow_mask"},
        limit_ratio=True,
    ),
    "outpaint": _Spec(
        frozenset(),
        _COMMON | {"prompt", "left", "right", "up", "down", "creativity", "style_preset"},
        limit_ratio=True,
        margins=True,
    ),
    "remove-background": _Spec(
        frozenset(), frozenset({"output_format"}), formats=("png", "webp"), max_pixels=4_194_304
    ),
}
_INTS = {
    "grow_mask": (0, 100),
    "seed": (0, MAX_SEED),
    "left": (0, 2000),
    "right": (0, 2000),
    "up": (0, 2000),
    "down": (0, 2000),
}
_TEXTS = {"prompt": 1, "negative_prompt": 0, "search_prompt": 1, "select_prompt": 1}


class Refused(Exception):
    def __init__(self, status: int, name: str, *errors: str) -> None:
        super().__init__(errors)
        self.status, self.name, self.errors = status, name, list(errors)


def error(status: int, name: str, *errors: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(
        {"id": secrets.token_hex(16), "name": name, "errors": list(errors)}, status, headers
    )


class FakeStability(FakeUpstream):
    name = "stability"

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.moderation_style: Literal["filtered", "refused"] = "filtered"

    def routes(self) -> list[Route]:
        return [Route(PATH, self._edit, methods=["POST"])]

    async def _edit(self, request: Request) -> Response:
        self.record(request)
        call = self.calls[-1]
        endpoint = request.path_params["endpoint"]
        call.summary.update(
            endpoint=endpoint,
            accept=request.headers.get("accept", ""),
            client_id=request.headers.get("stability-client-id"),
            user_id=request.headers.get("stability-client-user-id"),
        )
        fault = self.next_fault()
        if fault is not None and fault.fault != "timeout":
            early = _early_fault(fault, self.moderation_style)
            if early is not None:
                return early
        elif fault is not None:
            await self.wait_out(fault)
        try:
            return await self._answer(request, call, endpoint, fault)
        except Refused as refused:
            call.summary["refused"] = refused.errors
            return error(refused.status, refused.name, *refused.errors)

    async def _answer(
        self, request: Request, call: Call, endpoint: str, fault: Fault | None
    ) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            call.summary["auth"] = "refused"
            raise Refused(401, "unauthorized", "authorization: missing or invalid API key")
        call.summary["auth"] = "ok"
        spec = SPECS.get(endpoint)
        if spec is None:
            raise Refused(404, "not_found", f"no such endpoint: {endpoint}")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise Refused(400, "bad_request", "content-type: must be multipart/form-data")
        accept = request.headers.get("accept", "")
        if accept not in ("image/*", "application/json"):
            raise Refused(400, "bad_request", "accept: must be image/* or application/json")
        async with request.form(max_files=8, max_fields=64) as form:
            texts: dict[str, str] = {}
            files: dict[str, tuple[UploadFile, bytes]] = {}
            for name, value in form.multi_items():
                if name in texts or name in files:
                    raise Refused(400, "bad_request", f"{name}: sent more than once")
                if isinstance(value, UploadFile):
                    files[name] = (value, await value.read())
                else:
                    texts[name] = value
        call.summary["fields"] = dict(texts)
        call.summary["files"] = {
            name: _file_summary(up, data) for name, (up, data) in files.items()
        }
        values = _check_fields(spec, texts, set(files))
        image = _check_image(spec, files)
        mask = _check_mask(spec, files, image, call)
        output_format = texts.get("output_format", "png")
        size = image.size
        if spec.margins:
            size = (
                image.width + values.get("left", 0) + values.get("right", 0),
                image.height + values.get("up", 0) + values.get("down", 0),
            )
        rendered = _render(image, size, output_format, transparent=endpoint == "remove-background")
        finish = "SUCCESS"
        if fault is not None and fault.fault == "moderation":  # the "filtered" style
            finish = "CONTENT_FILTERED"
            rendered = _render(
                image.filter(ImageFilter.GaussianBlur(8)), size, output_format, transparent=False
            )
        if fault is not None and fault.fault == "truncated":
            rendered = rendered[: len(rendered) // 2]
        seed = values.get("seed") or secrets.randbelow(MAX_SEED) + 1
        call.summary["answered"] = {"size": list(size), "format": output_format, "mask": mask}
        if accept == "application/json":
            return json_response(
                {
                    "image": base64.b64encode(rendered).decode("ascii"),
                    "finish_reason": finish,
                    "seed": seed,
                }
            )
        return Response(
            rendered,
            200,
            {"finish-reason": finish, "seed": str(seed)},
            media_type=f"image/{output_format}",
        )


def _early_fault(fault: Fault, moderation_style: str) -> Response | None:
    """Faults answered before the request is looked at; None for those that shape a result."""
    name = fault.fault
    if name == "rate_limit":
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        return error(
            429,
            "rate_limit_exceeded",
            "You have exceeded the rate limit of 150 requests within a 10 second period, and "
            "have been timed out for 60 seconds.",
            headers=headers,
        )
    if name == "server_error":
        return error(500, "internal_error", "An unexpected server error has occurred.")
    if name == "unavailable":
        return error(503, "service_unavailable", "The service is temporarily unavailable.")
    if name == "bad_key":
        return error(401, "unauthorized", "authorization: missing or invalid API key")
    if name == "malformed":
        return Response(
            b"<html><body>upstream connect error</body></html>", 200, media_type="text/html"
        )
    if name == "no_image":
        return Response(b"", 200, {"finish-reason": "SUCCESS"}, media_type="image/png")
    if name == "moderation" and moderation_style == "refused":
        return error(
            403,
            "content_moderation",
            "Your request was flagged by our content moderation system, as a result your "
            "request was denied and you were not charged.",
        )
    return None


def decode(data: bytes) -> tuple[Image.Image, str] | None:
    """The decoded image and its format (PNG, JPEG, WEBP), or None."""
    image = decode_image(data)
    if image is None:
        return None
    with Image.open(io.BytesIO(data)) as opened:
        return image, str(opened.format)


def _file_summary(upload: UploadFile, data: bytes) -> dict[str, Any]:
    decoded = decode(data)
    return {
        "filename": upload.filename,
        "content_type": upload.headers.get("content-type"),
        "bytes": len(data),
        "format": decoded[1] if decoded else None,
        "size": list(decoded[0].size) if decoded else None,
        "mode": decoded[0].mode if decoded else None,
    }


def _check_fields(spec: _Spec, texts: Mapping[str, str], files: set[str]) -> dict[str, int]:
    for name in files - spec.files:
        raise Refused(400, "bad_request", f"{name}: this endpoint takes no such file")
    for name in set(texts) - spec.required - spec.optional:
        raise Refused(400, "bad_request", f"{name}: this endpoint takes no such field")
    for name in spec.required - set(texts):
        raise Refused(400, "bad_request", f"{name}: is required")
    if "image" not in files:
        raise Refused(400, "bad_request", "image: is required")
    ints: dict[str, int] = {}
    for name, value in texts.items():
        if name in _TEXTS:
            if not _TEXTS[name] <= len(value) <= 10_000:
                raise Refused(400, "bad_request", f"{name}: must be 1 to 10000 characters")
        elif name in _INTS:
            low, high = _INTS[name]
            if not value.isdigit() or not low <= int(value) <= high:
                raise Refused(400, "bad_request", f"{name}: must be an integer {low} to {high}")
            ints[name] = int(value)
        elif name == "creativity":
            try:
                number = float(value)
            except ValueError:
                number = -1.0
            if not 0 <= number <= 1:
                raise Refused(400, "bad_request", "creativity: must be a number 0 to 1")
        elif name == "style_preset" and value not in STYLE_PRESETS:
            raise Refused(400, "bad_request", f"style_preset: {value!r} is not a style preset")
        elif name == "output_format" and value not in spec.formats:
            raise Refused(
                400, "bad_request", f"output_format: must be one of {', '.join(spec.formats)}"
            )
    if spec.margins and not any(ints.get(side) for side in ("left", "right", "up", "down")):
        raise Refused(
            400, "bad_request", "left, right, up, down: at least one must be greater than 0"
        )
    return ints


def _check_image(spec: _Spec, files: Mapping[str, tuple[UploadFile, bytes]]) -> Image.Image:
    upload, data = files["image"]
    decoded = decode(data)
    if decoded is None:
        raise Refused(400, "bad_request", "image: is not a valid jpeg, png or webp image")
    image, fmt = decoded
    declared = upload.headers.get("content-type")
    if declared != _PIL_TO_MIME[fmt]:
        raise Refused(400, "bad_request", f"image: sent as {declared} but is {fmt}")
    width, height = image.size
    if min(width, height) < 64:
        raise Refused(400, "bad_request", "image: every side must be at least 64 pixels")
    if not 4_096 <= width * height <= spec.max_pixels:
        raise Refused(
            400, "bad_request", f"image: must have 4,096 to {spec.max_pixels:,} pixels in total"
        )
    if spec.limit_ratio and not 1 / 2.5 <= width / height <= 2.5:
        raise Refused(400, "bad_request", "image: aspect ratio must be between 1:2.5 and 2.5:1")
    return image


def _has_transparency(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        extrema = image.convert("RGBA").getchannel("A").getextrema()
        return extrema[0] != 255
    return False


def _check_mask(
    spec: _Spec,
    files: Mapping[str, tuple[UploadFile, bytes]],
    image: Image.Image,
    call: Call,
) -> dict[str, Any] | None:
    if "mask" not in files:
        if spec.needs_area and not _has_transparency(image):
            raise Refused(
                400,
                "bad_request",
                "mask: is required when the image has no transparent pixels to inpaint",
            )
        return None
    upload, data = files["mask"]
    decoded = decode(data)
    if decoded is None:
        raise Refused(400, "bad_request", "mask: is not a valid jpeg, png or webp image")
    mask, fmt = decoded
    if upload.headers.get("content-type") != _PIL_TO_MIME[fmt]:
        raise Refused(400, "bad_request", "mask: sent with a content type that is not its own")
    if mask.mode not in ("L", "1"):
        # Stability would read an alpha mask's lightness (black: edit nothing).
        raise Refused(
            400,
            "bad_request",
            f"mask: must be a grayscale image, white where to edit; got mode {mask.mode}",
        )
    if mask.size != image.size:
        raise Refused(400, "bad_request", "mask: must be the size of the image")
    grey = mask.convert("L")
    summary = {
        "mode": mask.mode,
        "size": list(mask.size),
        "values": sorted(value for _count, value in grey.getcolors() or []),
        "white_box": list(grey.point(lambda v: 255 if v == 255 else 0).getbbox() or []),
    }
    call.summary["mask"] = summary
    return summary


def _render(source: Image.Image, size: tuple[int, int], fmt: str, *, transparent: bool) -> bytes:
    with Image.open(io.BytesIO(result_png(source, size))) as opened:
        image = opened.convert("RGBA" if transparent else "RGB")
    if transparent:  # the subject is the middle; everything else is background
        alpha = Image.new("L", image.size, 0)
        width, height = image.size
        alpha.paste(255, (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
        image.putalpha(alpha)
    out = io.BytesIO()
    image.save(out, format={"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt])
    return out.getvalue()
