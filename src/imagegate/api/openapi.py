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
                },
            }
        },
    },
}
