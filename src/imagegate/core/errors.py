"""The one error family of imagegate.

Everything the gateway refuses or fails at is a ``GatewayError``; the API layer renders each as
OpenAI's error envelope, with one extra key saying whether the gateway or the provider said no::

    GatewayError                         status  type
    ├── InvalidRequest                   400     invalid_request_error
    │   └── ContentPolicyViolation       400     (code content_policy_violation)
    ├── AuthenticationFailed             401     authentication_error
    ├── PaymentRequired                  402     insufficient_quota
    ├── PermissionDenied                 403     permission_error
    ├── NotFound                         404     invalid_request_error
    ├── RequestTimeout                   408     invalid_request_error
    ├── PayloadTooLarge                  413     invalid_request_error
    ├── UnsupportedMediaType             415     invalid_request_error
    ├── RateLimited                      429     rate_limit_error
    ├── InternalError                    500     server_error
    ├── UpstreamError                    502     upstream_error
    ├── ServiceUnavailable               503     server_error
    └── UpstreamTimeout                  504     timeout_error

    {"error": {"message": "...", "type": "...", "param": "...", "code": "...",
               "origin": "gateway" | "provider"}}

Foreign exceptions (httpx, Pillow, python-multipart) are translated into this family where they
are caught; nothing else reaches the client. Each error also says whether trying again (the same
request, maybe elsewhere) could help: ``retryable``. Rate limits, upstream failures, timeouts and
a busy gateway could; anything about the request itself could not.
Messages and params pass through ``redact`` when the error is made: a message may echo client
input or quote a provider's answer, and neither may carry a key or image data back out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import orjson

from imagegate.core.redact import redact

Origin = Literal["gateway", "provider"]


class GatewayError(Exception):
    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None
    retryable_by_default: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        origin: Origin = "gateway",
        headers: Mapping[str, str] | None = None,
        retryable: bool | None = None,
        billed_usd: float | None = None,
    ) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.param = redact(param) if param is not None else None
        self.code = code if code is not None else self.default_code
        self.origin: Origin = origin
        self.headers: dict[str, str] = dict(headers or {})
        self.retryable = self.retryable_by_default if retryable is None else retryable
        # What the provider charged for this failed edit, when it did (None: nothing). An
        # adapter sets it where its upstream bills work that then failed (a queued job that
        # ran and was refused by a safety check after generating, a timeout after the
        # provider accepted and finished); the budget keeps that much instead of releasing it.
        self.billed_usd = billed_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
                "origin": self.origin,
            }
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, param={self.param!r}, code={self.code!r})"


class InvalidRequest(GatewayError):
    status = 400
    error_type = "invalid_request_error"
    default_code = "invalid_value"


class ContentPolicyViolation(InvalidRequest):
    default_code = "content_policy_violation"


class AuthenticationFailed(GatewayError):
    status = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PaymentRequired(GatewayError):
    status = 402
    error_type = "insufficient_quota"
    default_code = "budget_exceeded"


class PermissionDenied(GatewayError):
    status = 403
    error_type = "permission_error"
    default_code = "model_not_allowed"


class NotFound(GatewayError):
    status = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class RequestTimeout(GatewayError):
    status = 408
    error_type = "invalid_request_error"
    default_code = "request_timeout"


class PayloadTooLarge(GatewayError):
    status = 413
    error_type = "invalid_request_error"
    default_code = "payload_too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    error_type = "invalid_request_error"
    default_code = "unsupported_media_type"


class RateLimited(GatewayError):
    status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"
    retryable_by_default = True


class InternalError(GatewayError):
    status = 500
    error_type = "server_error"
    default_code = "internal_error"


class UpstreamError(GatewayError):
    status = 502
    error_type = "upstream_error"
    default_code = "upstream_error"
    retryable_by_default = True


class ServiceUnavailable(GatewayError):
    status = 503
    error_type = "server_error"
    default_code = "unavailable"
    retryable_by_default = True


class UpstreamTimeout(GatewayError):
    status = 504
    error_type = "timeout_error"
    default_code = "upstream_timeout"
    retryable_by_default = True
