"""Bounded work through a real gateway: spilled uploads, the in-flight memory cap, slow
clients, and large answers sent in pieces."""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from PIL import Image

from tests import imaging
from tests.server import Gateway
from tests.support import schema
from tests.support.envelope import error_of

SPILL = 1 << 20


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Small limits so the bounds show with small images."""
    env = {
        "IMAGEGATE_SPILL_IMAGE_BYTES": str(SPILL),
        "IMAGEGATE_MAX_INFLIGHT_BYTES": "3000000",
        "IMAGEGATE_BODY_TIMEOUT_SECONDS": "6",
        "IMAGEGATE_BODY_RATE_GRACE_SECONDS": "1",
        "IMAGEGATE_BODY_MIN_RATE_BYTES": "100000",
    }
    with Gateway(tmp_path_factory.mktemp("bounded"), env=env) as running:
        yield running


def noise_png(width: int, height: int) -> bytes:
    """Random RGB pixels: a PNG that does not compress, about width*height*3 bytes."""
    return imaging.encode(Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)))


def _held_bytes(gateway: Gateway, request_id: str) -> int:
    lines = gateway.log_lines(lambda line: line.get("request_id") == request_id)
    assert lines, f"no log line for {request_id}"
    return int(lines[0].get("held_bytes", 0))


def _edit(
    gateway: Gateway, request_id: str, headers: dict[str, str] | None = None, **kwargs: object
) -> httpx.Response:
    return httpx.post(
        gateway.base_url + "/v1/images/edits",
        headers={"x-request-id": request_id, **(headers or {})},
        timeout=60,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_large_upload_is_held_on_disk_not_in_memory(bounded: Gateway) -> None:
    big = noise_png(1000, 850)  # ~2.5 MB: over the 1 MiB spill threshold
    response = _edit(
        bounded,
        "req_spill_multipart",
        data={"model": "local/pillow", "prompt": "invert"},
        files={"image": ("big.png", big, "image/png")},
    )
    assert response.status_code == 200, response.text
    doc = schema.assert_images_response(response.content)
    out = imaging.decode_b64(doc["data"][0]["b64_json"]).convert("RGB")
    source = imaging.decode(big)
    assert out.size == source.size
    assert out.getpixel((5, 5)) == tuple(255 - c for c in source.getpixel((5, 5)))
    assert _held_bytes(bounded, "req_spill_multipart") <= SPILL + 64 * 1024


def test_a_large_data_url_is_decoded_to_disk_as_it_arrives(bounded: Gateway) -> None:
    big = noise_png(1000, 850)
    doc = {
        "model": "local/pillow",
        "prompt": "invert",
        "images": [{"image_url": imaging.data_url(big)}],
    }
    response = _edit(
        bounded,
        "req_spill_json",
        content=orjson.dumps(doc),
        headers={"content-type": "application/json", "x-request-id": "req_spill_json"},
    )
    assert response.status_code == 200, response.text
    doc = schema.assert_images_response(response.content)
    assert imaging.decode_b64(doc["data"][0]["b64_json"]).size == (1000, 850)
    # Neither the 3.4 MB of base64 text nor the decoded image were held in memory.
    assert _held_bytes(bounded, "req_spill_json") <= SPILL + 64 * 1024


def test_over_the_inflight_cap_is_503_with_retry_after_and_then_serves(bounded: Gateway) -> None:
    parts = [("image[]", (f"{i}.png", noise_png(500, 500), "image/png")) for i in range(4)]
    # Four 750 KB images, each under the spill threshold: 3 MB in memory, over the 3 MB cap.
    response = _edit(
        bounded, "req_busy", data={"model": "local/pillow", "prompt": "grid"}, files=parts
    )
    error = error_of(response, 503, request_id="req_busy")
    assert response.headers["retry-after"].isdigit()
    assert error["code"] == "server_busy" and "IMAGEGATE_MAX_INFLIGHT_BYTES" in error["message"]
    # What it held was given back: the same gateway takes the next request.
    ok = _edit(
        bounded,
        "req_after_busy",
        data={"model": "local/pillow", "prompt": "grid"},
        files=parts[:2],
    )
    assert ok.status_code == 200, ok.text
    schema.assert_images_response(ok.content)


def _raw_upload(gateway: Gateway, declared: int, send: Iterator[bytes]) -> tuple[bytes, float]:
    """Send headers for a ``declared``-byte multipart body, then what ``send`` yields (with
    its own pauses), and read whatever the gateway answers."""
    boundary = "bnd"
    head = (
        "POST /v1/images/edits HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {declared}\r\nx-request-id: req_slow\r\n\r\n"
    ).encode()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=20) as sock:
        sock.sendall(head)
        try:
            for piece in send:
                sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(20)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer, time.monotonic() - started


def _first_part(size: int) -> bytes:
    return (
        b'--bnd\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + b"\x89PNG" + b"\x00" * size
    )


def test_a_client_that_stalls_mid_upload_gets_408_and_is_closed(bounded: Gateway) -> None:
    def stall() -> Iterator[bytes]:
        yield _first_part(200_000)  # then never sends the rest, and keeps the socket open

    answer, elapsed = _raw_upload(bounded, 5_000_000, stall())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"x-request-id: req_slow" in head.lower()
    error = orjson.loads(body)["error"]
    assert error["code"] == "request_timeout" and "too slowly" in error["message"]
    # Answered after the 1 s grace, well before the 6 s body deadline, and the gateway closed
    # the connection itself (the read above ended).
    assert elapsed < 5


def test_a_client_that_trickles_gets_408(bounded: Gateway) -> None:
    def trickle() -> Iterator[bytes]:
        yield _first_part(1000)
        for _ in range(40):  # 1 KB every 0.1 s: 10 KB/s, far under 100 KB/s
            time.sleep(0.1)
            yield b"\x00" * 1000

    answer, _ = _raw_upload(bounded, 5_000_000, trickle())
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request_timeout" in answer


def test_a_large_answer_is_sent_in_pieces_with_its_length(gateway: Gateway) -> None:
    source = noise_png(700, 700)  # ~1.5 MB out; n=2 makes a ~4 MB JSON body
    response = httpx.post(
        gateway.base_url + "/v1/images/edits",
        data={"model": "local/pillow", "prompt": "invert", "n": "2"},
        files={"image": ("a.png", source, "image/png")},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert int(response.headers["content-length"]) == len(response.content) > 2 << 20
    body = schema.assert_images_response(response.content)
    assert body["size"] == "700x700"
    first, second = (base64.b64decode(item["b64_json"]) for item in body["data"])
    assert first == second
    assert imaging.decode(first).getpixel((0, 0)) == tuple(
        255 - c for c in imaging.decode(source).getpixel((0, 0))
    )


def test_a_data_url_in_another_field_is_refused(gateway: Gateway) -> None:
    doc = {
        "model": "local/pillow",
        "prompt": imaging.data_url(imaging.png()),
        "images": [{"image_url": imaging.data_url(imaging.png())}],
    }
    response = httpx.post(gateway.base_url + "/v1/images/edits", json=doc, timeout=30)
    error = error_of(response, 400)
    assert error["param"] == "prompt" and "data URL" in error["message"]


def test_an_edit_whose_client_has_gone_stops(gateway: Gateway) -> None:
    """A plain (non-stream) edit is cancelled when its client disconnects, instead of
    rendering for nobody: its log line is a 499 that ends long before the render would."""
    source = noise_png(2400, 2400)
    form = {"model": "local/pillow", "prompt": "blur radius 30, sharpen, emboss, find edges"}
    full = _edit(gateway, "req_full_render", data=form, files={"image": ("a.png", source)})
    assert full.status_code == 200, full.text
    schema.assert_images_response(full.content)
    full_ms = _log_line(gateway, "req_full_render")["latency_ms"]

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            gateway.base_url + "/v1/images/edits",
            headers={"x-request-id": "req_gone"},
            data=form,
            files={"image": ("a.png", source)},
            timeout=httpx.Timeout(60, read=0.3),  # then the client closes the connection
        )
    gone = _log_line(gateway, "req_gone", timeout=30)
    assert gone["status"] == 499
    assert gone["latency_ms"] < full_ms * 0.75, (gone["latency_ms"], full_ms)


def _log_line(gateway: Gateway, request_id: str, timeout: float = 5.0) -> dict:
    lines = gateway.log_lines(
        lambda line: line.get("request_id") == request_id and line.get("msg") == "request",
        timeout=timeout,
    )
    assert lines, f"no log line for {request_id}"
    return lines[0]


def test_each_answer_says_what_the_gateway_added_around_the_provider(gateway: Gateway) -> None:
    response = _edit(
        gateway,
        "req_overhead",
        data={"model": "local/pillow", "prompt": "invert"},
        files={"image": ("a.png", imaging.png(), "image/png")},
    )
    assert response.status_code == 200, response.text
    header = float(response.headers["x-imagegate-overhead-ms"])
    line = _log_line(gateway, "req_overhead")
    assert 0 <= header <= line["overhead_ms"] <= line["latency_ms"]
    assert line["upstream_ms"] > 0
    assert line["overhead_ms"] + line["upstream_ms"] <= line["latency_ms"] + 0.1
