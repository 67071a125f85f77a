"""A strict fake of fal.ai's queue for the edit endpoints imagegate ships.

``POST /{endpoint}`` submits a job (``Authorization: Key <key>``, a JSON body the endpoint's
schema takes) and answers fal's handle: a request id the fake issues and absolute
``status_url``, ``response_url`` and ``cancel_url`` on its own origin, which drop the
endpoint's subpath as fal's do (``/fal-ai/nano-banana/requests/{id}`` for
``fal-ai/nano-banana/edit``). Only those URLs answer: a rebuilt one (with ``/edit``) or an
unknown id is a 404. A job goes IN_QUEUE, then IN_PROGRESS (202 each), then COMPLETED (200) on
the third status poll; its output lists result URLs on the fake's origin (``/files/{name}``)
that serve real images: the first input inverted, at the size asked. ``PUT cancel_url`` answers
CANCELLATION_REQUESTED (or ALREADY_COMPLETED). Every call is recorded with its ``kind``
(``submit``, ``status``, ``result``, ``cancel``, ``file``).

It checks what fal checks and answers fal's ``{"detail": [{"loc", "msg", "type"}]}`` (422) on
any mismatch: the key, JSON, each endpoint's fields and their types (``safety_tolerance`` is a
string), image fields and counts, data URIs that decode and say their own type, num_images,
output formats, aspect ratios, image sizes (Seedream: 960x960 to 4096x4096 in all).

Stricter than fal on purpose: a field the endpoint does not take is refused (fal ignores it),
and image URLs must be data URIs (the fake fetches nothing: an https URL gets fal's
``file_download_error``).

Faults (``/__fake__/faults``), in fal's shapes: ``rate_limit`` (429, ``Retry-After`` if given),
``server_error`` (500), ``unavailable`` (503 ``runner_scheduling_failure`` with
``X-Fal-Error-Type``), ``bad_key`` (401), ``malformed`` (a 200 submit answer that is not
JSON), ``timeout`` (the submit answers after ``delay`` seconds), ``truncated`` (the output cut
short), ``no_image`` (an output without images), ``moderation`` (the job ends with
``content_policy_violation``: its status says so and its result URL answers fal's 422). Job
faults by ``variant``: ``timeout``/``never_settles`` (the job stays IN_PROGRESS),
``server_error``/``job_fails`` (COMPLETED with an error; the result URL answers 500),
``server_error``/``poll`` (one status poll answers 500, then the job goes on),
``moderation``/``nsfw`` (an output whose ``has_nsfw_concepts`` is ``[true]``) and
``moderation``/``submit`` (the submit itself refused with ``content_policy_violation``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
import secrets
import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

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

KONTEXT_RATIOS = ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21")
NANO_RATIOS = ("auto", "21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16")
PRESETS = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
SEEDREAM_AUTO = ("auto", "auto_2K", "auto_4K")
RATIO_LONG_SIDE = 128  # an aspect-ratio result's long side, small for the tests
_DATA_URI = re.compile(r"^data:(image/[a-z]+);base64,(.*)$", re.S)
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_PIL = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_QUEUE_PATH = re.compile(
    r"^/(?P<app>[^/]+/[^/]+)/requests/(?P<id>[^/]+)(?P<tail>/status|/cancel)?$"
)
POLICY_MESSAGE = (
    "The content could not be processed because it contained material flagged by a content checker."
)


@dataclass(frozen=True)
class ModelSpec:
    """What one endpoint's input schema takes."""

    image_field: str  # image_url or image_urls
    max_images: int
    num_images: int  # its most
    size_field: str | None  # aspect_ratio or image_size
    output_formats: tuple[str, ...]  # () when it has no output_format
    default_format: str
    seed: bool = True
    options: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name -> (kind, range)
    ratios: tuple[str, ...] = ()  # its aspect_ratio values
    answer: tuple[str, ...] = ("seed",)  # extra output keys: seed, has_nsfw, prompt, description


_KONTEXT_OPTIONS = {
    "guidance_scale": ("number", (1, 20)),
    "safety_tolerance": ("tolerance", ("1", "2", "3", "4", "5", "6")),
    "enhance_prompt": ("bool", None),
}
MODELS: dict[str, ModelSpec] = {
    "fal-ai/flux-pro/kontext": ModelSpec(
        "image_url", 1, 4, "aspect_ratio", ("jpeg", "png"), "jpeg",
        options=_KONTEXT_OPTIONS, answer=("seed", "has_nsfw", "prompt"), ratios=KONTEXT_RATIOS,
    ),
    "fal-ai/flux-pro/kontext/multi": ModelSpec(
        "image_urls", 4, 4, "aspect_ratio", ("jpeg", "png"), "jpeg",
        options=_KONTEXT_OPTIONS, answer=("seed", "has_nsfw", "prompt"), ratios=KONTEXT_RATIOS,
    ),
    "fal-ai/bytedance/seedream/v4/edit": ModelSpec(
        "image_urls", 10, 6, "image_size", (), "png",
        options={
            "enable_safety_checker": ("bool", None),
            "enhance_prompt_mode": ("enum", ("standard", "fast")),
            "max_images": ("int", (1, 6)),
            "sync_mode": ("bool", None),
        },
    ),
    "fal-ai/nano-banana/edit": ModelSpec(
        "image_urls", 10, 4, "aspect_ratio", ("jpeg", "png", "webp"), "png",
        seed=False, options={"sync_mode": ("bool", None)}, answer=("description",),
        ratios=NANO_RATIOS,
    ),
    "fal-ai/qwen-image-edit": ModelSpec(
        "image_url", 1, 4, "image_size", ("jpeg", "png"), "png",
        options={
            "negative_prompt": ("text", None),
            "guidance_scale": ("number", (0, 20)),
            "num_inference_steps": ("int", (2, 50)),
            "acceleration": ("enum", ("none", "regular", "high")),
            "enable_safety_checker": ("bool", None),
            "sync_mode": ("bool", None),
        },
        answer=("seed", "has_nsfw", "prompt"),
    ),
}  # fmt: skip


class Refused(Exception):
    """A validation error in fal's shape: ``detail`` entries, answered 422 unless said."""

    def __init__(self, loc: list[Any], msg: str, type_: str, status: int = 422) -> None:
        super().__init__(msg)
        self.status = status
        self.detail = [{"loc": ["body", *loc], "msg": msg, "type": type_}]


def error(
    status: int, detail: object, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    return json_response({"detail": detail, **extra}, status, headers)


@dataclass
class Job:
    id: str
    model: str
    app: str
    urls: dict[str, str]
    result: dict[str, Any]
    fault: Fault | None = None
    polls: int = 0
    cancelled: bool = False
    poll_fault_left: int = 0

    @property
    def never_settles(self) -> bool:
        return self.fault is not None and self.fault.variant == "never_settles"

    @property
    def completed(self) -> bool:
        return not self.never_settles and not self.cancelled and self.polls >= 3


class FakeFal(FakeUpstream):
    name = "fal"

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.jobs: dict[str, Job] = {}
        self.files: dict[str, tuple[bytes, str]] = {}

    def routes(self) -> list[Route]:
        return [
            Route("/files/{name}", self._file, methods=["GET"]),
            Route("/{path:path}", self._queue, methods=["GET", "POST", "PUT"]),
        ]

    # -- what tests read ---------------------------------------------------------------------
    def of_kind(self, kind: str) -> list[Call]:
        return [call for call in self.calls if call.summary.get("kind") == kind]

    # -- routing -------------------------------------------------------------------------------
    async def _queue(self, request: Request) -> Response:
        path = request.url.path
        if request.method == "POST":
            return await self._submit(request, path.strip("/"))
        match = _QUEUE_PATH.match(path)
        job = self.jobs.get(match["id"]) if match else None
        self.record(request, kind=_kind(request.method, match), request_id=match and match["id"])
        if not self._authorized(request):
            self.calls[-1].summary["auth"] = "refused"
            return error(401, "Unauthorized")
        if match is None or job is None or job.app != match["app"]:
            self.calls[-1].summary["refused"] = "not a URL this fake issued"
            return error(404, "Request not found")
        tail = match["tail"]
        if tail == "/cancel":
            if request.method != "PUT":
                return error(405, "Method Not Allowed")
            return self._cancel(job)
        if request.method != "GET":
            return error(405, "Method Not Allowed")
        if tail == "/status":
            return self._status(job)
        return self._result(job)

    async def _file(self, request: Request) -> Response:
        self.record(request, kind="file")
        found = self.files.get(request.path_params["name"])
        if found is None:
            return error(404, "File not found")
        data, fmt = found
        return Response(data, 200, media_type=f"image/{fmt}")

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Key {self.api_key}"

    # -- submit --------------------------------------------------------------------------------
    async def _submit(self, request: Request, model: str) -> Response:
        self.record(request, kind="submit", model=model)
        call = self.calls[-1]
        fault = self.next_fault()
        if fault is not None and fault.fault == "timeout" and fault.variant is None:
            await asyncio.sleep(fault.delay or 30.0)
        elif fault is not None and fault.variant is None:
            early = _early_fault(fault)
            if early is not None:
                call.summary["fault"] = fault.fault
                return early
        if not self._authorized(request):
            call.summary["auth"] = "refused"
            return error(401, "Unauthorized")
        call.summary["auth"] = "ok"
        spec = MODELS.get(model)
        if spec is None:
            return error(404, f"Application '{model}' not found")
        if fault is not None and fault.fault == "moderation" and fault.variant == "submit":
            return json_response({"detail": _policy_detail()}, 422)
        try:
            doc = await _json_body(request)
            call.summary.update(_summary(doc))
            result, images = self._render(doc, spec, call)
        except Refused as refused:
            call.summary["refused"] = refused.detail
            return json_response({"detail": refused.detail}, refused.status)
        origin = str(request.base_url).rstrip("/")
        job_id = str(uuid.uuid4())
        app = "/".join(model.split("/")[:2])  # fal's job URLs drop the endpoint's subpath
        base = f"{origin}/{app}/requests/{job_id}"
        urls = {
            "response_url": base,
            "status_url": base + "/status",
            "cancel_url": base + "/cancel",
        }
        for name, data, fmt in images:
            self.files[name] = (data, fmt)
        job = Job(job_id, model, app, urls, result, fault=fault)
        if fault is not None and fault.fault == "server_error" and fault.variant == "poll":
            job.poll_fault_left = 1
        self.jobs[job_id] = job
        call.summary["request_id"] = job_id
        return json_response(
            {
                "status": "IN_QUEUE",
                "request_id": job_id,
                **urls,
                "logs": None,
                "metrics": {},
                "queue_position": 0,
            }
        )

    def _render(
        self, doc: dict[str, Any], spec: ModelSpec, call: Call
    ) -> tuple[dict[str, Any], list[tuple[str, bytes, str]]]:
        allowed = {"prompt", spec.image_field, "num_images", *spec.options}
        allowed |= {"seed"} if spec.seed else set()
        allowed |= {"output_format"} if spec.output_formats else set()
        allowed |= {spec.size_field} if spec.size_field else set()
        for key in doc:
            if key not in allowed:
                raise Refused([key], "Extra inputs are not permitted", "extra_forbidden")
        prompt = doc.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise Refused(["prompt"], "Field required", "missing")
        inputs = _images(doc, spec)
        call.summary["images"] = [
            {"format": fmt, "size": list(image.size), "mime": mime} for image, fmt, mime in inputs
        ]
        n = doc.get("num_images", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= spec.num_images:
            raise Refused(
                ["num_images"],
                f"Input should be between 1 and {spec.num_images}",
                "less_than_equal",
            )
        seed = doc.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise Refused(["seed"], "Input should be a valid integer", "int_type")
        fmt = doc.get("output_format", spec.default_format)
        if spec.output_formats and fmt not in spec.output_formats:
            raise Refused(
                ["output_format"],
                f"Input should be {' or '.join(repr(f) for f in spec.output_formats)}",
                "enum",
            )
        for name, (kind, limits) in spec.options.items():
            if name in doc:
                _check_option(name, kind, limits, doc[name])
        first = inputs[0][0]
        size = _output_size(doc, spec, first.size)
        data = _encode(result_png(first, size), fmt)
        images: list[tuple[str, bytes, str]] = []
        entries = []
        for _ in range(n):
            name = secrets.token_hex(8) + "." + ("jpg" if fmt == "jpeg" else fmt)
            images.append((name, data, fmt))
            entries.append(
                {
                    "url": f"/files/{name}",  # made absolute when answered
                    "content_type": f"image/{fmt}",
                    "file_name": name,
                    "file_size": len(data),
                    "width": size[0],
                    "height": size[1],
                }
            )
        result: dict[str, Any] = {"images": entries}
        if "seed" in spec.answer:
            result["seed"] = seed if seed is not None else secrets.randbelow(2**31)
        if "has_nsfw" in spec.answer:
            result["has_nsfw_concepts"] = [False] * n
        if "prompt" in spec.answer:
            result["prompt"] = prompt
        if "description" in spec.answer:
            result["description"] = "Here is the edited image."
        call.summary["answered"] = {"size": list(size), "format": fmt, "n": n}
        return result, images

    # -- the queue -----------------------------------------------------------------------------
    def _status(self, job: Job) -> Response:
        if job.poll_fault_left > 0:
            job.poll_fault_left -= 1
            return error(500, "Internal Server Error")
        job.polls += 1
        self.calls[-1].summary["poll"] = job.polls
        if job.cancelled:
            return json_response(
                {"status": "IN_PROGRESS", "response_url": job.urls["response_url"], "logs": None},
                202,
            )
        if job.never_settles or job.polls < 3:
            status = "IN_QUEUE" if job.polls == 1 and not job.never_settles else "IN_PROGRESS"
            doc: dict[str, Any] = {"status": status, "response_url": job.urls["response_url"]}
            if status == "IN_QUEUE":
                doc["queue_position"] = 0
            else:
                doc["logs"] = None
            return json_response(doc, 202)
        doc = {
            "status": "COMPLETED",
            "response_url": job.urls["response_url"],
            "logs": None,
            "metrics": {"inference_time": 0.42},
        }
        failure = _job_failure(job.fault)
        if failure is not None:
            doc.update(error=failure[0], error_type=failure[1])
        return json_response(doc)

    def _result(self, job: Job) -> Response:
        if not job.completed:
            return error(400, "Request is still in progress")
        fault = job.fault
        name = fault.fault if fault is not None else None
        if name == "moderation" and fault is not None and fault.variant is None:
            return json_response({"detail": _policy_detail()}, 422)
        if name == "server_error" and fault is not None and fault.variant == "job_fails":
            return error(500, "Internal error while running the model: CUDA out of memory")
        result = dict(job.result)
        origin = job.urls["response_url"].split(f"/{job.app}/requests/")[0]
        result["images"] = [{**e, "url": origin + e["url"]} for e in result["images"]]
        if name == "no_image":
            result["images"] = []
        if name == "moderation" and fault is not None and fault.variant == "nsfw":
            result["has_nsfw_concepts"] = [True] * len(result["images"])
        body = orjson.dumps(result)
        if name == "truncated":
            body = body[: len(body) // 2]
        return Response(body, 200, media_type="application/json")

    def _cancel(self, job: Job) -> Response:
        if job.completed:
            return json_response({"status": "ALREADY_COMPLETED"}, 400)
        job.cancelled = True
        return json_response({"status": "CANCELLATION_REQUESTED"}, 202)


def _kind(method: str, match: re.Match[str] | None) -> str:
    if match is None:
        return "unmatched"
    tail = match["tail"]
    if tail == "/status":
        return "status"
    if tail == "/cancel":
        return "cancel"
    return "result" if method == "GET" else "unknown"


def _early_fault(fault: Fault) -> Response | None:
    """Faults answered to the submit itself; None for those that shape the job."""
    name = fault.fault
    if name == "rate_limit":
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        return error(429, "Rate limit exceeded: too many concurrent requests.", headers)
    if name == "server_error":
        return error(500, "Internal Server Error")
    if name == "unavailable":
        return error(
            503,
            "Runner scheduling failure",
            {"X-Fal-Error-Type": "runner_scheduling_failure", "X-Fal-Retryable": "true"},
        )
    if name == "bad_key":
        return error(401, "Unauthorized")
    if name == "malformed":
        return Response(b"<html><body>502 Bad Gateway</body></html>", 200, media_type="text/html")
    return None


def _job_failure(fault: Fault | None) -> tuple[str, str] | None:
    """The (error, error_type) a settled job's status carries, if it failed."""
    if fault is None:
        return None
    if fault.fault == "moderation" and fault.variant is None:
        return POLICY_MESSAGE, "content_policy_violation"
    if fault.fault == "server_error" and fault.variant == "job_fails":
        return "Internal error while running the model: CUDA out of memory", "internal_error"
    return None


def _policy_detail() -> list[dict[str, Any]]:
    return [
        {
            "loc": ["body", "prompt"],
            "msg": POLICY_MESSAGE,
            "type": "content_policy_violation",
            "url": "https://docs.fal.ai/errors#content_policy_violation",
        }
    ]


async def _json_body(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/json":
        raise Refused([], "Input should be a valid JSON object", "model_attributes_type")
    try:
        doc = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise Refused([], f"JSON decode error: {exc}", "json_invalid") from None
    if not isinstance(doc, dict):
        raise Refused([], "Input should be a valid dictionary", "dict_type")
    return doc


def _summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The body as a test checks it: every key, and the values that are not images."""
    summary: dict[str, Any] = {"keys": sorted(doc)}
    for key, value in doc.items():
        if key not in ("image_url", "image_urls"):
            summary[key] = value
    return summary


def _images(doc: dict[str, Any], spec: ModelSpec) -> list[tuple[Image.Image, str, str]]:
    field_ = spec.image_field
    if field_ not in doc:
        raise Refused([field_], "Field required", "missing")
    value = doc[field_]
    if field_ == "image_url":
        if not isinstance(value, str):
            raise Refused([field_], "Input should be a valid string", "string_type")
        refs = [value]
    else:
        if not isinstance(value, list) or not value:
            raise Refused([field_], "Input should be a non-empty list", "list_type")
        if len(value) > spec.max_images:
            raise Refused([field_], f"List should have at most {spec.max_images} items", "too_long")
        refs = value
    out = []
    for index, ref in enumerate(refs):
        loc = [field_] if field_ == "image_url" else [field_, index]
        if not isinstance(ref, str):
            raise Refused(loc, "Input should be a valid string", "string_type")
        match = _DATA_URI.match(ref)
        if match is None:
            raise Refused(
                loc,
                "Failed to download the file. Please check if the URL is accessible.",
                "file_download_error",
            )
        try:
            data = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise Refused(loc, "The data URI is not valid base64.", "image_load_error") from None
        image = decode_image(data)
        if image is None:
            raise Refused(loc, "Failed to load the image.", "image_load_error")
        with Image.open(io.BytesIO(data)) as opened:
            fmt = str(opened.format)
        if _MIME[fmt] != match.group(1):
            raise Refused(
                loc,
                f"The data URI says {match.group(1)} but the file is {fmt}.",
                "image_load_error",
            )
        out.append((image, fmt, match.group(1)))
    return out


def _check_option(name: str, kind: str, limits: Any, value: object) -> None:
    if kind == "bool":
        if not isinstance(value, bool):
            raise Refused([name], "Input should be a valid boolean", "bool_type")
    elif kind == "text":
        if not isinstance(value, str):
            raise Refused([name], "Input should be a valid string", "string_type")
    elif kind == "tolerance":  # a string enum: 2 is refused, "2" is taken
        if not isinstance(value, str):
            raise Refused([name], "Input should be a valid string", "string_type")
        if value not in limits:
            raise Refused([name], f"Input should be one of {', '.join(limits)}", "enum")
    elif kind == "enum":
        if value not in limits:
            raise Refused([name], f"Input should be one of {', '.join(limits)}", "enum")
    else:
        integer = kind == "int"
        valid = isinstance(value, int) if integer else isinstance(value, int | float)
        if not valid or isinstance(value, bool):
            raise Refused([name], f"Input should be a valid {kind}", f"{kind}_type")
        low, high = limits
        assert isinstance(value, int | float)
        if not low <= value <= high:
            raise Refused([name], f"Input should be between {low} and {high}", "range")


def _output_size(
    doc: dict[str, Any], spec: ModelSpec, input_size: tuple[int, int]
) -> tuple[int, int]:
    if spec.size_field == "aspect_ratio":
        ratios = spec.ratios
        ratio = doc.get("aspect_ratio")
        if ratio is None or ratio == "auto":
            if ratio == "auto" and "auto" not in ratios:
                raise Refused(["aspect_ratio"], "Input should be a listed ratio", "enum")
            return input_size
        if ratio not in ratios:
            raise Refused(["aspect_ratio"], f"Input should be one of {', '.join(ratios)}", "enum")
        left, right = ratio.split(":")
        shape = Fraction(left) / Fraction(right)
        if shape >= 1:
            return RATIO_LONG_SIDE, max(1, round(RATIO_LONG_SIDE / shape))
        return max(1, round(RATIO_LONG_SIDE * shape)), RATIO_LONG_SIDE
    size = doc.get("image_size")
    if size is None:
        return input_size  # fal's own default (Seedream: 2048x2048) kept small here
    seedream = spec.image_field == "image_urls"
    if isinstance(size, str):
        if size in PRESETS:
            return PRESETS[size]
        if seedream and size in SEEDREAM_AUTO:
            return input_size
        raise Refused(["image_size"], "Input should be a preset name or {width, height}", "enum")
    if not isinstance(size, dict) or set(size) != {"width", "height"}:
        raise Refused(
            ["image_size"], "Input should be a preset name or {width, height}", "dict_type"
        )
    width, height = size["width"], size["height"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        raise Refused(["image_size"], "width and height should be positive integers", "int_type")
    if seedream and not 960 * 960 <= width * height <= 4096 * 4096:
        raise Refused(
            ["image_size"],
            "The total pixels must be between 960x960 and 4096x4096.",
            "value_error",
        )
    if not seedream and max(width, height) > 14142:
        raise Refused(["image_size"], "width and height should be at most 14142", "less_than_equal")
    return int(width), int(height)


def _encode(png: bytes, fmt: str) -> bytes:
    if fmt == "png":
        return png
    with Image.open(io.BytesIO(png)) as opened:
        out = io.BytesIO()
        opened.convert("RGB").save(out, format=_PIL[fmt], quality=90)
        return out.getvalue()
