"""``GET /v1/models`` and ``GET /v1/models/{id}``: what each model can do, and its price."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from imagegate.accounts.access import allowed
from imagegate.api.deps import Authorized, ServiceDep, calling_key
from imagegate.api.errors import JsonBytes
from imagegate.api.openapi import MODEL_RESPONSES, MODELS_RESPONSES
from imagegate.catalog.cards import ModelCard
from imagegate.catalog.sizing import describe_sizing
from imagegate.routing.plan import Route
from imagegate.service import EditService

router = APIRouter()


def describe_card(card: ModelCard, service: EditService, created: int) -> dict[str, Any]:
    sizing = _compact(card.sizing.model_dump(exclude_none=True, mode="json"))
    sizing["description"] = describe_sizing(card)
    return {
        "id": card.id,
        "object": "model",
        "created": created,
        "owned_by": card.provider,
        "provider": card.provider,
        "upstream_model": card.upstream_model,
        "extra_fields": list(card.extra_fields),
        "description": card.description,
        "aliases": service.catalog.aliases_of(card.id),
        "generate_only": card.generate_only,
        "edit": card.edit.model_dump(mode="json"),
        "sizing": sizing,
        "n": card.n.model_dump(mode="json"),
        "output_formats": list(card.output_formats),
        "transparent_background": card.transparent_background,
        "partial_images": card.partial_images,
        "max_prompt_chars": card.max_prompt_chars,
        "pricing": _compact(card.pricing.model_dump(exclude_none=True, mode="json")),
    }


def describe_route(route: Route, service: EditService, created: int) -> dict[str, Any]:
    """A route as a model: its first target's capabilities (each request is checked against
    every target's own card, so one the first cannot honour may still go to another), and
    what it routes to."""
    first = service.card(route.targets[0][0])
    described = describe_card(first, service, created)
    targets = ", ".join(card for card, _ in route.targets)
    described.update(
        id=route.name,
        owned_by="imagegate",
        aliases=[],
        description=f"A route over {targets} ({route.strategy.replace('_', ' ')}); its "
        f"capabilities are {first.id}'s.",
        route={
            "strategy": route.strategy,
            "targets": [{"model": card, "weight": weight} for card, weight in route.targets],
            "fallbacks": list(route.fallbacks),
        },
    )
    return described


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    """Drop empty lists and mappings: a card says what a model takes, not what it doesn't."""
    return {key: value for key, value in values.items() if value not in ([], {})}


@router.get(
    "/v1/models", dependencies=[Authorized], response_class=JsonBytes, responses=MODELS_RESPONSES
)
async def list_models(request: Request, service: ServiceDep) -> Response:
    created: int = request.app.state.started_at
    key = calling_key(request)
    cards = service.listed_cards()
    routes = list(service.router.plan.routes.values())
    if key is not None and not key.master:  # a virtual key sees the models it may use
        aliases = service.catalog.aliases_of
        cards = [card for card in cards if allowed(key.models, card.id, *aliases(card.id))]
        routes = [route for route in routes if allowed(key.models, route.name)]
    data = [describe_card(card, service, created) for card in cards]
    data += [describe_route(route, service, created) for route in routes]
    return JsonBytes(orjson.dumps({"object": "list", "data": data}))


@router.get(
    "/v1/models/{model_id:path}",
    dependencies=[Authorized],
    response_class=JsonBytes,
    responses=MODEL_RESPONSES,
)
async def get_model(model_id: str, request: Request, service: ServiceDep) -> Response:
    created = request.app.state.started_at
    route = service.router.route(model_id)
    if route is not None:
        return JsonBytes(orjson.dumps(describe_route(route, service, created)))
    card = service.card(model_id)
    return JsonBytes(orjson.dumps(describe_card(card, service, created)))
