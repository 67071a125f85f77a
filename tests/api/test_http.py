"""Raw HTTP against a running gateway: curl, hand-built multipart and JSON, and the envelope."""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import orjson

from tests import imaging
from tests.api.conftest import MASTER_KEY
from tests.imaging import BLUE, RED
from tests.server import Gateway
from tests.support import schema, tools
from tests.support.envelope import error_of
from tests.support.requests import post_edit

README = Path(__file__).resolve().parents[2] / "README.md"


def _curl(gateway: Gateway, *args: str) -> dict:
    """An edit sent with curl; its 200 body checked against OpenAI's ImagesResponse."""
    tools.require("curl")
    done = subprocess.run(
        ["curl", "-sS", "--fail-with-body", f"{gateway.base_url}/v1/images/edits", *args],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return schema.assert_images_response(done.stdout)


def test_curl_image_list(gateway: Gateway, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(imaging.png(40, 30, background=RED))
    (tmp_path / "b.png").write_bytes(imaging.png(40, 30, background=BLUE))
    body = _curl(
        gateway,
        "-F",
        "model=local/pillow",
        "-F",
        "prompt=side by side",
        "-F",
        f"image[]=@{tmp_path / 'a.png'}",
        "-F",
        f"image[]=@{tmp_path / 'b.png'}",
    )
    out = imaging.decode_b64(body["data"][0]["b64_json"]).convert("RGB")
    assert out.size == (80, 30)
    assert out.getpixel((0, 0)) == RED and out.getpixel((79, 0)) == BLUE


def test_curl_single_image_and_repeated_image(gateway: Gateway, tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(imaging.png())
    single = _curl(
        gateway, "-F", "model=local/pillow", "-F", "prompt=invert", "-F", f"image=@{path}"
    )
    assert imaging.decode_b64(single["data"][0]["b64_json"]).convert("RGB").getpixel(
        (0, 0)
    ) == tuple(255 - c for c in RED)
    repeated = _curl(
        gateway,
        "-F",
        "model=local/pillow",
        "-F",
        "prompt=stack vertically",
        "-F",
        f"image=@{path}",
        "-F",
        f"image=@{path}",
    )
    assert imaging.decode_b64(repeated["data"][0]["b64_json"]).size == (64, 96)


def test_curl_json_body(gateway: Gateway) -> None:
    doc = {
        "model": "local/pillow",
        "prompt": "grayscale",
        "images": [{"image_url": imaging.data_url(imaging.png())}],
    }
    body = _curl(gateway, "-H", "Content-Type: application/json", "-d", orjson.dumps(doc).decode())
    assert imaging.is_grey(
        imaging.decode_b64(body["data"][0]["b64_json"]).convert("RGB").getpixel((0, 0))
    )


def test_json_body_with_mask_and_stream(gateway: Gateway) -> None:
    doc = {
        "model": "local/pillow",
        "prompt": "invert",
        "stream": True,
        "partial_images": 1,
        "images": [{"image_url": imaging.data_url(imaging.png())}],
        "mask": {"image_url": imaging.data_url(imaging.mask_left_half())},
    }
    with httpx.stream(
        "POST", gateway.base_url + "/v1/images/edits", json=doc, timeout=30
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"]
        assert response.headers["x-imagegate-provider"] == "local"  # as a JSON answer has it
        text = response.read().decode()
    assert "[DONE]" not in text
    events = schema.assert_stream(text)
    assert [event.name for event in events] == [
        "image_edit.partial_image",
        "image_edit.completed",
    ]
    out = imaging.decode_b64(events[-1].data["b64_json"]).convert("RGB")
    assert out.getpixel((1, 1)) == tuple(255 - c for c in RED)  # masked-in: edited
    assert out.getpixel((62, 1)) == RED  # masked-out: untouched


def test_client_request_id_is_echoed(gateway: Gateway) -> None:
    response = httpx.get(gateway.base_url + "/v1/models", headers={"x-request-id": "lb-1234"})
    assert response.headers["x-request-id"] == "lb-1234"
    hostile = httpx.get(gateway.base_url + "/v1/models", headers={"x-request-id": "a b\tc"})
    assert hostile.headers["x-request-id"].startswith("req_")


def test_client_address_from_a_trusted_proxy_is_logged(gateway: Gateway) -> None:
    # The gateway believes X-Forwarded-For from 127.0.0.1 (IMAGEGATE_FORWARDED_ALLOW_IPS).
    httpx.get(
        gateway.base_url + "/v1/models",
        headers={"x-forwarded-for": "203.0.113.7", "x-request-id": "fwd-check-1"},
    )
    (line,) = gateway.log_lines(lambda line: line.get("request_id") == "fwd-check-1")
    assert line["client"] == "203.0.113.7"


def test_models_endpoint_describes_capabilities(gateway: Gateway) -> None:
    body = httpx.get(gateway.base_url + "/v1/models").json()
    assert body["object"] == "list"
    pillow = next(m for m in body["data"] if m["id"] == "local/pillow")
    assert pillow["edit"] == {
        "supported": True,
        "max_reference_images": 16,
        "mask": True,
        "mask_emulation": False,
    }
    assert pillow["sizing"]["style"] == "pixels"
    assert pillow["sizing"]["custom"]["max_side"] == 4096
    assert pillow["n"] == {"min": 1, "max": 4}
    assert pillow["pricing"]["per_image"] == 0.0
    assert pillow["aliases"] == ["pillow"]
    one = httpx.get(gateway.base_url + "/v1/models/local/pillow").json()
    assert one["id"] == "local/pillow" and one["object"] == "model"


def test_unknown_path_and_method(gateway: Gateway) -> None:
    err = error_of(httpx.get(gateway.base_url + "/v1/nothing"), 404)
    assert "/v1/nothing" in err["message"]
    err = error_of(httpx.get(gateway.base_url + "/v1/images/edits"), 405)
    assert err["type"] == "invalid_request_error"


def test_unknown_model_by_path(gateway: Gateway) -> None:
    err = error_of(httpx.get(gateway.base_url + "/v1/models/acme/none"), 404)
    assert err["code"] == "model_not_found"


def test_wrong_content_type(gateway: Gateway) -> None:
    response = httpx.post(
        gateway.base_url + "/v1/images/edits", data={"model": "local/pillow", "prompt": "x"}
    )
    err = error_of(response, 415)
    assert "multipart/form-data" in err["message"]


def test_declared_body_over_the_limit_is_refused_before_reading(team_gateway: Gateway) -> None:
    # The team gateway's limit is the default 128 MiB per request; claim more than that.
    # httpx will not send a lying Content-Length, so speak HTTP on a socket.
    head = (
        f"POST /v1/images/edits HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {MASTER_KEY}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {200 * 1_048_576}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", team_gateway.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"--x\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"x-request-id" in headers.lower()
    assert orjson.loads(body)["error"]["code"] == "request_too_large"


def test_client_that_disconnects_mid_upload_costs_nothing(gateway: Gateway) -> None:
    request_id = "disconnect-mid-upload-1"
    head = (
        "POST /v1/images/edits HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        "Content-Length: 5000000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(
            head.encode() + b'--x\r\nContent-Disposition: form-data; name="image"; '
            b'filename="a.png"\r\n\r\n' + imaging.png()[:100]
        )
    (line,) = gateway.log_lines(
        lambda line: line.get("request_id") == request_id and line.get("msg") == "request",
        timeout=10,
    )
    assert line["status"] == 499  # logged as nginx does: the client closed the request
    ours = gateway.log_lines(lambda line: line.get("request_id") == request_id, timeout=0)
    assert [entry["msg"] for entry in ours] == ["request"]  # no "unhandled error" beside it
    assert httpx.get(gateway.base_url + "/healthz").status_code == 200


def test_missing_fields_are_400_never_422(gateway: Gateway) -> None:
    response = httpx.post(
        gateway.base_url + "/v1/images/edits",
        files={"image": ("a.png", imaging.png(), "image/png")},
    )
    err = error_of(response, 400)
    assert err["param"] == "model"
    response = httpx.post(gateway.base_url + "/v1/images/edits", json={"model": "local/pillow"})
    assert error_of(response, 400)["param"] == "prompt"


def test_healthz_and_readyz(gateway: Gateway) -> None:
    assert httpx.get(gateway.base_url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(gateway.base_url + "/readyz").json()
    assert ready["status"] == "ready" and ready["providers"] == ["local"]


def test_health_needs_no_key_but_v1_does(team_gateway: Gateway) -> None:
    assert httpx.get(team_gateway.base_url + "/healthz").status_code == 200
    err = error_of(httpx.get(team_gateway.base_url + "/v1/models"), 401)
    assert err["code"] == "missing_api_key" and "Bearer" in err["message"]
    err = error_of(
        httpx.get(team_gateway.base_url + "/v1/models", headers={"authorization": "Basic abc"}), 401
    )
    assert err["code"] == "invalid_api_key"


def test_the_key_comes_before_not_found_under_v1(team_gateway: Gateway) -> None:
    base = team_gateway.base_url
    wrong = {"authorization": "Bearer not-the-key"}
    right = {"authorization": f"Bearer {MASTER_KEY}"}
    for method, path in [
        ("GET", "/v1/nothing"),
        ("POST", "/v1/images/generations"),
        ("GET", "/v1/images/edits"),  # a known path, the wrong method
        ("GET", "/v1"),
    ]:
        missing = error_of(httpx.request(method, base + path), 401)
        assert missing["code"] == "missing_api_key", (method, path)
        assert error_of(httpx.request(method, base + path, headers=wrong), 401)["code"] == (
            "invalid_api_key"
        )
    # With the key, the path's own answer.
    assert "/v1/nothing" in error_of(httpx.get(base + "/v1/nothing", headers=right), 404)["message"]
    error_of(httpx.get(base + "/v1/images/edits", headers=right), 405)
    # Outside /v1 there is nothing to protect: an unknown path is a 404 with or without a key.
    assert error_of(httpx.get(base + "/nothing"), 404)["code"] == "unknown_url"
    assert httpx.get(base + "/readyz").status_code == 200


def test_the_readme_error_example_is_what_the_gateway_says(gateway: Gateway) -> None:
    readme = README.read_text()
    block = re.search(r"```json\n(\{\"error\".*?)\n```", readme, re.S)
    assert block, "the README has no error example"
    documented = orjson.loads(block.group(1))["error"]
    assert "17 images in one request get" in readme  # what the example says it shows
    response = post_edit(gateway.base_url, *[imaging.png(8, 8)] * 17, prompt="side by side")
    assert error_of(response, 400) == documented


def test_openapi_document_describes_the_edit_body(gateway: Gateway) -> None:
    doc = httpx.get(gateway.base_url + "/openapi.json").json()
    body = doc["paths"]["/v1/images/edits"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
    assert "images" in body["application/json"]["schema"]["properties"]


def test_logs_carry_no_image_bytes_or_keys(team_gateway: Gateway) -> None:
    png = imaging.png()
    headers = {"authorization": f"Bearer {MASTER_KEY}", "x-request-id": "log-1"}
    response = post_edit(team_gateway.base_url, png, prompt="invert", headers=headers)
    b64 = schema.assert_images_response(response.content)["data"][0]["b64_json"]
    (line,) = team_gateway.log_lines(lambda line: line.get("request_id") == "log-1")
    assert line["path"] == "/v1/images/edits" and line["status"] == 200
    assert line["model"] == "local/pillow" and line["provider"] == "local"
    assert line["images"] == 1 and line["image_bytes"] == len(png) and line["cost_usd"] == 0.0
    logs = team_gateway.logs()
    assert "sk-test-master" not in logs
    assert base64.b64encode(png).decode()[:40] not in logs
    assert b64[:40] not in logs
    assert "color_message" not in logs


def test_stream_sends_keepalive_comments_while_the_engine_works(tmp_path: Path) -> None:
    big = imaging.encode(imaging.picture(2400, 1600), "PNG")
    with Gateway(tmp_path, env={"IMAGEGATE_STREAM_KEEPALIVE_SECONDS": "0.1"}) as gateway:
        arrivals: list[tuple[float, str]] = []
        lines: list[str] = []
        started = time.monotonic()
        with httpx.stream(
            "POST",
            gateway.base_url + "/v1/images/edits",
            data={"model": "local/pillow", "prompt": "blur radius 30, sharpen", "stream": "true"},
            files={"image": ("a.png", big, "image/png")},
            timeout=60,
        ) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                lines.append(line)
                if line:
                    arrivals.append((time.monotonic() - started, line[:40]))
    schema.assert_stream("\n".join(lines) + "\n")
    keepalives = [at for at, line in arrivals if line == ": keepalive"]
    (done_at,) = [at for at, line in arrivals if line == "event: image_edit.completed"]
    assert keepalives and keepalives[0] < done_at  # comments arrived while the edit ran
    assert not any(line.startswith("event: ping") or line == "data: [DONE]" for _, line in arrivals)
