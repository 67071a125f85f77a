from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.inprocess import InProcessGateway, gateway
from tests.wire.conftest import _loopback_only  # noqa: F401  (the tripwire applies here too)


@pytest.fixture(scope="module")
def app_gateway() -> Iterator[InProcessGateway]:
    yield from gateway()
