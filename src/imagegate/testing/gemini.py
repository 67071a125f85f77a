"""A strict fake of the Gemini API's ``generateContent`` for the image models.

It checks what Google checks (``gemini_wire``) and answers every mismatch in Google's RPC error
envelope (``{"error": {"code", "message", "status", "details"}}``): the path
(``/v1beta|v1/models/{model}:generateContent``), the key (``x-goog-api-key`` or ``?key=``; a wrong
one is 400 ``API_KEY_INVALID``, none is 403), ``application/json``, every field name of the body
(an unknown one, such as Vertex's ``imageConfig.outputMimeType``, is "Unknown name ... Cannot
find field"), the parts (text, ``inline_data``/``inlineData`` whose base64, in either alphabet,
decodes to a real image of the type it names; at most 14 images), ``responseModalities``, and
the aspect ratios and image sizes each model takes. ``imageSize`` sent to
``gemini-2.5-flash-image`` is ignored, as the real service is reported to do (so the record is
what shows it was sent).

It answers with a real PNG: the first input inverted, at the size its ratio and tier give (the
ratio of the input when none is asked for). The thinking models (3 Pro Image, 3.1 Flash Image)
answer with thought parts first (a thought and a draft image, the input NOT inverted at a
quarter size) and the final image last. ``usageMetadata`` counts as Gemini does: input images
at 258 / 560 / 1120 tokens, output images at 1290 (2.5 Flash, 1K), 1120 / 1120 / 2000 (3 Pro,
1K / 2K / 4K) and 747 / 1120 / 1680 / 2520 (3.1 Flash, 512 / 1K / 2K / 4K), thoughts at 212.

Faults (``POST /__fake__/faults``), in Gemini's shapes: ``rate_limit`` (429
``RESOURCE_EXHAUSTED``, with ``RetryInfo.retryDelay`` when ``retry_after`` is given),
``server_error`` (500 ``INTERNAL``), ``unavailable`` (503 ``UNAVAILABLE``), ``timeout`` (waits
``delay`` s, then 504 ``DEADLINE_EXCEEDED``; variant ``deadline`` answers that at once),
``malformed`` (a 200 HTML page), ``truncated`` (a 200 whose JSON stops halfway), ``no_image``
(a text-only answer; variant ``NO_IMAGE`` or any other finishReason: that reason, no parts),
``moderation`` (finishReason ``IMAGE_SAFETY``, or the variant's reason; variant ``blocked``:
``promptFeedback.blockReason`` and no candidates) and ``bad_key`` (400 ``API_KEY_INVALID``).
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
from typing import Any

from PIL import Image
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from imagegate.testing.fake import FakeUpstream, Fault, b64, json_response, result_png
from imagegate.testing.gemini_wire import (
    MODELS,
    Checked,
    Model,
    Refusal,
    bad_key,
    check_body,
    google_error,
)

SIZES_1K = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
    "1:4": (512, 2048),
    "4:1": (2048, 512),
    "1:8": (384, 3072),
    "8:1": (3072, 384),
}
TIER_SCALE = {"512": 0.5, "1K": 1.0, "2K": 2.0, "4K": 4.0}
THOUGHT_TOKENS = 212
REPLY_TEXT = "Here is the edited image."
REPLY_TEXT_TOKENS = 6


class GeminiFake(FakeUpstream):
    name = "gemini"

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.urlsafe_answers = False  # answer in the URL-safe alphabet (the service may)

    def routes(self) -> list[Route]:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return [
            Route("/{version}/models/{target}", self._model_call, methods=methods),
            Route("/{path:path}", self._not_found, methods=methods),
        ]

    async def _not_found(self, request: Request) -> Response:
        return google_error(404, "NOT_FOUND", "Method not found.")

    async def _model_call(self, request: Request) -> Response:
        try:
            model_name, model = self._route(request)
            self._authorize(request)
            content_type = request.headers.get("content-type", "")
            checked = check_body(await request.body(), content_type, model_name, model)
        except Refusal as refusal:
            return refusal.response
        self.record(
            request,
            model=model_name,
            api_version=request.path_params["version"],
            auth="header" if request.headers.get("x-goog-api-key") else "query",
            top_level=checked.top_level,
            parts=checked.parts,
            image_count=len(checked.images),
            generation_config=checked.config,
        )
        fault = self.next_fault()
        if fault is not None:
            return await self._fault(fault)
        return self._answer(checked, model_name, model)

    def _route(self, request: Request) -> tuple[str, Model]:
        version, target = request.path_params["version"], request.path_params["target"]
        model_name, _, method = target.partition(":")
        if version not in ("v1beta", "v1") or method != "generateContent":
            raise Refusal(404, "NOT_FOUND", "Method not found.")
        if request.method != "POST":
            raise Refusal(404, "NOT_FOUND", "Method not found.")
        model = MODELS.get(model_name)
        if model is None:
            raise Refusal(
                404,
                "NOT_FOUND",
                f"models/{model_name} is not found for API version {version}, or is not "
                "supported for generateContent. Call ListModels to see the list of available "
                "models and their supported methods.",
            )
        return model_name, model

    def _authorize(self, request: Request) -> None:
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if not key:
            raise Refusal(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if key != self.api_key:
            raise bad_key()

    # -- answers ----------------------------------------------------------------------------
    def _answer(self, checked: Checked, model_name: str, model: Model) -> Response:
        images = checked.images
        image_config = checked.config.get("imageConfig") or {}
        tier = image_config.get("imageSize") if model.sizes else None
        tier = tier or "1K"
        ratio = image_config.get("aspectRatio") or _nearest_ratio(images, model)
        width, height = SIZES_1K[ratio]
        scale = TIER_SCALE[tier]
        size = (round(width * scale), round(height * scale))
        first = images[0] if images else None
        final = self._b64(result_png(first, size))
        parts: list[dict[str, Any]] = []
        if model.thinking:
            draft = _draft_png(first, size)
            parts.append({"text": "**Planning the edit** ...", "thought": True})
            parts.append({"inlineData": {"mimeType": "image/png", "data": draft}, "thought": True})
            parts.append(
                {
                    "inlineData": {"mimeType": "image/png", "data": final},
                    "thoughtSignature": "c2lnbmF0dXJl",
                }
            )
        else:
            parts.append({"text": REPLY_TEXT})
            parts.append({"inlineData": {"mimeType": "image/png", "data": final}})
        text_chars = sum(p["chars"] for p in checked.parts if p["kind"] == "text")
        text_in = max(1, math.ceil(text_chars / 4))
        image_in = model.input_tokens * len(images)
        image_out = model.output_tokens[tier]
        text_out = 0 if model.thinking else REPLY_TEXT_TOKENS
        usage: dict[str, Any] = {
            "promptTokenCount": text_in + image_in,
            "candidatesTokenCount": image_out + text_out,
            "totalTokenCount": text_in + image_in + image_out + text_out,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": text_in}]
            + ([{"modality": "IMAGE", "tokenCount": image_in}] if image_in else []),
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": image_out}],
        }
        if model.thinking:
            usage["thoughtsTokenCount"] = THOUGHT_TOKENS
            usage["totalTokenCount"] += THOUGHT_TOKENS
        return json_response(
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": parts},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": usage,
                "modelVersion": model_name,
                "responseId": "fake-" + str(len(self.calls)),
            }
        )

    def _b64(self, data: bytes) -> str:
        if self.urlsafe_answers:
            return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
        return b64(data)

    async def _fault(self, fault: Fault) -> Response:
        name, variant = fault.fault, fault.variant
        if name == "rate_limit":
            details = None
            if fault.retry_after is not None:
                details = [
                    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{fault.retry_after}s",
                    },
                ]
            return google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details.",
                details,
            )
        if name == "server_error":
            return google_error(
                500,
                "INTERNAL",
                "An internal error has occurred. Please retry or report in "
                "https://developers.generativeai.google/guide/troubleshooting",
            )
        if name == "unavailable":
            return google_error(503, "UNAVAILABLE", "The model is overloaded. Please try later.")
        if name == "timeout":
            if variant != "deadline":
                await asyncio.sleep(fault.delay or 30.0)
            return google_error(
                504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."
            )
        if name == "malformed":
            return Response(
                b"<!DOCTYPE html><html><body>Bad Gateway</body></html>", 200, media_type="text/html"
            )
        if name == "truncated":
            return Response(
                b'{"candidates": [{"content": {"parts": [{"inlineData": {"mime',
                200,
                media_type="application/json",
            )
        if name == "no_image":
            if variant is None or variant == "text":
                parts = [{"text": "I can describe the edit, but here is no image this time."}]
                return _candidate("STOP", parts)
            return _candidate(variant, None)
        if name == "moderation":
            if variant == "blocked":
                return json_response(
                    {
                        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                        "usageMetadata": {"promptTokenCount": 1300, "totalTokenCount": 1300},
                        "modelVersion": "fake",
                    }
                )
            return _candidate(variant or "IMAGE_SAFETY", [{"text": "I can't edit that image."}])
        return bad_key().response


def _candidate(finish: str, parts: list[dict[str, Any]] | None) -> Response:
    candidate: dict[str, Any] = {"finishReason": finish, "index": 0}
    if parts is not None:
        candidate["content"] = {"role": "model", "parts": parts}
    return json_response(
        {
            "candidates": [candidate],
            "usageMetadata": {"promptTokenCount": 1300, "totalTokenCount": 1300},
            "modelVersion": "fake",
        }
    )


def _nearest_ratio(images: list[Image.Image], model: Model) -> str:
    """The listed ratio nearest the first input's shape (the model follows its input)."""
    if not images:
        return "1:1"
    shape = math.log(images[0].width / images[0].height)

    def distance(ratio: str) -> float:
        width, height = (int(side) for side in ratio.split(":"))
        return abs(math.log(width / height) - shape)

    return min(model.ratios, key=distance)


def _draft_png(source: Image.Image | None, size: tuple[int, int]) -> str:
    """A thinking model's draft: the input as it was (not inverted), at a quarter size."""
    image = source.convert("RGB") if source is not None else Image.new("RGB", (64, 64), "gray")
    image = image.resize((max(1, size[0] // 4), max(1, size[1] // 4)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return b64(out.getvalue())
