"""JSON edits whose images are ``image_url``s, through a real gateway process.

The images come from a small HTTP server on 127.0.0.1. One gateway is started with
``IMAGEGATE_FETCH_ALLOW_NETWORKS=127.0.0.1/32``, the way an operator opens an internal image
store, and fetches from it; a second, with the defaults, must refuse the very same URL without
ever connecting to it. Nothing in this module talks to anything but 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests import imaging
from tests.imaging import GREEN, RED
from tests.server import Gateway
from tests.support import schema
from tests.support.envelope import error_of
from tests.support.imageserver import ImageServer
from tests.support.requests import edit_json

PAGES = {
    # Declared as an image: the bytes are sniffed, never the Content-Type.
    "/page.html": (200, b"<!doctype html><html><body>not a cat</body></html>", "image/png"),
    "/notes.txt": (200, b"just some words about a cat\n", "text/plain"),
}


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    with ImageServer(PAGES) as server:
        yield server


@pytest.fixture(scope="module")
def open_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Fetches from 127.0.0.1, and from nothing else that is not public."""
    env = {"IMAGEGATE_FETCH_ALLOW_NETWORKS": "127.0.0.1/32", "IMAGEGATE_FETCH_TIMEOUT_SECONDS": "5"}
    with Gateway(tmp_path_factory.mktemp("fetch-open"), env=env) as running:
        yield running


@pytest.fixture(scope="module")
def closed_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The defaults: loopback and private networks are never fetched from."""
    with Gateway(tmp_path_factory.mktemp("fetch-closed")) as running:
        yield running


@pytest.fixture()
def web() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=30) as client:
        yield client


def post_edit(web: httpx.Client, gateway: Gateway, body: dict[str, Any]) -> httpx.Response:
    return web.post(gateway.base_url + "/v1/images/edits", json=body)


def assert_inverted(b64: str) -> None:
    out = imaging.decode_b64(b64).convert("RGB")
    assert out.size == (64, 48)
    assert out.getpixel((2, 2)) == tuple(255 - c for c in RED)
    assert out.getpixel((32, 24)) == tuple(255 - c for c in GREEN)


# --- fetched and edited ---------------------------------------------------------------------


def test_a_json_edit_fetches_the_image_url_and_inverts_it(
    web: httpx.Client, open_gateway: Gateway, images: ImageServer
) -> None:
    url = images.url("/cat.png?a=1")
    response = post_edit(web, open_gateway, edit_json(url))

    assert response.status_code == 200, response.text
    assert response.headers.get("x-request-id", "").startswith("req_")
    doc = schema.assert_images_response(response.content)
    assert doc["model"] == "local/pillow"
    assert len(doc["data"]) == 1
    assert_inverted(doc["data"][0]["b64_json"])
    assert ("/cat.png?a=1", f"127.0.0.1:{images.port}") in images.seen


def test_the_openai_sdk_posts_the_same_json_edit(
    open_gateway: Gateway, images: ImageServer
) -> None:
    bodies: list[bytes] = []

    def keep(response: httpx.Response) -> None:  # the raw body the SDK then parses
        bodies.append(response.read())

    hooks = {"response": [keep]}
    with openai.DefaultHttpxClient(trust_env=False, event_hooks=hooks) as transport:
        client = OpenAI(
            base_url=open_gateway.base_url + "/v1",
            api_key="unused",
            max_retries=0,
            http_client=transport,
        )
        result = client.post(
            "/images/edits",
            body=edit_json(images.url("/cat.png?sdk=1")),
            cast_to=openai.types.ImagesResponse,
        )
    (body,) = bodies
    schema.assert_images_response(body)
    assert isinstance(result, openai.types.ImagesResponse)
    assert result.data and result.data[0].b64_json
    assert_inverted(result.data[0].b64_json)
    assert "/cat.png?sdk=1" in images.paths()


def test_the_chat_style_image_url_object_and_a_redirect_are_followed(
    web: httpx.Client, open_gateway: Gateway, images: ImageServer
) -> None:
    body = edit_json()
    body["images"] = [{"image_url": {"url": images.url("/hop?chat=1")}}]
    response = post_edit(web, open_gateway, body)
    assert response.status_code == 200, response.text
    assert_inverted(schema.assert_images_response(response.content)["data"][0]["b64_json"])
    paths = images.paths()
    assert paths.index("/hop?chat=1") < len(paths) - 1 and paths[-1] == "/cat.png"


def test_a_decimal_spelling_of_127_0_0_1_is_judged_as_127_0_0_1(
    web: httpx.Client, open_gateway: Gateway, images: ImageServer
) -> None:
    # The gateway resolves 2130706433 to 127.0.0.1 (inet_aton; no DNS) and opens it: allowed.
    response = post_edit(web, open_gateway, edit_json(images.url("/cat.png?dec=1", "2130706433")))
    assert response.status_code == 200, response.text
    assert_inverted(schema.assert_images_response(response.content)["data"][0]["b64_json"])
    assert ("/cat.png?dec=1", f"2130706433:{images.port}") in images.seen


@pytest.mark.parametrize("path", ["/page.html", "/notes.txt"])
def test_a_url_serving_text_is_refused_as_not_an_image(
    web: httpx.Client, open_gateway: Gateway, images: ImageServer, path: str
) -> None:
    response = post_edit(web, open_gateway, edit_json(images.url(path)))
    error = error_of(response, 400)
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "unsupported_image_format"
    assert error["param"] == "images[0].image_url"
    assert path in images.paths()  # it was fetched, then sniffed and refused


def test_a_url_answering_404_is_refused(
    web: httpx.Client, open_gateway: Gateway, images: ImageServer
) -> None:
    response = post_edit(web, open_gateway, edit_json(images.url("/missing.png")))
    error = error_of(response, 400)
    assert error["code"] == "image_url_failed"
    assert "HTTP 404" in error["message"]


def test_a_bad_url_is_refused_before_fetching(
    web: httpx.Client, open_gateway: Gateway, images: ImageServer
) -> None:
    for url, code in [
        ("file:///etc/passwd", "invalid_image_url"),
        (f"http://user:pw@127.0.0.1:{images.port}/cat.png", "invalid_image_url"),
    ]:
        error = error_of(post_edit(web, open_gateway, edit_json(url)), 400)
        assert error["code"] == code
        assert error["param"] == "images[0].image_url"


# --- the default gateway refuses loopback ---------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "[::ffff:127.0.0.1]"])
def test_without_the_allow_list_loopback_is_refused_unfetched(
    web: httpx.Client, closed_gateway: Gateway, images: ImageServer, host: str
) -> None:
    connections = images.connections
    marker = f"/cat.png?closed={host}"
    response = post_edit(web, closed_gateway, edit_json(images.url(marker, host)))
    error = error_of(response, 400)
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "image_url_forbidden"
    assert error["param"] == "images[0].image_url"
    assert "loopback" in error["message"]
    assert images.connections == connections
    assert marker not in images.paths()


def test_the_sdk_sees_the_refusal_as_a_bad_request(
    closed_gateway: Gateway, images: ImageServer
) -> None:
    with openai.DefaultHttpxClient(trust_env=False) as transport:
        client = OpenAI(
            base_url=closed_gateway.base_url + "/v1",
            api_key="unused",
            max_retries=0,
            http_client=transport,
        )
        with pytest.raises(openai.BadRequestError) as info:
            client.post(
                "/images/edits",
                body=edit_json(images.url("/cat.png?sdk-closed=1")),
                cast_to=openai.types.ImagesResponse,
            )
    assert info.value.status_code == 400
    assert info.value.code == "image_url_forbidden"
    assert info.value.response.headers.get("x-request-id", "").startswith("req_")
    assert "/cat.png?sdk-closed=1" not in images.paths()


def test_the_gateway_logs_the_refusal_code(
    web: httpx.Client, closed_gateway: Gateway, images: ImageServer
) -> None:
    response = post_edit(web, closed_gateway, edit_json(images.url("/cat.png?log=1")))
    assert error_of(response, 400)["code"] == "image_url_forbidden"
    request_id = response.headers["x-request-id"]
    (line,) = closed_gateway.log_lines(lambda line: line.get("request_id") == request_id)
    assert line["status"] == 400 and line["error_code"] == "image_url_forbidden"
