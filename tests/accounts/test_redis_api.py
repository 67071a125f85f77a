"""Several gateways on one real redis-server: one rate limit, one budget, spend that survives a
restart, and a Redis outage answered as configured (closed: 503; open: admitted)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests import imaging
from tests.accounts.support import MASTER_KEY, PAID_CARD, PRICE, declare
from tests.server import Gateway
from tests.support.envelope import error_of
from tests.support.redis_server import RedisServer

RATED, RATED_ENTRY = declare("rated", models=["local/*"], rpm=4)
BUDGET, BUDGET_ENTRY = declare("budget", models=["local/*"], budget_usd=3 * PRICE, period="total")
CONFIG = {"models": [PAID_CARD], "keys": [RATED_ENTRY, BUDGET_ENTRY]}


@pytest.fixture(scope="module")
def replicas(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, Gateway]]:
    redis_server.flush()
    tmp = tmp_path_factory.mktemp("replicas")
    env = {
        "IMAGEGATE_MASTER_KEY": MASTER_KEY,
        "IMAGEGATE_REDIS_URL": redis_server.url,
        # A stopped Redis refuses at once; this only keeps a busy CI machine's slow answer from
        # reading as an outage.
        "IMAGEGATE_REDIS_TIMEOUT_SECONDS": "3",
    }
    first = Gateway(tmp, env=env, config=CONFIG).start()
    second = Gateway(tmp, env=env, config=CONFIG).start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def post(gateway: Gateway, key: str, model: str = "local/pillow", n: int = 1) -> httpx.Response:
    return httpx.post(
        gateway.base_url + "/v1/images/edits",
        headers={"Authorization": f"Bearer {key}"},
        data={"model": model, "prompt": "invert", "n": str(n)},
        files=[("image", ("a.png", imaging.png(16, 16), "image/png"))],
        timeout=30,
    )


def spent(gateway: Gateway) -> float:
    report = httpx.get(
        gateway.base_url + "/v1/usage",
        params={"key": "budget", "period": "total"},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=10,
    ).json()
    return float(report["keys"][0]["budget"]["spent_usd"])


def test_two_replicas_share_one_rate_limit(replicas: tuple[Gateway, Gateway]) -> None:
    first, second = replicas
    statuses = [post(gateway, RATED).status_code for gateway in (first, second, first, second)]
    assert statuses == [200] * 4
    refused = post(second, RATED)
    assert error_of(refused, 429)["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 15


def test_concurrent_requests_on_two_replicas_never_overspend(
    replicas: tuple[Gateway, Gateway],
) -> None:
    first, second = replicas
    with ThreadPoolExecutor(20) as pool:
        answers = list(
            pool.map(lambda i: post((first, second)[i % 2], BUDGET, "local/pillow-paid"), range(20))
        )
    served = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 402]
    assert len(served) == 3 and len(refused) == 17, [a.status_code for a in answers]
    for answer in refused:
        assert error_of(answer, 402)["code"] == "budget_exceeded"
    billed = sum(a.json()["usage"]["cost"]["total_cost"] for a in served)
    assert billed == pytest.approx(3 * PRICE)
    assert spent(first) == pytest.approx(billed) and spent(second) == pytest.approx(billed)


def test_spend_survives_a_gateway_restart(replicas: tuple[Gateway, Gateway]) -> None:
    first, _ = replicas
    before = spent(first)
    assert before > 0
    first.stop()
    first.start()
    assert spent(first) == pytest.approx(before)
    assert error_of(post(first, BUDGET, "local/pillow-paid"), 402)["code"] == "budget_exceeded"


def test_redis_outage_closed_answers_503_open_admits_then_recovers(
    replicas: tuple[Gateway, Gateway], redis_server: RedisServer, tmp_path: Path
) -> None:
    first, _ = replicas
    env = {
        "IMAGEGATE_MASTER_KEY": MASTER_KEY,
        "IMAGEGATE_REDIS_URL": redis_server.url,
        "IMAGEGATE_REDIS_FAILURE": "open",
        "IMAGEGATE_REDIS_TIMEOUT_SECONDS": "3",
    }
    with Gateway(tmp_path, env=env, config=CONFIG) as lenient:
        redis_server.stop()
        try:
            for _ in range(3):
                closed = post(first, RATED)
                error = error_of(closed, 503)
                assert error["code"] == "state_unavailable" and "Traceback" not in closed.text
                assert closed.headers["retry-after"] == "5"
            assert post(lenient, RATED).status_code == 200
            # The master key has no limits: it never needs the store to be admitted.
            assert post(first, MASTER_KEY).status_code == 200
        finally:
            redis_server.start()
        assert post(first, RATED).status_code == 200  # back: limits apply again
        assert post(lenient, RATED).status_code in (200, 429)
    outage_lines = [
        line
        for line in first.log_lines(
            lambda entry: "shared state unavailable" in entry.get("msg", "")
        )
    ]
    assert 1 <= len(outage_lines) <= 2  # throttled: not one per refused request
    metrics = httpx.get(
        first.base_url + "/metrics", headers={"Authorization": f"Bearer {MASTER_KEY}"}
    ).text
    assert 'imagegate_redis_errors_total{operation="admit"}' in metrics
