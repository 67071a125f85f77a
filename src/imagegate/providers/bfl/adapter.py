"""The Black Forest Labs provider: submit, poll, download, through the upstream boundary. The only
module of this package that touches httpx.

Each image is one queued task (BFL has no ``n``; ``fan_out`` runs ``n`` of them, each billed):

1. ``POST {base}/v1/{model}`` with ``x-key``: BFL answers a task id, a ``polling_url`` and the
   task's ``cost`` in credits;
2. ``GET polling_url``, exactly as given (a regional host such as ``api.eu2.bfl.ai``; it is never
   rebuilt from the id), with ``x-key``, backing off from the deployment's interval up to 5 s,
   until the task is Ready, failed or moderated, or the deployment's poll deadline passes (504).
   The key goes only to a polling URL on a trusted host (``trusted_polling_url``); any other is
   refused with a 502 before anything is sent to it;
3. the signed ``result.sample`` URL (it expires in about 10 minutes) is downloaded at once,
   size-capped and without the key: on another host it passes the gateway's SSRF guard.

BFL documents no way to cancel a task: when the client goes away (the edit is cancelled) polling
simply stops, and the task finishes, billed, on BFL's side.
"""

from __future__ import annotations

import asyncio
import logging

from imagegate.core.errors import UpstreamError
from imagegate.core.result import EditResult, ResultImage, Usage
from imagegate.providers.base import Deployment, EditJob, EventSink
from imagegate.providers.bfl.convert import (
    PROVIDER,
    Malformed,
    Plan,
    Ready,
    encode_images,
    plan_edit,
    read_error,
    read_poll,
    read_submit,
    submit_body,
    trusted_polling_url,
)
from imagegate.providers.fanout import fan_out
from imagegate.providers.polling import Backoff, poll_until_settled
from imagegate.providers.upstream import ProviderFailure, Upstream

log = logging.getLogger("imagegate.upstream")

MAX_RESULT_BYTES = 50 * 1024 * 1024  # a result image, downloaded at most this big
MAX_POLL_INTERVAL = 5.0
DEFAULT_POLL_INTERVAL = 0.5
_INLINE_BODY_BYTES = 1024 * 1024  # bigger inputs are base64-encoded off the event loop


class BflProvider:
    name = PROVIDER

    def __init__(self) -> None:
        self._upstream = Upstream(PROVIDER, read_error)

    def check(self, job: EditJob) -> None:
        plan_edit(job)

    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        plan = plan_edit(job)
        if job.request.image_bytes > _INLINE_BODY_BYTES:
            encoded = await asyncio.to_thread(encode_images, plan)
        else:
            encoded = encode_images(plan)  # once, for every call of a fan-out

        async def call(index: int) -> EditResult:
            return await self._task(job, plan, encoded, deployment, index)

        return await fan_out(job.request.n, call)

    async def _task(
        self, job: EditJob, plan: Plan, encoded: list[bytes], deployment: Deployment, index: int
    ) -> EditResult:
        request = deployment.http().build_request(
            "POST",
            plan.path,
            content=submit_body(plan, encoded, index),
            headers={**_key(deployment), "Content-Type": "application/json"},
        )
        response = await self._upstream.send(deployment, request)
        try:
            submitted = read_submit(response.content)
        except Malformed as exc:
            raise self._upstream.malformed(exc.what) from None
        if not trusted_polling_url(submitted.polling_url, deployment.base_url):
            log.warning(
                "polling URL refused: not on a host the key may go to",
                extra={"provider": PROVIDER, "deployment": deployment.name},
            )
            raise UpstreamError(
                f"{PROVIDER} answered with a polling URL on a host the gateway will not send its "
                "key to; the task was not polled.",
                code="upstream_polling_refused",
                origin="provider",
            )

        async def check() -> Ready | None:
            return await self._poll(deployment, submitted.polling_url)

        ready = await poll_until_settled(
            check,
            provider=PROVIDER,
            deadline_seconds=deployment.timeout_seconds,
            cancel=None,  # BFL has no cancel: polling stops, the task runs out on BFL's side
            backoff=_backoff(deployment),
        )
        data = await self._upstream.download(deployment, ready.sample, max_bytes=MAX_RESULT_BYTES)
        revised = ready.prompt if ready.prompt != job.request.prompt else None
        try:
            image = ResultImage.from_bytes(data, revised_prompt=revised)
        except ValueError:
            raise self._upstream.malformed("a result that is not an image") from None
        return EditResult(
            images=[image],
            model=job.card.id,
            provider=PROVIDER,
            usage=Usage(provider_cost_usd=submitted.cost_usd),
            background="opaque",
        )

    async def _poll(self, deployment: Deployment, url: str) -> Ready | None:
        request = deployment.http().build_request(
            "GET", url, headers=_key(deployment)
        )  # the URL verbatim: httpx keeps an absolute URL over the client's base
        response = await self._upstream.send(deployment, request)
        try:
            outcome = read_poll(response.content)
        except Malformed as exc:
            raise self._upstream.malformed(exc.what) from None
        if isinstance(outcome, ProviderFailure):
            # A 200 that says the task failed or was moderated: BFL's words, through the boundary.
            raise self._upstream.status_error(
                response.status_code, response.content, response.headers, deployment
            )
        return outcome

    async def aclose(self) -> None:
        return None


def _key(deployment: Deployment) -> dict[str, str]:
    return {"x-key": deployment.secret(), "Accept": "application/json"}


def _backoff(deployment: Deployment) -> Backoff:
    try:
        first = float(deployment.options.get("poll_interval_seconds", DEFAULT_POLL_INTERVAL))
    except ValueError:
        first = DEFAULT_POLL_INTERVAL
    first = first if first > 0 else DEFAULT_POLL_INTERVAL
    return Backoff(first=first, factor=1.5, maximum=max(first, MAX_POLL_INTERVAL))
