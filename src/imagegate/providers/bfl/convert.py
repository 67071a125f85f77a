"""Black Forest Labs (FLUX) edits, both ways: an ``EditJob`` into BFL's JSON submit body, and
BFL's answers (the submit, each poll, its errors) into what the adapter does next.

Pure: no I/O here (``adapter.py`` submits, polls and downloads)::

    POST {base}/v1/{model}           x-key: <key>   application/json
         {"prompt", "input_image": "<base64>", "input_image_2".., "seed"?,
          "aspect_ratio"? (Kontext) | "width"?, "height"? (FLUX.2), "output_format"?,
          "prompt_upsampling"?, "safety_tolerance"?}
    200  {"id", "polling_url", "cost"?, "input_mp"?, "output_mp"?}     cost in credits ($0.01)
    GET  polling_url (verbatim: a regional host such as api.eu2.bfl.ai)   x-key: <key>
    200  {"id", "status", "result"?, "progress"?, "details"?}
         status Pending | Ready (result.sample: a signed URL, ~10 min) | Request Moderated |
                Content Moderated | Error | Failed | Task not found
    4xx  FastAPI's {"detail": "..."} or {"detail": [{"loc", "msg", "type"}]} (422)

Images go as raw base64 ("Base64 encoded image or URL", BFL's schema), encoded once from the
bytes and spliced into the JSON orjson writes. The polling URL is used as BFL gives it, never
rebuilt, and only on a host the key may go to (``trusted_polling_url``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import orjson
import pybase64

from imagegate.catalog.cards import parse_ratio
from imagegate.core.errors import InvalidRequest
from imagegate.core.images import ImageFormat
from imagegate.core.request import EditRequest, ImageInput
from imagegate.providers.base import EditJob
from imagegate.providers.bfl.endpoints import (
    ENDPOINTS,
    FLUX2_MAX_PIXELS,
    FLUX2_MIN_SIDE,
    FLUX2_MULTIPLE,
    KONTEXT_MAX_RATIO,
    UPSTREAM_FORMATS,
    Endpoint,
    read_options,
)
from imagegate.providers.malformed import Malformed as Malformed
from imagegate.providers.upstream import ProviderFailure, json_message

PROVIDER = "bfl"
CREDIT_USD = 0.01  # BFL: 1 credit = $0.01
BFL_DOMAIN = "bfl.ai"  # BFL's regional API hosts (api.eu2.bfl.ai, api.us1.bfl.ai ...)
PENDING = "Pending"
READY = "Ready"
TASK_NOT_FOUND = "Task not found"
_FAILED = frozenset({"Error", "Failed"})
_MODERATED = {
    "Request Moderated": "the input was flagged",
    "Content Moderated": "the output was flagged",
}
_SLOT = "@imagegate-bfl-image-" + secrets.token_hex(8) + "-{}@"
# Strict on purpose: no user info, no backslash, nothing a URL parser could read two ways.
_URL = re.compile(r"^(https?)://([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?(?:[/?][^\s\\#]*)?$")
_MODERATION = re.compile(r"moderat|content polic|nsfw", re.I)
_PARAMS = {"width": "size", "height": "size"}


# -- the request ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """One edit as BFL takes it; the images are encoded and the seed added per call."""

    endpoint: Endpoint
    images: tuple[ImageInput, ...]
    fields: tuple[tuple[str, object], ...]  # the body without images and seed, in order
    seed: int | None

    @property
    def path(self) -> str:
        return self.endpoint.path


def plan_edit(job: EditJob) -> Plan:
    """The submit for ``job``; ``InvalidRequest`` for anything BFL would refuse or do wrong."""
    card, req = job.card, job.request
    endpoint = ENDPOINTS.get(card.upstream_model)
    if endpoint is None:
        raise InvalidRequest(
            f"{card.id} names the Black Forest Labs model {card.upstream_model!r}, which this "
            f"gateway does not know; it knows {', '.join(ENDPOINTS)}.",
            param="model",
            code="model_not_available",
        )
    _check_openai_fields(req, card.id)
    if not req.images:
        raise InvalidRequest(
            f"{card.id} edits an image: send one.", param="image", code="missing_required_parameter"
        )
    if len(req.images) > endpoint.max_images:
        raise InvalidRequest(
            f"{card.id} takes at most {endpoint.max_images} images; this request has "
            f"{len(req.images)}.",
            param="image",
            code="too_many_images",
        )
    if req.mask is not None:
        raise InvalidRequest(
            f"{card.id} does not take a mask; describe the area to change in the prompt.",
            param="mask",
            code="mask_not_supported",
        )
    options = read_options(req.extra, card.id, endpoint, card.extra_fields)
    fields: list[tuple[str, object]] = [("prompt", req.prompt)]
    fields += _size_fields(job, endpoint)
    output_format = asked_format(req)
    if output_format is not None:
        fields.append(("output_format", output_format))
    fields += [(name, options[name]) for name in endpoint.options if name in options]
    return Plan(endpoint=endpoint, images=req.images, fields=tuple(fields), seed=req.seed)


def asked_format(req: EditRequest) -> ImageFormat | None:
    """What BFL is asked to make: nothing (its default) unless the client chose; PNG when the
    gateway has to convert (WEBP, or a compression), so it encodes from a lossless original."""
    wanted = req.output.output_format
    if wanted is None:
        return None
    if req.output.output_compression is not None or wanted not in UPSTREAM_FORMATS:
        return "png"
    return wanted


def _check_openai_fields(req: EditRequest, model: str) -> None:
    """OpenAI fields BFL has no equivalent for: a 400, never silently dropped."""
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
        raise InvalidRequest(
            f"{model} takes no moderation setting; send safety_tolerance (0 strictest) instead.",
            param="moderation",
            code="unsupported_value",
        )


def _size_fields(job: EditJob, endpoint: Endpoint) -> list[tuple[str, object]]:
    sizing, model = job.sizing, job.card.id
    pixels = sizing.pixels
    if endpoint.family == "kontext":
        if pixels is not None or sizing.resolution or sizing.preset:
            raise _unsized(
                model, "an aspect_ratio between 21:9 and 9:21 (or a size of such a shape)"
            )
        ratio = sizing.aspect_ratio
        if ratio is None or ratio == "auto":
            return []  # BFL keeps the input's shape
        shape = parse_ratio(ratio)
        if not 1 / KONTEXT_MAX_RATIO <= shape <= KONTEXT_MAX_RATIO:
            raise InvalidRequest(
                f"{model} takes an aspect_ratio between 21:9 and 9:21; got {ratio}.",
                param="aspect_ratio",
                code="unsupported_size",
            )
        return [("aspect_ratio", ratio)]
    if (sizing.aspect_ratio not in (None, "auto")) or sizing.resolution or sizing.preset:
        raise _unsized(model, "width and height (or size=WxH)")
    if pixels is None:
        return []  # 0 / omitted: the input's size
    width, height = pixels
    if (
        min(width, height) < FLUX2_MIN_SIDE
        or width % FLUX2_MULTIPLE
        or height % FLUX2_MULTIPLE
        or width * height > FLUX2_MAX_PIXELS
    ):
        raise InvalidRequest(
            f"{model} cannot make {width}x{height}: sides must be at least {FLUX2_MIN_SIDE} "
            f"pixels and multiples of {FLUX2_MULTIPLE}, at most {FLUX2_MAX_PIXELS:,} pixels.",
            param="size",
            code="unsupported_size",
        )
    return [("width", width), ("height", height)]


def _unsized(model: str, takes: str) -> InvalidRequest:
    return InvalidRequest(
        f"{model}'s card asks for a size it cannot send to Black Forest Labs; it takes {takes}.",
        param="size",
        code="unsupported_size",
    )


def image_field(index: int) -> str:
    """``input_image``, ``input_image_2`` ... as BFL names them."""
    return "input_image" if index == 0 else f"input_image_{index + 1}"


def encode_images(plan: Plan) -> list[bytes]:
    """Each image as base64, once, for every call of a fan-out."""
    return [pybase64.b64encode(image.view()) for image in plan.images]


def seed_for(seed: int | None, index: int) -> int | None:
    """``seed``, ``seed + 1`` ... for the calls of one request, so ``n`` images differ."""
    return None if seed is None else seed + index


def submit_body(plan: Plan, encoded: list[bytes], index: int = 0) -> bytes:
    """The JSON body of call ``index``: orjson writes all but the images, whose base64 is spliced
    into their slots."""
    doc: dict[str, object] = {}
    fields = dict(plan.fields)
    doc["prompt"] = fields.pop("prompt")
    for position in range(len(encoded)):
        doc[image_field(position)] = _SLOT.format(position)
    seed = seed_for(plan.seed, index)
    if seed is not None:
        doc["seed"] = seed
    doc.update(fields)
    head = orjson.dumps(doc)
    pieces: list[bytes] = []
    at = 0
    for position, data in enumerate(encoded):
        slot = _SLOT.format(position).encode()
        found = head.index(slot, at)
        pieces += [head[at:found], data]
        at = found + len(slot)
    pieces.append(head[at:])
    return b"".join(pieces)


# -- the answers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submitted:
    id: str
    polling_url: str
    cost_usd: float | None  # BFL's stated cost (credits x $0.01), when it states one


def read_submit(body: bytes) -> Submitted:
    doc = _object(body)
    task_id, url = doc.get("id"), doc.get("polling_url")
    if not isinstance(task_id, str) or not task_id:
        raise Malformed("a submit answer without a task id")
    if not isinstance(url, str) or not url:
        raise Malformed("a submit answer without a polling_url")
    cost = doc.get("cost")
    cost_usd = None
    if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0:
        cost_usd = round(cost * CREDIT_USD, 10)
    return Submitted(task_id, url, cost_usd)


def trusted_polling_url(url: str, base_url: str) -> bool:
    """Whether the key may go to ``url``: the base URL's own origin, or, when the base is BFL's
    (``*.bfl.ai``), any HTTPS host of BFL's domain (its regional hosts). Anything else -- another
    domain, user info, an odd port or scheme -- is refused."""
    poll, base = _URL.match(url), _URL.match(base_url.rstrip("/"))
    if poll is None or base is None:
        return False
    scheme, host, port = poll[1].lower(), poll[2].lower().rstrip("."), _port(poll[1], poll[3])
    base_scheme, base_host = base[1].lower(), base[2].lower().rstrip(".")
    if not host:
        return False
    if (scheme, host, port) == (base_scheme, base_host, _port(base[1], base[3])):
        return True
    bfl_base = base_host == BFL_DOMAIN or base_host.endswith("." + BFL_DOMAIN)
    return bfl_base and scheme == "https" and port == 443 and host.endswith("." + BFL_DOMAIN)


def _port(scheme: str, port: str | None) -> int:
    if port is not None:
        return int(port)
    return 443 if scheme.lower() == "https" else 80


@dataclass(frozen=True, slots=True)
class Ready:
    sample: str  # the signed result URL (expires in ~10 minutes)
    prompt: str | None  # the prompt BFL used, when it says


def read_poll(body: bytes) -> Ready | ProviderFailure | None:
    """One poll: None while pending, the result when ready, BFL's words when the task failed."""
    doc = _object(body)
    status = doc.get("status")
    if not isinstance(status, str) or not status:
        raise Malformed("a poll answer without a status")
    if status == PENDING:
        return None
    if status == READY:
        result = doc.get("result")
        sample = result.get("sample") if isinstance(result, dict) else None
        if not isinstance(sample, str) or not sample:
            raise Malformed("a Ready task without result.sample")
        prompt = result.get("prompt") if isinstance(result, dict) else None
        return Ready(sample, prompt if isinstance(prompt, str) and prompt else None)
    failure = task_failure(doc)
    if failure is None:
        raise Malformed(f"a task status it does not document ({status[:40]!r})")
    return failure


def task_failure(doc: dict[str, object]) -> ProviderFailure | None:
    """A poll answer of a task that ended without an image, as BFL spelled it."""
    status = doc.get("status")
    if not isinstance(status, str):
        return None
    details = _details(doc)
    if status in _MODERATED:
        message = f"{status} ({_MODERATED[status]})" + (f": {details}" if details else "")
        return ProviderFailure(message, code=_code(status), kind="moderation")
    if status in _FAILED:
        message = f"the task ended with status {status}: {details or 'no details given'}"
        return ProviderFailure(message, code=_code(status), kind="server")
    if status == TASK_NOT_FOUND:
        message = "the task was not found (an unknown or expired id)" + (
            f": {details}" if details else ""
        )
        return ProviderFailure(message, code="task_not_found", kind="server")
    return None


def read_error(status: int, body: bytes) -> ProviderFailure:
    """BFL's errors: FastAPI's ``{"detail": ...}`` for HTTP failures (422 with a list naming the
    field), and a poll answer that ended a task (read by ``task_failure``). Out of credits (402)
    and an unknown endpoint (404) are the operator's problems, not the client's."""
    doc, text = json_message(body)
    if doc is not None and "status" in doc and "detail" not in doc:
        failure = task_failure(doc)
        if failure is not None:
            return failure
    message, param = text, None
    if doc is not None:
        message, param = _detail(doc.get("detail"))
        if not message:
            message = str(doc.get("message") or doc.get("error") or "")
    message = message or f"HTTP {status}"
    if status == 402:
        return ProviderFailure(f"insufficient credits: {message}", kind="server")
    if status == 404:
        return ProviderFailure(f"not found: {message}", kind="server")
    if 400 <= status < 500 and status not in (401, 403, 429) and _MODERATION.search(message):
        return ProviderFailure(message, kind="moderation")
    return ProviderFailure(message, param=param if status in (400, 422) else None)


def _detail(detail: object) -> tuple[str, str | None]:
    """FastAPI's ``detail``: a string, or a list of ``{loc, msg, type}`` (the first names the
    param, in the client's words: ``input_image_2`` is an ``image``, ``width`` a ``size``)."""
    if isinstance(detail, str):
        return detail, None
    if not isinstance(detail, list):
        return "", None
    parts: list[str] = []
    param: str | None = None
    for item in detail:
        if not isinstance(item, dict):
            continue
        loc = [str(part) for part in item.get("loc") or [] if part != "body"]
        field = loc[0] if loc else None
        if param is None and field is not None:
            param = "image" if field.startswith("input_image") else _PARAMS.get(field, field)
        msg = str(item.get("msg") or item.get("type") or "invalid")
        parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return "; ".join(parts), param


def _details(doc: dict[str, object]) -> str:
    for key in ("details", "error", "message"):
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, dict | list) and value:
            return orjson.dumps(value).decode()
    return ""


def _code(status: str) -> str:
    return status.lower().replace(" ", "_")


def _object(body: bytes) -> dict[str, object]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Malformed("a body that is not JSON (cut short?)") from None
    if not isinstance(doc, dict):
        raise Malformed("JSON that is not an object")
    return doc
