"""A strict fake of Replicate's predictions API, for the official models it knows
(``replicate_models.SCHEMAS``)::

    POST /v1/models/{owner}/{name}/predictions   create; Prefer: wait[=N] honoured
    GET  <urls.get it issued>                     the prediction
    POST <urls.cancel it issued>                  cancel it
    GET  /__fake__/delivery/{name}                a result file, as replicate.delivery serves it

It checks what Replicate checks and answers RFC 7807 problem details on any mismatch:
``Authorization: Bearer <token>`` on every API call (the 401 is the SDK cassette's, verbatim),
``application/json`` with an ``input`` object, the model's input schema (unknown keys, types,
enums, ranges, cross-input limits: 422 with ``invalid_fields``), images as data URIs that decode,
a well-formed ``Prefer`` header.

Stricter than Replicate on purpose:

- a top-level key other than ``input`` is refused: the gateway sends no webhooks or versions;
- images must be data URIs (the fake fetches nothing) whose MIME type is what the bytes are;
- it issues its own prediction ids and absolute ``urls.get``/``urls.cancel`` on its own origin,
  under a shard path (``/v1/shards/{k}/predictions/{id}``): only those are answered, so a client
  that rebuilds ``/v1/predictions/{id}`` from the id gets 404 (recorded as ``rebuilt``);
- a delivery URL fetched with an ``Authorization`` header is refused: the token never leaves for
  the host that serves results.

A prediction starts ``starting``, is ``processing`` after its first poll and settles after
``polls_to_settle`` polls; with 0 it settles at once, so a create with ``Prefer: wait`` answers
it settled. A create with ``Prefer: wait=N`` for a prediction that does not settle at once holds
N seconds (as Replicate holds until the wait ends), then answers it ``starting``. Results are real
images (the first input inverted, ``result_png``), as a URI on the fake's own origin (or a
``data:`` URI with ``output_as_data_uri``); a string or a list as the model's schema says;
``metrics.image_count`` says how many (``billed_images`` overrides it).

Faults (``/__fake__/faults``) in Replicate's shapes: ``rate_limit`` (429, ``Retry-After`` when
given), ``server_error`` (500), ``unavailable`` (503), ``bad_key`` (401), ``malformed`` (a 201 in
HTML), ``truncated`` (a 201 cut short), ``timeout`` (the create answers after ``delay`` s) hit the
create; with ``variant: "poll"`` they hit the prediction's first poll instead (poll faults queued
one behind another hit its first polls, in order). Job-level ones
shape how the prediction ends: ``moderation`` (failed, "flagged as sensitive (E005)"; variant
``nsfw``: "NSFW content detected"), ``no_image`` (succeeded without output), ``server_error``
with variant ``failed`` (failed, a model error), ``canceled`` or ``aborted`` (ended so, not by
the client), and ``timeout`` with variant ``never`` (never settles).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from imagegate.testing.fake import Call, FakeUpstream, Fault, b64, json_response, result_png
from imagegate.testing.replicate_models import (
    SCHEMAS,
    Checked,
    Schema,
    check_combined,
    check_input,
    encode,
    result_size,
)

UNAUTHENTICATED = {
    "title": "Unauthenticated",
    "detail": "You did not pass a valid authentication token",
    "status": 401,
}
SAFETY = (
    "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
)
NSFW = "NSFW content detected. Try running it again, or try a different prompt."
MODEL_ERROR = "CUDA out of memory. Tried to allocate 2.00 GiB (E1001)"
JOB_VARIANTS = frozenset({"failed", "canceled", "aborted", "never", "nsfw", "poll"})
_PREFER = re.compile(r"^\s*wait(?:\s*=\s*(\d{1,3}))?\s*$")
_ID_CHARS = string.ascii_lowercase + string.digits


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    headers = extra.pop("headers", None)
    return Response(
        orjson.dumps({"title": title, "detail": detail, "status": status, **extra}),
        status,
        headers,
        media_type="application/problem+json",
    )


@dataclass
class Job:
    id: str
    model: str
    shard: int
    outcome: str  # succeeded | failed | safety | nsfw | canceled | aborted | never | no_output
    polls_to_settle: int
    output: list[str]
    input: dict[str, Any]
    billed: int
    status: str = "starting"
    polls: int = 0
    error: str | None = None
    poll_faults: list[Fault] = field(default_factory=list)  # the next polls answer these
    created_at: float = field(default_factory=time.time)

    @property
    def settled(self) -> bool:
        return self.status in ("succeeded", "failed", "canceled", "aborted")

    def settle(self) -> None:
        ends = {
            "failed": ("failed", MODEL_ERROR),
            "safety": ("failed", SAFETY),
            "nsfw": ("failed", NSFW),
            "canceled": ("canceled", None),
            "aborted": ("aborted", "The prediction was aborted."),
        }
        self.status, self.error = ends.get(self.outcome, ("succeeded", None))


class FakeReplicate(FakeUpstream):
    name = "replicate"

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.jobs: dict[str, Job] = {}
        self.served: dict[str, tuple[bytes, str]] = {}
        self.reset_knobs()

    def reset_knobs(self) -> None:
        self.polls_to_settle = 0
        self.output_as_data_uri = False
        self.billed_images: int | None = None
        self.sequential_shortfall = 0  # images fewer than max_images the model makes

    def routes(self) -> list[Route]:
        return [
            Route("/v1/models/{owner}/{name}/predictions", self._create, methods=["POST"]),
            Route("/v1/shards/{shard:int}/predictions/{ident}", self._get, methods=["GET"]),
            Route(
                "/v1/shards/{shard:int}/predictions/{ident}/cancel", self._cancel, methods=["POST"]
            ),
            Route("/v1/predictions/{ident}", self._rebuilt, methods=["GET"]),
            Route("/v1/predictions/{ident}/cancel", self._rebuilt, methods=["POST"]),
            Route("/__fake__/delivery/{name}", self._delivery, methods=["GET"]),
        ]

    def kinds(self) -> list[str]:
        """What it received, in order: create, poll, cancel, delivery, rebuilt, refused."""
        return [str(call.summary.get("kind")) for call in self.calls]

    # -- create ------------------------------------------------------------------------------

    async def _create(self, request: Request) -> Response:
        self.record(request, kind="create")
        call = self.calls[-1]
        fault = self.next_fault()
        job_fault = fault if fault is not None and _job_level(fault) else None
        if fault is not None and job_fault is None:
            if fault.fault == "timeout":
                await self.wait_out(fault)
            else:
                early = _early(fault)
                if early is not None:
                    call.summary["fault"] = fault.fault
                    return early
        refused = self._refuse(request, call)
        if refused is not None:
            return refused
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        schema = SCHEMAS.get(model)
        if schema is None:
            return problem(404, "Not found", f"The model {model} does not exist.")
        prefer = request.headers.get("prefer")
        wait: int | None = None
        if prefer is not None:
            match = _PREFER.match(prefer)
            if match is None or not 1 <= int(match.group(1) or 60) <= 60:
                return problem(400, "Invalid Prefer header", "Prefer must be wait or wait=1..60")
            wait = int(match.group(1) or 60)
        call.summary["prefer"] = prefer
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return problem(400, "Bad request", "The request body is not valid JSON.")
        if not isinstance(body, dict) or set(body) != {"input"}:
            keys = sorted(body) if isinstance(body, dict) else []
            call.summary["keys"] = keys
            return problem(400, "Bad request", f"the body must be {{input}} alone; got {keys}")
        checked = check_input(schema, body["input"])
        call.summary.update(_summary(checked, body["input"]))
        if not checked.problems:
            check_combined(model, checked)
        if checked.problems:
            call.summary["invalid"] = checked.problems
            detail = "".join(f"- {p['field']}: {p['description']}\n" for p in checked.problems)
            return problem(422, "Input validation failed", detail, invalid_fields=checked.problems)
        job = self._job(request, model, schema, checked, job_fault)
        call.summary["prediction"] = job.id
        if job.polls_to_settle == 0 and job.outcome != "never":
            if wait is not None:
                job.settle()
        elif wait is not None:
            await asyncio.sleep(wait)
        call.summary["answered"] = job.status
        headers = {"Preference-Applied": f"wait={wait}"} if wait is not None else None
        body_out = orjson.dumps(self._doc(job, request))
        if fault is not None and fault.fault == "truncated":
            body_out = body_out[: len(body_out) // 2]
        return Response(body_out, 201, headers, media_type="application/json")

    def _refuse(self, request: Request, call: Call) -> Response | None:
        refused = self._refuse_auth(request, call)
        if refused is not None:
            return refused
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return problem(415, "Unsupported media type", "Send application/json.")
        return None

    def _job(
        self, request: Request, model: str, schema: Schema, checked: Checked, fault: Fault | None
    ) -> Job:
        outcome, polls = "succeeded", self.polls_to_settle
        poll_faults: list[Fault] = []
        if fault is not None:
            outcome = _outcome(fault)
            if fault.variant == "poll":  # with any poll faults queued right behind it
                poll_faults.append(fault)
                while self.faults and self.faults[0].variant == "poll":
                    poll_faults.append(self.faults.popleft())
                polls = max(polls, 2)
        images = self._results(request, model, schema, checked)
        ident = "".join(secrets.choice(_ID_CHARS) for _ in range(26))
        job = Job(
            id=ident,
            model=model,
            shard=1 + secrets.randbelow(9),
            outcome=outcome,
            polls_to_settle=polls,
            output=images if outcome != "no_output" else [],
            input=_without_images(checked.values),
            billed=self.billed_images if self.billed_images is not None else len(images),
            poll_faults=poll_faults,
        )
        self.jobs[ident] = job
        return job

    def _results(self, request: Request, model: str, schema: Schema, checked: Checked) -> list[str]:
        values = checked.values
        first = checked.images[0][0] if checked.images else None
        size = result_size(schema, values, first)
        wanted = values.get("output_format")
        fmt = "jpeg" if wanted == "jpg" else wanted or schema.default_format
        count = 1
        if model == "bytedance/seedream-4" and values.get("sequential_image_generation") == "auto":
            count = max(1, int(values.get("max_images", 1)) - self.sequential_shortfall)
        data = encode(result_png(first, size), str(fmt))
        origin = str(request.base_url).rstrip("/")
        uris = []
        for _ in range(count):
            if self.output_as_data_uri:
                uris.append(f"data:image/{fmt};base64,{b64(data)}")
            else:
                name = f"{secrets.token_hex(6)}.{'jpg' if fmt == 'jpeg' else fmt}"
                self.served[name] = (data, f"image/{fmt}")
                uris.append(f"{origin}/__fake__/delivery/{name}")
        return uris

    # -- poll and cancel ---------------------------------------------------------------------

    async def _get(self, request: Request) -> Response:
        self.record(request, kind="poll", prediction=request.path_params["ident"])
        call = self.calls[-1]
        job, refused = self._issued(request, call)
        if job is None:
            assert refused is not None
            return refused
        fault = job.poll_faults.pop(0) if job.poll_faults else None
        if fault is not None:
            call.summary["fault"] = fault.fault
            if fault.fault == "timeout":
                await self.wait_out(fault)
            early = _early(fault)
            if early is not None:
                return early
        if not job.settled:
            job.polls += 1
            if job.outcome != "never" and job.polls >= job.polls_to_settle:
                job.settle()
            else:
                job.status = "processing"
        call.summary["status"] = job.status
        body = orjson.dumps(self._doc(job, request))
        if fault is not None and fault.fault == "truncated":
            body = body[: len(body) // 2]
        return Response(body, 200, media_type="application/json")

    async def _cancel(self, request: Request) -> Response:
        self.record(request, kind="cancel", prediction=request.path_params["ident"])
        call = self.calls[-1]
        job, refused = self._issued(request, call)
        if job is None:
            assert refused is not None
            return refused
        if not job.settled:
            job.status, job.error = "canceled", None
        call.summary["status"] = job.status
        return json_response(self._doc(job, request))

    def _issued(self, request: Request, call: Call) -> tuple[Job | None, Response | None]:
        refused = self._refuse_auth(request, call)
        if refused is not None:
            return None, refused
        job = self.jobs.get(request.path_params["ident"])
        if job is None or job.shard != request.path_params["shard"]:
            call.summary["unknown"] = True
            return None, problem(404, "Not found", "Not found.")
        return job, None

    def _refuse_auth(self, request: Request, call: Call) -> Response | None:
        if request.headers.get("authorization", "") != f"Bearer {self.api_key}":
            call.summary["auth"] = "refused"
            return json_response(UNAUTHENTICATED, 401)
        call.summary["auth"] = "ok"
        return None

    async def _rebuilt(self, request: Request) -> Response:
        self.record(request, kind="rebuilt", prediction=request.path_params["ident"])
        return problem(404, "Not found", "Not found.")

    async def _delivery(self, request: Request) -> Response:
        self.record(request, kind="delivery")
        if "authorization" in request.headers:
            self.calls[-1].summary["auth_sent"] = True
            return problem(403, "Forbidden", "a delivery URL takes no Authorization header")
        found = self.served.get(request.path_params["name"])
        if found is None:
            return problem(404, "Not found", "Not found.")
        return Response(found[0], 200, media_type=found[1])

    def _doc(self, job: Job, request: Request) -> dict[str, Any]:
        origin = str(request.base_url).rstrip("/")
        base = f"{origin}/v1/shards/{job.shard}/predictions/{job.id}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(job.created_at))
        doc: dict[str, Any] = {
            "id": job.id,
            "model": job.model,
            "version": "hidden",
            "input": job.input,
            "logs": "",
            "output": None,
            "data_removed": False,
            "error": job.error,
            "status": job.status,
            "created_at": stamp,
            "urls": {
                "get": base,
                "cancel": base + "/cancel",
                "web": f"https://replicate.com/p/{job.id}",
            },
        }
        if job.settled:
            doc["completed_at"] = stamp
        if job.status == "succeeded":
            schema = SCHEMAS[job.model]
            if job.output:
                doc["output"] = job.output if schema.output == "array" else job.output[0]
            doc["metrics"] = {"predict_time": 0.1, "total_time": 0.1, "image_count": job.billed}
        return doc


def _job_level(fault: Fault) -> bool:
    return fault.fault in ("moderation", "no_image") or fault.variant in JOB_VARIANTS


def _outcome(fault: Fault) -> str:
    if fault.fault == "moderation":
        return "nsfw" if fault.variant == "nsfw" else "safety"
    if fault.fault == "no_image":
        return "no_output"
    if fault.variant in ("failed", "canceled", "aborted", "never"):
        return str(fault.variant)
    return "succeeded"


def _early(fault: Fault) -> Response | None:
    """A fault answered instead of the call (create or poll), in Replicate's shapes."""
    name = fault.fault
    if name == "rate_limit":
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        wait = fault.retry_after or 1
        return problem(
            429,
            "Too Many Requests",
            f"Request was throttled. Expected available in {wait} second(s).",
            headers=headers,
        )
    if name == "server_error":
        return problem(500, "Internal Server Error", "Something went wrong on our end.")
    if name == "unavailable":
        return problem(503, "Service Unavailable", "Replicate is temporarily unavailable.")
    if name == "bad_key":
        return json_response(UNAUTHENTICATED, 401)
    if name == "malformed":
        return Response(b"<html><body>502 Bad Gateway</body></html>", 201, media_type="text/html")
    return None


def _summary(checked: Checked, doc: object) -> dict[str, Any]:
    summary: dict[str, Any] = {"keys": sorted(doc) if isinstance(doc, dict) else []}
    summary["input"] = _without_images(checked.values)
    summary["image_field"] = checked.image_field
    summary["images"] = [{"format": fmt, "size": list(im.size)} for im, fmt in checked.images]
    return summary


def _without_images(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in ("input_image", "image_input")}
