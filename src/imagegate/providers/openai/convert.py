"""Pure converters between imagegate and OpenAI's Images API (``POST /images/edits``).

Nothing here touches the network: ``adapter.py`` sends what these build and hands back what
OpenAI answered. Azure OpenAI takes the same form and answers the same way, so its adapter uses
these too. Streams are read in ``events.py``, error bodies in ``errors.py``.

What only OpenAI knows about its models lives in ``RULES`` (keyed by the upstream model, so an
Azure deployment of gpt-image-1-mini follows mini's rules):

- dall-e-2 ("legacy") takes one square PNG under 4 MB, no GPT-only field, and is asked for
  ``response_format=b64_json`` (it answers with URLs by default);
- GPT image models never get ``response_format`` (OpenAI refuses it; the gateway honours it
  itself), and take ``quality`` low/medium/high/auto;
- ``input_fidelity``: gpt-image-1 and 1.5 take high and low; gpt-image-1-mini works at low
  fidelity only and gpt-image-2 at high only, so there the value the model applies anyway is
  dropped (the API says to omit it) and the other is refused before any call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from imagegate.core.errors import InvalidRequest
from imagegate.core.images import EXTENSIONS
from imagegate.core.lift import loads_lifting
from imagegate.core.request import EditRequest, ImageInput
from imagegate.core.result import Usage
from imagegate.providers.base import EditJob
from imagegate.providers.malformed import Malformed as Malformed

MB = 1024 * 1024
MAX_GPT_IMAGE_BYTES = 50 * MB  # each input image of a GPT image model
MAX_LEGACY_BYTES = 4 * MB  # dall-e-2's image, and every mask
GPT_QUALITIES = frozenset({"low", "medium", "high", "auto"})


@dataclass(frozen=True, slots=True)
class ModelRules:
    """What one OpenAI model takes beyond its card."""

    legacy: bool = False  # dall-e-2: PNG only, URLs by default, no GPT-only fields
    qualities: frozenset[str] | None = GPT_QUALITIES  # None: any value is forwarded
    fidelity: frozenset[str] | None = frozenset({"high", "low"})  # values it takes
    fidelity_implied: str | None = None  # the fidelity it always works at (dropped if sent)


RULES: dict[str, ModelRules] = {
    "gpt-image-1": ModelRules(),
    "gpt-image-1.5": ModelRules(),
    "gpt-image-1-mini": ModelRules(fidelity=frozenset(), fidelity_implied="low"),
    "gpt-image-2": ModelRules(fidelity=frozenset(), fidelity_implied="high"),
    "dall-e-2": ModelRules(legacy=True, qualities=frozenset({"standard"}), fidelity=frozenset()),
}
# A GPT image model this table does not know (a user's card for a newer one): forward as sent.
_UNKNOWN_GPT_IMAGE = ModelRules(qualities=None, fidelity=None)


def rules_for(model: str) -> ModelRules:
    return RULES.get(model, _UNKNOWN_GPT_IMAGE)


def is_gpt_image(model: str) -> bool:
    return not rules_for(model).legacy


# -- before any call --------------------------------------------------------------------------


def check(job: EditJob) -> None:
    """Refuse, with a 400 naming the field, what OpenAI would refuse for this model."""
    request, card = job.request, job.card
    model = card.upstream_model
    rules = rules_for(model)
    if rules.legacy:
        _check_legacy(request, card.id)
    else:
        for image in request.images:
            if image.nbytes >= MAX_GPT_IMAGE_BYTES:
                raise InvalidRequest(
                    f"{image.param} is {image.nbytes:,} bytes; {card.id} takes images under "
                    f"{MAX_GPT_IMAGE_BYTES // MB} MB.",
                    param=image.param,
                    code="image_too_large",
                )
    if request.mask is not None:
        _check_mask(request.mask, request.images[0], card.id)
    quality = request.output.quality
    if quality is not None and rules.qualities is not None:
        allowed = rules.qualities | ({"auto"} if rules.legacy else set())
        if quality not in allowed:
            raise InvalidRequest(
                f"{card.id} takes quality {', '.join(sorted(allowed))}; got {quality!r}.",
                param="quality",
                code="unsupported_value",
            )
    fidelity = request.input_fidelity
    if (
        fidelity is not None
        and rules.fidelity is not None
        and fidelity not in rules.fidelity
        and fidelity != rules.fidelity_implied
    ):
        if rules.fidelity_implied is not None:
            why = f"it always works at input_fidelity={rules.fidelity_implied}"
        else:
            why = "it does not take input_fidelity"
        raise InvalidRequest(
            f"{card.id} cannot honour input_fidelity={fidelity}: {why}.",
            param="input_fidelity",
            code="unsupported_value",
        )
    if rules.legacy and request.moderation not in (None, "auto"):
        raise InvalidRequest(
            f"{card.id} does not take moderation={request.moderation}; only GPT image models do.",
            param="moderation",
            code="unsupported_value",
        )


def _check_legacy(request: EditRequest, card_id: str) -> None:
    for image in request.images:
        if image.format != "png":
            raise InvalidRequest(
                f"{card_id} edits PNG images only; {image.param} is {image.format.upper()}.",
                param=image.param,
                code="invalid_image_format",
            )
        if image.width != image.height:
            raise InvalidRequest(
                f"{card_id} edits square images only; {image.param} is "
                f"{image.width}x{image.height}.",
                param=image.param,
                code="invalid_image_dimensions",
            )
        if image.nbytes >= MAX_LEGACY_BYTES:
            raise InvalidRequest(
                f"{image.param} is {image.nbytes:,} bytes; {card_id} takes a PNG under 4 MB.",
                param=image.param,
                code="image_too_large",
            )


def _check_mask(mask: ImageInput, first: ImageInput, card_id: str) -> None:
    if mask.format != "png" or not mask.info.has_alpha:
        raise InvalidRequest(
            f"The mask must be a PNG with an alpha channel (its fully transparent pixels mark "
            f"where to edit); this one is a {mask.format.upper()}"
            f"{'' if mask.info.has_alpha else ' without alpha'}.",
            param="mask",
            code="invalid_mask",
        )
    if (mask.width, mask.height) != (first.width, first.height):
        raise InvalidRequest(
            f"The mask is {mask.width}x{mask.height}; {card_id} needs it the size of the first "
            f"image, {first.width}x{first.height}.",
            param="mask",
            code="invalid_mask",
        )
    if mask.nbytes >= MAX_LEGACY_BYTES:
        raise InvalidRequest(
            f"The mask is {mask.nbytes:,} bytes; {card_id} takes a mask under 4 MB.",
            param="mask",
            code="image_too_large",
        )


# -- the request ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FilePart:
    """One file part: the adapter streams ``image.open()`` under this name and type."""

    name: str  # "image", "image[]" or "mask"
    image: ImageInput
    filename: str
    content_type: str


@dataclass(frozen=True, slots=True)
class EditForm:
    fields: dict[str, str]
    files: list[FilePart]
    stream: bool  # asked OpenAI for server-sent events

    @property
    def field_names(self) -> list[str]:
        return sorted(self.fields)


def streams_upstream(job: EditJob) -> bool:
    """Whether to ask OpenAI for SSE: a GPT image model, a stream request, one image.

    With ``n`` above 1 the edit is made in one plain call: OpenAI's completed events do not say
    whether their usage covers one image or all of them, and the cost must be exact. The
    client still gets a stream (the gateway sends the completed events), only no partials.
    """
    request = job.request
    return request.stream and request.n == 1 and is_gpt_image(job.card.upstream_model)


def edit_form(job: EditJob, *, model: str | None = None) -> EditForm:
    """The multipart form OpenAI takes for this job.

    ``model`` is what goes in the ``model`` field: the card's upstream model for OpenAI, the
    deployment name for Azure (as its SDK sends it).
    """
    request, card = job.request, job.card
    rules = rules_for(card.upstream_model)
    output = request.output
    fields: dict[str, str] = {"model": model or card.upstream_model, "prompt": request.prompt}
    fields["n"] = str(request.n)
    if job.sizing.size is not None:
        fields["size"] = job.sizing.size
    if request.user is not None:
        fields["user"] = request.user
    stream = streams_upstream(job)
    if rules.legacy:
        fields["response_format"] = "b64_json"  # dall-e-2 answers with URLs by default
        if output.quality is not None and output.quality != "auto":
            fields["quality"] = output.quality
    else:
        optional = {
            "quality": output.quality,
            "background": output.background,
            "output_format": output.output_format,
            "output_compression": output.output_compression,
            "moderation": request.moderation,
        }
        for name, value in optional.items():
            if value is not None:
                fields[name] = str(value)
        fidelity = request.input_fidelity
        if fidelity is not None and fidelity != rules.fidelity_implied:
            fields["input_fidelity"] = fidelity
        if stream:
            fields["stream"] = "true"
            fields["partial_images"] = str(request.partial_images)
    for name in card.extra_fields:
        extra = request.extra.get(name)
        if isinstance(extra, bool):
            fields[name] = "true" if extra else "false"
        elif isinstance(extra, str | int | float):
            fields[name] = str(extra)
    return EditForm(fields, file_parts(request), stream)


def file_parts(request: EditRequest) -> list[FilePart]:
    """``image`` for one image, ``image[]`` for each of several, then ``mask``; every part
    typed and named by the bytes it carries (OpenAI refuses application/octet-stream)."""
    images = request.images
    name = "image" if len(images) == 1 else "image[]"
    parts = [
        FilePart(name, image, f"image-{index}{EXTENSIONS[image.format]}", image.mime_type)
        for index, image in enumerate(images)
    ]
    if request.mask is not None:
        mask = request.mask
        parts.append(FilePart("mask", mask, "mask" + EXTENSIONS[mask.format], mask.mime_type))
    return parts


# -- the answer -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerImage:
    b64: str | memoryview | None = None  # a view of the answer's bytes when lifted
    url: str | None = None
    revised_prompt: str | None = None


@dataclass(slots=True)
class Answer:
    images: list[AnswerImage]
    usage: Usage = field(default_factory=Usage)
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    size: str | None = None


def load_json(body: bytes) -> dict[str, Any]:
    """The answer's JSON; each image's base64 a view of ``body`` where it is plain (lifted)."""
    try:
        doc = loads_lifting(body, "b64_json", _image_entries)
    except orjson.JSONDecodeError:
        raise Malformed("a body that is not JSON (or is cut short)") from None
    if not isinstance(doc, dict):
        raise Malformed("JSON that is not an object")
    return doc


def _image_entries(doc: Any) -> Iterator[tuple[dict[str, Any], str]]:
    data = doc.get("data") if isinstance(doc, dict) else None
    for entry in data if isinstance(data, list) else ():
        if isinstance(entry, dict):
            yield entry, "b64_json"


def parse_answer(doc: Mapping[str, Any], *, gpt_image: bool) -> Answer:
    """An ``ImagesResponse``: its images (base64 or URLs), usage and the settings applied."""
    data = doc.get("data")
    if not isinstance(data, list) or not data:
        raise Malformed("a success without an image")
    images = [_answer_image(entry) for entry in data]
    return Answer(
        images=images,
        usage=usage_of(doc.get("usage"), gpt_image=gpt_image),
        quality=text_value(doc.get("quality")),
        background=text_value(doc.get("background")),
        output_format=text_value(doc.get("output_format")),
        size=text_value(doc.get("size")),
    )


def _answer_image(entry: object) -> AnswerImage:
    if not isinstance(entry, dict):
        raise Malformed("an image entry that is not an object")
    b64, url = entry.get("b64_json"), entry.get("url")
    revised = text_value(entry.get("revised_prompt"))
    if isinstance(b64, str | memoryview) and b64:
        return AnswerImage(b64=b64, revised_prompt=revised)
    if isinstance(url, str) and url:
        return AnswerImage(url=url, revised_prompt=revised)
    raise Malformed("an image entry with neither b64_json nor url")


def text_value(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def int_value(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_of(raw: object, *, gpt_image: bool) -> Usage:
    """OpenAI's ``usage`` as imagegate counts it.

    ``input_tokens_details`` splits the input into text and image tokens. For GPT image models
    every output token is an image token unless ``output_tokens_details`` says otherwise: the
    Images API often leaves it out, and billing those tokens at a text rate undercharges.
    """
    if not isinstance(raw, dict):
        return Usage()
    input_tokens = int_value(raw.get("input_tokens"))
    output_tokens = int_value(raw.get("output_tokens"))
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    details_in = raw.get("input_tokens_details")
    if isinstance(details_in, dict):
        usage.input_text_tokens = int_value(details_in.get("text_tokens"))
        usage.input_image_tokens = int_value(details_in.get("image_tokens"))
    details_out = raw.get("output_tokens_details")
    if isinstance(details_out, dict):
        usage.output_image_tokens = int_value(details_out.get("image_tokens"))
        usage.output_text_tokens = int_value(details_out.get("text_tokens"))
    elif gpt_image and output_tokens is not None:
        usage.output_image_tokens = output_tokens
        usage.output_text_tokens = 0
    return usage
