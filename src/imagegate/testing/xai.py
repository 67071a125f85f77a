"""A strict fake of xAI's image edits: ``POST /v1/images/edits``, JSON only.

It checks what xAI checks and answers xAI's flat ``{"code", "error"}`` on any mismatch:
``Authorization: Bearer <key>`` (a refused key is a 400, "Incorrect API key provided", as xAI
answers it), ``application/json`` (multipart is refused, as xAI refuses the OpenAI SDK's
``images.edit``), the model name, body keys (``size``, ``quality`` and ``style`` are "Argument
not supported"), ``image`` or ``images`` (1 to 3) as data URIs that decode, ``n`` 1-10,
``response_format``, ``aspect_ratio`` and ``resolution`` values.

Stricter than xAI on purpose: any other body key is refused, and image URLs must be data URIs
(the fake fetches nothing).

Results are real JPEGs (``result_png`` of the first input, as xAI answers JPEG), the input's size
for ``auto`` or the asked aspect ratio at a small 1k/2k size. Knobs a test may turn:
``moderation_style`` (``flagged``: a 200 whose image says ``respect_moderation: false``;
``refused``: a 400 naming content moderation), ``stated_cost_ticks`` (an ``usage`` block with
``cost_in_usd_ticks``), and ``answer_with_urls`` (temporary URLs served by the fake instead of
base64, as xAI answers ``response_format: url``).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import secrets
import time
from fractions import Fraction
from typing import Any, Literal

import orjson
from PIL import Image
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

MODELS = frozenset({"grok-imagine-image"})
ASPECT_RATIOS = frozenset(
    {"auto", "1:1", "3:4", "4:3", "3:2", "2:3", "2:1", "1:2", "9:16", "16:9"}
    | {"19.5:9", "9:19.5", "20:9", "9:20"}
)
RESOLUTIONS = {"1k": 128, "2k": 256}  # the long side of a result, kept small for the tests
ALLOWED_KEYS = frozenset(
    {"model", "prompt", "image", "images", "n", "response_format", "aspect_ratio", "resolution"}
)
REFUSED_KEYS = frozenset({"size", "quality", "style"})
INVALID = "Client specified an invalid argument"
_DATA_URI = re.compile(r"^data:(image/(?:png|jpeg|jpg|webp));base64,(.*)$", re.S)
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


class Refused(Exception):
    def __init__(self, status: int, message: str, code: str = INVALID) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"code": code, "error": message}, status, headers)


class FakeXai(FakeUpstream):
    name = "xai"

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.moderation_style: Literal["flagged", "refused"] = "flagged"
        self.stated_cost_ticks: int | None = None
        self.answer_with_urls = False
        self.served: dict[str, bytes] = {}

    def routes(self) -> list[Route]:
        return [
            Route("/v1/images/edits", self._edit, methods=["POST"]),
            Route("/__fake__/images/{name}", self._image, methods=["GET"]),
        ]

    async def _image(self, request: Request) -> Response:
        data = self.served.get(request.path_params["name"])
        if data is None:
            return error(404, "Some requested entity was not found", "no such image")
        return Response(data, 200, media_type="image/jpeg")

    async def _edit(self, request: Request) -> Response:
        self.record(request)
        call = self.calls[-1]
        fault = self.next_fault()
        if fault is not None and fault.fault == "timeout":
            await self.wait_out(fault)
        elif fault is not None:
            early = _early_fault(fault, self.moderation_style)
            if early is not None:
                return early
        try:
            return await self._answer(request, call, fault)
        except Refused as refused:
            call.summary["refused"] = refused.message
            return error(refused.status, refused.code, refused.message)

    async def _answer(self, request: Request, call: Call, fault: Fault | None) -> Response:
        given = request.headers.get("authorization", "")
        if given != f"Bearer {self.api_key}":
            call.summary["auth"] = "refused"
            raise Refused(400, _incorrect_key(given))
        call.summary["auth"] = "ok"
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip() != "application/json":
            raise Refused(
                415, "Expected request with `Content-Type: application/json`", "Unsupported"
            )
        try:
            doc = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise Refused(400, f"Failed to parse the request body as JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise Refused(400, "The request body must be a JSON object.")
        call.summary.update(_body_summary(doc))
        for key in doc:
            if key in REFUSED_KEYS or key not in ALLOWED_KEYS:
                raise Refused(400, f"Argument not supported: {key}")
        model = doc.get("model")
        if model not in MODELS:
            raise Refused(
                404,
                f"The model {model} does not exist or your team does not have access to it.",
                "Some requested entity was not found",
            )
        prompt = doc.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise Refused(400, "prompt: must be a non-empty string")
        images = _images(doc)
        call.summary["images"] = [{"format": fmt, "size": list(im.size)} for im, fmt in images]
        n = doc.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
            raise Refused(400, "n: must be an integer from 1 to 10")
        response_format = doc.get("response_format", "url")
        if response_format not in ("url", "b64_json"):
            raise Refused(400, "response_format: must be url or b64_json")
        ratio = doc.get("aspect_ratio", "auto")
        if ratio not in ASPECT_RATIOS:
            raise Refused(400, f"aspect_ratio: unsupported value {ratio!r}")
        resolution = doc.get("resolution", "1k")
        if resolution not in RESOLUTIONS:
            raise Refused(400, "resolution: must be 1k or 2k")
        first = images[0][0]
        size = first.size if ratio == "auto" else _ratio_size(ratio, RESOLUTIONS[resolution])
        jpeg = _jpeg(result_png(first, size))
        call.summary["answered"] = {"size": list(size), "n": n}
        entries = []
        for _ in range(n):
            entry: dict[str, Any] = {"mime_type": "image/jpeg", "revised_prompt": f"{prompt}."}
            if self.answer_with_urls or response_format == "url":
                name = secrets.token_hex(8) + ".jpeg"
                self.served[name] = jpeg
                entry["url"] = f"{str(request.base_url).rstrip('/')}/__fake__/images/{name}"
            else:
                entry["b64_json"] = base64.b64encode(jpeg).decode("ascii")
            entries.append(entry)
        answer: dict[str, Any] = {"created": int(time.time()), "data": entries}
        if self.stated_cost_ticks is not None:
            answer["usage"] = {"cost_in_usd_ticks": self.stated_cost_ticks}
        body = orjson.dumps(answer)
        if fault is not None and fault.fault == "truncated":
            body = body[: len(body) // 2]
        return Response(body, 200, media_type="application/json")


def _early_fault(fault: Fault, moderation_style: str) -> Response | None:
    name = fault.fault
    if name == "rate_limit":
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        return error(
            429,
            "Some resource has been exhausted",
            "Your team has exceeded its rate limit for grok-imagine-image; try again later.",
            headers,
        )
    if name == "server_error":
        return error(500, "Internal error", "The service encountered an internal error.")
    if name == "unavailable":
        return error(503, "The service is currently unavailable", "Please try again later.")
    if name == "bad_key":
        return error(400, INVALID, _incorrect_key("Bearer xai-revoked-key-0000"))
    if name == "malformed":
        return Response(b"<html><body>502 Bad Gateway</body></html>", 200, media_type="text/html")
    if name == "no_image":
        return json_response({"created": int(time.time()), "data": []})
    if name == "moderation":
        if moderation_style == "refused":
            return error(400, INVALID, "Generated image rejected by content moderation.")
        flagged = {
            "url": "",
            "mime_type": "image/jpeg",
            "revised_prompt": "",
            "respect_moderation": False,
        }
        return json_response({"created": int(time.time()), "data": [flagged]})
    return None


def _incorrect_key(header: str) -> str:
    """xAI's words for a refused key: the key shown by its first and last two characters."""
    key = header.removeprefix("Bearer ").strip()
    shown = f"{key[:2]}***{key[-2:]}" if len(key) > 4 else "***"
    return (
        f"Incorrect API key provided: {shown}. You can obtain an API key from https://console.x.ai."
    )


def _body_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The body as a test checks it: every key, the values that are not images."""
    summary: dict[str, Any] = {"keys": sorted(doc)}
    for key in ("model", "prompt", "n", "response_format", "aspect_ratio", "resolution"):
        if key in doc:
            summary[key] = doc[key]
    summary["image_field"] = "image" if "image" in doc else "images" if "images" in doc else None
    refs = [doc["image"]] if "image" in doc else doc.get("images")
    if isinstance(refs, list):
        summary["ref_types"] = [ref.get("type") if isinstance(ref, dict) else None for ref in refs]
    return summary


def _images(doc: dict[str, Any]) -> list[tuple[Image.Image, str]]:
    if ("image" in doc) == ("images" in doc):
        raise Refused(400, "Exactly one of image or images is required.")
    refs = [doc["image"]] if "image" in doc else doc["images"]
    if not isinstance(refs, list) or not refs:
        raise Refused(400, "images: must be a non-empty array")
    if len(refs) > 3:
        raise Refused(400, f"images: at most 3 images can be edited at once; got {len(refs)}")
    out = []
    for index, ref in enumerate(refs):
        if not isinstance(ref, dict) or set(ref) - {"url", "type"} or "url" not in ref:
            raise Refused(400, f"image {index}: must be an object with url (and type)")
        if ref.get("type", "image_url") != "image_url":
            raise Refused(400, f"image {index}: type must be image_url")
        match = _DATA_URI.match(ref["url"]) if isinstance(ref["url"], str) else None
        if match is None:
            raise Refused(400, f"image {index}: this fake takes base64 data URIs only")
        try:
            data = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise Refused(400, f"image {index}: the data URI is not base64") from None
        image = decode_image(data)
        if image is None:
            raise Refused(400, f"image {index}: could not decode the image")
        with Image.open(io.BytesIO(data)) as opened:
            fmt = str(opened.format)
        if _MIME[fmt] != match.group(1).replace("jpg", "jpeg"):
            raise Refused(400, f"image {index}: the data URI says {match.group(1)} but is {fmt}")
        out.append((image, fmt))
    return out


def _ratio_size(ratio: str, long_side: int) -> tuple[int, int]:
    left, right = ratio.split(":")
    shape = Fraction(left) / Fraction(right)
    if shape >= 1:
        return long_side, max(1, round(long_side / shape))
    return max(1, round(long_side * shape)), long_side


def _jpeg(png: bytes) -> bytes:
    with Image.open(io.BytesIO(png)) as opened:
        out = io.BytesIO()
        opened.convert("RGB").save(out, format="JPEG", quality=90)
        return out.getvalue()
