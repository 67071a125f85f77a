"""xAI Grok Imagine image edits, both ways: an ``EditJob`` into xAI's JSON body, and its answer
into images, a revised prompt and the cost it states.

Pure: no I/O here (``adapter.py`` sends)::

    POST {base}/images/edits        application/json ONLY (xAI refuses multipart)
         Authorization: Bearer <key>
         {"model", "prompt", "image": {"url": "data:...", "type": "image_url"}
                          or "images": [{...}, {...}, {...}]   (up to 3),
          "n" (1-10), "response_format": "b64_json", "aspect_ratio"?, "resolution"?}
    200  {"created", "data": [{"b64_json" | "url", "mime_type", "revised_prompt",
          "respect_moderation"?}], "usage"?: {"cost_in_usd_ticks"}}

xAI refuses ``size``, ``quality`` and ``style`` ("Argument not supported"), so they are never
sent: a ``size`` reaches xAI as the aspect ratio of its shape (the card's sizing), and OpenAI
fields xAI has no equivalent for are a 400 here. It takes no mask (the card says so). Images go
as data URIs: base64 encoded once from the bytes and spliced into the JSON orjson writes.
Errors are a flat ``{"code": "...", "error": "..."}``; a refused key is answered 400, so it is
read by its text.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import orjson
import pybase64

from imagegate.core.errors import ContentPolicyViolation, InvalidRequest
from imagegate.providers.base import EditJob
from imagegate.providers.malformed import Malformed as Malformed
from imagegate.providers.upstream import ProviderFailure, json_message

EDIT_PATH = "images/edits"  # under the base URL, which ends in /v1
TICKS_PER_USD = 10_000_000_000  # usage.cost_in_usd_ticks
_SLOT = "@imagegate-image-" + secrets.token_hex(8) + "-{}@"
_AUTH = re.compile(r"api key|api-key|apikey|unauthenticated|unauthori[sz]ed", re.I)
_MODERATION = re.compile(r"moderat|content polic|safety|nsfw|not allowed to generate", re.I)
_UNSUPPORTED = re.compile(r"argument not supported:\s*([A-Za-z_]+)", re.I)
_SLUG = re.compile(r"^[a-z][a-z0-9_]*$")


# -- the request ---------------------------------------------------------------------------------


def check_request(job: EditJob) -> None:
    """OpenAI fields xAI has no equivalent for: a 400, never silently dropped."""
    req, model = job.request, job.card.id
    if req.output.quality not in (None, "auto"):
        raise InvalidRequest(
            f"{model} has no quality setting (xAI refuses it); leave quality out, or choose a "
            "resolution (1k, 2k).",
            param="quality",
            code="unsupported_value",
        )
    if req.input_fidelity is not None:
        raise InvalidRequest(
            f"{model} has no input_fidelity setting; leave it out.",
            param="input_fidelity",
            code="unsupported_parameter",
        )
    if req.moderation == "low":
        raise InvalidRequest(
            f"{model} has no moderation setting; xAI's own moderation always applies.",
            param="moderation",
            code="unsupported_value",
        )
    if req.seed is not None:
        raise InvalidRequest(
            f"{model} takes no seed: xAI's results are not reproducible. Leave seed out.",
            param="seed",
            code="unsupported_parameter",
        )


def edit_body(job: EditJob) -> bytes:
    """The JSON body: orjson writes everything but the images, whose data URIs (base64 made once
    from the bytes) are spliced into their slots."""
    req, sizing = job.request, job.sizing
    refs = [{"url": _SLOT.format(i), "type": "image_url"} for i in range(len(req.images))]
    doc: dict[str, object] = {"model": job.card.upstream_model, "prompt": req.prompt}
    if len(refs) == 1:
        doc["image"] = refs[0]
    else:
        doc["images"] = refs
    doc["n"] = req.n
    doc["response_format"] = "b64_json"
    if sizing.aspect_ratio is not None:
        doc["aspect_ratio"] = sizing.aspect_ratio
    if sizing.resolution is not None:
        doc["resolution"] = sizing.resolution
    head = orjson.dumps(doc)
    pieces: list[bytes] = []
    at = 0
    for index, image in enumerate(req.images):
        slot = _SLOT.format(index).encode()
        found = head.index(slot, at)
        pieces += [
            head[at:found],
            b"data:" + image.mime_type.encode() + b";base64,",
            pybase64.b64encode(image.view()),
        ]
        at = found + len(slot)
    pieces.append(head[at:])
    return b"".join(pieces)


# -- the answer ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnsweredImage:
    b64: str | None
    url: str | None
    revised_prompt: str | None


@dataclass(frozen=True, slots=True)
class Answer:
    images: list[AnsweredImage]
    cost_usd: float | None  # what xAI says the call cost, when it says


def read_answer(body: bytes) -> Answer:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Malformed("a body that is not JSON (cut short?)") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise Malformed("JSON without a data list")
    entries = [entry for entry in doc["data"] if isinstance(entry, dict)]
    if any(entry.get("respect_moderation") is False for entry in entries):
        raise ContentPolicyViolation(
            "xai refused the request under its content policy: its moderation flagged the "
            "result (respect_moderation false); no image is returned.",
            origin="provider",
        )
    images = []
    for entry in entries:
        b64, url = entry.get("b64_json"), entry.get("url")
        revised = entry.get("revised_prompt")
        revised_prompt = revised if isinstance(revised, str) and revised else None
        if isinstance(b64, str) and b64:
            images.append(AnsweredImage(b64, None, revised_prompt))
        elif isinstance(url, str) and url:
            images.append(AnsweredImage(None, url, revised_prompt))
        else:
            raise Malformed("an image entry with neither b64_json nor url")
    if not images:
        raise Malformed("no image")
    return Answer(images, _cost(doc.get("usage")))


def _cost(usage: object) -> float | None:
    if not isinstance(usage, dict):
        return None
    ticks = usage.get("cost_in_usd_ticks")
    if isinstance(ticks, int) and not isinstance(ticks, bool) and ticks >= 0:
        return ticks / TICKS_PER_USD
    return None


def read_error(status: int, body: bytes) -> ProviderFailure:
    """xAI's ``{"code", "error"}`` (or an OpenAI-style ``{"error": {...}}``), its kind read from
    the text where the status misleads: a refused key is a 400."""
    doc, text = json_message(body)
    message, code = text, None
    if doc is not None:
        error = doc.get("error")
        if isinstance(error, dict):
            message = str(error.get("message") or "")
            raw_code = error.get("code")
        else:
            message = str(error or doc.get("message") or "")
            raw_code = doc.get("code")
        if isinstance(raw_code, str) and _SLUG.match(raw_code):
            code = raw_code
        if not message and isinstance(doc.get("code"), str):
            message = doc["code"]
    message = message or f"HTTP {status}"
    if _AUTH.search(message) and status < 500 and status != 429:
        return ProviderFailure(message, code=code, kind="auth")
    if _MODERATION.search(message) and status < 500:
        return ProviderFailure(message, code=code, kind="moderation")
    unsupported = _UNSUPPORTED.search(message)
    return ProviderFailure(
        message, code=code, param=unsupported.group(1).lower() if unsupported else None
    )
