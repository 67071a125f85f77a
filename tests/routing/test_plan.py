"""The config file's deployments, routes and fallbacks: checked whole at load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from imagegate.app import build_catalog, build_plan, enabled_providers
from imagegate.catalog.catalog import CatalogError
from imagegate.config import Settings
from imagegate.routing.plan import RoutingPlan
from tests.test_cli import run_cli

KEYS: dict[str, Any] = {"openai_api_key": "sk-test-openai", "gemini_api_key": "AIza-test"}


def plan(**values: Any) -> RoutingPlan:
    settings = Settings(**{**KEYS, **values})
    return build_plan(settings, build_catalog(settings))


def refused(**values: Any) -> str:
    with pytest.raises(CatalogError) as caught:
        plan(**values)
    return str(caught.value)


def test_a_full_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_EU_KEY", "sk-eu-secret")
    checked = plan(
        deployments=[
            {"name": "eu", "provider": "openai", "api_key_env": "OPENAI_EU_KEY", "weight": 3},
            {"name": "fast", "provider": "openai", "models": ["gpt-image-1"], "timeout_seconds": 9},
        ],
        routes={
            "house": {
                "strategy": "weighted",
                "targets": ["openai/gpt-image-1", {"model": "nano-banana", "weight": 2}],
            }
        },
        fallbacks={"gpt-image-1": ["gemini/gemini-2.5-flash-image"]},
    )
    eu, fast = checked.deployments
    assert eu.api_key is not None and eu.api_key.get_secret_value() == "sk-eu-secret"
    assert eu.weight == 3 and eu.cards == frozenset()
    assert fast.api_key is None and fast.cards == {"openai/gpt-image-1"}  # aliases resolved
    assert fast.timeout_seconds == 9
    route = checked.routes["house"]
    assert route.strategy == "weighted"
    assert route.targets == (("openai/gpt-image-1", 1), ("gemini/gemini-2.5-flash-image", 2))
    assert checked.fallbacks == {"openai/gpt-image-1": ("gemini/gemini-2.5-flash-image",)}


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"deployments": [{"name": "x", "provider": "opnai"}]}, "(did you mean openai?)"),
        ({"deployments": [{"name": "x", "provider": "openai", "key": "k"}]}, "deployments[0].key"),
        (
            {"deployments": [{"name": "x", "provider": "openai"}] * 2},
            "deployments[1] (x).name: the name x is declared twice",
        ),
        ({"deployments": [{"name": "default", "provider": "openai"}]}, "default"),
        ({"deployments": [{"name": "x", "provider": "azure"}]}, "azure_deployments"),
        (
            {"deployments": [{"name": "x", "provider": "openai", "api_key_env": "NOPE_UNSET"}]},
            "NOPE_UNSET is not set",
        ),
        ({"deployments": [{"name": "x", "provider": "xai"}]}, "no key"),
        (
            {"deployments": [{"name": "x", "provider": "openai", "models": ["nano-banana"]}]},
            "is a gemini model, not a openai one",
        ),
        ({"routes": {"gpt-image-1": {"targets": ["openai/gpt-image-1"]}}}, "already a model"),
        ({"routes": {"r": {"targets": ["openai/gpt-imag-1"]}}}, "routes[r].targets[0]"),
        ({"routes": {"r": {"targets": ["xai/grok-imagine-image"]}}}, "not enabled"),
        ({"routes": {"r": {"targets": []}}}, "routes[r].targets"),
        ({"routes": {"r": {"targets": ["gpt-image-1"], "strategy": "fastest"}}}, "strategy"),
        ({"routes": {"r": {"targets": ["gpt-image-1"], "fallback": []}}}, "fallback"),
        ({"fallbacks": {"gpt-image-1": ["gpt-image-1"]}}, "itself"),
    ],
)
def test_a_bad_entry_is_named_with_its_field(values: dict[str, Any], words: str) -> None:
    assert words in refused(**values)


def test_a_deployment_alone_turns_its_provider_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_XAI_KEY", "xai-team")
    settings = Settings(
        deployments=[{"name": "team", "provider": "xai", "api_key_env": "TEAM_XAI_KEY"}]
    )
    assert "xai" in enabled_providers(settings)
    assert build_plan(settings, build_catalog(settings)).deployments[0].provider == "xai"


def test_check_config_stops_on_a_bad_route(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"routes": {"r": {"targets": ["local/pilow"]}}}))
    done = run_cli("check-config", "--config", str(config), cwd=tmp_path)
    assert done.returncode != 0
    assert "routes[r].targets[0]" in done.stderr and "did you mean local/pillow" in done.stderr
    config.write_text(yaml.safe_dump({"routes": {"r": {"targets": ["local/pillow"]}}}))
    done = run_cli("check-config", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 routes" in done.stdout


def test_imagegate_models_lists_routes(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    route = {"targets": ["local/pillow"], "strategy": "least_in_flight"}
    config.write_text(yaml.safe_dump({"routes": {"house-edit": route}}))
    done = run_cli("models", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "house-edit  (route, least_in_flight)\n    targets local/pillow" in done.stdout
