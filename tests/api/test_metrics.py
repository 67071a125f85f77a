"""``GET /metrics`` on a real single-process gateway: what a few edits move, and by how much."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from openai import OpenAI

from tests import imaging
from tests.api.conftest import MASTER_KEY
from tests.server import Gateway
from tests.support import sdk
from tests.support.metrics import label_values, scrape, value
from tests.support.requests import post_edit

EDITS_PATH = "/v1/images/edits"
PRICED = {
    "id": "local/pillow-priced",
    "edit": {"supported": True, "max_reference_images": 2, "mask": False},
    "sizing": {"style": "aspect_ratio", "aspect_ratios": ["1:1", "3:2", "2:3"]},
    "pricing": {"per_image": 0.01, "per_input_image": 0.002, "source": "made up"},
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = {"models": [PRICED]}
    with Gateway(tmp_path_factory.mktemp("metrics"), config=config) as running:
        yield running


def test_a_success_a_400_and_a_404_move_the_counters_by_exactly_that(gateway: Gateway) -> None:
    before = scrape(gateway.base_url)
    client = OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0)
    sdk.edit(client, model="local/pillow", image=("a.png", imaging.png()), prompt="invert")
    assert post_edit(gateway.base_url, imaging.png(), n="0").status_code == 400
    assert post_edit(gateway.base_url, imaging.png(), model="no/such-model").status_code == 404
    after = scrape(gateway.base_url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "imagegate_requests_total"
    for status in ("200", "400", "404"):
        assert moved(requests, method="POST", path_template=EDITS_PATH, status=status) == 1
    # Only the success reached the provider: the refusals came before dispatch.
    assert moved("imagegate_edits_total", model="local/pillow", provider="local") == 1
    assert moved("imagegate_edits_total", model="local/pillow", outcome="ok") == 1
    assert moved("imagegate_images_total", model="local/pillow", direction="in") == 1
    assert moved("imagegate_images_total", model="local/pillow", direction="out") == 1
    assert moved("imagegate_edit_duration_seconds_count", model="local/pillow") == 1
    assert moved("imagegate_upstream_duration_seconds_count", provider="local") == 1
    assert moved("imagegate_gateway_overhead_seconds_count", provider="local") == 1
    assert moved("imagegate_request_duration_seconds_count", path_template=EDITS_PATH) == 3
    assert value(after, "imagegate_in_flight_requests") >= 1  # the scrape itself
    assert moved("imagegate_upstream_errors_total") == 0


def test_cost_is_counted_from_the_card_price(gateway: Gateway) -> None:
    before = scrape(gateway.base_url)
    response = post_edit(gateway.base_url, imaging.png(48, 48), model="local/pillow-priced")
    assert response.status_code == 200, response.text
    after = scrape(gateway.base_url)
    name = "imagegate_cost_usd_total"
    labels = {"model": "local/pillow-priced", "provider": "local"}
    assert value(after, name, **labels) - value(before, name, **labels) == pytest.approx(0.012)


def test_unknown_paths_share_one_label_value(gateway: Gateway) -> None:
    httpx.get(gateway.base_url + "/healthz")
    scrape(gateway.base_url)  # a scrape is counted once it has answered: by the next one
    first = label_values(scrape(gateway.base_url), "imagegate_requests_total", "path_template")
    for path in ("/nope", "/nope/1", "/v1/whatever/2", "/%7Bx%7D", "/v1/models/a/b/c"):
        assert httpx.get(gateway.base_url + path).status_code == 404
    samples = scrape(gateway.base_url)
    templates = label_values(samples, "imagegate_requests_total", "path_template")
    # A model id is a path parameter: its template is the label, never the id.
    assert templates - first <= {"unmatched", "/v1/models/{model_id:path}"}
    assert "unmatched" in templates and "/healthz" in templates and "/metrics" in templates
    assert not {t for t in templates if "nope" in t or "whatever" in t or "a/b" in t}
    assert value(samples, "imagegate_requests_total", path_template="unmatched") >= 4
    # An unknown method is one value too.
    httpx.request("PROPFIND", gateway.base_url + "/healthz")
    methods = label_values(scrape(gateway.base_url), "imagegate_requests_total", "method")
    assert "PROPFIND" not in methods and "other" in methods


def test_metrics_is_prometheus_text(gateway: Gateway) -> None:
    response = httpx.get(gateway.base_url + "/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE imagegate_edits_total counter" in response.text
    assert "# TYPE imagegate_gateway_overhead_seconds histogram" in response.text


def test_metrics_takes_the_master_key_when_one_is_set(team_gateway: Gateway) -> None:
    url = team_gateway.base_url + "/metrics"
    assert httpx.get(url).status_code == 401
    wrong = httpx.get(url, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert MASTER_KEY not in wrong.text
    samples = scrape(team_gateway.base_url, key=MASTER_KEY)
    assert value(samples, "imagegate_requests_total", path_template="/metrics", status="401") >= 2
