"""Stability AI v2beta Stable Image Edit, both ways: an ``EditJob`` into one endpoint's form
fields and files, and Stability's answer (raw image bytes, or its JSON) into a result image.

Pure: no I/O here (``adapter.py`` sends). Every card is one endpoint, named by the card's
``upstream_model``::

    POST {base}/v2beta/stable-image/edit/{endpoint}      multipart/form-data
         Authorization: Bearer <key>    Accept: image/*  (raw bytes back, no base64 round trip)
         image (file), mask (file, inpaint/erase), prompt, <the endpoint's options>,
         seed, output_format
    200  the image; headers finish-reason (SUCCESS | CONTENT_FILTERED) and seed

What only Stability knows is refused here, before any call: its image limits (sides >= 64 px,
4,096 to 9,437,184 pixels, 1:2.5 to 2.5:1 for outpaint and search-*), its option types and
ranges, required options (``search_prompt``), sizes it cannot make (edits keep the input's size;
outpaint grows it by its margins, so a larger ``size`` becomes centred margins), and OpenAI
fields it has no equivalent for. Options of other Stability endpoints are refused by name; any
other field the client sent is never forwarded (each endpoint's options: ``endpoints.py``).

Masks: OpenAI marks the area to edit with fully transparent pixels; Stability with white
(strength by lightness, from a grayscale image). ``stability_mask`` turns one into the other.
"""

from __future__ import annotations

import binascii
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO

import orjson
import pybase64
from PIL import Image

from imagegate.core.errors import ContentPolicyViolation, GatewayError, InvalidRequest
from imagegate.core.images import ImageFormat, probe
from imagegate.core.request import EditRequest, ImageInput
from imagegate.core.result import ResultImage
from imagegate.providers.base import EditJob
from imagegate.providers.malformed import Malformed as Malformed
from imagegate.providers.stability.endpoints import (
    ENDPOINTS,
    MAX_MARGIN,
    MAX_RATIO,
    MAX_SEED,
    MIN_PIXELS,
    MIN_SIDE,
    Endpoint,
    read_options,
)
from imagegate.providers.upstream import ProviderFailure, json_message

EDIT_PATH = "/v2beta/stable-image/edit/"
CONTENT_FILTERED = "CONTENT_FILTERED"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_FIELD_ERROR = re.compile(r"^([a-z_]+)\s*:")


@dataclass(frozen=True, slots=True)
class Plan:
    """One edit, as the form Stability takes (the seed is added per call: ``form_fields``)."""

    endpoint: Endpoint
    image: ImageInput
    mask: ImageInput | None  # the client's (OpenAI-style) mask, converted when sent
    fields: tuple[tuple[str, str], ...]
    seed: int | None
    output_format: ImageFormat  # what Stability is asked for

    @property
    def path(self) -> str:
        return EDIT_PATH + self.endpoint.name


# -- the request ---------------------------------------------------------------------------------


def plan_edit(job: EditJob) -> Plan:
    """The form for ``job``; ``InvalidRequest`` for anything Stability would refuse or do wrong."""
    card, req = job.card, job.request
    endpoint = ENDPOINTS.get(card.upstream_model)
    if endpoint is None:
        raise InvalidRequest(
            f"{card.id} names the Stability endpoint {card.upstream_model!r}, which this gateway "
            f"does not know; it knows {', '.join(ENDPOINTS)}.",
            param="model",
            code="model_not_available",
        )
    image = req.images[0]
    _check_openai_fields(req, card.id, endpoint)
    _check_image(image, card.id, endpoint)
    options = read_options(req.extra, card.id, endpoint, card.extra_fields)
    if endpoint.grows:
        _outpaint_margins(options, job, image)
    elif job.sizing.pixels is not None and job.sizing.pixels != (image.width, image.height):
        width, height = job.sizing.pixels
        raise InvalidRequest(
            f"{card.id} keeps the input's size ({image.width}x{image.height}); it cannot make "
            f"{width}x{height}. Leave size out (or send auto).",
            param="size",
            code="unsupported_size",
        )
    if req.mask is not None and not endpoint.mask:
        raise InvalidRequest(
            f"{card.id} does not take a mask.", param="mask", code="mask_not_supported"
        )
    if endpoint.needs_area and req.mask is None and not image.info.has_alpha:
        raise InvalidRequest(
            f"{card.id} needs the area to edit: send a mask (a PNG whose fully transparent "
            "pixels mark it), or an image whose transparent pixels mark it.",
            param="mask",
            code="missing_required_parameter",
        )
    if req.seed is not None and req.seed > MAX_SEED:
        raise InvalidRequest(
            f"seed must be at most {MAX_SEED} for {card.id}; got {req.seed}.",
            param="seed",
            code="integer_above_max_value",
        )
    fields: list[tuple[str, str]] = []
    if endpoint.prompt != "unused":
        fields.append(("prompt", req.prompt))
    fields += [
        (option.name, options[option.name]) for option in endpoint.options if option.name in options
    ]
    return Plan(
        endpoint=endpoint,
        image=image,
        mask=req.mask,
        fields=tuple(fields),
        seed=req.seed,
        output_format=_asked_format(req, endpoint),
    )


def form_fields(plan: Plan, index: int = 0) -> dict[str, str]:
    """The text fields of call ``index`` of ``n``: each call of a fan-out gets its own seed."""
    fields = dict(plan.fields)
    if plan.seed is not None:
        fields["seed"] = str(seed_for(plan.seed, index))
    fields["output_format"] = plan.output_format
    return fields


def seed_for(seed: int, index: int) -> int:
    """``seed``, ``seed + 1`` ... for the calls of one request, within 1..MAX_SEED; 0 stays 0
    (Stability's "random seed", so n images differ)."""
    if seed == 0:
        return 0
    return (seed - 1 + index) % MAX_SEED + 1


def _asked_format(req: EditRequest, endpoint: Endpoint) -> ImageFormat:
    """PNG when the gateway has to convert (compression, or a format the endpoint lacks); the
    service then encodes what the client asked for from the lossless original."""
    wanted = req.output.output_format
    if wanted is None or req.output.output_compression is not None:
        return "png"
    return wanted if wanted in endpoint.output_formats else "png"


def _check_openai_fields(req: EditRequest, model: str, endpoint: Endpoint) -> None:
    """OpenAI fields Stability has no equivalent for: a 400, never silently dropped."""
    output = req.output
    if output.quality not in (None, "auto"):
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
        raise InvalidRequest(
            f"{model} has no moderation setting; Stability's own filter always applies.",
            param="moderation",
            code="unsupported_value",
        )
    if endpoint.name == "remove-background" and output.background == "opaque":
        raise InvalidRequest(
            f"{model} makes the background transparent; background=opaque contradicts it.",
            param="background",
            code="conflicting_parameters",
        )


def _check_image(image: ImageInput, model: str, endpoint: Endpoint) -> None:
    width, height = image.width, image.height
    problem = None
    if min(width, height) < MIN_SIDE:
        problem = f"every side must be at least {MIN_SIDE} pixels"
    elif not MIN_PIXELS <= width * height <= endpoint.max_pixels:
        problem = f"it must have {MIN_PIXELS:,} to {endpoint.max_pixels:,} pixels"
    elif endpoint.limit_ratio and not 1 / MAX_RATIO <= width / height <= MAX_RATIO:
        problem = "its aspect ratio must be between 1:2.5 and 2.5:1"
    if problem is not None:
        raise InvalidRequest(
            f"{model} cannot take this {width}x{height} image: {problem}.",
            param=image.param,
            code="unsupported_image_size",
        )


def _outpaint_margins(options: dict[str, str], job: EditJob, image: ImageInput) -> None:
    """Outpaint grows the image by its margins; a ``size`` larger than the input becomes the
    centred margins that reach it exactly (or must agree with the margins sent)."""
    model = job.card.id
    sides = ("left", "right", "up", "down")
    given = {side: int(options[side]) for side in sides if side in options}
    target = job.sizing.pixels
    if target is not None and target != (image.width, image.height):
        width, height = target
        grow_x, grow_y = width - image.width, height - image.height
        if grow_x < 0 or grow_y < 0:
            raise InvalidRequest(
                f"{model} only grows the image ({image.width}x{image.height}); it cannot make "
                f"the smaller {width}x{height}.",
                param="size",
                code="unsupported_size",
            )
        if given:
            across = given.get("left", 0) + given.get("right", 0)
            down = given.get("up", 0) + given.get("down", 0)
            if (across, down) != (grow_x, grow_y):
                raise InvalidRequest(
                    f"size={width}x{height} contradicts the margins, which make "
                    f"{image.width + across}x{image.height + down}; send one of them.",
                    param="size",
                    code="conflicting_parameters",
                )
        else:
            given = {
                "left": grow_x // 2,
                "right": grow_x - grow_x // 2,
                "up": grow_y // 2,
                "down": grow_y - grow_y // 2,
            }
            for side, value in given.items():
                if value > MAX_MARGIN:
                    raise InvalidRequest(
                        f"size={width}x{height} needs {value} pixels on the {side}; {model} "
                        f"adds at most {MAX_MARGIN} per side.",
                        param="size",
                        code="unsupported_size",
                    )
    for side in sides:
        options.pop(side, None)
        if given.get(side, 0) > 0:
            options[side] = str(given[side])
    if not any(side in options for side in sides):
        raise InvalidRequest(
            f"{model} needs at least one margin to grow: left, right, up or down (pixels, up "
            f"to {MAX_MARGIN}), or a size larger than the input.",
            param="left",
            code="missing_required_parameter",
        )


# -- the mask ------------------------------------------------------------------------------------

_EDIT_WHERE_TRANSPARENT = [255] + [0] * 255  # alpha 0 -> white (edit), anything else -> black


def stability_mask(mask: BinaryIO) -> bytes:
    """OpenAI's mask (alpha 0 = edit) as Stability's: a grayscale PNG, white = edit."""
    with Image.open(mask) as opened:
        alpha = opened.convert("RGBA").getchannel("A")
    grey = alpha.point(_EDIT_WHERE_TRANSPARENT)
    out = io.BytesIO()
    grey.save(out, format="PNG")
    return out.getvalue()


# -- the answer ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    image: ResultImage
    transparent: bool
    seed: int | None


def read_answer(headers: Mapping[str, str], body: bytes) -> Answer:
    """Stability's 200: raw image bytes (``Accept: image/*``) or its JSON; a filtered result is
    a content-policy refusal, not an image."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    seed_text: object = headers.get("seed")
    if content_type == "application/json":
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Malformed("a JSON body that does not parse (cut short?)") from None
        if not isinstance(doc, dict):
            raise Malformed("JSON that is not an object")
        finish = doc.get("finish_reason")
        seed_text = doc.get("seed")
        _check_finish(finish)
        b64 = doc.get("image")
        if not isinstance(b64, str) or not b64:
            raise Malformed("no image")
        try:
            data = pybase64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise Malformed("an image that is not base64") from None
    elif content_type.startswith("image/"):
        _check_finish(headers.get("finish-reason"))
        data = body
    else:
        raise Malformed(f"a {content_type or 'typeless'} body instead of an image")
    if not data:
        raise Malformed("no image (an empty body)")
    try:
        info = probe(data, param="result")
    except GatewayError:
        raise Malformed("a body that is not a PNG, JPEG or WEBP image") from None
    if not is_complete(data, info.format):
        raise Malformed("an image cut short")
    image = ResultImage(info.format, info.width, info.height, data=data)
    return Answer(image, transparent=info.has_alpha, seed=_int_or_none(seed_text))


def _check_finish(finish: object) -> None:
    if finish == CONTENT_FILTERED:
        raise ContentPolicyViolation(
            "stability's content filter flagged the result (finish-reason CONTENT_FILTERED); "
            "the blurred image it made is not returned.",
            origin="provider",
        )
    if finish not in (None, "SUCCESS"):
        raise Malformed(f"finish-reason {str(finish)[:40]!r}")


def _int_or_none(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def is_complete(data: bytes, fmt: ImageFormat) -> bool:
    """Whether the image's bytes run to their format's end marker (no pixel is decoded)."""
    if fmt == "png":
        return data.endswith(_PNG_END)
    if fmt == "jpeg":
        return data.rstrip(b"\x00\r\n")[-2:] == b"\xff\xd9"
    declared = int.from_bytes(data[4:8], "little") + 8
    return len(data) >= declared


def read_error(status: int, body: bytes) -> ProviderFailure:
    """Stability's error ``{id, name, errors[]}``: moderation is a 403 ``content_moderation``
    (not a credential problem); out of credits (402) is the operator's, not the client's."""
    doc, text = json_message(body)
    name: str | None = None
    message = text
    if doc is not None:
        raw_name = doc.get("name")
        name = raw_name if isinstance(raw_name, str) else None
        errors = doc.get("errors")
        parts = [str(e) for e in errors if e] if isinstance(errors, list) else []
        if not parts and isinstance(doc.get("message"), str):
            parts = [doc["message"]]
        message = "; ".join(parts) or name or ""
    message = message or f"HTTP {status}"
    param = None
    match = _FIELD_ERROR.match(message)
    if match and status in (400, 413, 422):
        param = match.group(1)
    if name == "content_moderation":
        return ProviderFailure(message, code=name, kind="moderation")
    if status == 402:
        return ProviderFailure(f"out of credits: {message}", code=name, kind="server")
    return ProviderFailure(message, code=name, param=param)
