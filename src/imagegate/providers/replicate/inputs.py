"""How each Replicate model names its inputs, and how a card for another model says so.

Replicate runs every model behind one protocol, but each model has its own ``input`` schema:
flux-kontext-pro takes one ``input_image`` string, nano-banana and seedream-4 an ``image_input``
list; seedream sizes by ``size`` tiers (or ``custom`` pixels), the others by ``aspect_ratio``
alone; only some take a ``seed`` or an ``output_format``. ``MODELS`` holds the models the gateway
ships cards for. A card for any other Replicate model names its inputs in ``provider_options``::

    - id: replicate/google/nano-banana-pro
      provider_options:
        inputs: google/nano-banana     # the inputs of a model in MODELS ...
        tier_key: resolution           # ... with these changed (OVERRIDES)
      extra_fields: [safety_filter_level]

or, for a model like none of them, ``image_key`` (and any other of ``OVERRIDES``) alone. A card's
``extra_fields`` are forwarded as the client sends them; an option ``MODELS`` knows is checked as
it is there. Checked when the catalog loads (``check_entry``), so a bad card stops the server at
start, and again for each request (``inputs_of``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from imagegate.catalog.cards import ModelCard
from imagegate.core.errors import InvalidRequest

MATCH_INPUT = "match_input_image"  # aspect_ratio: the first input's shape
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_KEY = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")

OptionKind = Literal["int", "bool", "enum"]


@dataclass(frozen=True, slots=True)
class Option:
    """A model input OpenAI has no name for (a card's ``extra_fields``), with its type."""

    name: str
    kind: OptionKind
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    maximum_with_images: int | None = None  # a stricter maximum when input images are given


@dataclass(frozen=True, slots=True)
class Inputs:
    """The input keys of one Replicate model."""

    image_key: str  # where the images go
    image_list: bool  # a list of data URIs (else one string: the model takes one image)
    aspect_ratio: bool = True  # takes aspect_ratio, with match_input_image for "auto"
    tier_key: str | None = None  # takes a resolution tier (1K/2K/4K) under this key
    custom_size: tuple[int, int] | None = None  # size=custom with width/height, sides min-max
    seed: bool = False
    output_format: bool = False  # output_format png | jpg
    native_n: bool = False  # n as sequential_image_generation=auto with max_images=n
    max_total_images: int | None = None  # inputs + outputs, at most
    options: tuple[Option, ...] = ()

    def option(self, name: str) -> Option | None:
        return next((option for option in self.options if option.name == name), None)

    def reserved(self) -> frozenset[str]:
        """Input keys the gateway fills itself: never taken from a client's extra fields."""
        keys = {"prompt", self.image_key}
        if self.aspect_ratio:
            keys.add("aspect_ratio")
        if self.tier_key:
            keys.add(self.tier_key)
        if self.custom_size:
            keys |= {"size", "width", "height"}
        if self.seed:
            keys.add("seed")
        if self.output_format:
            keys.add("output_format")
        return frozenset(keys)


KONTEXT_PRO = Inputs(
    image_key="input_image",
    image_list=False,
    seed=True,
    output_format=True,
    options=(
        # 0 (strict) to 6; "2 is currently the maximum allowed when input images are used".
        Option("safety_tolerance", "int", 0, 6, maximum_with_images=2),
        Option("prompt_upsampling", "bool"),
    ),
)
NANO_BANANA = Inputs(image_key="image_input", image_list=True, output_format=True)
SEEDREAM_4 = Inputs(
    image_key="image_input",
    image_list=True,
    tier_key="size",
    custom_size=(1024, 4096),
    native_n=True,
    max_total_images=15,
    options=(
        Option("sequential_image_generation", "enum", choices=("disabled", "auto")),
        Option("max_images", "int", 1, 15),
        Option("enhance_prompt", "bool"),
    ),
)

MODELS: dict[str, Inputs] = {
    "black-forest-labs/flux-kontext-pro": KONTEXT_PRO,
    "google/nano-banana": NANO_BANANA,
    "bytedance/seedream-4": SEEDREAM_4,
}
# Options of any model in MODELS: one sent to a model that does not take it is refused by name.
KNOWN_OPTIONS: frozenset[str] = frozenset(
    option.name for inputs in MODELS.values() for option in inputs.options
)
# What provider_options may change, and the type each takes.
OVERRIDES: dict[str, str] = {
    "image_key": "an input name such as image_input",
    "image_list": "true or false",
    "aspect_ratio": "true or false",
    "tier_key": "an input name such as resolution, or null",
    "seed": "true or false",
    "output_format": "true or false",
}


def read_inputs(upstream: str, options: Mapping[str, Any]) -> Inputs:
    """The inputs of ``upstream`` as a card's ``provider_options`` describe them; ``ValueError``
    saying what is wrong otherwise."""
    if not _MODEL.fullmatch(upstream):
        raise ValueError(f"the Replicate model {upstream!r} is not owner/name")
    unknown = sorted(str(key) for key in options if key != "inputs" and key not in OVERRIDES)
    if unknown:
        raise ValueError(
            f"provider_options has no {', '.join(unknown)}; it takes inputs (a model whose "
            f"inputs this one shares: {', '.join(MODELS)}) and {', '.join(OVERRIDES)}"
        )
    named = options.get("inputs")
    if named is not None:
        if named not in MODELS:
            raise ValueError(
                f"provider_options.inputs names {named!r}; it must be one of {', '.join(MODELS)}"
            )
        base = MODELS[named]
    elif upstream in MODELS:
        base = MODELS[upstream]
    elif "image_key" in options:
        base = Inputs(image_key="image_input", image_list=True)
    else:
        raise ValueError(
            f"this gateway does not know the inputs of {upstream}: set provider_options.inputs "
            f"to a model whose inputs it shares ({', '.join(MODELS)}), or provider_options."
            "image_key (and image_list, aspect_ratio, tier_key, seed, output_format)"
        )
    changes: dict[str, Any] = {}
    for key in ("image_key", "tier_key"):
        if key in options:
            value = options[key]
            if value is None and key == "tier_key":
                changes[key] = None
            elif isinstance(value, str) and _KEY.fullmatch(value):
                changes[key] = value
            else:
                raise ValueError(f"provider_options.{key} must be {OVERRIDES[key]}")
    for key in ("image_list", "aspect_ratio", "seed", "output_format"):
        if key in options:
            if not isinstance(options[key], bool):
                raise ValueError(f"provider_options.{key} must be {OVERRIDES[key]}")
            changes[key] = options[key]
    return replace(base, **changes) if changes else base


def check_entry(upstream: str, options: Mapping[str, Any], extra_fields: list[str]) -> None:
    """A card entry's Replicate inputs, checked when the catalog loads (``ValueError``)."""
    inputs = read_inputs(upstream, options)
    clashes = sorted(set(extra_fields) & inputs.reserved())
    if clashes:
        raise ValueError(
            f"extra_fields may not name {', '.join(clashes)}: the gateway fills those inputs"
        )


def inputs_of(card: ModelCard) -> Inputs:
    """The card's inputs, or a 400 saying why this card cannot be served."""
    try:
        return read_inputs(card.upstream_model, card.provider_options)
    except ValueError as exc:
        raise InvalidRequest(
            f"{card.id} cannot be served: {exc}.", param="model", code="model_not_available"
        ) from None
