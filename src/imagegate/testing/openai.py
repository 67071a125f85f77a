"""A strict fake of OpenAI's Images API: ``POST /v1/images/edits``.

It checks what OpenAI checks (``testing.openai_form``: a ``multipart/form-data`` body, field
names, a string where a file belongs is "expected a file", file parts typed as images and never
``application/octet-stream`` whose bytes decode and match their type, at most 16 images or one
square PNG under 4 MB for dall-e-2, a PNG mask with alpha the size of the first image, known
models, sizes the model takes (gpt-image-2: any WxH in multiples of 16, ratio 1:3 to 3:1, at most
3840x2160), ``response_format`` refused for GPT image models, GPT-only fields refused for
dall-e-2, ``n`` 1-10, prompt lengths, unknown fields) after the ``Authorization: Bearer`` key,
and answers each mismatch in OpenAI's error envelope and status.

Answers are real PNGs (the first input inverted, at the size asked; JPEG or WEBP when asked)
with gpt-image-style ``usage``: text and image input tokens, and 272 / 1056 / 4160 output image
tokens per 1024x1024 image at low / medium / high quality (scaled by pixels). Like the real
Images API, only gpt-image-1 answers with ``output_tokens_details``. dall-e-2 answers with a URL
unless ``b64_json`` was asked (or ``answer_urls`` is set); the fake serves that URL itself.
Stream requests get ``image_edit.partial_image`` and ``image_edit.completed`` events (each
partial adds 100 output tokens).

Every call is recorded (model, image count, sorted field names, file parts' names and types,
text values, digests of the images sent back, usage; never bytes), and every fault of
``testing.fake`` is spoken in OpenAI's shapes. ``testing.azure`` is the same fake behind Azure's
URL, key header and error spellings.
"""

from __future__ import annotations

import hashlib
import io
import math
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from PIL import Image, ImageOps
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from imagegate.testing.fake import (
    Call,
    FakeUpstream,
    Fault,
    b64,
    json_response,
    result_png,
)
from imagegate.testing.openai_form import (
    LEGACY_MODELS,
    Edit,
    Refusal,
    describe,
    invalid,
    openai_error,
    read_edit,
)

OUTPUT_DETAILS_MODELS = frozenset({"gpt-image-1"})  # the others leave output_tokens_details out
OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160}  # per 1024x1024 image
PARTIAL_TOKENS = 100  # each streamed partial image
DEFAULT_MODEL = "gpt-image-1.5"
STREAM_FAULTS = frozenset({"malformed", "truncated", "no_image", "moderation"})


class OpenAIFake(FakeUpstream):
    """``POST /v1/images/edits`` as api.openai.com answers it."""

    name = "openai"

    def __init__(self, api_key: str) -> None:
        self.files: dict[str, bytes] = {}
        self.answer_urls = False  # answer dall-e-2 with URLs even when b64_json is asked
        super().__init__(api_key)

    def routes(self) -> list[Route]:
        return [
            Route("/__fake__/files/{name}", self._file, methods=["GET"]),
            Route("/v1/images/edits", self._edit, methods=["POST"]),
        ]

    async def _file(self, request: Request) -> Response:
        data = self.files.get(request.path_params["name"])
        if data is None:
            return Response(b"<Error><Code>BlobNotFound</Code></Error>", 404)
        return Response(data, 200, media_type="image/png")

    async def _edit(self, request: Request) -> Response:
        return await self.handle(request, {})

    # -- what differs for Azure ----------------------------------------------------------------
    def authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    def auth_name(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        return header.split(" ", 1)[0].lower() if header else None

    def refused_key(self, request: Request) -> Response:
        sent = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        shown = f"{sent[:8]}{'*' * 12}{sent[-4:]}" if len(sent) > 12 else "***"
        return openai_error(
            401,
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )

    def model_of(self, form: FormData, route: dict[str, str]) -> str:
        model = form.get("model")
        return model if isinstance(model, str) and model else DEFAULT_MODEL

    def fault_response(self, fault: Fault) -> Response:
        headers = {"retry-after": str(fault.retry_after)} if fault.retry_after else None
        if fault.fault == "rate_limit":
            return openai_error(
                429,
                "Rate limit reached for images per minute (IPM): Limit 5, Used 5, Requested 1.",
                kind="requests",
                code="rate_limit_exceeded",
                headers=headers,
            )
        if fault.fault == "unavailable":
            return openai_error(
                503,
                "The engine is currently overloaded, please try again later.",
                kind="server_error",
            )
        if fault.fault == "moderation":
            return self.moderation_response()
        if fault.fault == "bad_key":
            return openai_error(
                401, "Incorrect API key provided: sk-proj-****. ", code="invalid_api_key"
            )
        return openai_error(
            500,
            "The server had an error while processing your request. Sorry about that!",
            kind="server_error",
        )

    def moderation_error(self) -> dict[str, Any]:
        return {
            "message": "Your request was rejected by the safety system. If you believe this is "
            "an error, contact us at help.openai.com and include the request ID "
            "req_fake. safety_violations=[sexual].",
            "type": "image_generation_user_error",
            "param": None,
            "code": "moderation_blocked",
            "moderation_details": {"moderation_stage": "output", "categories": ["sexual"]},
        }

    def moderation_response(self) -> Response:
        return json_response({"error": self.moderation_error()}, 400)

    # -- one call ------------------------------------------------------------------------------
    async def handle(self, request: Request, route: dict[str, str]) -> Response:
        summary: dict[str, Any] = {"auth": self.auth_name(request), **route}
        try:
            response = await self._answer(request, route, summary)
        except Refusal as refusal:
            response = refusal.response
        summary["status"] = response.status_code
        early = summary.pop("_recorded", None)
        if isinstance(early, Call):  # recorded on arrival: a call it kept waiting
            early.summary.update(summary)
        else:
            self.record(request, **summary)
        return response

    async def _answer(
        self, request: Request, route: dict[str, str], summary: dict[str, Any]
    ) -> Response:
        if not self.authorized(request):
            return self.refused_key(request)
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            raise invalid(
                f"Invalid Content-Type header ({content_type or 'none'}); image edits take "
                "multipart/form-data.",
                code="invalid_content_type",
            )
        try:
            form = await request.form(max_files=64, max_fields=64)
        except Exception as exc:  # the multipart parser's own refusals
            raise invalid(f"Could not parse multipart form: {exc}") from None
        model = self.model_of(form, route)
        summary.update(describe(form), model=model, digests=await _part_digests(form))
        fault = self.next_fault()
        stream = form.get("stream") == "true"
        if fault is not None and not (stream and fault.fault in STREAM_FAULTS):
            if fault.fault == "timeout":
                self.record(request, **summary, status=None)  # seen now, answered too late
                summary["_recorded"] = self.calls[-1]
                await self.wait_out(fault)
            elif fault.fault not in ("malformed", "truncated", "no_image"):
                return self.fault_response(fault)
        edit = await read_edit(form, model)
        edit.summary = summary
        if edit.stream:
            return self.streamed(edit, fault)
        return self.answered(edit, request, fault)

    def _rendered(self, edit: Edit) -> tuple[bytes, int, int]:
        first = edit.images[0]
        size = _target_size(edit.size, first, legacy=edit.model in LEGACY_MODELS)
        data = result_png(first, size)
        if edit.output_format != "png":
            with Image.open(io.BytesIO(data)) as image:
                out = io.BytesIO()
                options = {"quality": edit.output_compression or 90}
                image.convert("RGB").save(out, format=edit.output_format.upper(), **options)
                data = out.getvalue()
        return data, size[0], size[1]

    def _usage(self, edit: Edit, width: int, height: int, *, events: bool) -> dict[str, Any]:
        text_tokens = max(1, math.ceil(len(edit.prompt) / 4))
        image_tokens = sum(
            65 + 129 * math.ceil(im.width / 512) * math.ceil(im.height / 512) for im in edit.images
        )
        quality = _applied_quality(edit.quality)
        per_image = round(OUTPUT_TOKENS[quality] * width * height / (1024 * 1024))
        output = per_image * (1 if events else edit.n)
        if events:
            output += PARTIAL_TOKENS * edit.partial_images
        usage: dict[str, Any] = {
            "input_tokens": text_tokens + image_tokens,
            "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
            "output_tokens": output,
            "total_tokens": text_tokens + image_tokens + output,
        }
        if edit.model in OUTPUT_DETAILS_MODELS and not events:
            usage["output_tokens_details"] = {"image_tokens": output, "text_tokens": 0}
        return usage

    def answered(self, edit: Edit, request: Request, fault: Fault | None) -> Response:
        data, width, height = self._rendered(edit)
        legacy = edit.model in LEGACY_MODELS
        encoded = b64(data)
        entries: list[dict[str, Any]] = []
        for _ in range(edit.n):
            if legacy and (edit.response_format != "b64_json" or self.answer_urls):
                name = secrets.token_hex(8) + ".png"
                self.files[name] = data
                entries.append(
                    {"url": f"{request.base_url}__fake__/files/{name}?se=2099&sig=fakesig"}
                )
            else:
                entries.append({"b64_json": encoded})
        edit.summary["answer"] = [_digest(entry.get("b64_json", "")) for entry in entries]
        doc: dict[str, Any] = {"created": int(time.time()), "data": entries}
        if not legacy:
            doc.update(
                background="transparent" if edit.background == "transparent" else "opaque",
                output_format=edit.output_format,
                quality=_applied_quality(edit.quality),
                size=f"{width}x{height}",
                usage=self._usage(edit, width, height, events=False),
            )
            edit.summary["usage"] = doc["usage"]
        if fault is not None and fault.fault == "no_image":
            doc["data"] = []
        body = orjson.dumps(doc)
        if fault is not None and fault.fault == "malformed":
            return Response(
                b"<html><body>502 Bad Gateway</body></html>", 200, media_type="application/json"
            )
        if fault is not None and fault.fault == "truncated":
            return Response(body[: len(body) // 2], 200, media_type="application/json")
        return Response(body, 200, media_type="application/json")

    def streamed(self, edit: Edit, fault: Fault | None) -> Response:
        data, width, height = self._rendered(edit)
        final = b64(data)
        preview = b64(result_png(ImageOps.grayscale(edit.images[0]), (width, height)))
        common = {
            "background": "transparent" if edit.background == "transparent" else "opaque",
            "output_format": edit.output_format,
            "quality": _applied_quality(edit.quality),
            "size": f"{width}x{height}",
        }
        frames: list[bytes] = []
        for index in range(edit.partial_images):
            event = {
                "type": "image_edit.partial_image",
                "b64_json": preview,
                "created_at": int(time.time()),
                "partial_image_index": index,
                **common,
            }
            frames.append(_frame("image_edit.partial_image", event))
        for _ in range(edit.n):
            event = {
                "type": "image_edit.completed",
                "b64_json": "" if fault is not None and fault.fault == "no_image" else final,
                "created_at": int(time.time()),
                **common,
                "usage": self._usage(edit, width, height, events=True),
            }
            frames.append(_frame("image_edit.completed", event))
        edit.summary["answer"] = [_digest(preview)] * edit.partial_images
        edit.summary["answer"] += [_digest(final)] * edit.n
        edit.summary["usage"] = self._usage(edit, width, height, events=True)
        if fault is not None and fault.fault == "malformed":
            frames = [b"event: image_edit.partial_image\ndata: {not json\n\n"]
        elif fault is not None and fault.fault == "truncated":
            frames = [*frames[: edit.partial_images], frames[-1][: len(frames[-1]) // 2]]
        elif fault is not None and fault.fault == "moderation":
            error = {"type": "error", "error": self.moderation_error()}
            frames = [*frames[: edit.partial_images], _frame("error", error)]

        async def body() -> AsyncIterator[bytes]:
            for frame in frames:
                yield frame

        return StreamingResponse(body(), 200, media_type="text/event-stream")


def _target_size(size: str | None, first: Image.Image, *, legacy: bool) -> tuple[int, int]:
    if size is None or size == "auto":
        if legacy:
            return 1024, 1024
        if first.width > first.height * 1.2:
            return 1536, 1024
        if first.height > first.width * 1.2:
            return 1024, 1536
        return 1024, 1024
    width, _, height = size.partition("x")
    return int(width), int(height)


def _applied_quality(quality: str | None) -> str:
    return quality if quality in OUTPUT_TOKENS else "medium"


def _frame(event: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


async def _part_digests(form: FormData) -> list[str]:
    """A digest of each file part's bytes, in order: a test can tell they arrived untouched."""
    digests = []
    for _name, part in form.multi_items():
        if isinstance(part, UploadFile):
            digests.append(hashlib.sha256(await part.read()).hexdigest()[:16])
            await part.seek(0)
    return digests


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


def b64_digest(text: str) -> str:
    """What the fake records for an image it sent, to compare with what a client got."""
    return _digest(text)


def bytes_digest(data: bytes) -> str:
    """What the fake records for a file part it received (``digests``)."""
    return hashlib.sha256(data).hexdigest()[:16]
