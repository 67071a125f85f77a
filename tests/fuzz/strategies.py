"""Hypothesis strategies for edit requests: every field, every type, and the bodies carrying them.

Values mix three kinds: ones the gateway takes (so combinations reach the catalog, the sizing
rules and the engine), values of the wrong type or range, and hostile ones (huge numbers, lone
surrogates, NUL, right-to-left marks, deep nesting). Images are small real Pillow images plus
broken and foreign bytes.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from hypothesis import strategies as st

from imagegate.wire.fields import FIELDS
from tests import imaging

# -- images ------------------------------------------------------------------------------------

PNG = imaging.png(32, 24)
IMAGES: dict[str, bytes] = {
    "png": PNG,
    "jpeg": imaging.jpeg(32, 24),
    "webp": imaging.webp(32, 24),
    "square": imaging.png(24, 24),
    "tall": imaging.png(16, 64),
    "mask": imaging.mask_left_half(32, 24),
    "empty": b"",
    "truncated": PNG[: len(PNG) // 2],
    "header-only": PNG[:33],
    "gif": imaging.encode(imaging.picture(8, 8), "GIF"),
    "bmp": imaging.encode(imaging.picture(8, 8), "BMP"),
    "pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "jpeg-soi": b"\xff\xd8\xff",
    "riff": b"RIFF\x00\x00\x00\x00WEBPVP8X" + b"\x00" * 10,
}


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header (correct CRC) claiming any size, with one tiny IDAT."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


image_bytes = st.one_of(
    st.sampled_from(sorted(IMAGES)).map(IMAGES.__getitem__),
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)).map(lambda s: png_claiming(*s)),
    st.binary(max_size=64),
    st.tuples(st.sampled_from([PNG, IMAGES["jpeg"], IMAGES["webp"]]), st.integers(0, 400)).map(
        lambda t: t[0][: t[1]]
    ),
    st.tuples(
        st.sampled_from([PNG, IMAGES["jpeg"], IMAGES["webp"]]),
        st.binary(min_size=1, max_size=8),
        st.integers(0, 300),
    ).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2] + len(t[1]) :]  # a few bytes overwritten
    ),
)

# -- text --------------------------------------------------------------------------------------

# Lone surrogates only reach the gateway through JSON escapes (\ud800) or raw bytes; both bodies
# below carry them.
any_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", " ", "\x00", "\ud800", "\udfff", "\u202e", "\u200f", "\ufeff", "é" * 5, "🦄", "\n\r\t"]
)
huge_digits = st.integers(20, 6000).map(lambda n: "9" * n)

PROMPTS = [
    "invert",
    "grayscale",
    "make it grayscale, then rotate 90 degrees",
    "side by side",
    "in a grid",
    "blur radius 3",
    "blur radius 100",
    "scale to 50%",
    "scale to 10000%",
    "resize to 16x16",
    "crop to 16:9",
    "crop to square",
    "make the background transparent",
    "pixelate 16",
    "rotate 45",
    "brighten by 20%",
    "contrast 1.5",
    "sepia, invert, flip vertically",
]
prompts = st.one_of(
    st.sampled_from(PROMPTS),
    st.lists(st.sampled_from(PROMPTS), min_size=1, max_size=6).map(", ".join),
    any_text,
)

GOOD: dict[str, list[Any]] = {
    "model": ["local/pillow", "pillow"],
    "n": [1, 2],
    "size": ["auto", "32x32", "64x48", "16x16"],
    "quality": ["auto", "low", "high"],
    "response_format": ["b64_json", "url"],
    "output_format": ["png", "jpeg", "webp", "jpg"],
    "output_compression": [0, 50, 100],
    "background": ["auto", "opaque", "transparent"],
    "input_fidelity": ["high", "low"],
    "partial_images": [0, 1, 3],
    "stream": [True, False],
    "user": ["user-1"],
    "moderation": ["low", "auto"],
    "seed": [0, 42],
    "width": [32, 16],
    "height": [24, 16],
    "aspect_ratio": ["16:9", "1:1", "auto", "match_input_image", "0:1", "1:0"],
    "resolution": ["1K", "2K", "4K"],
    "image_size": ["1K", "square_hd", "auto"],
}
assert set(GOOD) == set(FIELDS) - {"prompt"}, "a new field needs good values here"
OPTIONAL_FIELDS = sorted(set(FIELDS) - {"model", "prompt"})

size_text = st.from_regex(r"\A(auto|\d{1,3}x\d{1,3}|\d{5,6}x\d{1,2}|0x\d|\d+x0)\Z")

# -- JSON --------------------------------------------------------------------------------------


class Raw(str):
    """A JSON token written as is (numbers json.dumps cannot or will not write)."""


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
    st.sampled_from(["-0", "1.0e2", "0.5", "-1", "1E-400", "2e9"]).map(Raw),
)
# Tokens orjson refuses outright: rarer, or every document would stop at invalid_json.
json_breakers = st.one_of(
    huge_digits.map(Raw),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "99999999999999999999", "1e400"]).map(Raw),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)


def field_value(name: str, hostile: bool) -> st.SearchStrategy[Any]:
    """A good value for ``name``, or (when ``hostile``) anything at all."""
    if name == "prompt":
        return st.sampled_from(PROMPTS) if not hostile else prompts | json_values
    good = st.sampled_from(GOOD[name])
    if not hostile:
        return good
    wild = st.one_of(json_values, json_values, json_values, json_breakers)
    if name == "size":
        return size_text | wild
    return wild


def dump(value: Any) -> str:
    """JSON text with Raw tokens in place; surrogates as \\u escapes, NaN as NaN (invalid)."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


image_urls = st.one_of(
    st.tuples(
        image_bytes, st.sampled_from(["image/png", "image/jpeg", "", "image/gif", "text/plain"])
    ).map(lambda t: data_url(*t)),
    st.sampled_from(
        [
            "data:image/png;base64,",
            "data:image/png,abc",
            "data:image/png;base64,!!!!",
            "data:image/png;base64,   ",
            "data:;base64,iVBORw0KGgo",
            "data:image/png;base64,iVBORw0KGgo_-_-",
            "data:",
            "http://a..b/x.png",
            "http://" + "a" * 64 + ".com/x.png",
            "http://xn--zz.com/x.png",
            "http://127.0.0.1/x.png",
            "http://10.0.0.1/x.png",
            "http://[::1]/x.png",
            "http://169.254.169.254/latest",
            "https://example.com/x.png",
            "ftp://example.com/x.png",
            "file:///etc/passwd",
            "http://user:pw@example.com/x.png",
            "not a url",
            "http://",
            "http://[::1/x.png",
            "http://a%00b/x.png",
        ]
    ),
    any_text,
)
image_refs = st.one_of(
    st.fixed_dictionaries({"image_url": image_urls}),
    st.fixed_dictionaries({"file_id": any_text}),
    st.fixed_dictionaries({"image_url": image_urls, "file_id": any_text}),
    st.fixed_dictionaries({"image_url": st.fixed_dictionaries({"url": image_urls})}),
    json_values,
)


def _hostile(draw: st.DrawFn, rate: int) -> bool:
    """True ``rate`` times in 100. Mostly good values get a document past its first field into
    the sizing rules, the catalog and the engine; a few hostile ones per document, anywhere."""
    return rate > 0 and draw(st.integers(0, 99)) < rate


@st.composite
def json_documents(draw: st.DrawFn, rate: int = 15) -> str:
    """A JSON edit body: some known fields, images, a mask, an unknown key or two."""
    doc: dict[str, Any] = {}
    names = draw(st.lists(st.sampled_from(OPTIONAL_FIELDS), unique=True, max_size=8))
    for name in ["model", "prompt", *names]:
        if name in ("model", "prompt") and _hostile(draw, rate // 3):
            continue  # now and then, leave out a required field
        doc[name] = draw(field_value(name, _hostile(draw, rate)))
    good_images = st.lists(
        st.sampled_from([PNG, IMAGES["jpeg"], IMAGES["webp"], IMAGES["square"]]).map(
            lambda data: {"image_url": data_url(data, "")}
        ),
        min_size=1,
        max_size=3,
    )
    if not _hostile(draw, rate):
        doc["images"] = draw(good_images)
    elif draw(st.integers(0, 9)):  # else no images at all
        doc["images"] = draw(
            st.one_of(
                st.lists(image_refs, min_size=1, max_size=3),
                st.lists(st.just({"image_url": data_url(PNG)}), min_size=15, max_size=18),
                json_values,
            )
        )
    if draw(st.integers(0, 3)) == 0:
        doc["mask"] = draw(
            st.just({"image_url": data_url(IMAGES["mask"])})
            if not _hostile(draw, rate)
            else image_refs
        )
    if _hostile(draw, rate):
        doc[draw(any_text)] = draw(json_values)
    text = dump(doc)
    if _hostile(draw, rate // 2):
        text += draw(st.sampled_from([" garbage", "}", ",", "\x00", "]", "NaN"]))
    return text


# -- multipart ---------------------------------------------------------------------------------

Part = tuple[str, bytes, str | None]  # name, body, filename (None: a text field)


def text_bytes(value: str) -> bytes:
    # surrogatepass: a lone surrogate becomes the (invalid) UTF-8 bytes a hostile client sends
    return value.encode("utf-8", "surrogatepass")


def form_value(name: str, hostile: bool) -> st.SearchStrategy[bytes]:
    """A good value for ``name`` as a form sends it, or (when ``hostile``) any text at all."""
    listed = GOOD.get(name, ["x"])
    good = st.sampled_from([str(v).lower() if isinstance(v, bool) else str(v) for v in listed])
    if name == "prompt":
        good = st.sampled_from(PROMPTS)
    if not hostile:
        return good.map(text_bytes)
    values = (
        any_text | huge_digits | st.sampled_from(["", " ", "-1", "1e3", "0x10", "٣", "²", "NaN"])
    )
    if name == "prompt":
        values = prompts
    elif name == "size":
        values = values | size_text
    return values.map(text_bytes)


GOOD_IMAGES = [PNG, IMAGES["jpeg"], IMAGES["webp"], IMAGES["square"]]


@st.composite
def multipart_parts(draw: st.DrawFn, rate: int = 15) -> list[Part]:
    parts: list[Part] = []
    names = draw(st.lists(st.sampled_from(OPTIONAL_FIELDS), unique=True, max_size=8))
    for name in ["model", "prompt", *names]:
        if name in ("model", "prompt") and _hostile(draw, rate // 3):
            continue
        parts.append((name, draw(form_value(name, _hostile(draw, rate))), None))
    image_names = st.sampled_from(["image", "image[]", "image[0]", "image[12]"])
    if rate:
        image_names |= st.sampled_from(["image[x]", "images", "IMAGE"])
    for _ in range(draw(st.integers(0 if rate else 1, 3))):
        data = draw(image_bytes if _hostile(draw, rate) else st.sampled_from(GOOD_IMAGES))
        filename = draw(st.sampled_from(["a.png", "upload", ""]))
        parts.append((draw(image_names), data, filename))
    if _hostile(draw, rate):
        parts += [("image[]", PNG, "a.png")] * draw(st.integers(15, 18))
    if draw(st.integers(0, 3)) == 0:
        mask = draw(image_bytes) if _hostile(draw, rate) else IMAGES["mask"]
        parts.append(("mask", mask, "mask.png"))
    if _hostile(draw, rate):
        parts.append((draw(any_text), draw(st.binary(max_size=32)), draw(st.none() | any_text)))
    if _hostile(draw, rate // 2):  # a field sent twice
        parts.append(parts[draw(st.integers(0, len(parts) - 1))] if parts else ("n", b"1", None))
    return draw(st.permutations(parts))


def quote(value: str) -> bytes:
    return text_bytes(value.replace("\\", "\\\\").replace('"', '\\"'))


def multipart_body(parts: list[Part], boundary: str = "fuzzboundary") -> bytes:
    out = bytearray()
    for name, body, filename in parts:
        out += b"--" + boundary.encode() + b"\r\n"
        out += b'Content-Disposition: form-data; name="' + quote(name) + b'"'
        if filename is not None:
            out += b'; filename="' + quote(filename) + b'"'
            out += b"\r\nContent-Type: application/octet-stream"
        out += b"\r\n\r\n" + body + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return bytes(out)


@st.composite
def multipart_requests(draw: st.DrawFn, rate: int = 15) -> tuple[bytes, str]:
    """A body and its Content-Type, now and then (with ``rate`` > 0) broken on purpose."""
    parts = draw(multipart_parts(rate))
    boundary = draw(st.sampled_from(["fuzzboundary", "----WebKitFormBoundary7MA4YWxk", "x" * 70]))
    body = multipart_body(parts, boundary)
    content_type = f"multipart/form-data; boundary={boundary}"
    damage = draw(st.integers(0, 19)) if rate else -1
    if damage == 0:
        body = body[: draw(st.integers(0, len(body)))]  # truncated
    elif damage == 1:
        content_type = draw(
            st.sampled_from(
                [
                    "multipart/form-data",
                    "multipart/form-data; boundary=",
                    "multipart/form-data; boundary=other",
                    "multipart/form-data; boundary=" + "b" * 200,
                    'multipart/form-data; boundary="unterminated',
                    "multipart/form-data; boundary=é",
                    "multipart/form-data; charset=utf-8",
                ]
            )
        )
    elif damage == 2:
        cut = body.rfind(b"--" + boundary.encode() + b"--")
        body = body[:cut]  # no closing boundary
    elif damage == 3:
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.binary(min_size=1, max_size=16)) + body[at:]
    return body, content_type
