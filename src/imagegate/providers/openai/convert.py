"""Pure converters between imagegate and OpenAI's Images API (``POST /images/edits``).

Nothing here touches the network: ``adapter.py`` sends what these build and hands back what
OpenAI answered. Azure OpenAI takes the same form and answers the same way, so its adapter uses
these too, with its own error spellings (``read_azure_error``).

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

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from imagegate.core.errors import InvalidRequest
from imagegate.core.images import EXTENSIONS
from imagegate.core.request import EditRequest, ImageInput
from imagegate.core.result import Usage
from imagegate.providers.base import EditJob
from imagegate.providers.upstream import FailureKind, ProviderFailure, json_message

MB = 1024 * 1024
MAX_GPT_IMAGE_BYTES = 50 * MB  # each input image of a GPT image model
MAX_LEGACY_BYTES = 4 * MB  # dall-e-2's image, and every mask
GPT_QUALITIES = frozenset({"low", "medium", "high", "auto"})
MODERATION_CODES = frozenset({"moderation_blocked", "content_policy_violation"})
MODERATION_TYPES = frozenset({"image_generation_user_error"})
AZURE_FILTER_CODES = frozenset({"content_filter", "contentfilter", "responsibleaipolicyviolation"})


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


class Malformed(ValueError):
    """A 2xx answer that is not what the Images API promises; ``what`` says how."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass(frozen=True, slots=True)
class AnswerImage:
    b64: str | None = None
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
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Malformed("a body that is not JSON (or is cut short)") from None
    if not isinstance(doc, dict):
        raise Malformed("JSON that is not an object")
    return doc


def parse_answer(doc: Mapping[str, Any], *, gpt_image: bool) -> Answer:
    """An ``ImagesResponse``: its images (base64 or URLs), usage and the settings applied."""
    data = doc.get("data")
    if not isinstance(data, list) or not data:
        raise Malformed("a success without an image")
    images = [_answer_image(entry) for entry in data]
    return Answer(
        images=images,
        usage=usage_of(doc.get("usage"), gpt_image=gpt_image),
        quality=_text(doc.get("quality")),
        background=_text(doc.get("background")),
        output_format=_text(doc.get("output_format")),
        size=_text(doc.get("size")),
    )


def _answer_image(entry: object) -> AnswerImage:
    if not isinstance(entry, dict):
        raise Malformed("an image entry that is not an object")
    b64, url = entry.get("b64_json"), entry.get("url")
    revised = _text(entry.get("revised_prompt"))
    if isinstance(b64, str) and b64:
        return AnswerImage(b64=b64, revised_prompt=revised)
    if isinstance(url, str) and url:
        return AnswerImage(url=url, revised_prompt=revised)
    raise Malformed("an image entry with neither b64_json nor url")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_of(raw: object, *, gpt_image: bool) -> Usage:
    """OpenAI's ``usage`` as imagegate counts it.

    ``input_tokens_details`` splits the input into text and image tokens. For GPT image models
    every output token is an image token unless ``output_tokens_details`` says otherwise: the
    Images API often leaves it out, and billing those tokens at a text rate undercharges.
    """
    if not isinstance(raw, dict):
        return Usage()
    input_tokens = _count(raw.get("input_tokens"))
    output_tokens = _count(raw.get("output_tokens"))
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    details_in = raw.get("input_tokens_details")
    if isinstance(details_in, dict):
        usage.input_text_tokens = _count(details_in.get("text_tokens"))
        usage.input_image_tokens = _count(details_in.get("image_tokens"))
    details_out = raw.get("output_tokens_details")
    if isinstance(details_out, dict):
        usage.output_image_tokens = _count(details_out.get("image_tokens"))
        usage.output_text_tokens = _count(details_out.get("text_tokens"))
    elif gpt_image and output_tokens is not None:
        usage.output_image_tokens = output_tokens
        usage.output_text_tokens = 0
    return usage


# -- streams ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SseEvent:
    name: str
    data: str


class SseDecoder:
    """Server-Sent Events from lines, as the OpenAI SDKs read them: ``event:`` and ``data:``
    (several data lines joined by newlines), a blank line ends an event, ``:`` lines are
    comments."""

    def __init__(self) -> None:
        self._name = ""
        self._data: list[str] = []

    def feed(self, line: str) -> SseEvent | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "event":
            self._name = value
        elif key == "data":
            self._data.append(value)
        return None

    def end(self) -> SseEvent | None:
        """The event still pending when the body ended without its blank line."""
        return self._dispatch()

    def _dispatch(self) -> SseEvent | None:
        if not self._data and not self._name:
            return None
        event = SseEvent(self._name, "\n".join(self._data))
        self._name, self._data = "", []
        return event


def sse_events(lines: Iterable[str]) -> Iterator[SseEvent]:
    decoder = SseDecoder()
    for line in lines:
        event = decoder.feed(line)
        if event is not None:
            yield event
    last = decoder.end()
    if last is not None:
        yield last


@dataclass(frozen=True, slots=True)
class PartialImage:
    b64: str
    index: int


@dataclass(frozen=True, slots=True)
class CompletedImage:
    b64: str
    usage: Usage
    quality: str | None
    background: str | None


@dataclass(frozen=True, slots=True)
class StreamError:
    """An error OpenAI sent as an event after the stream began."""

    error: dict[str, Any]

    def body(self) -> bytes:
        return orjson.dumps({"error": self.error})


StreamItem = PartialImage | CompletedImage | StreamError | None


def stream_error_status(error: Mapping[str, Any]) -> int:
    """The HTTP status an error sent inside a stream stands for (the stream itself was 200)."""
    kind = str(error.get("type") or "")
    code = str(error.get("code") or "")
    if code in MODERATION_CODES or kind in MODERATION_TYPES or kind == "invalid_request_error":
        return 400
    if "rate_limit" in code or kind in ("requests", "tokens", "rate_limit_error"):
        return 429
    return 500


def stream_item(event: SseEvent, *, gpt_image: bool = True) -> StreamItem:
    """What one event of an image edit stream carries; None for events to skip."""
    if not event.data or event.data.startswith("[DONE]"):
        return None
    try:
        doc = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        raise Malformed("a stream event whose data is not JSON") from None
    if not isinstance(doc, dict):
        raise Malformed("a stream event that is not a JSON object")
    error = doc.get("error")
    if event.name == "error" or error:
        return StreamError(error if isinstance(error, dict) else doc)
    kind = doc.get("type") or event.name
    if kind == "image_edit.partial_image":
        b64, index = doc.get("b64_json"), _count(doc.get("partial_image_index"))
        if not isinstance(b64, str) or not b64 or index is None:
            raise Malformed("a partial image event without its image or index")
        return PartialImage(b64, index)
    if kind == "image_edit.completed":
        b64 = doc.get("b64_json")
        if not isinstance(b64, str) or not b64:
            raise Malformed("a completed event without an image")
        return CompletedImage(
            b64,
            usage_of(doc.get("usage"), gpt_image=gpt_image),
            _text(doc.get("quality")),
            _text(doc.get("background")),
        )
    return None  # an event type this gateway does not know: skipped, as the SDKs would


# -- errors -----------------------------------------------------------------------------------


def read_error(status: int, body: bytes) -> ProviderFailure:
    """OpenAI's error envelope: ``{"error": {"message", "type", "param", "code"}}``.

    Moderation (``moderation_blocked``, type ``image_generation_user_error``) is a content
    policy refusal whatever the status, with its stage and categories in the message.
    """
    doc, text = json_message(body)
    error = doc.get("error") if doc is not None else None
    if not isinstance(error, dict):
        return ProviderFailure(_text(error) or text or f"HTTP {status}")
    message = _text(error.get("message")) or f"HTTP {status}"
    code = _text(error.get("code"))
    kind: FailureKind | None = None
    if code in MODERATION_CODES or error.get("type") in MODERATION_TYPES:
        kind = "moderation"
        message = _with_reason(message, _moderation_reason(error.get("moderation_details")))
    return ProviderFailure(message, code=code, kind=kind, param=_text(error.get("param")))


def read_azure_error(status: int, body: bytes) -> ProviderFailure:
    """Azure OpenAI's errors: OpenAI's envelope, or ``{"error": {"code", "message",
    "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result"}}}`` for
    its content filter (``content_filter`` or ``contentFilter``), and ``Forbidden`` for a
    resource Azure blocked."""
    doc, _ = json_message(body)
    error = doc.get("error") if doc is not None else None
    if not isinstance(error, dict):
        return read_error(status, body)
    failure = read_error(status, body)
    code = _text(error.get("code")) or ""
    inner = error.get("innererror")
    inner_code = _text(inner.get("code")) if isinstance(inner, dict) else None
    if code.lower() in AZURE_FILTER_CODES or (inner_code or "").lower() in AZURE_FILTER_CODES:
        result = inner.get("content_filter_result") if isinstance(inner, dict) else None
        message = _with_reason(failure.message, _filter_reason(result))
        return ProviderFailure(message, code=code or inner_code, kind="moderation")
    if code.lower() == "forbidden":
        return ProviderFailure(failure.message, code=code, kind="auth")
    return failure


def _moderation_reason(details: object) -> str:
    if not isinstance(details, dict):
        return ""
    parts = []
    stage = _text(details.get("moderation_stage"))
    if stage:
        parts.append(f"stage: {stage}")
    categories = details.get("categories")
    if isinstance(categories, list) and categories:
        parts.append("categories: " + ", ".join(str(c) for c in categories))
    return "; ".join(parts)


def _filter_reason(result: object) -> str:
    if not isinstance(result, dict):
        return ""
    filtered = []
    for category, verdict in result.items():
        if isinstance(verdict, dict) and verdict.get("filtered"):
            severity = _text(verdict.get("severity"))
            filtered.append(f"{category} ({severity})" if severity else str(category))
    return "filtered: " + ", ".join(filtered) if filtered else ""


def _with_reason(message: str, reason: str) -> str:
    return f"{message} ({reason})" if reason else message
