"""Checking a request against a model's card, before any work is done."""

from __future__ import annotations

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.sizing import ResolvedSizing, resolve_sizing
from imagegate.core.errors import InvalidRequest
from imagegate.core.request import EditRequest


def check_editable(card: ModelCard) -> None:
    if card.generate_only:
        raise InvalidRequest(
            f"{card.id} generates images but cannot edit them; choose a model whose "
            "edit.supported is true (GET /v1/models).",
            param="model",
            code="model_not_editable",
        )


def check_image_count(card: ModelCard, count: int) -> None:
    limit = card.edit.max_reference_images
    if count > limit:
        raise InvalidRequest(
            f"{card.id} takes at most {limit} reference image{'s' if limit != 1 else ''}; "
            f"this request has {count}.",
            param="image",
            code="too_many_images",
        )


def validate_request(req: EditRequest, card: ModelCard) -> ResolvedSizing:
    """Refuse what the model cannot do; return the sizing in the model's own style."""
    check_editable(card)
    check_image_count(card, len(req.images))
    if req.mask is not None and not card.edit.mask:
        if not card.edit.mask_emulation:
            raise InvalidRequest(
                f"{card.id} does not take a mask; send the edit without one (or enable "
                "edit.mask_emulation on its card to have the gateway apply it).",
                param="mask",
                code="mask_not_supported",
            )
        if any(value != "auto" for value in req.sizing.given().values()):
            raise InvalidRequest(
                f"{card.id} takes no mask, so the gateway applies it to the result at the "
                "input's size; send the masked edit without a size.",
                param="size",
                code="conflicting_parameters",
            )
    if not card.n.min <= req.n <= card.n.max:
        raise InvalidRequest(
            f"{card.id} makes {card.n.min}-{card.n.max} images per request; n={req.n}.",
            param="n",
            code="integer_above_max_value" if req.n > card.n.max else "integer_below_min_value",
        )
    if len(req.prompt) > card.max_prompt_chars:
        raise InvalidRequest(
            f"The prompt is {len(req.prompt):,} characters; {card.id} takes at most "
            f"{card.max_prompt_chars:,}.",
            param="prompt",
            code="string_above_max_length",
        )
    output = req.output
    if output.background == "transparent":
        if not card.transparent_background:
            raise InvalidRequest(
                f"{card.id} cannot make a transparent background.",
                param="background",
                code="unsupported_value",
            )
        if output.output_format == "jpeg":
            raise InvalidRequest(
                "background=transparent needs output_format png or webp; JPEG has no alpha.",
                param="background",
                code="conflicting_parameters",
            )
    if output.output_compression is not None and output.output_format not in ("jpeg", "webp"):
        raise InvalidRequest(
            "output_compression applies to output_format jpeg or webp; set one of them.",
            param="output_compression",
            code="conflicting_parameters",
        )
    return resolve_sizing(req.sizing, card)
