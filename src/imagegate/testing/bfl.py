"""A strict fake of Black Forest Labs' queued API: submit, poll at the URL it issued, download.

``POST /v1/{flux-kontext-pro|flux-kontext-max|flux-2-pro|flux-2-max}`` with ``x-key`` and a JSON
body, checked as BFL's OpenAPI schema says (answering FastAPI's 422 ``{"detail": [{loc, msg,
type}]}`` on any mismatch): the body keys each model takes, ``prompt``, images as base64 that
decodes to a real PNG, JPEG or WEBP (``input_image``, ``input_image_2`` ... up to 4 for Kontext,
8 for FLUX.2, with no gaps), Kontext's ``aspect_ratio`` between 21:9 and 9:21, FLUX.2's
``width``/``height`` (64 or more, multiples of 16, up to 4 MP; 0 or null: the input's size),
``output_format`` jpeg|png, ``seed``, ``prompt_upsampling`` (Kontext), ``safety_tolerance``
0-6 for Kontext (0-2 with input images) and 0-5 for FLUX.2 (the body checks: ``bfl_body``).

The submit answers ``{id, polling_url, cost, input_mp, output_mp}``: an id of its own and a
polling URL on its own origin under a "regional" path (``/eu2/v1/get_result?id=...``, the region
rotating through eu1, eu2, us1), as BFL answers a regional host. Polls are accepted only on the
URL issued for the task: ``/v1/get_result?id=`` (a URL rebuilt from the id) and another region
are a 404. A task answers Pending for ``pending_polls`` polls, then Ready with a
``result.sample`` URL on the fake's "delivery" path (signed: the ``sig`` must match, and a
request carrying ``x-key`` there is refused, since BFL's delivery host must never see the key).

Stricter than BFL on purpose: any body key a model does not take is a 422 (BFL may ignore it),
image URLs and data URIs are refused (the fake fetches nothing; the gateway sends raw base64),
and Kontext's ``safety_tolerance`` above 2 with input images is refused, not clamped.

Costs in credits: Kontext [pro] 4, [max] 8 per image; FLUX.2 [pro] 3 for the first output MP
plus 1.5 for each further output MP and each input image (every input counted as at least 1
MP), [max] 7 and 3. ``credits`` (None: unlimited) is the account's balance: a submit it cannot
pay for is a 402. ``state_cost = False`` leaves ``cost`` null.

Faults (``/__fake__/faults``), in BFL's shapes. On the submit: ``rate_limit`` (429, with or
without ``Retry-After``), ``server_error`` (500), ``unavailable`` (503), ``timeout`` (waits
``delay`` seconds), ``malformed`` (a 200 that is not JSON), ``truncated`` (a 200 cut short),
``bad_key`` (403). Job-level, shaping the task a submit creates: ``no_image`` (Ready without a
sample), ``moderation`` (variant ``request``, the default: Request Moderated; ``content``:
Content Moderated), ``server_error`` variants ``task_error`` (status Error), ``task_failed``
(status Failed) and ``task_not_found`` (the task is forgotten: Task not found), ``timeout``
variant ``never_settles`` (Pending forever), ``malformed`` and ``truncated`` variant ``poll``
(the poll answer is not JSON / is cut short).
"""

from __future__ import annotations

import io
import itertools
import math
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from imagegate.testing.bfl_body import (
    MODELS,
    Invalid,
    ModelSpec,
    check_body,
    json_body,
    summary_of,
)
from imagegate.testing.fake import FakeUpstream, Fault, json_response, result_png

REGIONS = ("eu1", "eu2", "us1")
MEGAPIXEL = 1024 * 1024
_MIME = {"png": "image/png", "jpeg": "image/jpeg"}

Outcome = Literal[
    "ready",
    "no_sample",
    "error",
    "failed",
    "not_found",
    "request_moderated",
    "content_moderated",
    "never",
    "poll_malformed",
    "poll_truncated",
]


@dataclass(slots=True)
class Task:
    id: str
    model: str
    region: str
    outcome: Outcome
    pending: int
    image: bytes
    format: str
    prompt: str
    seed: int
    sample: str | None = None


def detail(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"detail": message}, status, headers)


class FakeBfl(FakeUpstream):
    name = "bfl"

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.tasks: dict[str, Task] = {}
        self.delivered: dict[str, tuple[bytes, str, str]] = {}  # name -> (data, mime, sig)
        self.pending_polls = 2
        self.polling_host: str | None = None  # issue polling URLs on this host name instead
        self.state_cost = True
        self.credits: float | None = None
        self._regions = itertools.cycle(REGIONS)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/get_result", self._rebuilt, methods=["GET"]),
            Route("/v1/{model}", self._submit, methods=["POST"]),
            Route("/{region}/v1/get_result", self._poll, methods=["GET"]),
            Route("/delivery/{region}/{name}", self._deliver, methods=["GET"]),
        ]

    def submits(self) -> list[Any]:
        return [call for call in self.calls if call.summary.get("kind") == "submit"]

    def polls(self) -> list[Any]:
        return [call for call in self.calls if call.summary.get("kind") == "poll"]

    def deliveries(self) -> list[Any]:
        return [call for call in self.calls if call.summary.get("kind") == "delivery"]

    # -- submit ----------------------------------------------------------------------------------
    async def _submit(self, request: Request) -> Response:
        self.record(request, kind="submit", model=request.path_params["model"])
        call = self.calls[-1]
        fault = self.next_fault()
        if fault is not None and fault.fault == "timeout" and fault.variant is None:
            await self.wait_out(fault)
        early = _early_fault(fault)
        if early is not None:
            return early
        given = request.headers.get("x-key")
        call.summary["auth"] = "ok" if given == self.api_key else "refused"
        if given != self.api_key:
            return detail(403, "Not authenticated")
        spec = MODELS.get(request.path_params["model"])
        if spec is None:
            return detail(404, "Not Found")
        try:
            doc = await json_body(request)
            call.summary.update(summary_of(doc))
            task, answer = self._create(request, spec, doc, fault)
        except Invalid as invalid:
            call.summary["refused"] = invalid.msg
            return invalid.response()
        cost = answer["cost"]
        if self.credits is not None:
            if self.credits < cost:
                call.summary["refused"] = "insufficient credits"
                return detail(402, "Insufficient credits: add credits at dashboard.bfl.ai.")
            self.credits -= cost
        if not self.state_cost:
            answer["cost"] = None
        call.summary["answered"] = {"id": task.id, "cost": cost, "format": task.format}
        body = json_response(answer).body
        if fault is not None and fault.fault == "truncated" and fault.variant is None:
            return Response(body[: len(body) // 2], 200, media_type="application/json")
        return Response(body, 200, media_type="application/json")

    def _create(
        self, request: Request, spec: ModelSpec, doc: dict[str, Any], fault: Fault | None
    ) -> tuple[Task, dict[str, Any]]:
        checked = check_body(spec, doc)
        images, size, output_format = checked.images, checked.size, checked.output_format
        first = images[0] if images else None
        seed, prompt = checked.seed, checked.prompt
        rendered = _render(first, size, output_format)
        outcome = _outcome(fault)
        in_mp = sum(max(1, math.ceil(im.width * im.height / MEGAPIXEL)) for im in images)
        out_mp = max(1, math.ceil(size[0] * size[1] / MEGAPIXEL))
        if spec.family == "kontext":
            cost = spec.first_mp
        else:
            cost = spec.first_mp + spec.extra_mp * (out_mp - 1) + spec.extra_mp * in_mp
        task = Task(
            id=str(uuid.uuid4()),
            model=str(request.path_params["model"]),
            region=next(self._regions),
            outcome=outcome,
            pending=self.pending_polls,
            image=rendered,
            format=output_format,
            prompt=prompt,
            seed=seed if isinstance(seed, int) else secrets.randbelow(2**31),
        )
        if outcome != "not_found":
            self.tasks[task.id] = task
        host = self.polling_host or request.url.hostname or "127.0.0.1"
        polling_url = f"{request.url.scheme}://{host}:{request.url.port}/{task.region}/v1/get_result?id={task.id}"
        answer = {
            "id": task.id,
            "polling_url": polling_url,
            "cost": cost,
            "input_mp": float(in_mp),
            "output_mp": float(out_mp),
        }
        return task, answer

    # -- poll ------------------------------------------------------------------------------------
    async def _rebuilt(self, request: Request) -> Response:
        self.record(request, kind="poll", rebuilt=True, key_sent="x-key" in request.headers)
        return detail(404, "Not Found")

    async def _poll(self, request: Request) -> Response:
        task_id = request.query_params.get("id", "")
        region = request.path_params["region"]
        given = request.headers.get("x-key")
        self.record(
            request,
            kind="poll",
            id=task_id,
            region=region,
            auth="ok" if given == self.api_key else "refused",
            key_sent=given is not None,
        )
        call = self.calls[-1]
        if given != self.api_key:
            return detail(403, "Not authenticated")
        task = self.tasks.get(task_id)
        if task is not None and task.region != region:
            call.summary["answered"] = "not issued"
            return detail(404, "Not Found")  # a URL the fake did not issue for this task
        if task is None:
            call.summary["answered"] = "Task not found"
            return json_response({"id": task_id, "status": "Task not found"})
        if task.outcome == "never" or task.pending > 0:
            task.pending -= 1
            call.summary["answered"] = "Pending"
            return json_response(
                {"id": task.id, "status": "Pending", "result": None, "progress": 0.4}
            )
        call.summary["answered"] = task.outcome
        return self._settled(request, task)

    def _settled(self, request: Request, task: Task) -> Response:
        outcome = task.outcome
        base = {"id": task.id, "progress": None, "preview": None}
        if outcome == "poll_malformed":
            return Response(b"<html>502 Bad Gateway</html>", 200, media_type="text/html")
        if outcome in ("error", "failed"):
            status = "Error" if outcome == "error" else "Failed"
            return json_response(
                {
                    **base,
                    "status": status,
                    "result": None,
                    "details": "Generation failed: the model returned no image for this task.",
                }
            )
        if outcome in ("request_moderated", "content_moderated"):
            status = "Request Moderated" if outcome == "request_moderated" else "Content Moderated"
            reasons = {"Moderation Reasons": ["Derivative Works"]}
            return json_response({**base, "status": status, "result": None, "details": reasons})
        now = time.time()
        result: dict[str, Any] = {
            "prompt": task.prompt,
            "seed": task.seed,
            "start_time": now - 2,
            "end_time": now,
            "duration": 2.0,
        }
        if outcome != "no_sample":
            result["sample"] = task.sample or self._deliver_url(request, task)
            task.sample = result["sample"]
        body = json_response({**base, "status": "Ready", "result": result, "details": None}).body
        if outcome == "poll_truncated":
            body = body[: len(body) // 2]
        return Response(body, 200, media_type="application/json")

    def _deliver_url(self, request: Request, task: Task) -> str:
        name = secrets.token_hex(8)
        sig = secrets.token_urlsafe(16)
        self.delivered[name] = (task.image, _MIME[task.format], sig)
        expires = time.strftime("%Y-%m-%dT%H%%3A%M%%3A%SZ", time.gmtime(time.time() + 600))
        origin = f"{request.url.scheme}://{request.url.netloc}"
        return (
            f"{origin}/delivery/{task.region}/{name}?se={expires}&sp=r&sv=2024-11-04&sr=b"
            f"&rsct={_MIME[task.format]}&sig={sig}"
        )

    # -- delivery --------------------------------------------------------------------------------
    async def _deliver(self, request: Request) -> Response:
        key_sent = "x-key" in request.headers
        self.record(request, kind="delivery", key_sent=key_sent)
        if key_sent:  # BFL's delivery host must never see the API key
            return Response(b"AuthenticationFailed: unexpected x-key", 403)
        found = self.delivered.get(request.path_params["name"])
        if found is None or request.query_params.get("sig") != found[2]:
            return Response(b"AuthenticationFailed: signature mismatch", 403)
        return Response(found[0], 200, media_type=found[1])


def _early_fault(fault: Fault | None) -> Response | None:
    """Faults answered at the submit, before the request is looked at."""
    if fault is None or fault.variant is not None:
        return None
    name = fault.fault
    if name == "rate_limit":
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        return detail(
            429, "You have reached the limit of 24 active tasks; try again later.", headers
        )
    if name == "server_error":
        return detail(500, "Internal Server Error")
    if name == "unavailable":
        return detail(503, "Service Unavailable")
    if name == "bad_key":
        return detail(403, "Not authenticated")
    if name == "malformed":
        return Response(
            b"<html><body>upstream connect error</body></html>", 200, media_type="text/html"
        )
    return None


def _outcome(fault: Fault | None) -> Outcome:
    if fault is None:
        return "ready"
    name, variant = fault.fault, fault.variant
    if name == "no_image":
        return "no_sample"
    if name == "moderation":
        return "content_moderated" if variant == "content" else "request_moderated"
    if name == "server_error" and variant == "task_error":
        return "error"
    if name == "server_error" and variant == "task_failed":
        return "failed"
    if name == "server_error" and variant == "task_not_found":
        return "not_found"
    if name == "timeout" and variant == "never_settles":
        return "never"
    if name == "malformed" and variant == "poll":
        return "poll_malformed"
    if name == "truncated" and variant == "poll":
        return "poll_truncated"
    return "ready"


def _render(source: Image.Image | None, size: tuple[int, int], fmt: str) -> bytes:
    png = result_png(source, size)
    if fmt == "png":
        return png
    with Image.open(io.BytesIO(png)) as opened:
        out = io.BytesIO()
        opened.convert("RGB").save(out, format="JPEG", quality=90)
        return out.getvalue()
