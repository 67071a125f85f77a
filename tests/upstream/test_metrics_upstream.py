"""Provider errors and upstream time in ``GET /metrics``, against the strict OpenAI fake."""

from __future__ import annotations

from imagegate.testing.fake import Fault
from tests import imaging
from tests.server import Gateway
from tests.support.metrics import scrape, value
from tests.support.requests import post_edit
from tests.upstream.conftest import RunningFake

SQUARE = imaging.png(64, 64)


def test_a_provider_error_is_counted_as_one(
    fakes: dict[str, RunningFake], upstream_gateway: Gateway
) -> None:
    running = fakes["openai"]
    running.reset()
    before = scrape(upstream_gateway.base_url)
    running.fake.faults.append(Fault("server_error"))
    failed = post_edit(upstream_gateway.base_url, SQUARE, model="gpt-image-1")
    assert failed.status_code == 502
    assert post_edit(upstream_gateway.base_url, SQUARE, model="gpt-image-1").status_code == 200
    after = scrape(upstream_gateway.base_url)
    running.reset()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    model = "openai/gpt-image-1"
    assert moved("imagegate_upstream_errors_total", provider="openai") == 1
    assert moved("imagegate_upstream_errors_total", provider="openai", code="upstream_error") == 1
    assert moved("imagegate_edits_total", model=model, outcome="upstream_error") == 1
    assert moved("imagegate_edits_total", model=model, provider="openai", outcome="ok") == 1
    assert moved("imagegate_upstream_duration_seconds_count", provider="openai") == 2
    assert moved("imagegate_gateway_overhead_seconds_count", provider="openai") == 2
    assert moved("imagegate_cost_usd_total", model=model, provider="openai") > 0
