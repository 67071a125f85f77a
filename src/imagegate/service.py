"""The edit service: catalog -> validation -> routing -> provider -> finished result.

It knows nothing of HTTP. The API layer hands it a parsed ``EditRequest`` and renders what it
returns. ``run`` calls the dispatch hooks (``hooks.py``) around every edit, on the JSON and the
streaming path alike: keys, limits and budget holds attach before, usage records after.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.catalog import Catalog
from imagegate.catalog.validate import check_editable, check_image_count, validate_request
from imagegate.core.ceiling import cap_images, price_tier
from imagegate.core.convert import convert_bytes
from imagegate.core.errors import GatewayError, InternalError, NotFound, UpstreamTimeout
from imagegate.core.masking import composite_outside_mask
from imagegate.core.pricing import compute_cost
from imagegate.core.request import EditRequest, ImageInput
from imagegate.core.result import EditResult, ResultImage
from imagegate.hooks import DispatchHook, RequestContext
from imagegate.providers.base import EditJob, EventSink, Provider, ProviderRegistry
from imagegate.routing.router import Router
from imagegate.wire.fields import Fields

log = logging.getLogger("imagegate.service")
# What the after-answer record sees for an edit that was cancelled (client gone, shutdown).
_CANCELLED = GatewayError("the edit was cancelled before it finished", code="cancelled")


class EditService:
    def __init__(
        self,
        catalog: Catalog,
        providers: ProviderRegistry,
        router: Router,
        *,
        timeout_seconds: float,
        hooks: Sequence[DispatchHook] = (),
    ) -> None:
        self.catalog = catalog
        self.providers = providers
        self.router = router
        self.hooks = tuple(hooks)
        self.timeout_seconds = timeout_seconds

    # -- what the catalog offers -----------------------------------------------------------
    def available(self, card: ModelCard) -> bool:
        return card.provider in self.providers and self.router.serves(card)

    def listed_cards(self) -> list[ModelCard]:
        return [card for card in self.catalog.cards() if self.available(card)]

    def card(self, name: str) -> ModelCard:
        card = self.catalog.resolve(name)
        if not self.available(card):
            raise NotFound(
                f"{card.id} is in the catalog, but its provider {card.provider!r} is not "
                "configured on this gateway (so /v1/models does not list it).",
                param="model",
                code="model_not_available",
            )
        return card

    # -- one edit --------------------------------------------------------------------------
    def precheck(self, fields: Fields, image_count: int) -> None:
        """Refuse early, before image bytes are decoded or URLs fetched."""
        card = self.card(fields.model)
        check_editable(card)
        check_image_count(card, image_count)

    def prepare(self, request: EditRequest, request_id: str = "") -> EditJob:
        card = self.card(request.model)
        sizing = validate_request(request, card)
        emulated = request.mask if request.mask is not None and not card.edit.mask else None
        if emulated is not None:  # the card opted in to mask emulation (validate checked)
            request = replace(request, mask=None)
        job = EditJob(
            request=request,
            card=card,
            sizing=sizing,
            request_id=request_id,
            emulated_mask=emulated,
        )
        self._provider(card).check(job)
        return job

    async def admit(self, job: EditJob, ctx: RequestContext) -> None:
        """The before-dispatch hooks alone: a stream calls them before its 200 goes out, so a
        refusal (401, 402, 403, 429) keeps its status; it then runs with ``admitted=True``."""
        for hook in self.hooks:
            await hook.before_dispatch(ctx, job)

    async def run(
        self,
        job: EditJob,
        events: EventSink,
        ctx: RequestContext | None = None,
        *,
        admitted: bool = False,
    ) -> EditResult:
        ctx = ctx or RequestContext(job.request_id, user=job.request.user)
        if not admitted:
            await self.admit(job, ctx)
        outcome: EditResult | GatewayError = _CANCELLED  # unless it ends another way
        try:
            result = await self._dispatch(job, events, ctx)
            if job.emulated_mask is not None:
                await asyncio.to_thread(_apply_mask, result, job, job.emulated_mask)
            await self._finish(result, job)
            outcome = result
            return result
        except GatewayError as exc:
            outcome = exc
            raise
        finally:
            await self._record(ctx, job, outcome)

    async def _dispatch(self, job: EditJob, events: EventSink, ctx: RequestContext) -> EditResult:
        provider = self._provider(job.card)
        deployment = self.router.pick(job.card)
        ctx.attempts += 1
        ctx.provider = provider.name
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await provider.edit(job, deployment, events)
        except TimeoutError:
            raise UpstreamTimeout(
                f"{job.card.id} did not finish within {self.timeout_seconds:g} s.",
                origin="provider",
            ) from None
        except GatewayError:
            raise
        except Exception:
            log.exception(
                "provider %s failed unexpectedly",
                provider.name,
                extra={"request_id": job.request_id},
            )
            raise InternalError(
                f"{job.card.id} failed unexpectedly; the error is logged under request id "
                f"{job.request_id}."
            ) from None
        finally:
            ctx.upstream_seconds += time.perf_counter() - started

    async def _record(
        self, ctx: RequestContext, job: EditJob, outcome: EditResult | GatewayError
    ) -> None:
        for hook in self.hooks:
            try:
                await hook.after_answer(ctx, job, outcome)
            except Exception:  # a record that fails must not change the client's answer
                log.exception("a dispatch hook failed", extra={"request_id": job.request_id})

    def _provider(self, card: ModelCard) -> Provider:
        provider = self.providers.get(card.provider)
        if provider is None:
            raise NotFound(
                f"{card.id}: the provider {card.provider!r} is not enabled.",
                param="model",
                code="model_not_available",
            )
        return provider

    async def _finish(self, result: EditResult, job: EditJob) -> None:
        """Honour output_format/compression where the provider did not, then price the edit."""
        if len(result.images) > job.request.n:
            # More than asked (and than the budget held): the extra images are neither sent
            # nor billed.
            log.warning(
                "%s answered %d images for n=%d; the extra are dropped",
                job.card.id,
                len(result.images),
                job.request.n,
                extra={"request_id": job.request_id},
            )
            result.images = cap_images(result.images, job.request.n)
        output = job.request.output
        wanted = output.output_format
        converted: dict[int, ResultImage] = {}  # a provider may hand the same image n times
        for index, image in enumerate(result.images):
            if wanted is not None and image.format != wanted:
                if id(image) not in converted:
                    converted[id(image)], result.background = await asyncio.to_thread(
                        _convert, image, job
                    )
                result.images[index] = converted[id(image)]
        tier = price_tier(job)
        result.cost_usd = compute_cost(
            job.card.pricing,
            result.usage,
            output_sizes=[(image.width, image.height) for image in result.images],
            input_images=len(job.request.images),
            tier=tier,
        )


def _apply_mask(result: EditResult, job: EditJob, mask: ImageInput) -> None:
    """Keep the provider's pixels only inside the mask, for a model that takes none."""
    original = job.request.images[0]
    done: dict[int, ResultImage] = {}  # a provider may hand the same image n times
    for index, image in enumerate(result.images):
        if id(image) not in done:
            done[id(image)] = composite_outside_mask(
                image, original, mask, job.request.output.output_format
            )
        result.images[index] = done[id(image)]


def _convert(image: ResultImage, job: EditJob) -> tuple[ResultImage, str]:
    output = job.request.output
    assert output.output_format is not None
    data, width, height, background = convert_bytes(
        image.raw(),
        output.output_format,
        compression=output.output_compression,
        opaque=output.background == "opaque",
    )
    converted = ResultImage(
        output.output_format, width, height, data=data, revised_prompt=image.revised_prompt
    )
    return converted, background
