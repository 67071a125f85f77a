"""``docker/compose.yaml``, ``docker/nginx.conf`` and ``docker/config/`` agree with each
other and with the gateway's settings (``./scripts/docker-smoke.sh`` runs them for real)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from imagegate.app import build_catalog
from imagegate.config import Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return doc


def seconds(value: str) -> float:
    default = re.fullmatch(r"\$\{\w+:-([\d.]+)\}", value)
    return float(default[1] if default else value.rstrip("s"))


def test_three_replicas_behind_nginx_each_started_after_redis() -> None:
    services = compose()["services"]
    replicas = sorted(name for name in services if name.startswith("gateway"))
    assert replicas == ["gateway1", "gateway2", "gateway3"]
    for name in replicas:
        gateway = services[name]
        assert gateway["depends_on"] == {"redis": {"condition": "service_healthy"}}
        assert "/readyz" in " ".join(gateway["healthcheck"]["test"])
        assert "ports" not in gateway  # only nginx is reachable from the host
        assert gateway["environment"]["IMAGEGATE_REDIS_URL"] == "redis://redis:6379/0"
    assert services["nginx"]["depends_on"] == {
        name: {"condition": "service_healthy"} for name in replicas
    }
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert all(port.startswith("127.0.0.1:") for port in services["nginx"]["ports"])
    conf = (DOCKER / "nginx.conf").read_text()
    upstreams = re.findall(r"^\s*server (gateway\d+):8000 ", conf, re.M)
    assert upstreams == replicas


def test_docker_stops_a_replica_only_after_it_has_drained() -> None:
    gateway = compose()["services"]["gateway1"]
    env = gateway["environment"]
    drain = seconds(env["IMAGEGATE_DRAIN_DELAY_SECONDS"])
    grace = seconds(env["IMAGEGATE_GRACEFUL_SHUTDOWN_SECONDS"])
    assert drain > 0  # a balancer's health check gets to see the replica go unready
    assert seconds(gateway["stop_grace_period"]) > drain + grace


def test_the_replicas_settings_are_the_gateways() -> None:
    env = compose()["services"]["gateway1"]["environment"]
    known = {f"IMAGEGATE_{name.upper()}" for name in Settings.model_fields}
    unknown = {name for name in env if name.startswith("IMAGEGATE_")} - known
    assert not unknown
    # The shared config file loads as it is shipped: valid, and nothing in it the gateway refuses.
    gateway = compose()["services"]["gateway1"]
    assert "./config:/etc/imagegate:ro" in gateway["volumes"]  # a folder: renames show through
    assert env["IMAGEGATE_CONFIG"] == "/etc/imagegate/imagegate.yaml"
    settings = Settings(config=DOCKER / "config" / "imagegate.yaml")
    assert len(build_catalog(settings)) > 0
