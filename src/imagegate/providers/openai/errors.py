"""How OpenAI and Azure OpenAI spell their errors, read into ``ProviderFailure``s for the
upstream boundary. Pure."""

from __future__ import annotations

from imagegate.providers.openai.convert import text_value
from imagegate.providers.upstream import FailureKind, ProviderFailure, json_message

MODERATION_CODES = frozenset({"moderation_blocked", "content_policy_violation"})
MODERATION_TYPES = frozenset({"image_generation_user_error"})
AZURE_FILTER_CODES = frozenset({"content_filter", "contentfilter", "responsibleaipolicyviolation"})


def read_error(status: int, body: bytes) -> ProviderFailure:
    """OpenAI's error envelope: ``{"error": {"message", "type", "param", "code"}}``.

    Moderation (``moderation_blocked``, type ``image_generation_user_error``) is a content
    policy refusal whatever the status, with its stage and categories in the message.
    """
    doc, text = json_message(body)
    error = doc.get("error") if doc is not None else None
    if not isinstance(error, dict):
        return ProviderFailure(text_value(error) or text or f"HTTP {status}")
    message = text_value(error.get("message")) or f"HTTP {status}"
    code = text_value(error.get("code"))
    kind: FailureKind | None = None
    if code in MODERATION_CODES or error.get("type") in MODERATION_TYPES:
        kind = "moderation"
        message = _with_reason(message, _moderation_reason(error.get("moderation_details")))
    return ProviderFailure(message, code=code, kind=kind, param=text_value(error.get("param")))


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
    code = text_value(error.get("code")) or ""
    inner = error.get("innererror")
    inner_code = text_value(inner.get("code")) if isinstance(inner, dict) else None
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
    stage = text_value(details.get("moderation_stage"))
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
            severity = text_value(verdict.get("severity"))
            filtered.append(f"{category} ({severity})" if severity else str(category))
    return "filtered: " + ", ".join(filtered) if filtered else ""


def _with_reason(message: str, reason: str) -> str:
    return f"{message} ({reason})" if reason else message
