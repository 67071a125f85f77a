"""Regenerate ``images.schema.json`` from a checkout of openai/openai-openapi.

    python tests/support/openai_spec/extract.py path/to/openapi.yaml <commit> > \
        tests/support/openai_spec/images.schema.json

It copies, unchanged, the component schemas the image-edit answers are checked against and
every schema they ``$ref``, in the spec's own order. SOURCE.md says which commit is vendored.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
import yaml

ROOTS = ("ImagesResponse", "ImageEditStreamEvent", "ErrorEvent", "ErrorResponse")
REF = "#/components/schemas/"


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        target = node.get("$ref")
        if isinstance(target, str) and target.startswith(REF):
            found.add(target[len(REF) :])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = spec["components"]["schemas"]
    wanted: set[str] = set()
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(refs(schemas[name]))
    return {name: schema for name, schema in schemas.items() if name in wanted}


def main(path: str, commit: str) -> None:
    with open(path, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    doc = {
        "x-source": {
            "repository": "openai/openai-openapi",
            "commit": commit,
            "file": "openapi.yaml",
            "openapi": spec["openapi"],
            "roots": list(ROOTS),
        },
        "components": {"schemas": extract(spec)},
    }
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
