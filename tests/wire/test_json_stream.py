"""The JSON body scanner: data URLs decoded as the body streams, whatever the chunking."""

from __future__ import annotations

import base64

import orjson
import pytest
from PIL import Image

from imagegate.core.blob import FileBlob
from imagegate.core.errors import GatewayError, InvalidRequest, PayloadTooLarge
from imagegate.core.memory import MemoryGate
from imagegate.wire.json_stream import JsonBodyScanner
from imagegate.wire.limits import WireLimits
from tests import imaging

PNG = imaging.encode(Image.effect_noise((120, 90), 60).convert("RGB"), "PNG")
B64 = base64.b64encode(PNG).decode()


def scan(body: bytes, chunk: int, limits: WireLimits | None = None) -> tuple[dict, JsonBodyScanner]:
    scanner = JsonBodyScanner(limits or WireLimits(), MemoryGate(1 << 30).lease())
    for start in range(0, len(body), chunk):
        scanner.feed(body[start : start + chunk])
    return orjson.loads(scanner.finish()), scanner


def decoded(scanner: JsonBodyScanner, reference: str) -> bytes:
    url = scanner.lookup(reference)
    assert url is not None and url.failure is None and url.blob is not None
    return bytes(url.blob.view())


@pytest.mark.parametrize("chunk", [1, 3, 7, 4096, 1 << 20])
def test_data_urls_become_blobs_and_the_rest_is_kept(chunk: int) -> None:
    body = orjson.dumps(
        {
            "model": "local/pillow",
            "prompt": 'say "hi" \\ to data:, then, ok',
            "images": [
                {"image_url": f"data:image/png;base64,{B64}"},
                {"image_url": "https://example.com/cat.png"},
            ],
            "mask": {"image_url": f"data:image/png;base64,{B64}"},
        }
    )
    doc, scanner = scan(body, chunk)
    assert doc["prompt"] == 'say "hi" \\ to data:, then, ok'
    assert doc["images"][1]["image_url"] == "https://example.com/cat.png"
    assert decoded(scanner, doc["images"][0]["image_url"]) == PNG
    assert decoded(scanner, doc["mask"]["image_url"]) == PNG
    assert scanner.lookup(doc["images"][0]["image_url"]).media_type == "image/png"  # type: ignore[union-attr]
    assert len(scanner.finish()) < 400  # the base64 text is not kept


@pytest.mark.parametrize("chunk", [1, 5, 64])
def test_escaped_slashes_line_breaks_urlsafe_and_missing_padding(chunk: int) -> None:
    wrapped = "\\n".join(B64[i : i + 76] for i in range(0, len(B64), 76))  # JSON "\n" escapes
    php = B64.replace("/", "\\/")  # PHP's json_encode escapes every slash
    urlsafe = base64.urlsafe_b64encode(PNG).decode().rstrip("=")
    body = (
        '{"images": ['
        f'{{"image_url": "data:image\\/png;base64,{php}"}},'
        f'{{"image_url": "DATA:image/png;BASE64,{wrapped}"}},'
        f'{{"image_url": "data:;base64,{urlsafe}"}}'
        "]}"
    ).encode()
    doc, scanner = scan(body, chunk)
    for ref in doc["images"]:
        assert decoded(scanner, ref["image_url"]) == PNG


def test_bad_base64_is_reported_for_the_field_that_holds_it() -> None:
    body = orjson.dumps({"images": [{"image_url": "data:image/png;base64,iVBOR*w0K"}]})
    doc, scanner = scan(body, 4)
    url = scanner.lookup(doc["images"][0]["image_url"])
    assert url is not None and url.failure is not None and url.blob is None
    error = url.failure("images[0].image_url")
    assert isinstance(error, InvalidRequest)
    assert error.param == "images[0].image_url" and error.code == "invalid_base64"


@pytest.mark.parametrize("payload", ["AAAA====", "AA==AAAA", "A", "AAAA\\u0041", "AAA\\"], ids=repr)
def test_malformed_payloads_fail_cleanly(payload: str) -> None:
    body = ('{"images": [{"image_url": "data:image/png;base64,' + payload + '"}]}').encode()
    try:
        doc, scanner = scan(body, 3)
    except orjson.JSONDecodeError:
        return  # the text itself is not JSON: the parser's refusal, a 400 upstream of here
    url = scanner.lookup(doc["images"][0]["image_url"])
    assert url is not None
    assert url.failure is not None or bytes(url.blob.view())  # type: ignore[union-attr]


def test_an_image_over_the_per_image_limit_stops_decoding_and_says_so() -> None:
    limits = WireLimits(max_image_bytes=len(PNG) - 1)
    doc, scanner = scan(
        orjson.dumps({"images": [{"image_url": imaging.data_url(PNG)}]}), 999, limits
    )
    url = scanner.lookup(doc["images"][0]["image_url"])
    assert url is not None and url.failure is not None
    error = url.failure("images[0].image_url")
    assert isinstance(error, PayloadTooLarge) and error.code == "image_too_large"
    assert error.message.startswith("images[0].image_url decodes to over")


def test_images_together_over_the_request_limit_are_refused_at_once() -> None:
    limits = WireLimits(max_request_bytes=len(PNG) * 2 - 1)
    images = [{"image_url": imaging.data_url(PNG)} for _ in range(3)]
    with pytest.raises(PayloadTooLarge) as caught:
        scan(orjson.dumps({"images": images}), 4096, limits)
    assert caught.value.code == "request_too_large"


def test_large_decoded_images_spill_to_disk() -> None:
    big = imaging.encode(Image.effect_noise((600, 600), 90).convert("RGB"), "PNG")
    limits = WireLimits(spill_bytes=64 * 1024)
    doc, scanner = scan(
        orjson.dumps({"images": [{"image_url": imaging.data_url(big)}]}), 8192, limits
    )
    url = scanner.lookup(doc["images"][0]["image_url"])
    assert url is not None and isinstance(url.blob, FileBlob)
    assert bytes(url.blob.view()) == big


def test_text_outside_data_urls_is_capped() -> None:
    limits = WireLimits(max_json_text_bytes=10_000)
    body = orjson.dumps({"prompt": "x" * 20_000})
    with pytest.raises(PayloadTooLarge) as caught:
        scan(body, 4096, limits)
    assert "outside its base64 data URLs" in caught.value.message


def test_a_forged_reference_resolves_to_nothing() -> None:
    _doc, scanner = scan(orjson.dumps({"images": [{"image_url": imaging.data_url(PNG)}]}), 64)
    assert scanner.lookup("blob:0000000000000000:0") is None
    assert scanner.lookup(scanner.reference_prefix + "7") is None
    assert scanner.lookup(scanner.reference_prefix + "x") is None


def test_non_base64_data_urls_stay_text_for_the_strict_decoder() -> None:
    doc, scanner = scan(b'{"images": [{"image_url": "data:image/png,rawbytes"}]}', 2)
    assert doc["images"][0]["image_url"] == "data:image/png,rawbytes"
    assert scanner.urls == []


def test_gateway_errors_only() -> None:
    """Whatever the bytes, the scanner raises nothing but gateway errors (or leaves the text
    for orjson to refuse)."""
    samples = [b'"', b'{"a": "data:', b'"data:x;base64,\\', b"\\\\\\", b'{"x":"\\u00', b"\xff\xfe"]
    for body in samples:
        scanner = JsonBodyScanner(WireLimits(), MemoryGate(1 << 20).lease())
        try:
            scanner.feed(body)
            scanner.finish()
        except GatewayError:
            pass
