"""OpenAI's Images API behind the provider protocol: the one module that sends its requests.

One call per edit: OpenAI takes ``n`` (1-10) itself, so nothing is fanned out. The images are
sent in the multipart body from the request's own copy of their bytes (``formdata``), never
re-encoded or copied first.
Base64 answers are passed on untouched; URL answers (dall-e-2's default, should OpenAI send
one although ``b64_json`` was asked) are downloaded before the gateway answers. With
``stream=true`` OpenAI's partial images are handed on as they arrive.

Azure OpenAI (``providers/azure``) is this same adapter with another URL, credential header,
``model`` field and error reader.
"""

from __future__ import annotations

import asyncio

import httpx

from imagegate.core.result import EditResult, ResultImage
from imagegate.providers.base import Deployment, EditJob, EventSink
from imagegate.providers.fanout import sum_usage
from imagegate.providers.formdata import FormBody, FormFile
from imagegate.providers.openai import convert, errors
from imagegate.providers.openai.convert import Answer, AnswerImage, EditForm, Malformed
from imagegate.providers.openai.events import (
    CompletedImage,
    PartialImage,
    SseDecoder,
    SseEvent,
    StreamError,
    byte_lines,
    stream_error_status,
    stream_item,
)
from imagegate.providers.upstream import ErrorReader, Upstream

MAX_RESULT_BYTES = 64 * 1024 * 1024  # one downloaded result image


class OpenAIProvider:
    name = "openai"

    def __init__(self, read_error: ErrorReader = errors.read_error) -> None:
        self.upstream = Upstream(self.name, read_error)

    def check(self, job: EditJob) -> None:
        convert.check(job)

    # -- what differs for Azure ----------------------------------------------------------------
    def model_field(self, job: EditJob, deployment: Deployment) -> str:
        return job.card.upstream_model

    def build_request(
        self, deployment: Deployment, form: EditForm, body: FormBody, request_id: str
    ) -> httpx.Request:
        headers = {"Authorization": f"Bearer {deployment.secret()}", **body.headers}
        if request_id:  # OpenAI keeps it with the request: support can find it by our id
            headers["X-Client-Request-Id"] = request_id
        return deployment.http().build_request(
            "POST", "images/edits", content=body, headers=headers
        )

    # -- one edit ------------------------------------------------------------------------------
    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        form = convert.edit_form(job, model=self.model_field(job, deployment))
        files = [
            FormFile(part.name, part.filename, part.content_type, part.image.blob)
            for part in form.files
        ]
        body = FormBody(form.fields, files)
        try:
            request = self.build_request(deployment, form, body, job.request_id)
            if form.stream:
                return await self._streamed(job, deployment, request, events)
            response = await self.upstream.send(deployment, request)
        finally:
            body.close()
        answer = self._answer(response.content, job)
        return await self._result(job, deployment, answer)

    def _answer(self, body: bytes, job: EditJob) -> Answer:
        try:
            doc = convert.load_json(body)
            return convert.parse_answer(
                doc, gpt_image=convert.is_gpt_image(job.card.upstream_model)
            )
        except Malformed as exc:
            raise self.upstream.malformed(exc.what) from None

    async def _result(self, job: EditJob, deployment: Deployment, answer: Answer) -> EditResult:
        images = await asyncio.gather(*(self._image(deployment, entry) for entry in answer.images))
        return EditResult(
            images=list(images),
            model=job.card.id,
            provider=self.name,
            usage=answer.usage,
            quality=answer.quality,
            background=answer.background,
        )

    async def _image(self, deployment: Deployment, entry: AnswerImage) -> ResultImage:
        try:
            if entry.b64 is not None:
                return ResultImage.from_base64(entry.b64, revised_prompt=entry.revised_prompt)
            assert entry.url is not None
            data = await self.upstream.download(deployment, entry.url, max_bytes=MAX_RESULT_BYTES)
            return ResultImage.from_bytes(data, revised_prompt=entry.revised_prompt)
        except ValueError:
            raise self.upstream.malformed("an image that is not a PNG, JPEG or WEBP") from None

    # -- stream=true ---------------------------------------------------------------------------
    async def _streamed(
        self, job: EditJob, deployment: Deployment, request: httpx.Request, events: EventSink
    ) -> EditResult:
        response = await self.upstream.send(deployment, request, stream=True)
        completed: list[CompletedImage] = []
        try:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                # Answered with plain JSON after all: take it as a plain answer.
                answer = self._answer(await response.aread(), job)
                return await self._result(job, deployment, answer)
            decoder = SseDecoder()
            async for line in byte_lines(response.aiter_bytes()):
                event = decoder.feed(line)
                if event is not None:
                    await self._on_event(event, job, deployment, events, completed)
            last = decoder.end()
            if last is not None:
                await self._on_event(last, job, deployment, events, completed)
        except httpx.HTTPError as exc:
            raise self.upstream.transport_error(exc, deployment) from None
        finally:
            await response.aclose()
        if not completed:
            raise self.upstream.malformed("a stream that ended before its completed event")
        images = [self._decoded(item.b64) for item in completed]
        return EditResult(
            images=images,
            model=job.card.id,
            provider=self.name,
            usage=sum_usage([item.usage for item in completed]),
            quality=completed[-1].quality,
            background=completed[-1].background,
        )

    async def _on_event(
        self,
        event: SseEvent,
        job: EditJob,
        deployment: Deployment,
        events: EventSink,
        completed: list[CompletedImage],
    ) -> None:
        try:
            item = stream_item(event)
        except Malformed as exc:
            raise self.upstream.malformed(exc.what) from None
        if isinstance(item, PartialImage):
            await events.partial(self._decoded(item.b64), item.index)
        elif isinstance(item, CompletedImage):
            completed.append(item)
        elif isinstance(item, StreamError):
            status = stream_error_status(item.error)
            raise self.upstream.status_error(status, item.body(), {}, deployment)

    def _decoded(self, b64: str | memoryview) -> ResultImage:
        try:
            return ResultImage.from_base64(b64)
        except ValueError:
            raise self.upstream.malformed("an image that is not a PNG, JPEG or WEBP") from None

    async def aclose(self) -> None:
        return None
