from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.fuzz.inprocess import InProcessGateway, gateway

# CI replays the same examples every run (seeded from each test's name), so a red build is
# reproducible; on a developer's machine every run draws new ones.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="module")
def app_gateway() -> Iterator[InProcessGateway]:
    yield from gateway()
