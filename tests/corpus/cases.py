"""Corpus cases: YAML data turned into HTTP requests.

A case names what to send and what must come back::

    - id: n-zero
      form: {set: {n: "0"}}                 # the good multipart edit, with n=0
      expect: [400, integer_below_min_value, n]

The bases are one good edit per shape (``GOOD_FORM`` + an ``image`` part, ``GOOD_DOC``); a case
changes them with ``set``/``unset``/``files``/``add_files`` (multipart), ``set``/``unset``/
``images``/``text`` (JSON), or gives the whole body as ``raw`` parts. ``expect`` is the status,
the error code (or a list of acceptable codes), and the ``param`` when it is given. Strings may
hold placeholders: ``{{data:BLOB}}`` / ``{{data:BLOB:MIME}}`` (a data URL), ``{{b64:BLOB}}``,
``{{repeat:N:TEXT}}``, ``{{hex:ABCD}}`` (raw bytes, multipart and raw bodies only) and
``{{key}}`` (the gateway's master key). ``bomb: {rss_mb, cpu_s}`` bounds the server's peak
memory growth and CPU time for the case.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.corpus.blobs import blob

HERE = Path(__file__).parent
MASTER_KEY = "corpus-master-key-7f3a9c"
GOOD_FORM: dict[str, Any] = {"model": "local/pillow", "prompt": "invert"}
GOOD_FILES: list[dict[str, Any]] = [{"name": "image", "blob": "png", "filename": "a.png"}]
GOOD_DOC: dict[str, Any] = {
    "model": "local/pillow",
    "prompt": "invert",
    "images": [{"image_url": "{{data:png}}"}],
}
_PLACEHOLDER = re.compile(r"\{\{(\w+)(?::([^}:]*))?(?::([^}]*))?\}\}")


@dataclass
class Case:
    id: str
    source: str
    spec: dict[str, Any]
    status: int = 0
    codes: tuple[str, ...] = ()
    param: str | None = None
    check_param: bool = False
    bomb: Mapping[str, float] | None = None

    @classmethod
    def load(cls, spec: dict[str, Any], source: str) -> Case:
        expect = spec["expect"]
        codes = expect[1] if isinstance(expect[1], list) else [expect[1]]
        return cls(
            id=spec["id"],
            source=source,
            spec=spec,
            status=int(expect[0]),
            codes=tuple(codes),
            param=expect[2] if len(expect) > 2 else None,
            check_param=len(expect) > 2,
            bomb=spec.get("bomb"),
        )


@dataclass
class Built:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def load_cases(*names: str) -> list[Case]:
    cases: list[Case] = []
    for name in names:
        for spec in yaml.safe_load((HERE / name).read_text("utf-8")):
            cases.append(Case.load(spec, name))
    ids = [case.id for case in cases]
    duplicates = {case_id for case_id in ids if ids.count(case_id) > 1}
    assert not duplicates, f"corpus ids used twice: {duplicates}"
    return cases


# -- placeholders ------------------------------------------------------------------------------


def _expand(text: str, *, allow_bytes: bool) -> bytes:
    out = bytearray()
    pos = 0
    for match in _PLACEHOLDER.finditer(text):
        out += text[pos : match.start()].encode("utf-8", "surrogatepass")
        pos = match.end()
        kind, first, second = match[1], match[2] or "", match[3] or ""
        if kind == "data":
            mime = second or "image/png"
            out += f"data:{mime};base64,".encode() + base64.b64encode(blob(first))
        elif kind == "b64":
            out += base64.b64encode(blob(first))
        elif kind == "repeat":
            out += (second * int(first)).encode("utf-8", "surrogatepass")
        elif kind == "key":
            out += MASTER_KEY.encode()
        elif kind == "hex" and allow_bytes:
            out += bytes.fromhex(first)
        else:
            raise ValueError(f"unknown placeholder {match[0]!r}")
    out += text[pos:].encode("utf-8", "surrogatepass")
    return bytes(out)


def expand_text(text: str) -> str:
    return _expand(text, allow_bytes=False).decode("utf-8", "surrogatepass")


def _expand_doc(value: Any) -> Any:
    if isinstance(value, str):
        return expand_text(value)
    if isinstance(value, list):
        return [_expand_doc(item) for item in value]
    if isinstance(value, dict):
        return {key: _expand_doc(item) for key, item in value.items()}
    return value


# -- bodies ------------------------------------------------------------------------------------


def _form_body(spec: Mapping[str, Any]) -> tuple[bytes, str]:
    fields = {**GOOD_FORM, **spec.get("set", {})}
    for name in spec.get("unset", []):
        fields.pop(name, None)
    files = list(spec.get("files", GOOD_FILES)) + list(spec.get("add_files", []))
    boundary = spec.get("boundary", "corpusboundary")
    out = bytearray()

    def part(name: str, data: bytes, filename: str | None, content_type: str | None) -> None:
        out.extend(b"--" + boundary.encode("latin-1") + b"\r\n")
        disposition = b'Content-Disposition: form-data; name="' + _expand(name, allow_bytes=True)
        if filename is not None:
            disposition += b'"; filename="' + _expand(filename, allow_bytes=True)
        out.extend(disposition + b'"\r\n')
        if content_type:
            out.extend(b"Content-Type: " + content_type.encode() + b"\r\n")
        out.extend(b"\r\n" + data + b"\r\n")

    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            part(name, _expand(str(item), allow_bytes=True), None, None)
    for item in files:
        for _ in range(int(item.get("times", 1))):
            data = blob(item["blob"]) if "blob" in item else _expand(item["text"], allow_bytes=True)
            part(item["name"], data, item.get("filename", "upload"), item.get("type", "image/png"))
    if not spec.get("drop_closing"):
        out.extend(b"--" + boundary.encode("latin-1") + b"--\r\n")
    body = bytes(out)
    if "cut" in spec:
        body = body[: int(spec["cut"])]
    content_type = spec.get("content_type", f"multipart/form-data; boundary={boundary}")
    return body, content_type


def _json_body(spec: Mapping[str, Any]) -> tuple[bytes, str]:
    content_type = spec.get("content_type", "application/json")
    if "text" in spec:
        return _expand(spec["text"], allow_bytes=True), content_type
    doc = {**GOOD_DOC, **spec.get("set", {})}
    if "images" in spec:
        shortcut = spec["images"]
        doc["images"] = [{"image_url": f"{{{{data:{shortcut['blob']}}}}}"}] * shortcut["times"]
    for name in spec.get("unset", []):
        doc.pop(name, None)
    return orjson.dumps(_expand_doc(doc)), content_type


def _raw_body(spec: Mapping[str, Any]) -> tuple[bytes, str | None]:
    out = bytearray()
    for item in spec.get("body", []):
        if isinstance(item, str):
            out += _expand(item, allow_bytes=True)
        elif "blob" in item:
            out += blob(item["blob"])
        else:
            out += _expand(item["repeat"], allow_bytes=True) * int(item["times"])
    return bytes(out), spec.get("content_type")


def build(case: Case) -> Built:
    spec = case.spec
    built = Built(spec.get("method", "POST"), spec.get("path", "/v1/images/edits"))
    content_type: str | None = None
    if "form" in spec:
        built.body, content_type = _form_body(spec["form"] or {})
    elif "json" in spec:
        built.body, content_type = _json_body(spec["json"] or {})
    elif "raw" in spec:
        built.body, content_type = _raw_body(spec["raw"])
    if content_type is not None:
        built.headers["content-type"] = content_type
    auth = spec.get("auth", "Bearer {{key}}")
    if auth != "none":
        built.headers["authorization"] = expand_text(auth)
    for key, value in spec.get("headers", {}).items():
        built.headers[key] = expand_text(value)
    return built
