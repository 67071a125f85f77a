"""Both wire shapes into one EditRequest, without a server: bodies built as clients build them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from imagegate.core.errors import GatewayError, InvalidRequest, PayloadTooLarge
from imagegate.core.memory import unlimited_lease
from imagegate.core.request import EditRequest
from imagegate.wire.body import read_edit_request
from imagegate.wire.fields import FIELDS, coerce
from imagegate.wire.limits import WireLimits
from tests import imaging
from tests.support.requests import multipart

LIMITS = WireLimits()


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def parse(
    content_type: str,
    body: bytes,
    *,
    chunk: int = 7,
    limits: WireLimits = LIMITS,
    default_model: str | None = None,
    fetcher=None,
) -> EditRequest:
    return asyncio.run(
        read_edit_request(
            content_type,
            len(body),
            _chunks(body, chunk),
            limits=limits,
            lease=unlimited_lease(),
            fetcher=fetcher,
            default_model=default_model,
        )
    )


def refused(content_type: str, body: bytes, **kwargs) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        parse(content_type, body, **kwargs)
    return caught.value


# -- multipart ------------------------------------------------------------------------------


def test_sdk_style_single_image_and_every_text_field() -> None:
    fields = {
        "model": "local/pillow",
        "prompt": "invert",
        "n": "2",
        "size": "1024x1024",
        "quality": "high",
        "response_format": "url",
        "output_format": "webp",
        "output_compression": "80",
        "background": "opaque",
        "input_fidelity": "high",
        "partial_images": "2",
        "stream": "true",
        "user": "user-1",
        "moderation": "low",
        "seed": "42",
        "width": "100",
        "height": "50",
        "aspect_ratio": "2:1",
        "resolution": "1k",
        "image_size": "square_hd",
    }
    ctype, body = multipart(fields, [("image", ("a.png", imaging.png(), "image/png"))])
    req = parse(ctype, body)
    assert req.model == "local/pillow" and req.prompt == "invert"
    assert (req.n, req.stream, req.partial_images, req.seed) == (2, True, 2, 42)
    assert req.output.response_format == "url" and req.output.output_format == "webp"
    assert req.output.output_compression == 80 and req.output.background == "opaque"
    assert req.output.quality == "high" and req.input_fidelity == "high"
    assert req.moderation == "low" and req.user == "user-1"
    assert req.sizing.size == "1024x1024" and (req.sizing.width, req.sizing.height) == (100, 50)
    assert req.sizing.aspect_ratio == "2:1" and req.sizing.resolution == "1K"
    assert req.sizing.image_size == "square_hd"
    assert req.images[0].format == "png" and req.images[0].filename == "a.png"
    assert req.images[0].param == "image[0]"


@pytest.mark.parametrize("name", ["image[]", "image", "image[0]"])
def test_every_spelling_of_several_images_keeps_order(name: str) -> None:
    files = [
        (name, ("a.png", imaging.png(10, 10), "image/png")),
        (name, ("b.jpg", imaging.jpeg(20, 10), "image/jpeg")),
        (name, ("upload", imaging.webp(30, 10), "application/octet-stream")),
    ]
    ctype, body = multipart({"model": "m/x", "prompt": "p"}, files)
    req = parse(ctype, body)
    assert [(i.format, i.width) for i in req.images] == [("png", 10), ("jpeg", 20), ("webp", 30)]


def test_declared_type_and_filename_are_ignored() -> None:
    ctype, body = multipart(
        {"model": "m/x", "prompt": "p"}, [("image", ("cat.png", imaging.jpeg(), "image/png"))]
    )
    assert parse(ctype, body).images[0].format == "jpeg"


def test_mask_and_unknown_fields() -> None:
    ctype, body = multipart(
        {"model": "m/x", "prompt": "p", "svg[model]": "x", "safety_identifier": "abc"},
        [
            ("image", ("a.png", imaging.png(), "image/png")),
            ("mask", ("m.png", imaging.mask_left_half(), "image/png")),
            ("markup", ("o.png", imaging.png(), "image/png")),
        ],
    )
    req = parse(ctype, body)
    assert req.mask is not None and req.mask.info.has_alpha
    assert req.extra == {"svg[model]": "x", "safety_identifier": "abc"}


def test_parts_split_across_every_chunk_boundary() -> None:
    ctype, body = multipart(
        {"model": "m/x", "prompt": "p"}, [("image[]", ("a.png", imaging.png(), "image/png"))] * 2
    )
    for chunk in (1, 3, 64, 4096, len(body)):
        assert len(parse(ctype, body, chunk=chunk).images) == 2


def test_empty_optional_fields_are_absent_but_empty_prompt_is_not() -> None:
    ctype, body = multipart(
        {"model": "m/x", "prompt": "p", "size": "", "n": ""},
        [("image", ("a.png", imaging.png(), "image/png"))],
    )
    req = parse(ctype, body)
    assert req.n == 1 and req.sizing.size is None
    ctype, body = multipart(
        {"model": "m/x", "prompt": ""}, [("image", ("a.png", imaging.png(), "image/png"))]
    )
    assert refused(ctype, body).param == "prompt"


def test_default_model_fills_a_missing_model() -> None:
    ctype, body = multipart({"prompt": "p"}, [("image", ("a", imaging.png(), "image/png"))])
    assert refused(ctype, body).param == "model"
    assert parse(ctype, body, default_model="local/pillow").model == "local/pillow"


@pytest.mark.parametrize(
    ("fields", "param", "needle"),
    [
        ({"n": "two"}, "n", "integer"),
        ({"n": "0"}, "n", "at least 1"),
        ({"n": "11"}, "n", "at most 10"),
        ({"stream": "maybe"}, "stream", "true or false"),
        ({"size": "big"}, "size", "WIDTHxHEIGHT"),
        ({"output_format": "gif"}, "output_format", "png, jpeg, webp"),
        ({"output_compression": "101"}, "output_compression", "at most 100"),
        ({"partial_images": "4"}, "partial_images", "at most 3"),
        ({"background": "green"}, "background", "transparent"),
        ({"aspect_ratio": "wide"}, "aspect_ratio", "W:H"),
        ({"resolution": "huge"}, "resolution", "1K"),
        ({"quality": "ultra"}, "quality", "one of"),
        ({"seed": "-1"}, "seed", "at least 0"),
        ({"width": "1e3"}, "width", "integer"),
        ({"aspect_ratio": "0:5"}, "aspect_ratio", "above 0"),
        ({"aspect_ratio": "16:0"}, "aspect_ratio", "above 0"),
        ({"size": "x" * 5000}, "size", "..."),  # the echo of a bad value is cut short
    ],
)
def test_bad_text_fields_name_the_field(fields: dict, param: str, needle: str) -> None:
    ctype, body = multipart(
        {"model": "m/x", "prompt": "p", **fields},
        [("image", ("a.png", imaging.png(), "image/png"))],
    )
    err = refused(ctype, body)
    assert isinstance(err, InvalidRequest) and err.status == 400
    assert err.param == param
    assert needle in err.message
    assert len(err.message) < 300


def test_output_format_jpg_is_understood() -> None:
    ctype, body = multipart(
        {"model": "m/x", "prompt": "p", "output_format": "jpg"},
        [("image", ("a.png", imaging.png(), "image/png"))],
    )
    assert parse(ctype, body).output.output_format == "jpeg"


def test_duplicate_text_field_is_refused() -> None:
    ctype, body = multipart(
        [("model", "m/x"), ("prompt", "a"), ("prompt", "b")],
        [("image", ("a.png", imaging.png(), "image/png"))],
    )
    err = refused(ctype, body)
    assert err.param == "prompt" and err.code == "duplicate_field"


def test_no_image() -> None:
    ctype, body = multipart({"model": "m/x", "prompt": "p", "x": "y"})
    err = refused(ctype, body)
    assert err.param == "image" and err.code == "missing_required_parameter"


def test_too_many_images_stops_at_the_wire_limit() -> None:
    files = [("image[]", ("a.png", imaging.png(8, 8), "image/png"))] * 5
    ctype, body = multipart({"model": "m/x", "prompt": "p"}, files)
    err = refused(ctype, body, limits=WireLimits(max_images=4))
    assert err.code == "too_many_images" and "at most 4" in err.message


def test_an_image_over_the_byte_limit_is_refused_while_streaming() -> None:
    ctype, body = multipart(
        {"model": "m/x", "prompt": "p"}, [("image", ("a.png", imaging.png(200, 200), "image/png"))]
    )
    err = refused(ctype, body, limits=WireLimits(max_image_bytes=300))
    assert isinstance(err, PayloadTooLarge) and err.param == "image[0]"
    assert "300 bytes" in err.message


def test_a_mask_over_the_byte_limit_is_named_as_the_mask() -> None:
    small = imaging.png(8, 8)
    big_mask = imaging.encode(imaging.Image.effect_noise((64, 64), 80).convert("RGBA"), "PNG")
    ctype, body = multipart(
        {"model": "m/x", "prompt": "p"},
        [("image", ("a.png", small, "image/png")), ("mask", ("m.png", big_mask, "image/png"))],
    )
    err = refused(ctype, body, limits=WireLimits(max_image_bytes=len(small) + 10))
    assert isinstance(err, PayloadTooLarge) and err.param == "mask"


def test_body_over_the_request_limit() -> None:
    ctype, body = multipart(
        {"model": "m/x", "prompt": "p"}, [("image", ("a.png", imaging.png(), "image/png"))]
    )
    err = refused(ctype, body, limits=WireLimits(max_request_bytes=500))
    assert err.status == 413 and err.code == "request_too_large"


def test_oversized_text_field() -> None:
    ctype, body = multipart(
        {"model": "m/x", "prompt": "x" * 300_000},
        [("image", ("a.png", imaging.png(), "image/png"))],
    )
    err = refused(ctype, body)
    assert err.status == 413 and err.param == "prompt"


def test_truncated_body_is_reported_as_truncated() -> None:
    ctype, body = multipart(
        {"model": "m/x", "prompt": "p"}, [("image", ("a.png", imaging.png(), "image/png"))]
    )
    err = refused(ctype, body[:-30])
    assert err.code == "invalid_multipart" and "truncated" in err.message


@pytest.mark.parametrize(
    ("ctype", "body", "needle"),
    [
        ("multipart/form-data", b"--x\r\n", "boundary"),
        ("multipart/form-data; boundary=abc", b"garbage without a boundary", "malformed"),
        (
            "multipart/form-data; boundary=abc",
            b"--abc\r\nContent-Type: text/plain\r\n\r\nvalue\r\n--abc--\r\n",
            "Content-Disposition",
        ),
        (
            "multipart/form-data; boundary=abc",
            b"--abc\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--abc--\r\n",
            "no name",
        ),
        (
            "multipart/form-data; boundary=abc",
            b'--abc\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n'
            b"\xff\xfe\r\n--abc--\r\n",
            "UTF-8",
        ),
    ],
)
def test_malformedmultipart(ctype: str, body: bytes, needle: str) -> None:
    err = refused(ctype, body)
    assert err.status == 400 and needle in err.message


def test_huge_part_header_is_refused() -> None:
    name = "n" * 20_000
    body = (
        b'--abc\r\nContent-Disposition: form-data; name="'
        + name.encode()
        + b'"\r\n\r\nv\r\n--abc--\r\n'
    )
    err = refused("multipart/form-data; boundary=abc", body)
    assert err.status == 400


def test_wrong_content_type_is_415() -> None:
    err = refused("text/plain", b"model=x")
    assert err.status == 415 and "multipart/form-data or application/json" in err.message
    assert refused("", b"").status == 415


# -- JSON -------------------------------------------------------------------------------------


def _json(doc: object) -> tuple[str, bytes]:
    return "application/json", orjson.dumps(doc)


def test_json_body_with_data_urls() -> None:
    doc = {
        "model": "local/pillow",
        "prompt": "invert",
        "n": 2,
        "stream": True,
        "images": [
            {"image_url": imaging.data_url(imaging.png())},
            {"image_url": {"url": imaging.data_url(imaging.jpeg(), "image/jpeg")}},
        ],
        "mask": {"image_url": imaging.data_url(imaging.mask_left_half())},
        "output_compression": None,
        "metadata": {"team": "a"},
    }
    req = parse(*_json(doc), chunk=1000)
    assert [i.format for i in req.images] == ["png", "jpeg"]
    assert req.images[1].param == "images[1].image_url"
    assert req.mask is not None and req.n == 2 and req.stream is True
    assert req.output.output_compression is None
    assert req.metadata == {"team": "a"} and req.extra == {}  # metadata is never forwarded


@pytest.mark.parametrize(
    ("doc", "param", "code"),
    [
        ({"images": "x"}, "images", "invalid_type"),
        ({"images": []}, "images", "missing_required_parameter"),
        ({"images": [{}]}, "images[0]", "invalid_value"),
        ({"images": [{"image_url": "a", "file_id": "b"}]}, "images[0]", "invalid_value"),
        ({"images": [{"url": "a"}]}, "images[0]", "unknown_parameter"),
        ({"images": [{"file_id": "file-abc"}]}, "images[0].file_id", "file_ids_not_enabled"),
        ({"images": [{"image_url": 5}]}, "images[0].image_url", "invalid_type"),
        ({"image": "data:..."}, "image", "unknown_parameter"),
        (
            {"images": [{"image_url": "data:image/png;base64,!!!"}]},
            "images[0].image_url",
            "invalid_base64",
        ),
        (
            {"images": [{"image_url": "data:image/png,plain"}]},
            "images[0].image_url",
            "invalid_data_url",
        ),
        ({"n": "2"}, "n", "invalid_type"),
        ({"stream": "true"}, "stream", "invalid_type"),
        ({"prompt": 7}, "prompt", "invalid_type"),
    ],
)
def test_bad_json_bodies(doc: dict, param: str, code: str) -> None:
    base = {
        "model": "m/x",
        "prompt": "p",
        "images": [{"image_url": imaging.data_url(imaging.png())}],
    }
    err = refused(*_json({**base, **doc}))
    assert (err.param, err.code) == (param, code)
    assert err.status == 400


def test_data_url_whose_type_lies_about_its_bytes() -> None:
    doc = {
        "model": "m/x",
        "prompt": "p",
        "images": [{"image_url": imaging.data_url(imaging.jpeg(), "image/png")}],
    }
    err = refused(*_json(doc))
    assert err.code == "mismatched_media_type" and "JPEG" in err.message
    # A generic type says nothing, so it is not a lie.
    doc["images"] = [{"image_url": imaging.data_url(imaging.jpeg(), "application/octet-stream")}]
    assert parse(*_json(doc)).images[0].format == "jpeg"


def test_data_url_over_the_image_limit_is_refused_before_decoding() -> None:
    doc = {
        "model": "m/x",
        "prompt": "p",
        "images": [{"image_url": "data:image/png;base64," + "A" * 4000}],
    }
    err = refused(*_json(doc), limits=WireLimits(max_image_bytes=1000))
    assert err.status == 413


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b'{"model": "x",}', b"\xff\xfe"])
def test_broken_json(raw: bytes) -> None:
    err = refused("application/json", raw)
    assert err.status == 400 and err.code == "invalid_json"


def test_http_urls_need_a_fetcher() -> None:
    doc = {"model": "m/x", "prompt": "p", "images": [{"image_url": "https://example.com/a"}]}
    err = refused(*_json(doc))
    assert err.code == "image_url_disabled"


def test_precheck_runs_before_any_image_is_loaded() -> None:
    seen: list[tuple[str, int]] = []

    class NeverFetch:
        async def fetch(self, url: str, *, param: str) -> bytes:
            raise AssertionError("fetched before the precheck")

    def precheck(fields, count: int) -> None:
        seen.append((fields.model, count))
        raise InvalidRequest("no such model", param="model")

    doc = {"model": "m/x", "prompt": "p", "images": [{"image_url": "https://example.com/a"}] * 3}
    with pytest.raises(InvalidRequest):
        asyncio.run(
            read_edit_request(
                "application/json",
                None,
                _chunks(orjson.dumps(doc), 100),
                limits=LIMITS,
                lease=unlimited_lease(),
                fetcher=NeverFetch(),
                default_model=None,
                precheck=precheck,
            )
        )
    assert seen == [("m/x", 3)]


def test_every_field_has_a_coercion() -> None:
    # The table covers every documented field; a string and a JSON value coerce the same way.
    for name in (
        "model",
        "prompt",
        "n",
        "size",
        "quality",
        "response_format",
        "output_format",
        "output_compression",
        "background",
        "input_fidelity",
        "partial_images",
        "stream",
        "user",
        "moderation",
        "seed",
        "width",
        "height",
        "aspect_ratio",
        "resolution",
        "image_size",
    ):
        assert name in FIELDS
    assert coerce(FIELDS["n"], "3", from_json=False) == coerce(FIELDS["n"], 3, from_json=True)
    assert coerce(FIELDS["stream"], "false", from_json=False) is False
