"""Three ``imagegate serve`` replicas behind a real nginx (running ``docker/nginx.conf``) with a
real redis-server, against a slow strict OpenAI fake: the deployment shape of
``docker/compose.yaml`` on loopback, without Docker.

One topology for the module. The load test stops a replica mid-run (SIGTERM: it drains) and
checks that no request is lost or run twice; the keys test (a colleague's virtual keys) checks
that one key's rate limit, budget and spend hold across the replicas.
"""

from __future__ import annotations

import hashlib
import math
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest

from tests import imaging
from tests.server import Gateway
from tests.support.envelope import error_of
from tests.support.nginx import Nginx, require_nginx
from tests.support.redis_server import RedisServer
from tests.support.requests import post_edit
from tests.topology.conftest import MODEL, SlowOpenAI, decoded

MASTER_KEY = "sk-topology-master-0123456789abcdef"
# Above nginx's upstream keepalive_timeout (4 s in docker/nginx.conf), as docker/compose.yaml's 5 s
# is: by the end of the delay nginx holds no idle connection to the draining replica.
DRAIN_DELAY = 4.5
UPSTREAM_SECONDS = 0.5  # each edit's time at the fake: several in flight on every replica
CLIENTS = 6
LOAD_SECONDS = 12.0
STOP_AFTER = 3.0  # seconds into the load, replica 1 (of 0, 1, 2) gets SIGTERM
DRAINED = 1
PHOTO = imaging.png(96, 64)
INVERTED_BOX = tuple(255 - c for c in imaging.GREEN)

# Virtual keys (the accounts work): one key with a rate limit, one with a small budget.
TEAM_A_KEY = "ig-team-a-topology-0123456789abcdef"
TEAM_B_KEY = "ig-team-b-topology-0123456789abcdef"
TEAM_A_RPM = 30
TEAM_B_PRICE_USD = 0.02  # dall-e-2, 1024x1024, per image
TEAM_B_BUDGET_USD = 0.11  # room for five, not six
KEYS = [
    {
        "name": "team-a",
        "key_sha256": hashlib.sha256(TEAM_A_KEY.encode()).hexdigest(),
        "models": ["*"],
        "budget_usd": 50.0,  # far above its 30 edits: holds (each a ceiling) never bind here
        "period": "total",
        "rpm": TEAM_A_RPM,
        "images_per_minute": 60,
    },
    {
        "name": "team-b",
        "key_sha256": hashlib.sha256(TEAM_B_KEY.encode()).hexdigest(),
        "models": ["*"],
        "budget_usd": TEAM_B_BUDGET_USD,
        "period": "total",
        "rpm": 1000,
        "images_per_minute": 1000,
    },
]


@dataclass
class Topology:
    gateways: list[Gateway]
    nginx: Nginx
    redis: RedisServer
    fake: SlowOpenAI
    addresses: dict[str, int] = field(default_factory=dict)  # "127.0.0.1:port" -> replica

    def replica(self, upstream: str) -> int | None:
        """The replica that answered, from nginx's ``$upstream_addr`` (the last one tried)."""
        return self.addresses.get(upstream.split(",")[-1].strip())

    def served(self, request_id: str) -> list[tuple[int, dict[str, Any]]]:
        """Every replica's log line for ``request_id``: (replica, line)."""
        return [
            (index, line)
            for index, gateway in enumerate(self.gateways)
            for line in gateway.log_lines(
                lambda line: line.get("msg") == "request" and line.get("request_id") == request_id,
                timeout=0,
            )
        ]


@pytest.fixture(scope="module")
def topology(
    tmp_path_factory: pytest.TempPathFactory, slow_openai: SlowOpenAI, redis_server: RedisServer
) -> Iterator[Topology]:
    require_nginx()
    tmp = tmp_path_factory.mktemp("topology")
    slow_openai.latency.seconds = UPSTREAM_SECONDS
    env = {
        **slow_openai.env(),
        "IMAGEGATE_REDIS_URL": redis_server.url,
        # Above a busy machine's slowest Redis answer, so a hiccup is not read as an outage.
        "IMAGEGATE_REDIS_TIMEOUT_SECONDS": "3",
        "IMAGEGATE_MASTER_KEY": MASTER_KEY,
        "IMAGEGATE_DRAIN_DELAY_SECONDS": str(DRAIN_DELAY),
        "IMAGEGATE_GRACEFUL_SHUTDOWN_SECONDS": "10",
    }
    config = {"keys": KEYS}
    gateways = [Gateway(tmp, env=env, config=config) for _ in range(3)]
    nginx: Nginx | None = None
    try:
        for gateway in gateways:
            gateway.start(timeout=30)
        nginx = Nginx(tmp, [gateway.port for gateway in gateways]).start()
        addresses = {f"127.0.0.1:{gateway.port}": i for i, gateway in enumerate(gateways)}
        yield Topology(gateways, nginx, redis_server, slow_openai, addresses)
    finally:
        if nginx is not None:
            nginx.stop()
        for gateway in gateways:
            gateway.stop()


def test_the_client_address_and_request_id_pass_through_nginx(topology: Topology) -> None:
    response = httpx.get(
        topology.nginx.base_url + "/v1/models",
        headers={
            "Authorization": f"Bearer {MASTER_KEY}",
            "X-Request-ID": "topo-forwarded-1",
            # As a trusted proxy in front of nginx would send it; nginx appends its own hop.
            "X-Forwarded-For": "203.0.113.7",
        },
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "topo-forwarded-1"
    time.sleep(0.2)  # the log line is written just after the response
    served = topology.served("topo-forwarded-1")
    assert len(served) == 1, served
    replica, line = served[0]
    assert line["client"] == "203.0.113.7"  # not nginx's 127.0.0.1: X-Forwarded-For honoured
    (logged,) = [r for r in topology.nginx.access() if r["request_id"] == "topo-forwarded-1"]
    assert topology.replica(logged["upstream"]) == replica


@dataclass
class Outcome:
    request_id: str
    started: float
    status: int | None
    detail: str = ""


def _edit(client: openai.OpenAI, request_id: str) -> Outcome:
    started = time.time()
    try:
        raw = client.images.with_raw_response.edit(
            model=MODEL,
            image=("photo.png", PHOTO, "image/png"),
            prompt="invert",
            extra_headers={"X-Request-ID": request_id},
        )
        result = raw.parse()
        image = decoded(result.data[0].b64_json if result.data else None).convert("RGB")
        center = image.getpixel((image.width // 2, image.height // 2))
        ok = center == INVERTED_BOX
        return Outcome(request_id, started, raw.status_code, "" if ok else f"pixel {center}")
    except openai.APIStatusError as exc:
        return Outcome(request_id, started, exc.status_code, exc.response.text[:300])
    except Exception as exc:  # a transport error is a lost request too
        return Outcome(request_id, started, None, repr(exc))


def test_a_replica_drains_under_load_without_losing_a_request(topology: Topology) -> None:
    # No SDK retries: a request nginx could not place must show up here, not be papered over.
    client = openai.OpenAI(
        base_url=topology.nginx.base_url + "/v1", api_key=MASTER_KEY, max_retries=0, timeout=30
    )
    drained = topology.gateways[DRAINED]
    assert drained.process is not None
    end = time.monotonic() + LOAD_SECONDS
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def load(worker: int) -> None:
        i = 0
        while time.monotonic() < end:
            outcome = _edit(client, f"load-{worker}-{i}")
            with lock:
                outcomes.append(outcome)
            i += 1

    with ThreadPoolExecutor(CLIENTS) as pool:
        for worker in range(CLIENTS):
            pool.submit(load, worker)
        time.sleep(STOP_AFTER)
        sigterm_at = time.time()
        drained.process.send_signal(signal.SIGTERM)
        status = drained.process.wait(timeout=DRAIN_DELAY + 15)
        exited_at = time.time()
    # Every request answered 200 with the edited image: none lost at the switch.
    failed = [o for o in outcomes if o.status != 200 or o.detail]
    assert not failed, failed[:5]
    assert len(outcomes) >= 40, f"only {len(outcomes)} requests in {LOAD_SECONDS} s"
    assert status == 0, drained.logs()[-2000:]
    assert "draining" in drained.logs()

    # Each request ran exactly once, on one replica, and that replica logged 200.
    time.sleep(0.2)
    runs: Counter[str] = Counter()
    by_replica: dict[str, int] = {}
    for index, gateway in enumerate(topology.gateways):
        for line in gateway.log_lines(
            lambda line: (
                line.get("msg") == "request" and str(line.get("request_id", "")).startswith("load-")
            ),
            timeout=0,
        ):
            assert line["status"] == 200, line
            runs[line["request_id"]] += 1
            by_replica[line["request_id"]] = index
    assert set(runs) == {o.request_id for o in outcomes}
    assert set(runs.values()) == {1}, [rid for rid, n in runs.items() if n > 1]

    # nginx's view: which replica answered each request, and when it began.
    lines = [r for r in topology.nginx.access() if str(r["request_id"]).startswith("load-")]
    assert {r["request_id"] for r in lines} == set(runs)
    assert all(r["status"] == 200 for r in lines)
    begun = {r["request_id"]: float(r["msec"]) - float(r["request_time"]) for r in lines}
    answered = {r["request_id"]: topology.replica(r["upstream"]) for r in lines}
    assert answered == by_replica  # nginx and the replicas agree on who served what
    retried = [r for r in lines if "," in r["upstream"]]
    # Only the drained replica ever refused a connection, and nginx placed those elsewhere.
    for r in retried:
        assert topology.replica(r["upstream"].split(",")[0]) == DRAINED, r
        assert answered[r["request_id"]] != DRAINED, r
    before = Counter(answered[rid] for rid, t in begun.items() if t < sigterm_at)
    during = Counter(answered[rid] for rid, t in begun.items() if sigterm_at <= t < exited_at)
    after = Counter(answered[rid] for rid, t in begun.items() if t >= exited_at)
    assert before[DRAINED] > 0, before  # it took its share of the load before SIGTERM
    # It received nothing after it stopped accepting (the drain delay, plus a margin for the
    # request that was on its way); the other two kept serving to the end.
    last = max(t for rid, t in begun.items() if answered[rid] == DRAINED)
    assert last < sigterm_at + DRAIN_DELAY + 1.0, (last - sigterm_at, before, during, after)
    assert after[DRAINED] == 0, after
    assert all(after[i] > 0 for i in range(3) if i != DRAINED), after
    print(
        f"\n{len(outcomes)} edits by {CLIENTS} clients in {LOAD_SECONDS:.0f} s, all 200; "
        f"replica {DRAINED} got SIGTERM at {STOP_AFTER} s, last request began there "
        f"{last - sigterm_at:.2f} s later, exited 0 after {exited_at - sigterm_at:.2f} s; "
        f"served before/during/after: {dict(before)} / {dict(during)} / {dict(after)}; "
        f"{len(retried)} placed on another replica after a refused connect"
    )


def _usage(topology: Topology, key: str) -> dict[str, Any]:
    """``GET /v1/usage`` for one key over the keys' period (total), with the master key."""
    response = httpx.get(
        topology.nginx.base_url + "/v1/usage",
        params={"period": "total", "key": key},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    (entry,) = [entry for entry in response.json()["keys"] if entry["key"] == key]
    return dict(entry)


def _keyed_edit(
    topology: Topology,
    key: str,
    request_id: str,
    image: bytes = PHOTO,
    model: str = MODEL,
    **fields: str,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "X-Request-ID": request_id}
    return post_edit(topology.nginx.base_url, image, model=model, headers=headers, **fields)


def test_one_keys_limits_and_spend_hold_across_replicas(topology: Topology) -> None:
    topology.fake.latency.seconds = 0.05
    live = [g for g in topology.gateways if g.process is not None and g.process.poll() is None]
    assert len(live) >= 2

    # Rate limit: one key's requests per minute are counted once, in Redis, whichever replica.
    # Counted per replica, all of these would pass (each replica would allow the full rate).
    sent = TEAM_A_RPM + 15
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(
            pool.map(lambda i: _keyed_edit(topology, TEAM_A_KEY, f"team-a-{i}"), range(sent))
        )
    # The full allowance at once, plus what the rate gives back while the burst lasts.
    refill = math.ceil((time.monotonic() - started) * TEAM_A_RPM / 60)
    statuses = Counter(r.status_code for r in answers)
    assert set(statuses) == {200, 429}, statuses
    assert TEAM_A_RPM <= statuses[200] <= TEAM_A_RPM + refill, (statuses, refill)
    for response in answers:
        if response.status_code == 429:
            error_of(response, 429, request_id=response.request.headers["x-request-id"])
            assert int(response.headers["retry-after"]) > 0
    ok = [r for r in answers if r.status_code == 200]
    time.sleep(0.2)  # nginx writes its log line after the response
    served = {r["request_id"]: topology.replica(r["upstream"]) for r in topology.nginx.access()}
    assert len({served[r.headers["x-request-id"]] for r in ok}) >= 2  # one allowance, shared

    # Spend: what the usage report says the key spent is the sum of what it was charged.
    charged = sum(r.json()["usage"]["cost"]["total_cost"] for r in ok)
    assert charged > 0
    usage = _usage(topology, "team-a")
    assert usage["requests"] == len(ok)
    assert usage["cost_usd"] == pytest.approx(charged, abs=1e-6)
    assert usage["budget"]["spent_usd"] == pytest.approx(charged, abs=1e-6)

    # Budget: dall-e-2 costs its list price per image, which is also what a budget holds for it,
    # so exactly floor(budget / price) edits fit; then every replica answers 402.
    square = imaging.png(64, 64)
    costs: list[float] = []
    for i in range(20):
        response = _keyed_edit(
            topology, TEAM_B_KEY, f"team-b-{i}", square, "dall-e-2", size="1024x1024"
        )
        if response.status_code != 200:
            error_of(response, 402, request_id=f"team-b-{i}")
            break
        costs.append(response.json()["usage"]["cost"]["total_cost"])
    assert costs and set(costs) == {TEAM_B_PRICE_USD}, costs
    assert len(costs) == int(TEAM_B_BUDGET_USD / TEAM_B_PRICE_USD)
    for i in range(len(live) * 2):  # least_conn spreads these over the replicas left
        refused = _keyed_edit(
            topology, TEAM_B_KEY, f"team-b-after-{i}", square, "dall-e-2", size="1024x1024"
        )
        error_of(refused, 402, request_id=f"team-b-after-{i}")
    assert _usage(topology, "team-b")["budget"]["spent_usd"] == pytest.approx(sum(costs))
