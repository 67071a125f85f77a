"""fal.ai's queue, both ways: an ``EditJob`` into an endpoint's input JSON, and fal's answers
(the job handle, its status, its output, its errors) into what the adapter acts on.

Pure: no I/O here (``adapter.py`` sends). Every card is one fal endpoint, named by the card's
``upstream_model`` (``endpoints.py`` says what each takes)::

    POST {base}/{endpoint}            application/json, Authorization: Key <FAL_KEY>
         {"prompt", "image_url": "data:…" | "image_urls": ["data:…", …], "num_images",
          "seed"?, "output_format"?, "aspect_ratio"? | "image_size"?: preset | {width, height},
          <the endpoint's options>}
    200  {"request_id", "status_url", "response_url", "cancel_url", "status": "IN_QUEUE", …}
    GET  status_url     202 {"status": "IN_QUEUE" | "IN_PROGRESS"}
                        200 {"status": "COMPLETED", "error"?, "error_type"?}   (failed: error set)
    GET  response_url   200 {"images": [{"url", "content_type"?, …}], "has_nsfw_concepts"?,
                             "seed"?, "prompt"?}; a failed job's error body and status otherwise
    PUT  cancel_url     202 {"status": "CANCELLATION_REQUESTED"}  (400 ALREADY_COMPLETED, 404)

The job URLs are fal's to make (they drop the endpoint's subpath: ``…/fal-ai/nano-banana/
requests/{id}`` for ``fal-ai/nano-banana/edit``); they are used as returned, never rebuilt, and
only on fal's own origin, since every one of them is sent the key.

Errors: ``{"detail": "…"}`` or ``{"detail": [{"loc", "msg", "type"}]}``, infrastructure errors
with ``"error_type"`` (also in the ``X-Fal-Error-Type`` header). ``content_policy_violation``
(as an error type, or an output with ``has_nsfw_concepts: [true]``) is moderation. Images go as
data URIs, base64 made once from each image's bytes and spliced into the JSON orjson writes,
every reference in order with its own sniffed type.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
import pybase64

from imagegate.catalog.cards import parse_size
from imagegate.core.errors import (
    ContentPolicyViolation,
    GatewayError,
    InvalidRequest,
    UpstreamError,
    UpstreamTimeout,
)
from imagegate.core.images import ImageFormat
from imagegate.core.request import EditRequest, ImageInput
from imagegate.core.units import show_value
from imagegate.providers.base import EditJob
from imagegate.providers.fal.endpoints import ENDPOINTS, Endpoint, read_options
from imagegate.providers.malformed import Malformed as Malformed
from imagegate.providers.upstream import ProviderFailure, json_message, provider_words

POLICY = "content_policy_violation"
TIMEOUT_TYPES = frozenset({"request_timeout", "startup_timeout"})
PENDING = frozenset({"IN_QUEUE", "IN_PROGRESS"})
FAILED = frozenset({"FAILED", "CANCELED", "CANCELLED"})  # a third-party schema lists these
_SLOT = "@imagegate-image-" + secrets.token_hex(8) + "-{}@"
_SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
_PARAMS = {"image_url": "image", "image_urls": "image", "num_images": "n"}


# -- the request ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """One edit as fal's input JSON, less the images (spliced in) and what each job sets."""

    endpoint: Endpoint
    images: tuple[ImageInput, ...]
    fields: dict[str, Any]  # prompt, sizing, output_format, options
    n: int
    seed: int | None

    @property
    def jobs(self) -> int:
        """How many jobs are submitted: one, or one per image without ``num_images``."""
        return 1 if self.endpoint.num_images else self.n


def plan_edit(job: EditJob) -> Plan:
    """The input JSON for ``job``; ``InvalidRequest`` for what fal would refuse or do wrong."""
    card, req = job.card, job.request
    endpoint = ENDPOINTS.get(card.upstream_model)
    if endpoint is None:
        raise InvalidRequest(
            f"{card.id} names the fal endpoint {card.upstream_model!r}, which this gateway does "
            f"not know; it knows {', '.join(ENDPOINTS)}.",
            param="model",
            code="model_not_available",
        )
    _check_openai_fields(req, card.id, endpoint, card.extra_fields)
    if endpoint.image_field == "image_url" and len(req.images) > 1:
        raise InvalidRequest(
            f"{card.id} edits one image; this request has {len(req.images)}. "
            + (
                "Send several to fal/fal-ai/flux-pro/kontext/multi."
                if endpoint.model == "fal-ai/flux-pro/kontext"
                else "Send one."
            ),
            param="image",
            code="too_many_images",
        )
    options = read_options(req.extra, card.id, endpoint, card.extra_fields)
    fields: dict[str, Any] = {"prompt": req.prompt}
    fields.update(_sizing(job, endpoint))
    if endpoint.output_formats:
        fields["output_format"] = _asked_format(req, endpoint)
    fields.update(options)
    return Plan(endpoint, req.images, fields, req.n, req.seed)


def submit_body(plan: Plan, index: int = 0) -> bytes:
    """The JSON of job ``index``: orjson writes everything but the images, whose data URIs
    (base64 made once from the bytes, with each image's own type) are spliced into their
    slots. Each job of a fan-out gets its own seed (``seed + index``)."""
    endpoint = plan.endpoint
    doc: dict[str, Any] = {"prompt": plan.fields["prompt"]}
    slots = [_SLOT.format(i) for i in range(len(plan.images))]
    doc[endpoint.image_field] = slots[0] if endpoint.image_field == "image_url" else slots
    doc["num_images"] = plan.n if endpoint.num_images else 1
    if plan.seed is not None:
        doc["seed"] = plan.seed + (0 if endpoint.num_images else index)
    doc.update((k, v) for k, v in plan.fields.items() if k != "prompt")
    head = orjson.dumps(doc)
    pieces: list[bytes] = []
    at = 0
    for index_, image in enumerate(plan.images):
        slot = _SLOT.format(index_).encode()
        found = head.index(slot, at)
        pieces += [
            head[at:found],
            b"data:" + image.mime_type.encode() + b";base64,",
            pybase64.b64encode(image.view()),
        ]
        at = found + len(slot)
    pieces.append(head[at:])
    return b"".join(pieces)


def _check_openai_fields(
    req: EditRequest, model: str, endpoint: Endpoint, extra_fields: list[str]
) -> None:
    """OpenAI fields fal has no equivalent for: a 400, never silently dropped."""
    if req.output.quality not in (None, "auto"):
        raise InvalidRequest(
            f"{model} has no quality setting; leave quality out (or send auto).",
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
        knobs = [n for n in ("safety_tolerance", "enable_safety_checker") if n in extra_fields]
        hint = f" Its own setting is {knobs[0]}." if knobs else ""
        raise InvalidRequest(
            f"{model} has no moderation setting; fal's checks apply.{hint}",
            param="moderation",
            code="unsupported_value",
        )
    if req.seed is not None and not endpoint.seed:
        raise InvalidRequest(
            f"{model} takes no seed: its results are not reproducible. Leave seed out.",
            param="seed",
            code="unsupported_parameter",
        )


def _sizing(job: EditJob, endpoint: Endpoint) -> dict[str, Any]:
    sizing, model = job.sizing, job.card.id
    if endpoint.size_field == "aspect_ratio":
        if sizing.pixels is not None or sizing.preset is not None:
            raise InvalidRequest(
                f"{model} takes an aspect ratio, not exact pixels or a preset.",
                param="size",
                code="unsupported_size",
            )
        return {"aspect_ratio": sizing.aspect_ratio} if sizing.aspect_ratio else {}
    if sizing.aspect_ratio is not None:
        raise InvalidRequest(
            f"{model} takes image_size (a preset or WxH), not an aspect ratio.",
            param="aspect_ratio",
            code="unsupported_size",
        )
    if sizing.width is not None and sizing.height is not None:
        _check_area(job, endpoint, sizing.width, sizing.height)
        return {"image_size": {"width": sizing.width, "height": sizing.height}}
    if sizing.preset is not None:
        nominal = parse_size(job.card.sizing.presets.get(sizing.preset, ""))
        asked_pixels = job.request.sizing.size not in (None, "auto") or (
            job.request.sizing.width is not None
        )
        if asked_pixels and nominal is not None:  # pixels the client asked, met by a preset
            _check_area(job, endpoint, *nominal)
        return {"image_size": sizing.preset}
    return {}


def _check_area(job: EditJob, endpoint: Endpoint, width: int, height: int) -> None:
    least = endpoint.min_pixels
    if least is not None and width * height < least:
        raise InvalidRequest(
            f"{job.card.id} makes images of at least {least:,} pixels (960x960); "
            f"{width}x{height} has {width * height:,}. Ask for a larger size, or name a preset "
            "with image_size (auto_2K, auto_4K ...).",
            param="size",
            code="unsupported_size",
        )


def _asked_format(req: EditRequest, endpoint: Endpoint) -> ImageFormat:
    """PNG when the gateway has to convert (compression, or a format the endpoint lacks), and
    when the client says nothing (OpenAI's default); the service encodes the rest."""
    wanted = req.output.output_format
    if wanted is None or req.output.output_compression is not None:
        return "png"
    return wanted if wanted in endpoint.output_formats else "png"


# -- the job -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Handle:
    """A submitted job, as fal answered it: the URLs to poll, read and cancel it by."""

    request_id: str
    status_url: str
    response_url: str
    cancel_url: str


@dataclass(frozen=True, slots=True)
class JobState:
    settled: bool
    error: str | None = None
    error_type: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or self.error_type is not None


def read_handle(body: bytes) -> Handle:
    doc = _json_object(body)
    values = {}
    for key in ("request_id", "status_url", "response_url", "cancel_url"):
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            raise Malformed(f"a submit answer without {key}")
        if key != "request_id" and not value.startswith(("https://", "http://")):
            raise Malformed(f"a {key} that is not an http(s) URL")
        values[key] = value
    return Handle(**values)


def read_status(body: bytes) -> JobState:
    """A status poll's answer (202 or 200 alike): settled or not, and how it ended."""
    doc = _json_object(body)
    status = doc.get("status")
    if status in PENDING:
        return JobState(settled=False)
    if status == "COMPLETED" or status in FAILED:
        error, error_type = doc.get("error"), doc.get("error_type")
        if status in FAILED and not error:
            error = f"the job ended {str(status).lower()}"
        return JobState(
            settled=True,
            error=str(error) if error else None,
            error_type=error_type if isinstance(error_type, str) and error_type else None,
        )
    raise Malformed(f"a job status that is none of fal's ({show_value(status)})")


def job_error(state: JobState) -> GatewayError:
    """A job fal settled as failed, when its result URL did not answer with the error itself."""
    message = provider_words(state.error or state.error_type or "no reason given")
    if state.error_type == POLICY:
        return ContentPolicyViolation(
            f"fal refused the request under its content policy: {message}", origin="provider"
        )
    if state.error_type in TIMEOUT_TYPES:
        return UpstreamTimeout(f"fal's job timed out: {message}", origin="provider")
    return UpstreamError(
        f"fal's job failed: {message}", code="upstream_job_failed", origin="provider"
    )


# -- the answer ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    urls: list[str]  # https, or data URIs (sync_mode)
    revised_prompt: str | None


def read_result(body: bytes, prompt: str) -> Answer:
    doc = _json_object(body)
    flags = doc.get("has_nsfw_concepts")
    if isinstance(flags, list) and any(flag is True for flag in flags):
        flagged = sum(1 for flag in flags if flag is True)
        raise ContentPolicyViolation(
            f"fal refused the request under its content policy: its safety checker flagged "
            f"{flagged} of {len(flags)} image{'s' if len(flags) != 1 else ''} "
            "(has_nsfw_concepts); no image is returned.",
            origin="provider",
        )
    images = doc.get("images")
    if not isinstance(images, list):
        raise Malformed("an output without an images list")
    urls = []
    for entry in images:
        url = entry.get("url") if isinstance(entry, dict) else None
        if not isinstance(url, str) or not url:
            raise Malformed("an image entry without a url")
        urls.append(url)
    if not urls:
        raise Malformed("no image")
    said = doc.get("prompt")
    revised = said if isinstance(said, str) and said.strip() and said != prompt else None
    return Answer(urls, revised)


def read_error(status: int, body: bytes) -> ProviderFailure:
    """fal's ``{"detail": str | [{loc, msg, type}], "error_type"?}`` (a failed job's status
    ``{"error", "error_type"}`` too); ``content_policy_violation`` anywhere is moderation."""
    doc, text = json_message(body)
    message, types, param = text, [], None
    if doc is not None:
        error_type = doc.get("error_type")
        if isinstance(error_type, str):
            types.append(error_type)
        detail = doc.get("detail")
        if isinstance(detail, str):
            message = detail
        elif isinstance(detail, list):
            parts = []
            for entry in detail:
                if not isinstance(entry, dict):
                    continue
                where = _field(entry.get("loc"))
                if param is None and where:
                    param = _PARAMS.get(where, where)
                if isinstance(entry.get("type"), str):
                    types.append(entry["type"])
                msg = str(entry.get("msg") or entry.get("type") or "")
                parts.append(f"{where}: {msg}" if where else msg)
            message = "; ".join(part for part in parts if part)
        elif isinstance(doc.get("error"), str):
            message = doc["error"]
        elif isinstance(doc.get("message"), str):
            message = doc["message"]
    message = message or f"HTTP {status}"
    code = next((t for t in types if _SLUG.match(t)), None)
    if POLICY in types:
        return ProviderFailure(message, code=POLICY, kind="moderation", param=param)
    return ProviderFailure(message, code=code, param=param)


def with_error_type(body: bytes, error_type: str | None) -> bytes:
    """The body with fal's ``X-Fal-Error-Type`` header folded in, where the body lacks one."""
    if not error_type:
        return body
    doc, _ = json_message(body)
    if doc is None:
        text = body[:300].decode("utf-8", "replace")
        return orjson.dumps({"detail": text, "error_type": error_type})
    if "error_type" in doc:
        return body
    return orjson.dumps({**doc, "error_type": error_type})


def _field(loc: object) -> str | None:
    """``["body", "image_urls", 0]`` -> ``image_urls``."""
    if not isinstance(loc, list):
        return None
    names = [part for part in loc if isinstance(part, str) and part != "body"]
    return names[0] if names else None


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Malformed("a body that is not JSON (cut short?)") from None
    if not isinstance(doc, dict):
        raise Malformed("JSON that is not an object")
    return doc
