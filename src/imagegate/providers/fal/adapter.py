"""The fal provider: submit to fal's queue, poll the job until it settles, fetch its output and
download its images, through the upstream boundary. The only module of this package that
touches httpx.

One job makes all ``n`` images (``num_images``); an endpoint without it gets one job per image
(``fan_out``). The wait is ``poll_until_settled``: its deadline is the deployment's
(``IMAGEGATE_FAL_POLL_TIMEOUT_SECONDS``), after which the job is cancelled and the client gets a
504; a client that goes away cancels the job too, and nothing more is polled. A poll that fails
for a passing reason (a dropped connection, a 5xx, a 429) is tried again at the next tick, a few
times in a row at most; giving up on a job for any reason cancels it first, since fal would
otherwise finish (and bill) it for nobody. So does a client that goes away while the job is
being submitted: the submit is let finish (a few seconds at most), and the job it made cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from imagegate.core.errors import (
    GatewayError,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from imagegate.core.result import EditResult, ResultImage, Usage
from imagegate.providers.base import Deployment, EditJob, EventSink
from imagegate.providers.fal.convert import (
    Handle,
    JobState,
    Malformed,
    Plan,
    job_error,
    plan_edit,
    read_error,
    read_handle,
    read_result,
    read_status,
    submit_body,
    with_error_type,
)
from imagegate.providers.fanout import fan_out
from imagegate.providers.polling import Backoff, cancel_quietly, poll_until_settled
from imagegate.providers.upstream import Upstream, same_origin

MAX_RESULT_BYTES = 50 * 1024 * 1024  # a result image, downloaded at most this big
MAX_POLL_FAILURES = 3  # passing failures in a row tolerated while polling
_INLINE_BODY_BYTES = 1024 * 1024  # bigger inputs are base64-encoded off the event loop
_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})


class FalUpstream(Upstream):
    """The boundary, reading two things fal says in headers: ``X-Fal-Error-Type`` (an
    infrastructure error's type, when the body lacks it) and ``X-Fal-Retryable`` (older:
    ``X-Fal-Needs-Retry``), whether trying again could help."""

    def status_error(
        self, status: int, body: bytes, headers: Mapping[str, str], deployment: Deployment
    ) -> GatewayError:
        body = with_error_type(body, headers.get("x-fal-error-type"))
        error = super().status_error(status, body, headers, deployment)
        retry = (headers.get("x-fal-retryable") or headers.get("x-fal-needs-retry") or "").lower()
        if retry in _TRUE:
            error.retryable = True
        elif retry in _FALSE:
            error.retryable = False
        return error


class FalProvider:
    name = "fal"

    def __init__(self) -> None:
        self._upstream = FalUpstream(self.name, read_error)

    def check(self, job: EditJob) -> None:
        plan_edit(job)

    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        plan = plan_edit(job)
        if plan.jobs == 1:
            return await self._job(job, plan, deployment, 0)

        async def call(index: int) -> EditResult:
            return await self._job(job, plan, deployment, index)

        return await fan_out(plan.jobs, call)

    async def aclose(self) -> None:
        return None

    # -- one job -------------------------------------------------------------------------------
    async def _job(
        self, job: EditJob, plan: Plan, deployment: Deployment, index: int
    ) -> EditResult:
        if job.request.image_bytes > _INLINE_BODY_BYTES:
            body = await asyncio.to_thread(submit_body, plan, index)
        else:
            body = submit_body(plan, index)
        handle = await self._submit(plan, body, deployment)
        state = await self._wait(handle, deployment)
        output = await self._output(handle, state, deployment)
        try:
            answer = read_result(output, job.request.prompt)
        except Malformed as exc:
            raise self._upstream.malformed(exc.what) from None
        images = await asyncio.gather(
            *(self._image(url, deployment, answer.revised_prompt) for url in answer.urls)
        )  # fal's URLs expire: every image is fetched before the gateway answers
        return EditResult(images=list(images), model=job.card.id, provider=self.name, usage=Usage())

    async def _submit(self, plan: Plan, body: bytes, deployment: Deployment) -> Handle:
        request = deployment.http().build_request(
            "POST", "/" + plan.endpoint.model, content=body, headers=_headers(deployment, json=True)
        )
        sending = asyncio.ensure_future(self._upstream.send(deployment, request))
        try:
            submitted = await asyncio.shield(sending)
        except asyncio.CancelledError:
            # The client went away (or a deadline came) mid-submit: fal may have queued the
            # job already, so it is cancelled as soon as its handle arrives, not left to run.
            await cancel_quietly(lambda: self._cancel_submitted(sending, deployment), self.name)
            raise
        return self._handle(submitted.content, deployment)

    async def _cancel_submitted(
        self, sending: asyncio.Future[httpx.Response], deployment: Deployment
    ) -> None:
        try:
            handle = self._handle((await sending).content, deployment)
        except GatewayError:
            return  # no job was made
        await self._send(deployment, "PUT", handle.cancel_url)

    def _handle(self, body: bytes, deployment: Deployment) -> Handle:
        try:
            handle = read_handle(body)
        except Malformed as exc:
            raise self._upstream.malformed(exc.what) from None
        for url in (handle.status_url, handle.response_url, handle.cancel_url):
            if not same_origin(url, deployment.base_url):  # each is sent the key
                raise self._upstream.malformed("a job URL off its own origin (not followed)")
        return handle

    async def _wait(self, handle: Handle, deployment: Deployment) -> JobState:
        failures = 0

        async def cancel() -> None:
            await self._send(deployment, "PUT", handle.cancel_url)

        async def check() -> JobState | None:
            nonlocal failures
            try:
                response = await self._send(deployment, "GET", handle.status_url)
                state = read_status(response.content)
            except (UpstreamError, UpstreamTimeout, RateLimited) as exc:
                failures += 1
                if exc.retryable and failures <= MAX_POLL_FAILURES:
                    return None  # a passing failure: ask again at the next tick
                await cancel_quietly(cancel, self.name)
                raise
            except NotFound:
                await cancel_quietly(cancel, self.name)
                raise self._lost(handle) from None
            except Malformed as exc:
                await cancel_quietly(cancel, self.name)
                raise self._upstream.malformed(exc.what) from None
            except GatewayError:
                await cancel_quietly(cancel, self.name)
                raise
            failures = 0
            return state if state.settled else None

        return await poll_until_settled(
            check,
            provider=self.name,
            deadline_seconds=deployment.timeout_seconds,
            cancel=cancel,
            backoff=_backoff(deployment),
        )

    async def _output(self, handle: Handle, state: JobState, deployment: Deployment) -> bytes:
        """The job's output; for a failed job, the error its result URL answers with (fal's
        typed words and status), or the status's own words when that URL says nothing."""
        try:
            response = await self._send(deployment, "GET", handle.response_url)
        except NotFound:
            raise self._lost(handle) from None
        if state.failed:
            raise job_error(state)
        return response.content

    async def _image(
        self, url: str, deployment: Deployment, revised_prompt: str | None
    ) -> ResultImage:
        data = await self._upstream.download(deployment, url, max_bytes=MAX_RESULT_BYTES)
        try:
            return ResultImage.from_bytes(data, revised_prompt=revised_prompt)
        except ValueError:
            raise self._upstream.malformed("a result that is not an image") from None

    async def _send(self, deployment: Deployment, method: str, url: str) -> httpx.Response:
        request = deployment.http().build_request(method, url, headers=_headers(deployment))
        return await self._upstream.send(deployment, request)

    def _lost(self, handle: Handle) -> UpstreamError:
        return UpstreamError(
            f"fal no longer knows the job {handle.request_id}; try again.",
            code="upstream_job_lost",
            origin="provider",
        )


def _headers(deployment: Deployment, *, json: bool = False) -> dict[str, str]:
    headers = {"Authorization": f"Key {deployment.secret()}", "Accept": "application/json"}
    if json:
        headers["Content-Type"] = "application/json"
    return headers


def _backoff(deployment: Deployment) -> Backoff:
    try:
        first = float(deployment.options.get("poll_interval_seconds", "0.5"))
    except ValueError:
        first = 0.5
    first = first if first > 0 else 0.5
    return Backoff(first=first, factor=1.5, maximum=max(5.0, first))
