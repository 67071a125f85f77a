from __future__ import annotations

import pytest

from tests.support import tripwire


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test: sockets may only reach 127.0.0.1 (see tests/support/tripwire.py)."""
    tripwire.arm(monkeypatch)
