"""The Gemini API provider: one ``generateContent`` call per image, through the error boundary.

``POST {base}/{api_version}/models/{model}:generateContent`` with the key in ``x-goog-api-key``
(never in the URL, where proxies and logs would keep it). Gemini has no ``n``: ``n`` images are
``n`` concurrent calls, their usage summed (``fan_out``). It streams no partial images either,
so a streamed edit gets keepalives and then one completed event per image.
"""

from __future__ import annotations

import orjson

from imagegate.core.result import EditResult
from imagegate.providers.base import Deployment, EditJob, EventSink
from imagegate.providers.fanout import fan_out
from imagegate.providers.gemini.convert import (
    PROVIDER,
    Malformed,
    RequestBody,
    check_job,
    encode_request,
    load_answer,
    read_answer,
    read_error,
)
from imagegate.providers.upstream import ProviderFailure, Upstream

DEFAULT_API_VERSION = "v1beta"


class GeminiProvider:
    name = PROVIDER

    def __init__(self) -> None:
        self.upstream = Upstream(PROVIDER, read_error)

    def check(self, job: EditJob) -> None:
        check_job(job)

    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        body = encode_request(job)  # each image encoded once, for every call

        async def one(index: int) -> EditResult:
            return await self._generate(job, deployment, body)

        return await fan_out(job.request.n, one)

    async def _generate(
        self, job: EditJob, deployment: Deployment, body: RequestBody
    ) -> EditResult:
        version = deployment.options.get("api_version") or DEFAULT_API_VERSION
        request = deployment.http().build_request(
            "POST",
            f"/{version}/models/{job.card.upstream_model}:generateContent",
            content=body.stream(),
            headers={
                "x-goog-api-key": deployment.secret(),
                "Content-Type": "application/json",
                "Content-Length": str(body.length),
                "Accept": "application/json",
            },
        )
        response = await self.upstream.send(deployment, request)
        try:
            doc = load_answer(response.content)
        except orjson.JSONDecodeError:
            raise self.upstream.malformed("a body that is not JSON") from None
        try:
            outcome = read_answer(doc, job.card.id)
        except Malformed as exc:
            raise self.upstream.malformed(str(exc)) from None
        if isinstance(outcome, ProviderFailure):
            # A 200 that refused or failed to draw: Google's words go through the boundary.
            raise self.upstream.status_error(
                response.status_code, response.content, response.headers, deployment
            )
        return outcome

    async def aclose(self) -> None:
        return None
