"""The edit endpoint's request body, described for /openapi.json.

The route reads the raw body itself (streaming, with limits), so FastAPI cannot infer this; it is
written out here from the same field table the parser uses.
"""

from __future__ import annotations

from typing import Any

from imagegate.wire.fields import FIELDS, FieldSpec


def _schema(spec: FieldSpec) -> dict[str, Any]:
    if spec.kind == "int":
        schema: dict[str, Any] = {"type": "integer"}
        if spec.minimum is not None:
            schema["minimum"] = spec.minimum
        if spec.maximum is not None:
            schema["maximum"] = spec.maximum
        return schema
    if spec.kind == "bool":
        return {"type": "boolean"}
    if spec.kind == "enum":
        return {"type": "string", "enum": list(spec.choices)}
    schema = {"type": "string"}
    if spec.kind == "size":
        schema["pattern"] = r"^(auto|\d{1,5}x\d{1,5})$"
    if spec.max_length is not None:
        schema["maxLength"] = spec.max_length
    if spec.name == "prompt":
        schema["minLength"] = 1
    return schema


_IMAGE_REF = {
    "type": "object",
    "properties": {"image_url": {"type": "string"}, "file_id": {"type": "string"}},
    "additionalProperties": False,
}

_TEXT_PROPS = {name: _schema(spec) for name, spec in FIELDS.items()}
_METADATA = {
    "type": "object",
    "description": "Your own labels, recorded with usage and logged; never sent upstream.",
    "maxProperties": 16,
    "propertyNames": {"minLength": 1, "maxLength": 64},
    "additionalProperties": {"type": "string", "maxLength": 512},
}

EDIT_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["prompt", "image"],
                "properties": {
                    **_TEXT_PROPS,
                    "image": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "maxItems": 16,
                    },
                    "mask": {"type": "string", "format": "binary"},
                    "metadata": {
                        "type": "string",
                        "description": "The metadata object as a JSON string.",
                    },
                },
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["prompt", "images"],
                "properties": {
                    **_TEXT_PROPS,
                    "images": {"type": "array", "items": _IMAGE_REF, "minItems": 1, "maxItems": 16},
                    "mask": _IMAGE_REF,
                    "metadata": _METADATA,
                },
            }
        },
    },
}


# -- responses ---------------------------------------------------------------------------------
# Every refusal is the same envelope, so each route documents the statuses it answers with it;
# "4XX" also keeps FastAPI from documenting its 422, which this gateway never sends.

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
                "origin": {"type": "string", "enum": ["gateway", "provider"]},
            },
        }
    },
}

_ERROR_MEANINGS = {
    400: "A missing or invalid field, image, mask or size; a model that cannot do what was asked.",
    401: "A master key or virtual keys are set and the bearer key is missing or unknown.",
    402: "The key's budget is spent, or cannot cover this request's most possible cost.",
    403: "The key may not use this model (or, on /v1/usage, see another key).",
    404: "An unknown model, or one whose provider is not configured.",
    413: "An image, field or body over its limit.",
    415: "A body that is neither multipart/form-data nor JSON.",
    429: "The key's requests or images per minute are used up; Retry-After says when to retry.",
    500: "A gateway bug; the message gives the request id.",
    503: "The shared state store (Redis) is unreachable and IMAGEGATE_REDIS_FAILURE=closed.",
    504: "The provider did not finish within the request timeout.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    content = {"application/json": {"schema": ERROR_SCHEMA}}
    responses: dict[int | str, dict[str, Any]] = {
        status: {"description": _ERROR_MEANINGS[status], "content": content} for status in statuses
    }
    responses["4XX"] = {
        "description": "Any other refusal, in the same envelope.",
        "content": content,
    }
    return responses


_USAGE = {
    "type": "object",
    "properties": {
        "input_tokens": {"type": "integer"},
        "output_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
        "cost": {
            "type": "object",
            "properties": {"total_cost": {"type": "number"}, "currency": {"type": "string"}},
        },
    },
}

IMAGES_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["created", "data"],
    "properties": {
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "b64_json": {"type": "string"},
                    "url": {"type": "string"},
                    "revised_prompt": {"type": "string"},
                },
            },
        },
        "size": {"type": "string"},
        "output_format": {"type": "string", "enum": ["png", "jpeg", "webp"]},
        "quality": {"type": "string"},
        "background": {"type": "string"},
        "usage": _USAGE,
    },
}

# One server-sent event, as OpenAPI 3.2 describes a stream item: its name and its JSON data.
# Keepalive comments (": keepalive") carry no event and are not items.
STREAM_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {
            "type": "string",
            "enum": ["image_edit.partial_image", "image_edit.completed", "error"],
        },
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {
                        "type": "string",
                        "enum": ["image_edit.partial_image", "image_edit.completed", "error"],
                    },
                    "b64_json": {"type": "string"},
                    "created_at": {"type": "integer"},
                    "size": {"type": "string"},
                    "quality": {"type": "string"},
                    "background": {"type": "string"},
                    "output_format": {"type": "string", "enum": ["png", "jpeg", "webp"]},
                    "partial_image_index": {"type": "integer"},
                    "usage": _USAGE,
                    "error": ERROR_SCHEMA["properties"]["error"],
                },
            },
        },
    },
}

EDIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The edited images; an event stream when the request set stream=true.",
        "content": {
            "application/json": {"schema": IMAGES_RESPONSE},
            "text/event-stream": {"schema": STREAM_EVENT},
        },
    },
    **error_responses(400, 401, 402, 403, 404, 413, 415, 429, 500, 503, 504),
}

_MODEL = {
    "type": "object",
    "required": ["id", "object"],
    "properties": {"id": {"type": "string"}, "object": {"type": "string", "enum": ["model"]}},
}

MODELS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The models this gateway serves, each with what it can do.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["object", "data"],
                    "properties": {
                        "object": {"type": "string", "enum": ["list"]},
                        "data": {"type": "array", "items": _MODEL},
                    },
                }
            }
        },
    },
    **error_responses(401),
}

MODEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One model, by id or alias.",
        "content": {"application/json": {"schema": _MODEL}},
    },
    **error_responses(401, 404),
}

_COUNTS = {
    "requests": {"type": "integer"},
    "images": {"type": "integer"},
    "errors": {"type": "integer"},
    "cost_usd": {"type": "number"},
}
USAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Spend and counts per key (with its budget), per model and per user.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["object", "total", "keys"],
                    "properties": {
                        "object": {"type": "string", "enum": ["usage"]},
                        "total": {"type": "object", "properties": _COUNTS},
                        "keys": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["key", "models", "users"],
                                "properties": {"key": {"type": "string"}, **_COUNTS},
                            },
                        },
                    },
                }
            }
        },
    },
    **error_responses(400, 401, 403, 404, 503),
}
