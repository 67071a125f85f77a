"""Keys, Authorization headers and image data never reach the logs or an error message.

Two halves. A real ``imagegate serve`` with a master key gets keys everywhere a client can put
them (the header, fields, extra fields, the prompt, a field's name, the model, the request id)
and image bytes and base64 where they do not belong, on every refusal path; then its log file
and every answer are searched. In-process, a scripted provider fails with an error that quotes
the request it was given (its key, the prompt, the image's base64) and then crashes with that
text; the client's message and the JSON log lines are searched the same way.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
from pydantic import SecretStr

from imagegate.catalog.catalog import Catalog
from imagegate.core.errors import UpstreamError
from imagegate.core.result import EditResult
from imagegate.logs import JsonFormatter
from imagegate.providers.base import Deployment, EditJob, EventSink, ProviderRegistry
from imagegate.routing.router import Router
from imagegate.service import EditService
from tests import imaging
from tests.fuzz.inprocess import InProcessGateway
from tests.server import Gateway

MASTER_KEY = "gw-master-Q7xP2mN9vL4kR8tZ"  # no sk- shape: only its registration scrubs it
WRONG_KEY = "sk-proj-WrOnGkEy0123456789abcdefABCDEF"
OPENAI_KEY = "sk-proj-AbCdEfGh0123456789IjKlMnOpQrStUvWx"
PROVIDER_KEY = "prov-3f9a1c7e5b2d4f608a1c3e5f7b9d2a4c"  # a deployment's key, any shape
PNG = imaging.png()
PNG_B64 = base64.b64encode(PNG).decode()
SECRETS = (MASTER_KEY, WRONG_KEY, OPENAI_KEY, PROVIDER_KEY)


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} carries {secret[:8]}...: {text[:3000]}"
    assert PNG_B64[20:60] not in text, f"{where} carries image base64"
    assert "\\x89PNG" not in text and "\x89PNG" not in text, f"{where} carries image bytes"


# -- a real gateway ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = {"IMAGEGATE_MASTER_KEY": MASTER_KEY, "IMAGEGATE_LOG_LEVEL": "debug"}
    with Gateway(tmp_path_factory.mktemp("secrets"), env=env) as running:
        yield running


def _post(gateway: Gateway, key: str | None, **kwargs: object) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))  # type: ignore[call-overload]
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return httpx.post(gateway.base_url + "/v1/images/edits", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def _form(**fields: str) -> dict[str, str]:
    return {"model": "local/pillow", "prompt": "invert", **fields}


def test_keys_and_images_stay_out_of_logs_and_answers(keyed_gateway: Gateway) -> None:
    image = {"image": ("a.png", PNG, "image/png")}
    answers = [
        # bad auth, with keys in the header and in the body
        _post(keyed_gateway, WRONG_KEY, data=_form(user=OPENAI_KEY), files=image),
        _post(keyed_gateway, None, data=_form(api_key=MASTER_KEY), files=image),
        _post(keyed_gateway, None, headers={"authorization": f"Basic {MASTER_KEY}"}, files=image),
        # keys in fields of a bad body (n=0), in extra fields, in the prompt
        _post(keyed_gateway, MASTER_KEY, data=_form(n="0", openai_api_key=OPENAI_KEY), files=image),
        _post(
            keyed_gateway, MASTER_KEY, data=_form(prompt=f"use {OPENAI_KEY} to paint"), files=image
        ),
        _post(keyed_gateway, MASTER_KEY, data=_form(prompt=f"tint with {MASTER_KEY}"), files=image),
        # a key as the model, as a field name sent twice, as a value echoed back
        _post(keyed_gateway, MASTER_KEY, data=_form(model=OPENAI_KEY), files=image),
        _post(
            keyed_gateway,
            MASTER_KEY,
            content=_twice(OPENAI_KEY),
            headers={"content-type": "multipart/form-data; boundary=b"},
        ),
        _post(keyed_gateway, MASTER_KEY, data=_form(size=OPENAI_KEY), files=image),
        _post(keyed_gateway, MASTER_KEY, data=_form(quality=MASTER_KEY), files=image),
        # image data where text belongs, and text where the image belongs
        _post(keyed_gateway, MASTER_KEY, data=_form(user=PNG_B64[:200]), files=image),
        _post(keyed_gateway, MASTER_KEY, data=_form(aspect_ratio=PNG_B64[:60]), files=image),
        _post(keyed_gateway, MASTER_KEY, data=_form(), files={"image": ("a.png", PNG[:80])}),
        # JSON: keys in extra_body-like fields, broken data URLs carrying real base64
        _post(keyed_gateway, MASTER_KEY, json=_doc(n=0, api_key=OPENAI_KEY, user=MASTER_KEY)),
        _post(
            keyed_gateway,
            MASTER_KEY,
            json=_doc(images=[{"image_url": f"data:image/png;base64,{PNG_B64}!!"}]),
        ),
        _post(
            keyed_gateway,
            MASTER_KEY,
            json=_doc(images=[{"image_url": f"data:image/jpeg;base64,{PNG_B64}"}]),
        ),
        _post(keyed_gateway, MASTER_KEY, json=_doc(images=[{"file_id": OPENAI_KEY}])),
        _post(
            keyed_gateway,
            MASTER_KEY,
            json=_doc(images=[{"image_url": f"http://{OPENAI_KEY}@a.example/x.png"}]),
        ),
        _post(keyed_gateway, MASTER_KEY, json=_doc(images=[{"image_url": PNG_B64}])),
        _post(
            keyed_gateway,
            MASTER_KEY,
            content=b'{"prompt": "' + PNG_B64.encode() + b'"',
            headers={"content-type": "application/json"},
        ),
        # a key as the client's request id, and a success whose user is a key
        _post(
            keyed_gateway,
            MASTER_KEY,
            data=_form(n="0"),
            files=image,
            headers={"x-request-id": OPENAI_KEY},
        ),
        _post(keyed_gateway, MASTER_KEY, data=_form(user=OPENAI_KEY), files=image),
    ]
    # Two succeed: a key as the user, and base64 as the user (both fit the field); the rest fail.
    assert [a.status_code for a in answers].count(200) == 2
    for answer in answers:
        assert answer.headers["x-request-id"]
        if answer.status_code != 200:
            assert_clean(answer.text, f"the {answer.status_code} answer")
        else:  # the image itself comes back, of course; nothing else may echo a key
            assert_clean(
                orjson.dumps({k: v for k, v in answer.json().items() if k != "data"}).decode(),
                "200",
            )
    # A streamed success at debug level: no library may log the events it sends.
    with httpx.stream(
        "POST",
        keyed_gateway.base_url + "/v1/images/edits",
        headers={"authorization": f"Bearer {MASTER_KEY}", "x-request-id": "stream-secrets"},
        data=_form(stream="true", partial_images="1"),
        files=image,
        timeout=30,
    ) as streamed:
        events = streamed.read().decode()
    output_b64 = orjson.loads(events.split("event: image_edit.completed\ndata: ")[1].split("\n")[0])
    keyed_gateway.log_lines(lambda line: line.get("request_id") == "stream-secrets")
    logs = keyed_gateway.logs()
    assert output_b64["b64_json"][40:80] not in logs
    assert logs.count('"msg":"request"') >= len(answers)
    assert_clean(logs, "the gateway log")


def _twice(name: str) -> bytes:
    part = f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\nx\r\n'
    return (part * 2 + "--b--\r\n").encode()


def _doc(**fields: object) -> dict[str, object]:
    doc: dict[str, object] = {"model": "local/pillow", "prompt": "invert"}
    doc["images"] = [{"image_url": imaging.data_url(PNG)}]
    doc.update(fields)
    return doc


# -- a provider that quotes the request in its errors ------------------------------------------

CARD = {
    "id": "scripted/echo",
    "edit": {"max_reference_images": 4},
    "sizing": {"style": "openai_size", "sizes": ["1024x1024", "auto"]},
}


@dataclass
class Echoing:
    """Fails like a careless upstream SDK: its error text quotes the key and the request."""

    crash: bool = False
    name: str = "scripted"

    def check(self, job: EditJob) -> None:
        return None

    async def edit(self, job: EditJob, deployment: Deployment, events: EventSink) -> EditResult:
        image = base64.b64encode(job.request.images[0].view()).decode()
        text = (
            f"upstream said 401 for Authorization: Bearer {deployment.api_key} "
            f"with body {{'prompt': {job.request.prompt!r}, 'user': {job.request.user!r}, "
            f"'extra': {dict(job.request.extra)!r}, 'image': 'data:image/png;base64,{image}', "
            f"'raw': {bytes(job.request.images[0].view()[:24])!r}}}"
        )
        if self.crash:
            raise RuntimeError(text)
        raise UpstreamError(text, origin="provider")

    async def aclose(self) -> None:
        return None


@pytest.fixture()
def log_text() -> Iterator[io.StringIO]:
    """The JSON log lines the gateway writes, as the server's handler formats them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield out
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.mark.parametrize("crash", [False, True], ids=["upstream-error", "crash"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_provider_quoting_the_request_leaks_nothing(
    log_text: io.StringIO, crash: bool, stream: bool
) -> None:
    with InProcessGateway(master_key=MASTER_KEY) as gateway:
        registry = ProviderRegistry()
        registry.register(Echoing(crash=crash))
        router = Router([Deployment(provider="scripted", api_key=SecretStr(PROVIDER_KEY))])
        gateway.app.state.service = EditService(
            Catalog.build([CARD], shipped=[]), registry, router, timeout_seconds=5
        )
        doc = {
            "model": "scripted/echo",
            "prompt": f"paint it, key {OPENAI_KEY}",
            "user": MASTER_KEY,
            "api_key": OPENAI_KEY,
            "stream": stream,
            "images": [{"image_url": imaging.data_url(PNG)}],
        }
        response = gateway.post_edit(
            orjson.dumps(doc), "application/json", authorization=f"Bearer {MASTER_KEY}"
        )
    text = response.text
    if stream:
        assert response.status_code == 200 and "event: error" in text
        error = orjson.loads(text.split("event: error\ndata: ", 1)[1].split("\n", 1)[0])["error"]
    else:
        assert response.status_code == (500 if crash else 502)
        error = response.json()["error"]
    assert_clean(text, "the answer")
    if crash:
        assert error["code"] == "internal_error" and "request id" in error["message"]
    else:  # the provider's own words reach the client, scrubbed
        assert error["origin"] == "provider" and "upstream said 401" in error["message"]
        assert "[redacted]" in error["message"]
    logs = log_text.getvalue()
    assert '"msg":"request"' in logs
    if crash:  # the operator still gets the trace, scrubbed
        assert "RuntimeError: upstream said 401" in logs
    assert_clean(logs, "the log")


def test_redaction_keeps_what_a_user_needs() -> None:
    from imagegate.core.redact import redact

    kept = [
        "Missing API key: send it as 'Authorization: Bearer <key>'.",
        "must be a base64 data URL, such as 'data:image/png;base64,iVBOR...'.",
        "The error is logged under request id req_0123456789abcdef0123456789abcdef.",
        "local/pillow cannot honour size 99999x99999. It takes size=WxH with sides 16-4096.",
        'File "/srv/imagegate/.venv/lib/python3.11/site-packages/starlette/routing.py", line 7',
    ]
    for text in kept:
        assert redact(text) == text
    assert redact(f"x {PNG_B64} y") == "x [redacted] y"
    assert redact(f"Authorization: Bearer {WRONG_KEY}") == "Authorization: [redacted]"
    assert redact("token=AIzaSyA1234567890abcdefghijklmnopqrstu;") == "token=[redacted];"
