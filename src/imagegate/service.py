"""The edit service: catalog -> validation -> routing -> provider -> finished result.

It knows nothing of HTTP. The API layer hands it a parsed ``EditRequest`` and renders what it
returns. ``run`` calls the dispatch hooks (``hooks.py``) around every edit, on the JSON and the
streaming path alike: keys, limits and budget holds attach before, usage records after.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.catalog import Catalog
from imagegate.catalog.validate import check_editable, check_image_count, validate_request
from imagegate.core.ceiling import cap_images, price_tier
from imagegate.core.convert import convert_bytes
from imagegate.core.errors import GatewayError, NotFound
from imagegate.core.masking import composite_outside_mask
from imagegate.core.pricing import compute_cost
from imagegate.core.request import EditRequest, ImageInput
from imagegate.core.result import EditResult, ResultImage
from imagegate.hooks import DispatchHook, RequestContext
from imagegate.providers.base import Deployment, EditJob, EventSink, Provider, ProviderRegistry
from imagegate.routing.dispatch import Dispatcher, RetryPolicy
from imagegate.routing.plan import Route
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
        retry: RetryPolicy | None = None,
    ) -> None:
        self.catalog = catalog
        self.providers = providers
        self.router = router
        self.hooks = tuple(hooks)
        self.timeout_seconds = timeout_seconds
        # Without a policy (tests that build a service by hand) an edit is tried once.
        self.dispatcher = Dispatcher(
            router, retry or RetryPolicy(retries=0), timeout_seconds=timeout_seconds
        )

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
    def route_cards(self, route: Route) -> list[ModelCard]:
        return [self.card(card_id) for card_id, _ in route.targets]

    def precheck(self, fields: Fields, image_count: int) -> None:
        """Refuse early, before image bytes are decoded or URLs fetched."""
        route = self.router.route(fields.model)
        cards = self.route_cards(route) if route is not None else [self.card(fields.model)]
        first: GatewayError | None = None
        for card in cards:  # a route passes if one of its targets can take it
            try:
                check_editable(card)
                check_image_count(card, image_count)
                return
            except GatewayError as exc:
                first = first or exc
        assert first is not None
        raise first

    def prepare(self, request: EditRequest, request_id: str = "") -> EditJob:
        """The job for the model the client named, with every other model that may serve it
        (a route's other targets, then fallbacks), each checked against its own card; those
        that cannot honour the request are left out and named in ``unfit``."""
        route = self.router.route(request.model)
        if route is None:
            job = self._prepare_one(request, request_id)
            others: list[EditJob] = []
            unfit: list[str] = []
            fallback_ids = self.router.fallbacks_of(job.card.id)
        else:
            targets, unfit, first = self._fit(
                [card for card, _ in route.targets], request, request_id
            )
            if not targets:
                assert first is not None
                raise first  # what the first target said is wrong with the request
            job, others = targets[0], targets[1:]
            fallback_ids = route.fallbacks
        fallbacks, unfit_fallbacks, _ = self._fit(list(fallback_ids), request, request_id)
        return replace(
            job,
            fallbacks=tuple(others + fallbacks),
            route=route.name if route is not None else None,
            unfit=tuple(unfit + unfit_fallbacks),
        )

    def _fit(
        self, card_ids: list[str], request: EditRequest, request_id: str
    ) -> tuple[list[EditJob], list[str], GatewayError | None]:
        jobs: list[EditJob] = []
        unfit: list[str] = []
        first: GatewayError | None = None
        for card_id in card_ids:
            try:
                jobs.append(self._prepare_one(replace(request, model=card_id), request_id))
            except GatewayError as exc:
                first = first or exc
                unfit.append(f"{card_id}: {exc.message[:160]}")
        return jobs, unfit, first

    def _prepare_one(self, request: EditRequest, request_id: str) -> EditJob:
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
            result, served = await self._dispatch(job, events, ctx)
            if served.emulated_mask is not None:
                await asyncio.to_thread(_apply_mask, result, served, served.emulated_mask)
            await self._finish(result, served)
            outcome = result
            return result
        except GatewayError as exc:
            outcome = exc
            raise
        finally:
            await self._record(ctx, job, outcome)

    async def _dispatch(
        self, job: EditJob, events: EventSink, ctx: RequestContext
    ) -> tuple[EditResult, EditJob]:
        return await self.dispatcher.run(job, events, ctx, self._attempt)

    async def _attempt(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        return await self._provider(job.card).edit(job, deployment, events)

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
