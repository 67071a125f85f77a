"""A tripwire: any socket a test opens may only connect to 127.0.0.1.

``tests/conftest.py`` arms it for every test. It patches the socket methods every client here
ends up in (blocking and asyncio connects alike), so a test that would reach another address
fails with an ``AssertionError`` instead of sending a byte.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

ALLOWED_HOSTS = frozenset({"127.0.0.1", "::ffff:127.0.0.1"})

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def check_address(sock: socket.socket, address: Any) -> None:
    if sock.family == socket.AF_UNIX:
        return
    host = address[0] if isinstance(address, tuple) else address
    if host not in ALLOWED_HOSTS:
        raise AssertionError(f"a test tried to connect to {address!r}; only 127.0.0.1 is allowed")


def _connect(self: socket.socket, address: Any) -> None:
    check_address(self, address)
    _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    check_address(self, address)
    return _real_connect_ex(self, address)


def arm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard ``socket.connect`` and ``connect_ex`` until ``monkeypatch`` is undone."""
    monkeypatch.setattr(socket.socket, "connect", _connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _connect_ex)
