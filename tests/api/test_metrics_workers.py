"""``GET /metrics`` with ``--workers 2``: every worker's counts add up, whichever one answers."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import imaging
from tests.server import Gateway
from tests.support.metrics import scrape, value
from tests.support.requests import post_edit

BATCH = 12


@pytest.fixture(scope="module")
def tmpdir_of_gateway(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway-tmp")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, tmpdir_of_gateway: Path) -> Iterator[Gateway]:
    env = {"TMPDIR": str(tmpdir_of_gateway)}  # where it makes its metrics directory
    running = Gateway(tmp_path_factory.mktemp("workers"), env=env, args=("--workers", "2"))
    with running:
        yield running
    # Stopped: the directory it made for this run is gone.
    assert not list(tmpdir_of_gateway.glob("imagegate-metrics-*"))


def _workers_that_counted(tmpdir: Path) -> set[str]:
    """The processes with counter files: only workers that served a request have one."""
    (directory,) = tmpdir.glob("imagegate-metrics-*")
    return {path.stem.rpartition("_")[2] for path in directory.glob("counter_*.db")}


def _edit(base_url: str) -> int:
    return post_edit(base_url, imaging.png(), prompt="invert").status_code


def test_counts_from_both_workers_add_up(gateway: Gateway, tmpdir_of_gateway: Path) -> None:
    name = "imagegate_edits_total"
    labels = {"model": "local/pillow", "outcome": "ok"}
    before = value(scrape(gateway.base_url), name, **labels)
    sent = 0
    with ThreadPoolExecutor(6) as pool:
        for _ in range(10):  # new connections, six at a time: both workers take some
            statuses = list(pool.map(_edit, [gateway.base_url] * BATCH))
            assert statuses == [200] * BATCH
            sent += BATCH
            if len(_workers_that_counted(tmpdir_of_gateway)) >= 2:
                break
    assert len(_workers_that_counted(tmpdir_of_gateway)) == 2
    after = scrape(gateway.base_url)
    assert value(after, name, **labels) - before == sent
    edits = value(after, "imagegate_requests_total", path_template="/v1/images/edits")
    assert edits == sent
    assert value(after, "imagegate_gateway_overhead_seconds_count", provider="local") == sent
    # Whichever worker answers the scrape, it adds up the same totals.
    for _ in range(20):
        assert value(scrape(gateway.base_url), name, **labels) - before == sent
    assert value(scrape(gateway.base_url), "imagegate_in_flight_requests") >= 1
