"""Keys, access, rates, budgets and usage on a real gateway (in-process state), via the SDK."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests import imaging
from tests.accounts.support import MASTER_KEY, PAID_CARD, PRICE, declare
from tests.server import Gateway
from tests.support import sdk
from tests.support.envelope import error_of

KEYS: dict[str, str] = {}
ENTRIES: list[dict[str, Any]] = []
for _name, _limits in {
    "rated": {"models": ["local/*"], "rpm": 3},
    "imaging": {"models": ["local/pillow"], "images_per_minute": 4},
    "budget": {"models": ["local/pillow-paid"], "budget_usd": 0.03, "period": "month"},
    "narrow": {"models": ["pillow"]},  # an alias: allows the model it names
    "usage": {"models": ["*"]},
    "streamer": {"models": ["local/pillow"], "rpm": 1},
}.items():
    KEYS[_name], _entry = declare(_name, **_limits)
    ENTRIES.append(_entry)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = {"models": [PAID_CARD], "keys": ENTRIES}
    env = {"IMAGEGATE_MASTER_KEY": MASTER_KEY}
    with Gateway(tmp_path_factory.mktemp("accounts"), env=env, config=config) as running:
        yield running


def client(gateway: Gateway, key: str) -> OpenAI:
    return OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0)


def edit(gateway: Gateway, key: str, model: str = "local/pillow", **params: Any) -> Any:
    return client(gateway, key).images.edit(
        model=model, image=("a.png", imaging.png()), prompt="invert it", **params
    )


def usage(gateway: Gateway, token: str, **params: str) -> httpx.Response:
    return httpx.get(
        gateway.base_url + "/v1/usage",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_a_missing_or_unknown_key_is_401(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError):
        edit(gateway, "ig-" + "x" * 43)
    response = httpx.get(gateway.base_url + "/v1/models", timeout=5)
    assert error_of(response, 401)["code"] == "missing_api_key"
    assert sdk.edit(
        client(gateway, KEYS["usage"]), model="local/pillow", image=imaging.png(), prompt="invert"
    )


def test_a_model_outside_the_key_is_403_naming_the_model(gateway: Gateway) -> None:
    assert edit(gateway, KEYS["narrow"], model="pillow").data  # the alias the key names
    assert edit(gateway, KEYS["narrow"], model="local/pillow").data  # and its card id
    with pytest.raises(openai.PermissionDeniedError) as refused:
        edit(gateway, KEYS["narrow"], model="local/pillow-paid")
    error = refused.value.body
    assert isinstance(error, dict) and error["code"] == "model_not_allowed"
    assert "local/pillow-paid" in error["message"] and "narrow" not in error["message"]


def test_requests_per_minute_answer_429_with_retry_after(gateway: Gateway) -> None:
    for _ in range(3):
        assert edit(gateway, KEYS["rated"]).data
    with pytest.raises(openai.RateLimitError) as limited:
        edit(gateway, KEYS["rated"])
    response = limited.value.response
    error = error_of(response, 429)
    assert error["code"] == "rate_limit_exceeded" and "3 requests per minute" in error["message"]
    assert 1 <= int(response.headers["retry-after"]) <= 20


def test_images_per_minute_count_n(gateway: Gateway) -> None:
    assert len(edit(gateway, KEYS["imaging"], n=3).data or []) == 3
    with pytest.raises(openai.RateLimitError) as limited:
        edit(gateway, KEYS["imaging"], n=2)
    assert "4 images per minute" in str(limited.value)
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 60
    with pytest.raises(openai.BadRequestError) as never:  # more than the limit ever admits
        edit(gateway, KEYS["imaging"], n=5)
    assert error_of(never.value.response, 400)["param"] == "n"


def test_the_budget_holds_then_refuses_with_402(gateway: Gateway) -> None:
    key = KEYS["budget"]
    assert len(edit(gateway, key, model="local/pillow-paid", n=2).data or []) == 2
    with pytest.raises(openai.APIStatusError) as refused:  # 0.02 spent + 0.02 > 0.03
        edit(gateway, key, model="local/pillow-paid", n=2)
    assert refused.value.status_code == 402
    error = error_of(refused.value.response, 402)
    assert error["code"] == "budget_exceeded" and error["type"] == "insufficient_quota"
    message = error["message"]
    assert "monthly budget of $0.03" in message and "$0.02 used" in message, message
    assert "$0.02 needed" in message
    assert re.search(r"resets \d{4}-\d{2}-01T00:00:00Z", message), message
    assert edit(gateway, key, model="local/pillow-paid", n=1).data  # 0.01 still fits
    with pytest.raises(openai.APIStatusError) as spent:
        edit(gateway, key, model="local/pillow-paid", n=1)
    assert spent.value.status_code == 402 and "is spent" in spent.value.message

    mine = usage(gateway, key).json()
    assert [entry["key"] for entry in mine["keys"]] == ["budget"]
    entry = mine["keys"][0]
    assert entry["cost_usd"] == pytest.approx(3 * PRICE) and entry["images"] == 3
    assert entry["budget"]["spent_usd"] == pytest.approx(0.03)
    assert entry["budget"]["remaining_usd"] == 0 and entry["budget"]["held_usd"] == 0
    assert entry["models"][0]["model"] == "local/pillow-paid"
    error = error_of(usage(gateway, key, key="rated"), 403)
    assert error["code"] == "usage_not_allowed"


def test_usage_for_the_master_key_covers_every_key(gateway: Gateway) -> None:
    sdk.edit(
        client(gateway, KEYS["usage"]),
        model="local/pillow",
        image=imaging.png(),
        prompt="invert",
        user="alice",
    )
    report = usage(gateway, MASTER_KEY, period="day").json()
    by_key = {entry["key"]: entry for entry in report["keys"]}
    assert by_key["usage"]["requests"] >= 1
    assert "alice" in {row["user"] for row in by_key["usage"]["users"]}
    assert report["period"] == "day" and report["total"]["requests"] >= by_key["usage"]["requests"]
    one = usage(gateway, MASTER_KEY, key="usage", start=time.strftime("%Y-%m-%d", time.gmtime()))
    assert [entry["key"] for entry in one.json()["keys"]] == ["usage"]
    assert error_of(usage(gateway, MASTER_KEY, period="week"), 400)["param"] == "period"
    assert error_of(usage(gateway, MASTER_KEY, start="yesterday"), 400)["param"] == "start"
    today = time.strftime("%Y-%m-%d", time.gmtime())
    huge = usage(gateway, MASTER_KEY, start=today, end="9999-12-31")  # bounded work
    assert error_of(huge, 400)["param"] == "start"


def test_metadata_is_recorded_in_the_log_line_and_checked(gateway: Gateway) -> None:
    response = httpx.post(
        gateway.base_url + "/v1/images/edits",
        headers={"Authorization": f"Bearer {KEYS['usage']}"},
        data={"model": "local/pillow", "prompt": "invert", "metadata": '{"project": "spring"}'},
        files=[("image", ("a.png", imaging.png(), "image/png"))],
        timeout=30,
    )
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]
    line = gateway.log_lines(lambda entry: entry.get("request_id") == request_id)[0]
    assert line["key"] == "usage" and line["metadata"] == {"project": "spring"}
    bad = httpx.post(
        gateway.base_url + "/v1/images/edits",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={
            "model": "local/pillow",
            "prompt": "invert",
            "images": [{"image_url": "data:image/png;base64,AAAA"}],
            "metadata": {"k": "v" * 600},
        },
        timeout=30,
    )
    assert error_of(bad, 400)["param"] == "metadata"


def test_a_created_key_works_without_a_restart(gateway: Gateway) -> None:
    config = gateway.log_path.parent / f"config-{gateway.port}.yaml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "imagegate",
            "keys",
            "create",
            "--name",
            "fresh",
            "--models",
            "local/pillow",
            "--rpm",
            "5",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = re.search(r"key: (ig-\S+)", done.stdout)
    assert key, done.stdout
    deadline = time.monotonic() + 5
    while True:
        try:
            assert edit(gateway, key[1]).data
            break
        except openai.AuthenticationError:
            assert time.monotonic() < deadline, "the new key was not picked up"
            time.sleep(0.2)
    assert "fresh" in config.read_text() and key[1] not in config.read_text()


def test_keys_never_reach_the_logs_and_refusals_are_counted(gateway: Gateway) -> None:
    metrics = httpx.get(
        gateway.base_url + "/metrics", headers={"Authorization": f"Bearer {MASTER_KEY}"}
    ).text
    assert 'imagegate_edits_refused_total{reason="rate_limit_rpm"}' in metrics
    assert 'imagegate_key_spend_usd_total{key="budget"}' in metrics
    forbidden = httpx.get(
        gateway.base_url + "/metrics", headers={"Authorization": f"Bearer {KEYS['usage']}"}
    )
    assert error_of(forbidden, 403)["code"] == "master_key_required"
    logs = gateway.logs()
    assert '"key": "rated"' in logs or '"key":"rated"' in logs
    for key in [*KEYS.values(), MASTER_KEY]:
        assert key not in logs
        assert key[3:20] not in logs


def test_a_stream_is_refused_with_its_status_not_an_error_event(gateway: Gateway) -> None:
    streamer = client(gateway, KEYS["streamer"])
    events = sdk.stream(streamer, model="local/pillow", image=imaging.png(), prompt="invert")
    assert events[-1].type == "image_edit.completed"
    with pytest.raises(openai.RateLimitError):
        streamer.images.edit(
            model="local/pillow", image=imaging.png(), prompt="invert", stream=True
        )


def test_a_key_lists_only_the_models_it_may_use(gateway: Gateway) -> None:
    ids = [model.id for model in client(gateway, KEYS["narrow"]).models.list()]
    assert ids == ["local/pillow"]
    everything = [model.id for model in client(gateway, MASTER_KEY).models.list()]
    assert "local/pillow-paid" in everything
