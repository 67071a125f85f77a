from __future__ import annotations

import pytest

from imagegate.catalog.catalog import Catalog, CatalogError, load_shipped_entries
from imagegate.catalog.validate import validate_request
from imagegate.core.errors import InvalidRequest, NotFound
from imagegate.core.request import EditRequest, OutputOptions
from imagegate.providers.local.card import LOCAL_CARDS
from tests import imaging
from tests.support.requests import edit_request, image_input

EDITOR = {
    "id": "acme/editor",
    "aliases": ["ed"],
    "edit": {"max_reference_images": 2, "mask": True},
    "sizing": {"style": "openai_size", "sizes": ["1024x1024"]},
    "n": {"max": 4},
    "max_prompt_chars": 100,
}


def test_shipped_catalog_loads_with_the_local_card() -> None:
    catalog = Catalog.build(shipped=[*LOCAL_CARDS, *load_shipped_entries()])
    pillow = catalog.resolve("local/pillow")
    assert pillow.provider == "local" and pillow.upstream_model == "pillow"
    assert catalog.resolve("pillow") is pillow
    assert pillow.edit.max_reference_images == 16 and pillow.pricing.is_free


def test_user_config_overrides_merge_and_adds_cards_and_aliases() -> None:
    catalog = Catalog.build(
        [{"id": "local/pillow", "edit": {"max_reference_images": 3}, "n": {"max": 2}}, {**EDITOR}],
        {"house": "acme/editor"},
        shipped=LOCAL_CARDS,
    )
    pillow = catalog.resolve("local/pillow")
    assert pillow.edit.max_reference_images == 3
    assert pillow.edit.mask is True  # the rest of the nested mapping is kept
    assert pillow.n.max == 2 and pillow.n.min == 1
    assert catalog.resolve("house").id == "acme/editor"
    assert catalog.resolve("ed").id == "acme/editor"
    assert catalog.aliases_of("acme/editor") == ["ed", "house"]


def test_provider_is_the_first_path_segment() -> None:
    card = Catalog.build([{**EDITOR, "id": "fal/fal-ai/flux-pro/kontext"}], shipped=[]).resolve(
        "fal/fal-ai/flux-pro/kontext"
    )
    assert card.provider == "fal" and card.upstream_model == "fal-ai/flux-pro/kontext"


@pytest.mark.parametrize(
    ("models", "aliases", "needle"),
    [
        ([{"id": "acme/x", "sizing": {"style": "openai_size"}}], {}, "needs sizes"),
        ([{"id": "acme/x", "sizing": {"style": "warp"}}], {}, "sizing.style"),
        ([{"id": "nope", "sizing": {"style": "pixels", "custom": {}}}], {}, "id"),
        ([{"sizing": {"style": "pixels"}}], {}, "needs an id"),
        ([{**EDITOR, "colour": "red"}], {}, "colour"),
        ([EDITOR], {"ed": "local/pillow"}, "points at both"),
        ([EDITOR], {"x": "acme/missing"}, "not in the catalog"),
        ([EDITOR], {"acme/editor": "local/pillow"}, "already a model id"),
    ],
)
def test_bad_config_fails_at_load_naming_the_card(models, aliases, needle: str) -> None:
    with pytest.raises(CatalogError) as caught:
        Catalog.build(models, aliases, shipped=LOCAL_CARDS)
    assert needle in str(caught.value)


def test_unknown_model_is_404() -> None:
    with pytest.raises(NotFound) as caught:
        Catalog.build(shipped=LOCAL_CARDS).resolve("acme/unknown")
    assert caught.value.code == "model_not_found" and caught.value.param == "model"


def _req(images: int = 1, **kwargs) -> EditRequest:
    return edit_request("acme/editor", images=images, **kwargs)


@pytest.mark.parametrize(
    ("request_kwargs", "param", "needle"),
    [
        ({"images": 3}, "image", "at most 2 reference images"),
        ({"n": 5}, "n", "1-4 images"),
        ({"prompt": "x" * 101}, "prompt", "at most 100"),
        ({"output": OutputOptions(background="transparent")}, "background", "transparent"),
        ({"output": OutputOptions(output_compression=50)}, "output_compression", "jpeg or webp"),
    ],
)
def test_validation_against_the_card(request_kwargs, param: str, needle: str) -> None:
    card = Catalog.build([EDITOR], shipped=[]).resolve("acme/editor")
    with pytest.raises(InvalidRequest) as caught:
        validate_request(_req(**request_kwargs), card)
    assert caught.value.param == param and needle in caught.value.message


def test_transparent_jpeg_is_a_contradiction() -> None:
    card = Catalog.build([{**EDITOR, "transparent_background": True}], shipped=[]).resolve(
        "acme/editor"
    )
    with pytest.raises(InvalidRequest) as caught:
        validate_request(
            _req(output=OutputOptions(background="transparent", output_format="jpeg")), card
        )
    assert caught.value.code == "conflicting_parameters"


def test_generate_only_and_mask_refusals() -> None:
    catalog = Catalog.build(
        [
            {**EDITOR, "id": "acme/painter", "aliases": [], "edit": {"supported": False}},
            {**EDITOR, "id": "acme/nomask", "aliases": [], "edit": {"max_reference_images": 1}},
        ],
        shipped=[],
    )
    with pytest.raises(InvalidRequest) as caught:
        validate_request(_req(), catalog.resolve("acme/painter"))
    assert caught.value.code == "model_not_editable"
    mask = image_input(imaging.mask_left_half(), "mask")
    with pytest.raises(InvalidRequest) as caught:
        validate_request(_req(mask=mask), catalog.resolve("acme/nomask"))
    assert caught.value.code == "mask_not_supported"
