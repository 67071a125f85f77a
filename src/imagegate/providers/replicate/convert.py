"""Replicate predictions, the request: an ``EditJob`` into a model's ``input``.

Pure: no I/O here (``adapter.py`` creates, polls, cancels and downloads; ``answers.py`` reads
what comes back)::

    POST {base}/v1/models/{owner}/{name}/predictions      application/json
         Authorization: Bearer <token>     Prefer: wait=N  (hold up to N s for the result)
         {"input": {"prompt", <images as data URIs>, <the model's own keys>}}
    201  {id, status, output, error, urls: {get, cancel, web?}, metrics?: {image_count?}}
         status: starting | processing | succeeded | failed | canceled (| aborted)
    GET  urls.get     as given, never rebuilt from the id, until the status settles
    POST urls.cancel  when the client goes away or the deadline passes

Each model names its inputs its own way (``inputs.py``). What only Replicate knows is refused
here, before any call: OpenAI fields no Replicate model has (``quality``, ``input_fidelity``,
``moderation=low``), a seed for a model without one, the models' options (types, ranges,
flux-kontext's ``safety_tolerance`` at most 2 with an input image, seedream's inputs + outputs at
most 15), and options of other Replicate models. Any other field the client sent is never
forwarded. Sizes: exact pixels where the model takes them (seedream's size=custom), else the
shape as ``aspect_ratio`` (``match_input_image`` for auto) and a tier where the model has one.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
import pybase64

from imagegate.catalog.cards import ModelCard, parse_size
from imagegate.core.errors import InvalidRequest
from imagegate.core.request import EditRequest, SizingRequest
from imagegate.core.units import show_value
from imagegate.providers.base import EditJob
from imagegate.providers.replicate.inputs import (
    KNOWN_OPTIONS,
    MATCH_INPUT,
    Inputs,
    Option,
    inputs_of,
)

PROVIDER = "replicate"
MAX_SEED = 2**32 - 1
TIER_PIXELS = {"1K": 1024 * 1024, "2K": 2048 * 2048, "4K": 4096 * 4096}
_SLOT = "@imagegate-image-" + secrets.token_hex(8) + "-{}@"
_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})


# -- the request ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """One edit as Replicate inputs; the images and the seed are added per call."""

    model: str  # owner/name
    inputs: Inputs
    fields: dict[str, object]  # every input but the prompt, the images and the seed
    seed: int | None
    calls: int  # predictions to create: n, or 1 where the model makes n itself

    @property
    def path(self) -> str:
        return f"/v1/models/{self.model}/predictions"


def plan_edit(job: EditJob) -> Plan:
    """The inputs for ``job``; ``InvalidRequest`` for anything Replicate would refuse."""
    card, req = job.card, job.request
    inputs = inputs_of(card)
    _check_openai_fields(req, card.id, inputs)
    fields = size_fields(job, inputs)
    if inputs.output_format:
        asked = asked_format(req)
        if asked is not None:
            fields["output_format"] = asked
    fields.update(read_options(req.extra, card, inputs, images=len(req.images)))
    calls = req.n
    if inputs.native_n:
        _native_n(fields, req.n, card.id)
        calls = 1
    if inputs.max_total_images is not None:
        outputs = _outputs_asked(fields)
        if len(req.images) + outputs > inputs.max_total_images:
            raise InvalidRequest(
                f"{card.id} takes at most {inputs.max_total_images} images in all, inputs and "
                f"outputs; this request has {len(req.images)} inputs and asks for {outputs}.",
                param="n",
                code="too_many_images",
            )
    return Plan(card.upstream_model, inputs, fields, req.seed, calls)


def seed_for(seed: int, index: int) -> int:
    """``seed``, ``seed + 1`` ... for the predictions of one fanned-out request (so the n images
    differ and each is reproducible), wrapping within 0..2^32-1."""
    return (seed + index) % (MAX_SEED + 1)


def input_chunks(plan: Plan, prompt: str, data_uris: list[bytes], index: int) -> list[bytes]:
    """The JSON body of prediction ``index``: orjson writes everything but the images, whose data
    URIs (made once, shared by every call) are spliced into their slots, never copied here."""
    inputs = plan.inputs
    doc: dict[str, object] = {"prompt": prompt}
    slots = [_SLOT.format(i) for i in range(len(data_uris))]
    doc[inputs.image_key] = slots if inputs.image_list else slots[0]
    doc.update(plan.fields)
    if plan.seed is not None:
        doc["seed"] = seed_for(plan.seed, index)
    head = orjson.dumps({"input": doc})
    chunks: list[bytes] = []
    at = 0
    for slot, uri in zip(slots, data_uris, strict=True):
        found = head.index(slot.encode(), at)
        chunks += [head[at:found], uri]
        at = found + len(slot)
    chunks.append(head[at:])
    return chunks


def data_uri(mime_type: str, data: bytes | memoryview) -> bytes:
    """An image as Replicate takes it inline: ``data:<mime>;base64,...`` (made once per edit)."""
    return b"data:" + mime_type.encode() + b";base64," + pybase64.b64encode(data)


def size_fields(job: EditJob, inputs: Inputs) -> dict[str, object]:
    """The sizing inputs: exact pixels as size=custom where the model takes them, else the
    shape as aspect_ratio (match_input_image for auto or nothing) and a tier where it has one."""
    sizing, card = job.sizing, job.card
    pixels = requested_pixels(job.request.sizing)
    if inputs.custom_size is not None and pixels is not None and sizing.resolution is None:
        low, high = inputs.custom_size
        if all(low <= side <= high for side in pixels):
            return {"size": "custom", "width": pixels[0], "height": pixels[1]}
    fields: dict[str, object] = {}
    ratio = sizing.aspect_ratio
    if inputs.aspect_ratio:
        fields["aspect_ratio"] = MATCH_INPUT if ratio in (None, "auto") else ratio
    elif ratio not in (None, "auto"):
        raise InvalidRequest(
            f"{card.id} takes no aspect ratio; leave aspect_ratio out.",
            param="aspect_ratio",
            code="unsupported_size",
        )
    tier = output_tier(job)
    if tier is not None:
        if inputs.tier_key is None:
            raise InvalidRequest(
                f"{card.id} takes no resolution tier; leave resolution out.",
                param="resolution",
                code="unsupported_size",
            )
        fields[inputs.tier_key] = tier
    return fields


def output_tier(job: EditJob) -> str | None:
    """The tier to ask for: the one the client named, else the one nearest the pixels it sent."""
    if job.sizing.resolution is not None:
        return job.sizing.resolution
    pixels = requested_pixels(job.request.sizing)
    tiers = [tier for tier in job.card.sizing.resolutions if tier in TIER_PIXELS]
    if pixels is None or not tiers:
        return None
    area = pixels[0] * pixels[1]
    return min(tiers, key=lambda t: (abs(math.log(TIER_PIXELS[t] / area)), -TIER_PIXELS[t]))


def requested_pixels(sizing: SizingRequest) -> tuple[int, int] | None:
    if sizing.width is not None and sizing.height is not None:
        return sizing.width, sizing.height
    if sizing.size is not None and sizing.size != "auto":
        return parse_size(sizing.size)
    return None


def asked_format(req: EditRequest) -> str | None:
    """The output_format to ask for: the client's, as Replicate spells it (jpg); PNG when the
    gateway has to convert (webp, or a compression), so it encodes from a lossless original;
    nothing when the client did not say (the model's default)."""
    wanted = req.output.output_format
    if wanted is None:
        return None
    if wanted == "webp" or req.output.output_compression is not None:
        return "png"
    return "jpg" if wanted == "jpeg" else wanted


def read_options(
    extra: Mapping[str, object], card: ModelCard, inputs: Inputs, *, images: int
) -> dict[str, object]:
    """The card's options the client sent, checked; options of other models refused by name;
    anything else left out."""
    out: dict[str, object] = {}
    offered = set(card.extra_fields) - inputs.reserved()
    for name, raw in extra.items():
        if name not in offered:
            if name in KNOWN_OPTIONS:
                takes = ", ".join(sorted(offered)) or "none"
                raise InvalidRequest(
                    f"{name} is an input of other Replicate models; {card.id} does not take it "
                    f"(its options: {takes}).",
                    param=name,
                    code="unsupported_parameter",
                )
            continue  # not this model's: never forwarded
        if raw is None or raw == "":
            continue
        option = inputs.option(name)
        out[name] = _coerce(option, raw, card.id, images) if option else _scalar(name, raw)
    return out


def _coerce(option: Option, raw: object, model: str, images: int) -> object:
    name = option.name
    if option.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = raw.strip().lower() if isinstance(raw, str) else ""
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise InvalidRequest(
            f"{name} must be true or false; got {show_value(raw)}.", param=name, code="invalid_type"
        )
    if option.kind == "enum":
        text = raw.strip().lower() if isinstance(raw, str) else ""
        if text not in option.choices:
            raise InvalidRequest(
                f"{name} must be one of {', '.join(option.choices)}; got {show_value(raw)}.",
                param=name,
                code="invalid_value",
            )
        return text
    value = _integer(raw)
    if value is None:
        raise InvalidRequest(
            f"{name} must be an integer; got {show_value(raw)}.", param=name, code="invalid_type"
        )
    high = option.maximum
    why = ""
    if option.maximum_with_images is not None and images:
        high, why = option.maximum_with_images, " when an input image is given"
    if option.minimum is not None and value < option.minimum:
        raise InvalidRequest(
            f"{name} must be at least {option.minimum} for {model}; got {value}.",
            param=name,
            code="integer_below_min_value",
        )
    if high is not None and value > high:
        raise InvalidRequest(
            f"{name} must be at most {high} for {model}{why}; got {value}.",
            param=name,
            code="integer_above_max_value",
        )
    return value


def _integer(raw: object) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"\s*[+-]?\d{1,12}\s*", raw):
        return int(raw)
    return None


def _scalar(name: str, raw: object) -> object:
    """An option of a user's card the gateway has no type for: forwarded as sent, if a scalar
    (Replicate's own validation checks it)."""
    if isinstance(raw, str | int | float | bool):
        return raw
    raise InvalidRequest(
        f"{name} must be a string, number or boolean.", param=name, code="invalid_type"
    )


def _native_n(fields: dict[str, object], n: int, model: str) -> None:
    """``n`` as the model's own: sequential_image_generation=auto with max_images=n."""
    mode, most = fields.get("sequential_image_generation"), fields.get("max_images")
    if n > 1:
        if mode == "disabled":
            raise InvalidRequest(
                f"n={n} asks {model} for {n} images, which sequential_image_generation="
                "disabled forbids; leave it out.",
                param="sequential_image_generation",
                code="conflicting_parameters",
            )
        if most is not None and most != n:
            raise InvalidRequest(
                f"n={n} contradicts max_images={most}; send one of them.",
                param="max_images",
                code="conflicting_parameters",
            )
        fields["sequential_image_generation"] = "auto"
        fields["max_images"] = n
    elif isinstance(most, int) and most > 1 and mode != "auto":
        raise InvalidRequest(
            f"max_images={most} takes effect only with sequential_image_generation=auto; send "
            "that too, or ask for n images.",
            param="max_images",
            code="conflicting_parameters",
        )


def _outputs_asked(fields: Mapping[str, object]) -> int:
    most = fields.get("max_images")
    if fields.get("sequential_image_generation") == "auto" and isinstance(most, int):
        return most
    return 1


def _check_openai_fields(req: EditRequest, model: str, inputs: Inputs) -> None:
    """OpenAI fields these models have no equivalent for: a 400, never silently dropped."""
    if req.output.quality not in (None, "auto"):
        raise InvalidRequest(
            f"{model} has no quality setting; leave quality out (or send auto).",
            param="quality",
            code="unsupported_value",
        )
    if req.input_fidelity is not None:
        raise InvalidRequest(
            f"{model} has no input_fidelity setting; leave it out.",
            param="input_fidelity",
            code="unsupported_parameter",
        )
    if req.moderation == "low":
        hint = (
            " (its safety_tolerance option is the closest)"
            if inputs.option("safety_tolerance")
            else ""
        )
        raise InvalidRequest(
            f"{model} has no moderation setting{hint}; Replicate's own checks always apply.",
            param="moderation",
            code="unsupported_value",
        )
    if req.seed is not None and not inputs.seed:
        raise InvalidRequest(
            f"{model} takes no seed; send the edit without one.",
            param="seed",
            code="unsupported_parameter",
        )
