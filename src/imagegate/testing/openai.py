"""Strict fakes of OpenAI's Images API (``POST /v1/images/edits``) and of Azure OpenAI's
deployments of it (``POST /openai/deployments/{deployment}/images/edits?api-version=...``).

Each checks what the real service checks and answers a mismatch in its error envelope and
status: the credential (``Authorization: Bearer`` / ``api-key``), a ``multipart/form-data`` body,
field names (a string where a file belongs is OpenAI's "expected a file"), file parts typed as
images (never ``application/octet-stream``) whose bytes decode and match their type, at most 16
images (one square PNG under 4 MB for dall-e-2), a PNG mask with alpha the size of the first
image, known models, sizes the model takes (gpt-image-2: any WxH in multiples of 16, ratio 1:3 to
3:1, at most 3840x2160), ``response_format`` refused for GPT image models (``unknown_parameter``),
GPT-only fields refused for dall-e-2, ``n`` 1-10, prompt lengths, and unknown fields.

Answers are real PNGs (the first input inverted, at the size asked; JPEG or WEBP when asked)
with gpt-image-style ``usage``: text and image input tokens, and 272 / 1056 / 4160 output image
tokens per 1024x1024 image at low / medium / high quality (scaled by pixels). Like the real
Images API, only gpt-image-1 answers with ``output_tokens_details``. dall-e-2 answers with a URL
unless ``b64_json`` was asked (or ``answer_urls`` is set); the fake serves that URL itself.
Stream requests get ``image_edit.partial_image`` and ``image_edit.completed`` events.

Every call is recorded (model, image count, sorted field names, file parts' names and types,
text values; never bytes), and every fault of ``testing.fake`` is spoken in each service's own
shapes.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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
    decode_image,
    json_response,
    result_png,
)

MB = 1024 * 1024
GPT_MODELS = frozenset(
    {"gpt-image-1", "gpt-image-1.5", "gpt-image-1-mini", "gpt-image-2", "chatgpt-image-latest"}
)
LEGACY_MODELS = frozenset({"dall-e-2"})
DEFAULT_MODEL = "gpt-image-1.5"
GPT_SIZES = frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"})
LEGACY_SIZES = frozenset({"256x256", "512x512", "1024x1024"})
CUSTOM_SIZE_MODELS = frozenset({"gpt-image-2"})
NO_FIDELITY_MODELS = frozenset({"gpt-image-1-mini", "gpt-image-2"})
OUTPUT_DETAILS_MODELS = frozenset({"gpt-image-1"})  # the others leave output_tokens_details out
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
OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160}  # per 1024x1024 image
PARTIAL_TOKENS = 100  # each streamed partial image


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
        summary.update(_describe(form), model=model)
        fault = self.next_fault()
        stream = form.get("stream") == "true"
        if fault is not None and not (stream and fault.fault in STREAM_FAULTS):
            if fault.fault == "timeout":
                self.record(request, **summary, status=None)  # seen now, answered too late
                summary["_recorded"] = self.calls[-1]
                await self.wait_out(fault)
            elif fault.fault not in ("malformed", "truncated", "no_image"):
                return self.fault_response(fault)
        edit = await self.validate(form, model)
        edit.summary = summary
        if edit.stream:
            return self.streamed(edit, fault)
        return self.answered(edit, request, fault)

    # -- checks --------------------------------------------------------------------------------
    async def validate(self, form: FormData, model: str) -> Edit:
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
                    raise invalid(
                        f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter"
                    )
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
        images = await self._images(form, legacy)
        await self._mask(form, images[0])
        edit = Edit(model=model, prompt=prompt, images=images)
        edit.n = _integer(text, "n", 1, 1, 10)
        edit.size = self._size(text.get("size"), model, legacy)
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
            raise invalid(
                "Transparent backgrounds need output_format png or webp.", param="background"
            )
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

    async def _images(self, form: FormData, legacy: bool) -> list[Image.Image]:
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

    async def _mask(self, form: FormData, first: Image.Image) -> None:
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

    def _size(self, size: str | None, model: str, legacy: bool) -> str | None:
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

    # -- answers -------------------------------------------------------------------------------
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


STREAM_FAULTS = frozenset({"malformed", "truncated", "no_image", "moderation"})


class AzureFake(OpenAIFake):
    """``POST /openai/deployments/{deployment}/images/edits?api-version=...`` as an Azure
    OpenAI resource answers it, with ``api-key`` auth and Azure's error spellings."""

    name = "azure"
    API_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2}(-preview)?|preview|latest)$")

    def __init__(self, api_key: str, deployments: dict[str, str] | None = None) -> None:
        # deployment name -> the OpenAI model it runs
        self.deployments = deployments or {
            "gpt-image-1-prod": "gpt-image-1",
            "gpt-image-15": "gpt-image-1.5",
            "image-mini": "gpt-image-1-mini",
        }
        super().__init__(api_key)

    def routes(self) -> list[Route]:
        return [
            Route("/__fake__/files/{name}", self._file, methods=["GET"]),
            Route(
                "/openai/deployments/{deployment}/images/edits", self._deployment, methods=["POST"]
            ),
        ]

    async def _deployment(self, request: Request) -> Response:
        name = request.path_params["deployment"]
        version = request.query_params.get("api-version", "")
        route = {"deployment": name, "api_version": version}
        if not version or not self.API_VERSION.match(version):
            self.record(request, **route, status=404)
            return _azure_error(404, "404", "Resource not found")
        if name not in self.deployments:
            self.record(request, **route, status=404)
            return _azure_error(
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the "
                "deployment within the last 5 minutes, please wait a moment and try again.",
            )
        return await self.handle(request, route)

    def authorized(self, request: Request) -> bool:
        return request.headers.get("api-key") == self.api_key

    def auth_name(self, request: Request) -> str | None:
        if "api-key" in request.headers:
            return "api-key"
        return super().auth_name(request)

    def refused_key(self, request: Request) -> Response:
        return _azure_error(
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
            "provide a valid key for an active subscription and use a correct regional API "
            "endpoint for your resource.",
        )

    def model_of(self, form: FormData, route: dict[str, str]) -> str:
        deployment = route["deployment"]
        model = self.deployments[deployment]
        sent = form.get("model")
        if sent is not None and sent not in (deployment, model):
            raise invalid(
                f"The model '{sent}' does not match deployment '{deployment}' ({model}).",
                param="model",
            )
        return model

    def fault_response(self, fault: Fault) -> Response:
        headers = {"retry-after": str(fault.retry_after)} if fault.retry_after else None
        if fault.fault == "rate_limit":
            return _azure_error(
                429,
                "429",
                "Requests to the Images_Edit Operation under Azure OpenAI API version "
                "2025-04-01-preview have exceeded call rate limit of your current OpenAI S0 "
                "pricing tier. Please retry after 7 seconds.",
                headers=headers,
            )
        if fault.fault == "unavailable":
            return _azure_error(
                503,
                "ServiceUnavailable",
                "The service is temporarily unable to process your request.",
            )
        if fault.fault == "moderation":
            return self.moderation_response()
        if fault.fault == "bad_key":
            return _azure_error(401, "401", "Access denied due to invalid subscription key.")
        return _azure_error(
            500, "InternalServerError", "The server had an error processing your request."
        )

    def moderation_error(self) -> dict[str, Any]:
        return {
            "code": "content_filter",
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
            "content management policy.",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    "hate": {"filtered": False, "severity": "safe"},
                    "self_harm": {"filtered": False, "severity": "safe"},
                    "sexual": {"filtered": True, "severity": "medium"},
                    "violence": {"filtered": False, "severity": "safe"},
                },
            },
        }


# -- helpers ----------------------------------------------------------------------------------


def _azure_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def _describe(form: FormData) -> dict[str, Any]:
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


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


def b64_digest(text: str) -> str:
    """What the fake records for an image it sent, to compare with what a client got."""
    return _digest(text)
