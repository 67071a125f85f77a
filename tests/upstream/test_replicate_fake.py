"""The Replicate fake is strict: what Replicate refuses, it refuses, as RFC 7807 problems; and it
answers polls and cancels only on the URLs it issued."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from imagegate.testing.replicate import FakeReplicate
from tests import imaging
from tests.upstream.conftest import KEYS, RunningFake

KONTEXT = "/v1/models/black-forest-labs/flux-kontext-pro/predictions"
SEEDREAM = "/v1/models/bytedance/seedream-4/predictions"
AUTH = {"Authorization": f"Bearer {KEYS['replicate']}"}
PNG_URI = imaging.data_url(imaging.png())


@pytest.fixture()
def replicate(fakes: dict[str, RunningFake]) -> Iterator[tuple[RunningFake, FakeReplicate]]:
    running = fakes["replicate"]
    running.reset()
    fake = running.fake
    assert isinstance(fake, FakeReplicate)
    fake.reset_knobs()
    yield running, fake
    running.reset()
    fake.reset_knobs()


def post(
    running: RunningFake, path: str, doc: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        running.base_url + path, json=doc, headers={**AUTH, **(headers or {})}, timeout=10
    )


def test_a_missing_or_wrong_token_is_the_cassettes_401(
    replicate: tuple[RunningFake, FakeReplicate],
) -> None:
    running, _ = replicate
    for headers in ({"Authorization": "Bearer r8_wrong"}, {"Authorization": ""}):
        answer = post(running, KONTEXT, {"input": {"prompt": "x"}}, headers)
        assert answer.status_code == 401
        assert answer.json()["detail"] == "You did not pass a valid authentication token"


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"input": {"prompt": "x", "input_image": PNG_URI, "style": "x"}}, "input.style"),
        ({"input": {"input_image": PNG_URI}}, "input"),
        ({"input": {"prompt": "x", "input_image": "https://a.test/x.png"}}, "input.input_image"),
        ({"input": {"prompt": "x", "aspect_ratio": "5:7"}}, "input.aspect_ratio"),
        (
            {"input": {"prompt": "x", "input_image": PNG_URI, "safety_tolerance": 3}},
            "input.safety_tolerance",
        ),
        ({"input": {"prompt": "x", "seed": "7"}}, "input.seed"),
    ],
)
def test_inputs_outside_the_schema_are_a_422_naming_the_field(
    replicate: tuple[RunningFake, FakeReplicate], doc: dict[str, Any], field: str
) -> None:
    running, _ = replicate
    answer = post(running, KONTEXT, doc)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["title"] == "Input validation failed"
    assert field in [entry["field"] for entry in problem["invalid_fields"]]


def test_seedream_counts_inputs_and_outputs(
    replicate: tuple[RunningFake, FakeReplicate],
) -> None:
    running, _ = replicate
    doc = {
        "input": {
            "prompt": "x",
            "image_input": [PNG_URI] * 10,
            "sequential_image_generation": "auto",
            "max_images": 6,
        }
    }
    assert post(running, SEEDREAM, doc).status_code == 422


def test_only_input_goes_in_the_body_and_prefer_is_checked(
    replicate: tuple[RunningFake, FakeReplicate],
) -> None:
    running, _ = replicate
    doc = {"input": {"prompt": "x"}, "webhook": "https://example.com/h"}
    assert post(running, KONTEXT, doc).status_code == 400
    answer = post(running, KONTEXT, {"input": {"prompt": "x"}}, {"Prefer": "wait=61"})
    assert answer.status_code == 400


def test_prefer_wait_answers_settled_or_holds_the_wait(
    replicate: tuple[RunningFake, FakeReplicate],
) -> None:
    running, fake = replicate
    doc = {"input": {"prompt": "x", "image_input": [PNG_URI]}}
    settled = post(running, SEEDREAM, doc, {"Prefer": "wait"})
    assert settled.status_code == 201 and settled.json()["status"] == "succeeded"
    assert isinstance(settled.json()["output"], list)  # seedream's output is a list
    assert settled.json()["metrics"]["image_count"] == 1
    fake.polls_to_settle = 1
    started = time.monotonic()
    held = post(running, SEEDREAM, doc, {"Prefer": "wait=1"})
    assert time.monotonic() - started >= 1
    assert (held.status_code, held.json()["status"]) == (201, "starting")
    assert held.headers["preference-applied"] == "wait=1"
    quick = post(running, SEEDREAM, doc)  # no Prefer: starting at once, settled when polled
    assert quick.json()["status"] == "starting"
    polled = httpx.get(quick.json()["urls"]["get"], headers=AUTH, timeout=10)
    assert polled.json()["status"] == "succeeded"


def test_polls_and_cancels_only_on_the_urls_it_issued(
    replicate: tuple[RunningFake, FakeReplicate],
) -> None:
    running, fake = replicate
    fake.polls_to_settle = 5
    created = post(running, KONTEXT, {"input": {"prompt": "x", "input_image": PNG_URI}}).json()
    ident, urls = created["id"], created["urls"]
    assert urls["get"].startswith(running.base_url + "/v1/shards/")
    rebuilt = httpx.get(f"{running.base_url}/v1/predictions/{ident}", headers=AUTH, timeout=10)
    assert rebuilt.status_code == 404 and fake.kinds()[-1] == "rebuilt"
    unknown = urls["get"].replace(ident, "x" * 26)
    assert httpx.get(unknown, headers=AUTH, timeout=10).status_code == 404
    assert httpx.get(urls["get"], timeout=10).status_code == 401
    assert httpx.get(urls["get"], headers=AUTH, timeout=10).json()["status"] == "processing"
    cancelled = httpx.post(urls["cancel"], headers=AUTH, timeout=10)
    assert cancelled.json()["status"] == "canceled"
    assert httpx.get(urls["get"], headers=AUTH, timeout=10).json()["status"] == "canceled"


def test_a_delivery_url_takes_no_token(replicate: tuple[RunningFake, FakeReplicate]) -> None:
    running, _ = replicate
    created = post(
        running, KONTEXT, {"input": {"prompt": "x", "input_image": PNG_URI}}, {"Prefer": "wait"}
    ).json()
    url = created["output"]
    assert isinstance(url, str)  # kontext's output is one URI
    assert httpx.get(url, headers=AUTH, timeout=10).status_code == 403
    plain = httpx.get(url, timeout=10)
    assert plain.status_code == 200 and imaging.decode(plain.content).format == "PNG"
