"""Reading a gateway's ``GET /metrics`` the way Prometheus does."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def scrape(base_url: str, key: str | None = None) -> list[Sample]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.get(base_url + "/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when there are none)."""
    return sum(s.value for s in samples if s.name == name and _has(s.labels, labels))


def label_values(samples: list[Sample], name: str, label: str) -> set[str]:
    return {s.labels[label] for s in samples if s.name == name and label in s.labels}


def _has(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
    return all(have.get(key) == wanted for key, wanted in want.items())
