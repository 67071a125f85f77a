"""Gemini ``generateContent``, both ways, with no I/O: an edit job as the JSON body Google takes,
and Google's answer (or refusal) as an image, a usage record or a ``ProviderFailure``.

The request::

    {"contents": [{"role": "user", "parts": [
        {"text": <prompt>},
        {"inline_data": {"mime_type": "image/png", "data": <base64 of the bytes as received>}},
        ...]}],
     "generationConfig": {"responseModalities": ["TEXT", "IMAGE"],
                          "imageConfig": {"aspectRatio": "3:2", "imageSize": "2K"}}}

Each image is base64-encoded once, straight from its blob, and spliced into the body as it is
(base64 needs no JSON escaping); everything else is written by orjson. ``aspectRatio`` is left
out for ``auto`` (the model then follows the input); ``imageSize`` is sent only to models with
more than one tier. No seed and no ``n``: Gemini's image models take neither.

The answer: the LAST non-thought ``inlineData`` part of the first candidate is the image
(thinking models send draft images marked ``thought: true`` first). Without one, the answer is a
refusal (content policy) or a failure (no image), by its ``finishReason`` or ``blockReason``.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import pybase64

from imagegate.catalog.cards import ModelCard, parse_size
from imagegate.core.errors import InvalidRequest
from imagegate.core.lift import loads_lifting
from imagegate.core.request import SizingRequest
from imagegate.core.result import EditResult, ResultImage, Usage
from imagegate.providers.base import EditJob
from imagegate.providers.malformed import Malformed as Malformed
from imagegate.providers.upstream import ProviderFailure, json_message

PROVIDER = "gemini"
RESPONSE_MODALITIES = ("TEXT", "IMAGE")
# What the Gemini API's imageConfig takes at all; each card lists what its model takes.
API_ASPECT_RATIOS = frozenset(
    {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"}
    | {"1:4", "4:1", "1:8", "8:1"}
)
TIER_PIXELS = {"512": 512 * 512, "1K": 1024 * 1024, "2K": 2048 * 2048, "4K": 4096 * 4096}
# Inline data per request: 100 MB of base64 since Google raised it from 20 MB (blog.google,
# "Increased file size limits and expanded inputs support in Gemini API").
MAX_INLINE_BYTES = 100_000_000
# A size asking for more than this many times the pixels of the model's largest tier is refused
# rather than silently answered smaller.
MAX_PIXEL_SHORTFALL = 2.0
IMAGE_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
# finishReasons that mean the content policy said no (google-genai types.FinishReason); every
# other reason without an image (NO_IMAGE, IMAGE_OTHER, OTHER, MAX_TOKENS, STOP with text only,
# ...) is a failure to draw.
MODERATION_FINISH = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


# -- the request ---------------------------------------------------------------------------------
def check_job(job: EditJob) -> None:
    """What only Gemini knows, refused before any call (and before a stream opens)."""
    request, card = job.request, job.card
    if request.seed is not None:
        raise InvalidRequest(
            f"{card.id} takes no seed (the Gemini API has none for its image models); send "
            "the edit without one.",
            param="seed",
            code="unsupported_parameter",
        )
    ratio = job.sizing.aspect_ratio
    if ratio is not None and ratio != "auto" and ratio not in API_ASPECT_RATIOS:
        raise InvalidRequest(
            f"{card.id}: the Gemini API takes no aspect ratio {ratio}; it takes "
            f"{', '.join(sorted(API_ASPECT_RATIOS, key=_ratio_order))}.",
            param="aspect_ratio",
            code="unsupported_size",
        )
    tier = output_tier(job)
    if tier is not None and sends_image_size(card) and tier not in TIER_PIXELS:
        raise InvalidRequest(
            f"{card.id}: the Gemini API takes no image size {tier}; it takes "
            f"{', '.join(TIER_PIXELS)}.",
            param="resolution",
            code="unsupported_size",
        )
    _check_pixels(request.sizing, card)
    inline = sum(_b64_len(image.nbytes) for image in request.images)
    if inline + len(request.prompt.encode()) > MAX_INLINE_BYTES:
        raise InvalidRequest(
            f"{card.id} takes at most {MAX_INLINE_BYTES // 1_000_000} MB of inline data per "
            f"request; these images are {inline / 1_000_000:.1f} MB as base64. Send fewer or "
            "smaller images.",
            param="image",
            code="image_too_large",
        )


def sends_image_size(card: ModelCard) -> bool:
    """Whether the model takes imageSize: it lists more than one tier (2.5 Flash Image is 1K)."""
    return len(card.sizing.resolutions) > 1


def output_tier(job: EditJob) -> str | None:
    """The tier to ask for: the one the client named, else the one nearest the pixels it sent."""
    if job.sizing.resolution is not None:
        return job.sizing.resolution
    pixels = requested_pixels(job.request.sizing)
    if pixels is None:
        return None
    tiers = [tier for tier in job.card.sizing.resolutions if tier in TIER_PIXELS]
    if not tiers:
        return None
    area = pixels[0] * pixels[1]
    return min(tiers, key=lambda t: (abs(math.log(TIER_PIXELS[t] / area)), -TIER_PIXELS[t]))


def requested_pixels(sizing: SizingRequest) -> tuple[int, int] | None:
    if sizing.width is not None and sizing.height is not None:
        return sizing.width, sizing.height
    if sizing.size is not None and sizing.size != "auto":
        return parse_size(sizing.size)
    return None


def image_config(job: EditJob) -> dict[str, str]:
    config: dict[str, str] = {}
    ratio = job.sizing.aspect_ratio
    if ratio is not None and ratio != "auto":
        config["aspectRatio"] = ratio
    tier = output_tier(job)
    if tier is not None and sends_image_size(job.card):
        config["imageSize"] = tier
    return config


def generation_config(job: EditJob) -> dict[str, Any]:
    config: dict[str, Any] = {"responseModalities": list(RESPONSE_MODALITIES)}
    image = image_config(job)
    if image:
        config["imageConfig"] = image
    return config


@dataclass(frozen=True, slots=True)
class RequestBody:
    """The JSON body in pieces: each image's base64 is one piece, made once and shared by every
    call of a fanned-out edit, and sent without being joined into one more copy."""

    chunks: tuple[bytes, ...]

    @property
    def length(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    def joined(self) -> bytes:
        return b"".join(self.chunks)

    async def stream(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def encode_request(job: EditJob) -> RequestBody:
    chunks = [b'{"contents":[{"role":"user","parts":[' + orjson.dumps({"text": job.request.prompt})]
    for image in job.request.images:
        chunks.append(b',{"inline_data":{"mime_type":' + orjson.dumps(image.mime_type))
        chunks.append(b',"data":"')
        chunks.append(pybase64.b64encode(image.view()))
        chunks.append(b'"}}')
    chunks.append(b']}],"generationConfig":' + orjson.dumps(generation_config(job)) + b"}")
    return RequestBody(tuple(chunks))


def _check_pixels(sizing: SizingRequest, card: ModelCard) -> None:
    pixels = requested_pixels(sizing)
    tiers = [TIER_PIXELS[t] for t in card.sizing.resolutions if t in TIER_PIXELS]
    if pixels is None or not tiers:
        return
    width, height = pixels
    largest = max(tiers)
    if width * height > MAX_PIXEL_SHORTFALL * largest:
        side = math.isqrt(largest)
        raise InvalidRequest(
            f"{card.id} makes images of at most about {largest / 1e6:.1f} megapixels "
            f"({side}x{side} at 1:1); size {width}x{height} asks for "
            f"{width * height / 1e6:.1f}. Ask for a smaller size, or for its shape with "
            "aspect_ratio.",
            param="size",
            code="unsupported_size",
        )


def _b64_len(nbytes: int) -> int:
    return 4 * ((nbytes + 2) // 3)


def _ratio_order(ratio: str) -> tuple[int, int]:
    width, height = ratio.split(":")
    return int(width) + int(height), int(width)


# -- the answer ----------------------------------------------------------------------------------
def load_answer(body: bytes) -> object:
    """The answer's JSON, each inline image's base64 a view of ``body`` where it is plain
    (``core.lift``). Raises ``orjson.JSONDecodeError``."""
    return loads_lifting(body, "data", _inline_parts)


def _inline_parts(doc: Any) -> Iterator[tuple[dict[str, Any], str]]:
    candidates = doc.get("candidates") if isinstance(doc, dict) else None
    for candidate in candidates if isinstance(candidates, list) else ():
        content = candidate.get("content") if isinstance(candidate, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            inline = (
                part.get("inlineData", part.get("inline_data")) if isinstance(part, dict) else None
            )
            if isinstance(inline, dict):
                yield inline, "data"


def read_answer(doc: object, model_id: str) -> EditResult | ProviderFailure:
    """The image in a generateContent answer (as the result of the card ``model_id``), or why
    there is none. Raises ``Malformed``."""
    if not isinstance(doc, dict):
        raise Malformed("a JSON body that is not an object")
    candidates = doc.get("candidates")
    feedback = doc.get("promptFeedback")
    block = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if not candidates:
        if isinstance(block, str) and block:
            said = feedback.get("blockReasonMessage") if isinstance(feedback, dict) else None
            return ProviderFailure(
                f"the prompt was blocked (promptFeedback.blockReason {block})"
                + (f": {said}" if isinstance(said, str) and said else ""),
                code=block.lower(),
                kind="moderation",
            )
        raise Malformed("an answer with neither candidates nor a blockReason")
    if not isinstance(candidates, list) or not isinstance(candidates[0], dict):
        raise Malformed("candidates that are not a list of objects")
    candidate: dict[str, Any] = candidates[0]
    finish = candidate.get("finishReason")
    image_part, texts = _final_parts(candidate)
    if image_part is None:
        return _no_image(finish if isinstance(finish, str) else None, texts)
    mime = image_part.get("mimeType", image_part.get("mime_type"))
    data = image_part.get("data")  # a view of the answer's bytes when lifted (load_answer)
    if not isinstance(data, str | memoryview) or not data:
        raise Malformed("an image part without data")
    if mime not in IMAGE_MIME_TYPES:
        raise Malformed(f"an image of type {mime!r} (not PNG, JPEG or WEBP)")
    try:
        image = ResultImage.from_base64(data)  # the bytes, not the label, say what it is
    except ValueError:
        raise Malformed(f"{mime} data that is not a base64 image") from None
    return EditResult(
        images=[image],
        model=model_id,
        provider=PROVIDER,
        usage=read_usage(doc.get("usageMetadata"), image_returned=True),
    )


def _final_parts(candidate: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The last non-thought image part, and the non-thought text, of one candidate."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if parts is None:
        return None, []
    if not isinstance(parts, list):
        raise Malformed("content.parts that is not a list")
    image: dict[str, Any] | None = None
    texts: list[str] = []
    for part in parts:
        if not isinstance(part, dict):
            raise Malformed("a content part that is not an object")
        if part.get("thought") is True:
            continue  # thinking: interim text and draft images
        inline = part.get("inlineData", part.get("inline_data"))
        if isinstance(inline, dict):
            image = inline
        elif isinstance(part.get("text"), str) and part["text"].strip():
            texts.append(part["text"].strip())
    return image, texts


def _no_image(finish: str | None, texts: list[str]) -> ProviderFailure:
    said = f': "{" ".join(texts)}"' if texts else ""
    if finish in MODERATION_FINISH:
        return ProviderFailure(
            f"finishReason {finish}{said}", code=finish.lower(), kind="moderation"
        )
    what = "a text-only answer" if texts else "an answer without an image"
    return ProviderFailure(
        f"{what} (finishReason {finish or 'none'}){said}",
        code=(finish or "no_image").lower(),
        kind="server",
    )


def read_usage(meta: object, *, image_returned: bool) -> Usage:
    """Gemini's usageMetadata as token counts. Thought tokens are output, billed by Google at the
    text-output rate, so they count as output text; image tokens are output image tokens."""
    if not isinstance(meta, dict):
        return Usage()
    prompt = _count(meta.get("promptTokenCount"))
    candidates = _count(meta.get("candidatesTokenCount"))
    thoughts = _count(meta.get("thoughtsTokenCount"))
    details_in = _by_modality(meta.get("promptTokensDetails"))
    if details_in is not None:
        image_in = details_in.get("IMAGE", 0)
        text_in = sum(count for modality, count in details_in.items() if modality != "IMAGE")
        prompt = prompt or text_in + image_in
    else:
        text_in, image_in = prompt, 0
    details_out = _by_modality(meta.get("candidatesTokensDetails"))
    if details_out is not None:
        image_out = details_out.get("IMAGE", 0)
        candidates = max(candidates, sum(details_out.values()))
    else:
        image_out = candidates if image_returned else 0
    return Usage(
        input_tokens=prompt,
        output_tokens=candidates + thoughts,
        input_text_tokens=text_in,
        input_image_tokens=image_in,
        output_image_tokens=image_out,
        output_text_tokens=max(0, candidates - image_out) + thoughts,
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _by_modality(details: object) -> dict[str, int] | None:
    if not isinstance(details, list) or not details:
        return None
    counts: dict[str, int] = {}
    for item in details:
        if isinstance(item, dict):
            modality = str(item.get("modality", "TEXT")).upper()
            counts[modality] = counts.get(modality, 0) + _count(item.get("tokenCount"))
    return counts


# -- refusals --------------------------------------------------------------------------------------
def read_error(status: int, body: bytes) -> ProviderFailure:
    """Google's words for a failed call: the RPC error envelope of a non-2xx answer, or the
    refusal inside a 200 generateContent answer that carried no image."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ProviderFailure(json_message(body)[1] or f"HTTP {status}")
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
        parsed = parsed[0]  # some Google front ends send the envelope in a list
    if not isinstance(parsed, dict):
        return ProviderFailure(f"HTTP {status}")
    doc: dict[str, Any] = parsed
    if 200 <= status < 300:
        outcome = read_answer(doc, "")
        if isinstance(outcome, ProviderFailure):
            return outcome
        return ProviderFailure("an answer read as a failure", kind="server")
    error = doc.get("error")
    if not isinstance(error, dict):
        return ProviderFailure(str(orjson.dumps(doc)[:300], "utf-8", "replace"))
    message = str(error.get("message") or f"HTTP {status}")
    state = error.get("status") if isinstance(error.get("status"), str) else None
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    reasons = [str(d["reason"]) for d in details if isinstance(d.get("reason"), str)]
    retry_after = _retry_delay(details)
    code = state.lower() if state else None
    if any(reason.startswith("API_KEY_") for reason in reasons):
        key_reason = next(reason for reason in reasons if reason.startswith("API_KEY_"))
        return ProviderFailure(message, code=key_reason.lower(), kind="auth")
    kind = _KINDS.get(state or "")
    if kind is None and "payload size exceeds" in message.lower():
        kind = "too_large"
    return ProviderFailure(message, code=code, kind=kind, retry_after=retry_after)


_KINDS: dict[str, Any] = {
    "UNAUTHENTICATED": "auth",
    "PERMISSION_DENIED": "auth",
    "RESOURCE_EXHAUSTED": "rate_limit",
    # The gateway's account or region (billing off, location unsupported): not the client's
    # request, and the client cannot fix it.
    "FAILED_PRECONDITION": "server",
}


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    for detail in details:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None
