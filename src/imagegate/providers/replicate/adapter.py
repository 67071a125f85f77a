"""The Replicate provider: a prediction per call, created with ``Prefer: wait`` and then polled
on the URL Replicate gave, through the upstream boundary. The only module of this package that
touches httpx.

One edit is one prediction where the model makes ``n`` images itself (seedream's
``max_images``), else ``n`` concurrent predictions (``fan_out``). Each prediction is created with
``Prefer: wait=N`` (the deployment's ``wait_seconds``; Replicate holds the call until the
prediction settles or N seconds pass), then, if it has not settled, ``urls.get`` is polled with
backoff (``poll_until_settled``) until the deployment's deadline, counted from the create. The
prediction is cancelled through ``urls.cancel`` when the deadline passes (504), when the client
goes away, or when polling fails for good. ``urls.get`` and ``urls.cancel`` carry the token, so
they are followed only on the deployment's own origin (anything else is a 502, and nothing is
sent there). A prediction the client leaves during the create call itself cannot be cancelled:
its id is not known yet.

Results are downloaded before the answer (Replicate's delivery URLs expire within the hour),
without the token: a URL off the API's origin (replicate.delivery) goes through the SSRF guard.
Streaming gets no partial images (Replicate has none for these models): keepalives, then one
completed event per image.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

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
from imagegate.providers.fanout import fan_out
from imagegate.providers.polling import Backoff, cancel_quietly, poll_until_settled
from imagegate.providers.replicate.answers import (
    Malformed,
    Prediction,
    read_error,
    read_prediction,
    stated_cost,
)
from imagegate.providers.replicate.convert import (
    PROVIDER,
    Plan,
    data_uri,
    input_chunks,
    plan_edit,
)
from imagegate.providers.upstream import Upstream, same_origin

log = logging.getLogger("imagegate.upstream")

MAX_RESULT_BYTES = 50 * 1024 * 1024  # one result image, downloaded at most this big
MAX_POLL_SECONDS = 5.0  # the longest sleep between polls
_INLINE_BYTES = 1024 * 1024  # bigger inputs are base64-encoded off the event loop
_TRANSIENT = ("upstream_error", "upstream_unreachable")  # a poll that may well work next time


@dataclass(frozen=True, slots=True)
class Timing:
    """The deployment's waiting: Prefer: wait seconds, the first poll interval, the deadline."""

    wait_seconds: int
    poll_interval: float
    deadline: float

    @classmethod
    def of(cls, deployment: Deployment) -> Timing:
        options = deployment.options
        return cls(
            wait_seconds=max(0, min(60, int(options.get("wait_seconds", "60")))),
            poll_interval=max(0.01, float(options.get("poll_interval_seconds", "0.5"))),
            deadline=deployment.timeout_seconds,
        )


class ReplicateProvider:
    name = PROVIDER

    def __init__(self) -> None:
        self._upstream = Upstream(self.name, read_error)

    def check(self, job: EditJob) -> None:
        plan_edit(job)

    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        plan = plan_edit(job)
        images = job.request.images
        if job.request.image_bytes > _INLINE_BYTES:
            uris = await asyncio.to_thread(_data_uris, job)
        else:
            uris = _data_uris(job)  # each image's data URI made once, for every call
        timing = Timing.of(deployment)

        async def call(index: int) -> EditResult:
            prediction = await self._run(job, plan, uris, index, deployment, timing)
            # Each prediction makes n / calls images; never billed for more (the budget held n).
            most = job.request.n // plan.calls
            return await self._result(job, prediction, deployment, len(images), most)

        return await fan_out(plan.calls, call)

    async def aclose(self) -> None:
        return None

    # -- one prediction ----------------------------------------------------------------------

    async def _run(
        self,
        job: EditJob,
        plan: Plan,
        uris: list[bytes],
        index: int,
        deployment: Deployment,
        timing: Timing,
    ) -> Prediction:
        started = asyncio.get_running_loop().time()
        prediction = await self._create(job, plan, uris, index, deployment, timing)
        log.info(
            "replicate prediction created",
            extra={"provider": self.name, "prediction": prediction.id, "status": prediction.status},
        )
        if prediction.settled:
            return prediction
        get_url, cancel_url = prediction.get_url, prediction.cancel_url

        async def cancel() -> None:
            await self._cancel(deployment, prediction.id, cancel_url)

        if get_url is None or not same_origin(get_url, deployment.base_url):
            await cancel_quietly(cancel, self.name)
            raise self._upstream.malformed(
                "an unsettled prediction without a polling URL on its API's origin"
                if get_url
                else "an unsettled prediction without urls.get"
            )

        async def check() -> Prediction | None:
            try:
                polled = await self._get(deployment, get_url)
            except (RateLimited, UpstreamTimeout) as exc:
                _keep_polling(prediction.id, exc)
                return None
            except UpstreamError as exc:
                if exc.code not in _TRANSIENT:
                    raise
                _keep_polling(prediction.id, exc)
                return None
            except NotFound:  # not the client's 404: Replicate lost the prediction it made
                raise UpstreamError(
                    f"{self.name} lost prediction {prediction.id}: its polling URL answers 404.",
                    code="upstream_error",
                    origin="provider",
                ) from None
            return polled if polled.settled else None

        remaining = timing.deadline - (asyncio.get_running_loop().time() - started)
        interval = timing.poll_interval
        try:
            return await poll_until_settled(
                check,
                provider=self.name,
                deadline_seconds=max(0.0, remaining),
                cancel=cancel,
                backoff=Backoff(interval, 1.5, max(interval, MAX_POLL_SECONDS)),
            )
        except UpstreamTimeout:
            raise  # the deadline: the prediction was cancelled already
        except GatewayError:
            await cancel_quietly(cancel, self.name)  # polling failed for good; stop the work
            raise

    async def _create(
        self,
        job: EditJob,
        plan: Plan,
        uris: list[bytes],
        index: int,
        deployment: Deployment,
        timing: Timing,
    ) -> Prediction:
        chunks = input_chunks(plan, job.request.prompt, uris, index)
        headers = self._headers(deployment)
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(sum(len(chunk) for chunk in chunks))
        client = deployment.http()
        timeout = client.timeout
        if timing.wait_seconds:
            headers["Prefer"] = f"wait={timing.wait_seconds}"
            # Replicate answers when the prediction settles or the wait ends: read that long.
            if timeout.read is not None and timeout.read < timing.wait_seconds + 1:
                timeout = httpx.Timeout(
                    timeout.connect,
                    read=timing.wait_seconds + 1.0,
                    write=timeout.write,
                    pool=timeout.pool,
                )
        request = client.build_request(
            "POST", plan.path, content=_stream(chunks), headers=headers, timeout=timeout
        )
        response = await self._upstream.send(deployment, request)
        return self._read(response.content)

    async def _get(self, deployment: Deployment, url: str) -> Prediction:
        request = deployment.http().build_request("GET", url, headers=self._headers(deployment))
        response = await self._upstream.send(deployment, request)
        return self._read(response.content)

    async def _cancel(self, deployment: Deployment, ident: str, url: str | None) -> None:
        if url is None or not same_origin(url, deployment.base_url):
            log.warning(
                "replicate prediction left running: no cancel URL on its API's origin",
                extra={"provider": self.name, "prediction": ident},
            )
            return
        request = deployment.http().build_request("POST", url, headers=self._headers(deployment))
        await self._upstream.send(deployment, request)
        log.info(
            "replicate prediction cancelled", extra={"provider": self.name, "prediction": ident}
        )

    def _headers(self, deployment: Deployment) -> dict[str, str]:
        return {"Authorization": f"Bearer {deployment.secret()}", "Accept": "application/json"}

    def _read(self, body: bytes) -> Prediction:
        try:
            return read_prediction(body)
        except Malformed as exc:
            raise self._upstream.malformed(exc.what) from None

    # -- its answer --------------------------------------------------------------------------

    async def _result(
        self, job: EditJob, prediction: Prediction, deployment: Deployment, inputs: int, most: int
    ) -> EditResult:
        if prediction.status != "succeeded":
            # Replicate's own words (a safety refusal is a 400, anything else a 502).
            raise self._upstream.status_error(200, prediction.raw, {}, deployment)
        if not prediction.output:
            raise self._upstream.malformed(f"prediction {prediction.id} succeeded without output")
        try:  # every image at once; the first failure cancels the other downloads
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._image(deployment, url)) for url in prediction.output
                ]
        except BaseExceptionGroup as failed:
            raise _first(failed) from None
        images = [task.result() for task in tasks]
        billed = prediction.image_count if prediction.image_count is not None else len(images)
        if billed != len(images):
            log.warning(
                "replicate billed another number of images than it returned",
                extra={"provider": self.name, "prediction": prediction.id, "billed": billed},
            )
        return EditResult(
            images=images,
            model=job.card.id,
            provider=self.name,
            usage=Usage(provider_cost_usd=stated_cost(job.card, min(billed, most), inputs)),
            background="opaque",
        )

    async def _image(self, deployment: Deployment, url: str) -> ResultImage:
        data = await self._upstream.download(deployment, url, max_bytes=MAX_RESULT_BYTES)
        try:
            return ResultImage.from_bytes(data)
        except ValueError:
            raise self._upstream.malformed("a result that is not an image") from None


def _data_uris(job: EditJob) -> list[bytes]:
    return [data_uri(image.mime_type, image.view()) for image in job.request.images]


async def _stream(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _keep_polling(ident: str, exc: GatewayError) -> None:
    log.warning(
        "replicate poll failed; polling on",
        extra={"provider": PROVIDER, "prediction": ident, "code": exc.code},
    )


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
