"""The label guards of ``imagegate.metrics``: a client cannot mint label values."""

from __future__ import annotations

from imagegate.core.errors import GatewayError, InvalidRequest, UpstreamError
from imagegate.metrics import OTHER, error_label, method_label


def test_error_codes_are_labels_only_when_they_look_like_codes() -> None:
    assert error_label(UpstreamError("x", code="upstream_error")) == "upstream_error"
    assert error_label(GatewayError("x", code="cancelled")) == "cancelled"
    assert error_label(InvalidRequest("x")) == "invalid_value"  # the class default
    assert error_label(GatewayError("x")) == "server_error"  # no code at all: its type
    assert error_label(GatewayError("x", code="a prompt with spaces")) == OTHER
    assert error_label(GatewayError("x", code="x" * 65)) == OTHER


def test_methods_are_a_fixed_set() -> None:
    assert method_label("POST") == "POST"
    assert method_label("PROPFIND") == OTHER
    assert method_label(None) == OTHER
