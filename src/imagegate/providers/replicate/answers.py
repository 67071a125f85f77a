"""Replicate's answers, read: a prediction (create, poll, cancel), the failure it ended in, an
RFC 7807 problem, and what a prediction costs.

Pure: no I/O here. A prediction is ``{id, status, output, error, urls: {get, cancel}, metrics?:
{image_count?}}``; ``output`` is one URI or a list of them (by model; both are read), or ``data:``
URIs. A prediction that ended ``failed`` with a safety reason (Replicate's "flagged as
sensitive", a model's "NSFW content detected") is a content-policy refusal; any other end but
``succeeded`` is Replicate's failure. Errors are RFC 7807 problem details,
``{type?, title, status, detail, invalid_fields?: [{type, field, description}]}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from imagegate.catalog.cards import ModelCard
from imagegate.providers.malformed import Malformed as Malformed
from imagegate.providers.upstream import ProviderFailure, json_message

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
# How Replicate and its models say an input or output was refused as unsafe.
_SAFETY = re.compile(
    r"nsfw|flagged as sensitive|sensitive content|safety (?:filter|check|system)|"
    r"content (?:policy|moderation)|moderat|\(E005\)",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Prediction:
    """A prediction as Replicate answered it (create, poll or cancel)."""

    id: str
    status: str
    output: tuple[str, ...]  # the result URIs (or data: URIs), one or many by model
    error: str | None
    get_url: str | None
    cancel_url: str | None
    image_count: int | None  # metrics.image_count: what Replicate bills, where it says
    raw: bytes = field(repr=False, default=b"")

    @property
    def settled(self) -> bool:
        return self.status in TERMINAL


def read_prediction(body: bytes) -> Prediction:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Malformed("a body that is not JSON (cut short?)") from None
    if not isinstance(doc, dict):
        raise Malformed("JSON that is not a prediction")
    ident, status = doc.get("id"), doc.get("status")
    if not isinstance(ident, str) or not ident or not isinstance(status, str) or not status:
        raise Malformed("a prediction without an id or a status")
    urls = doc.get("urls") if isinstance(doc.get("urls"), dict) else {}
    assert isinstance(urls, dict)
    metrics = doc.get("metrics") if isinstance(doc.get("metrics"), dict) else {}
    assert isinstance(metrics, dict)
    count = metrics.get("image_count")
    error = doc.get("error")
    return Prediction(
        id=ident,
        status=status,
        output=_output(doc.get("output")),
        error=str(error) if error not in (None, "") else None,
        get_url=_url(urls.get("get")),
        cancel_url=_url(urls.get("cancel")),
        image_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        raw=body,
    )


def _output(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list) and all(isinstance(item, str) and item for item in value):
        return tuple(value)
    raise Malformed("an output that is neither a URI nor a list of URIs")


def _url(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def stated_cost(card: ModelCard, billed_images: int, input_images: int) -> float | None:
    """The cost of one prediction when the card has a flat price per image: Replicate bills each
    image it made (``metrics.image_count`` where it says). None for other price shapes, which
    the service prices from the images returned."""
    pricing = card.pricing
    flat = not pricing.per_tier and pricing.per_megapixel is None and pricing.tokens is None
    if pricing.per_image is None or not flat:
        return None
    return pricing.per_image * billed_images + pricing.per_input_image * input_images


def read_error(status: int, body: bytes) -> ProviderFailure:
    """Replicate's words for a failure: an RFC 7807 problem (any non-2xx), or a prediction that
    ended failed, canceled or aborted (a 2xx body)."""
    doc, text = json_message(body)
    if doc is not None and isinstance(doc.get("status"), str) and "id" in doc:
        return _prediction_failure(doc)
    message, param = text, None
    if doc is not None:
        title, detail = doc.get("title"), doc.get("detail")
        message = str(detail or title or "").strip()
        fields = doc.get("invalid_fields")
        if isinstance(fields, list):
            parts, param = _invalid_fields(fields)
            message = "; ".join(parts) or message
    message = message or f"HTTP {status}"
    if status == 402:
        return ProviderFailure(f"billing: {message}", kind="server")
    if 400 <= status < 500 and status not in (401, 403, 429) and _SAFETY.search(message):
        return ProviderFailure(message, kind="moderation", param=param)
    return ProviderFailure(message, param=param)


def _invalid_fields(fields: list[Any]) -> tuple[list[str], str | None]:
    parts: list[str] = []
    param: str | None = None
    for entry in fields:
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("field") or "").removeprefix("input").lstrip(".")
        description = str(entry.get("description") or entry.get("type") or "invalid")
        parts.append(f"{name}: {description}" if name else description)
        if param is None and name:
            param = "image" if name in ("input_image", "image_input") else name
    return parts, param


def _prediction_failure(doc: Mapping[str, Any]) -> ProviderFailure:
    ident, status = doc.get("id"), doc.get("status")
    error = str(doc.get("error") or "").strip()
    if status == "failed":
        message = f"prediction {ident} failed: {error or 'no reason given'}"
        if _SAFETY.search(error):
            return ProviderFailure(message, kind="moderation")
        return ProviderFailure(message, kind="server")
    if status == "canceled":
        return ProviderFailure(
            f"prediction {ident} was canceled before it finished (not by this gateway)",
            kind="server",
        )
    return ProviderFailure(
        f"prediction {ident} ended {status}: {error or 'no reason given'}", kind="server"
    )
