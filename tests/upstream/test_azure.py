"""Azure OpenAI end to end: the SDK -> the gateway -> the strict Azure fake, through the
deployment the shared config declares (``azure/team-image`` = ``gpt-image-1-prod`` running
gpt-image-1); and the checks on ``azure_deployments`` entries."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from openai import OpenAI

from imagegate.app import build_catalog
from imagegate.catalog.catalog import CatalogError
from imagegate.config import Settings
from imagegate.providers.azure.spec import SPEC as AZURE
from imagegate.testing.azure import AzureFake
from imagegate.testing.fake import Call, Fault
from imagegate.testing.openai import b64_digest
from tests import imaging
from tests.server import Gateway
from tests.support import envelope, sdk
from tests.support.requests import post_edit
from tests.upstream.conftest import AZURE_DEPLOYMENT, KEYS, RunningFake

MODEL = AZURE_DEPLOYMENT["id"]
DEPLOYMENT = AZURE_DEPLOYMENT["deployment"]
SQUARE = imaging.png(64, 64)


@pytest.fixture()
def fake(fakes: dict[str, RunningFake]) -> Iterator[AzureFake]:
    running = fakes["azure"]
    running.reset()
    fake = running.fake
    assert isinstance(fake, AzureFake)
    yield fake
    running.reset()


def only_call(fake: AzureFake) -> Call:
    assert len(fake.calls) == 1, fake.calls
    return fake.calls[0]


def gpt_image_1_cost(usage: dict[str, Any]) -> float:
    """gpt-image-1's prices per 1M tokens: text in $5, image in $10, image out $40."""
    details = usage["input_tokens_details"]
    total = details["text_tokens"] * 5 + details["image_tokens"] * 10
    total += usage["output_tokens"] * 40
    return round(total / 1_000_000, 8)


def test_the_deployment_is_listed_with_gpt_image_1_limits(upstream_client: OpenAI) -> None:
    model = upstream_client.models.retrieve(MODEL)
    assert model.id == MODEL
    extra = model.model_extra or {}
    assert extra["edit"]["max_reference_images"] == 16 and extra["edit"]["mask"] is True


def test_edit_through_the_deployment(upstream_client: OpenAI, fake: AzureFake) -> None:
    result = sdk.edit(
        upstream_client,
        model=MODEL,
        image=[("a.png", SQUARE), ("b.jpg", imaging.jpeg(64, 64))],
        mask=("mask.png", imaging.mask_left_half(64, 64)),
        prompt="swap the hats",
        size="1536x1024",
        quality="high",
    )
    call = only_call(fake)
    assert call.path == f"/openai/deployments/{DEPLOYMENT}/images/edits"
    assert call.query == "api-version=2025-04-01-preview"
    summary = call.summary
    assert summary["auth"] == "api-key" and summary["status"] == 200
    assert summary["model"] == "gpt-image-1"
    assert summary["values"]["model"] == DEPLOYMENT  # as AzureOpenAI sends it
    assert [part[0] for part in summary["files"]] == ["image[]", "image[]", "mask"]
    assert [part[2] for part in summary["files"]] == ["image/png", "image/jpeg", "image/png"]
    assert result.model == MODEL and result.size == "1536x1024" and result.quality == "high"
    assert result.data is not None
    assert b64_digest(result.data[0].b64_json or "") == summary["answer"][0]
    usage = summary["usage"]
    assert usage["output_tokens"] == 6240  # high, 1536x1024
    assert result.usage is not None and result.usage.model_extra is not None
    assert result.usage.model_extra["cost"]["total_cost"] == gpt_image_1_cost(usage)


def test_stream_through_the_deployment(upstream_client: OpenAI, fake: AzureFake) -> None:
    events = sdk.stream(upstream_client, model=MODEL, image=SQUARE, prompt="x", partial_images=1)
    assert [event.type for event in events] == ["image_edit.partial_image", "image_edit.completed"]
    summary = only_call(fake).summary
    assert summary["values"]["stream"] == "true"
    assert [b64_digest(event.b64_json) for event in events] == summary["answer"]
    completed = events[-1]
    assert completed.type == "image_edit.completed"
    cost = (completed.usage.model_extra or {})["cost"]["total_cost"]
    assert cost == gpt_image_1_cost(summary["usage"])


def test_content_filter_is_a_content_policy_refusal(
    fake: AzureFake, upstream_gateway: Gateway
) -> None:
    fake.faults.append(Fault("moderation"))
    response = post_edit(upstream_gateway.base_url, SQUARE, model=MODEL)
    error = envelope.error_of(response, 400, origin="provider")
    assert error["code"] == "content_policy_violation"
    assert "content management policy" in error["message"]
    assert "filtered: sexual (medium)" in error["message"]
    assert len(fake.calls) == 1


def test_content_filter_mid_stream(upstream_client: OpenAI, fake: AzureFake) -> None:
    fake.faults.append(Fault("moderation"))
    with pytest.raises(openai.APIError) as failed:
        sdk.stream(upstream_client, model=MODEL, image=SQUARE, prompt="x", partial_images=1)
    assert failed.value.code == "content_policy_violation"
    assert "filtered: sexual" in failed.value.message


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault("rate_limit", retry_after=7), 429, "rate_limit_exceeded"),
        (Fault("rate_limit"), 429, "rate_limit_exceeded"),
        (Fault("server_error"), 502, "upstream_error"),
        (Fault("unavailable"), 502, "upstream_error"),
        (Fault("malformed"), 502, "upstream_malformed"),
        (Fault("truncated"), 502, "upstream_malformed"),
        (Fault("no_image"), 502, "upstream_malformed"),
        (Fault("bad_key"), 502, "provider_auth_failed"),
    ],
    ids=lambda value: value.fault if isinstance(value, Fault) else str(value),
)
def test_each_fault(
    fake: AzureFake, upstream_gateway: Gateway, fault: Fault, status: int, code: str
) -> None:
    fake.faults.append(fault)
    response = post_edit(upstream_gateway.base_url, SQUARE, model=MODEL)
    error = envelope.error_of(response, status, origin="provider")
    assert error["code"] == code
    assert response.headers.get("retry-after") == ("7" if fault.retry_after else None)
    assert KEYS["azure"] not in response.text
    assert KEYS["azure"] not in upstream_gateway.logs()


def test_the_fake_is_strict_about_azure_urls_and_keys(
    fakes: dict[str, RunningFake], fake: AzureFake
) -> None:
    base = fakes["azure"].base_url
    files = [("image", ("a.png", SQUARE, "image/png"))]
    data = {"prompt": "x"}
    key = {"api-key": KEYS["azure"]}
    path = f"{base}/openai/deployments/{DEPLOYMENT}/images/edits"
    no_version = httpx.post(path, data=data, files=files, headers=key, timeout=10)
    assert no_version.status_code == 404
    unknown = httpx.post(
        f"{base}/openai/deployments/nope/images/edits?api-version=2025-04-01-preview",
        data=data,
        files=files,
        headers=key,
        timeout=10,
    )
    assert unknown.json()["error"]["code"] == "DeploymentNotFound"
    bearer = httpx.post(
        path + "?api-version=2025-04-01-preview",
        data=data,
        files=files,
        headers={"Authorization": f"Bearer {KEYS['azure']}"},
        timeout=10,
    )
    assert bearer.status_code == 401 and bearer.json()["error"]["code"] == "401"
    ok = httpx.post(
        path + "?api-version=2025-04-01-preview", data=data, files=files, headers=key, timeout=10
    )
    assert ok.status_code == 200 and ok.json()["usage"]["output_tokens_details"]
    assert [call.summary["status"] for call in fake.calls] == [404, 404, 401, 200]


# -- azure_deployments entries -----------------------------------------------------------------


def settings(*entries: dict[str, Any], **more: Any) -> Settings:
    base = {"azure_openai_endpoint": "https://res.openai.azure.com", "azure_openai_api_key": "k"}
    return Settings(azure_deployments=list(entries), **{**base, **more})


ENTRY = {"id": "azure/img", "deployment": "img-prod", "upstream_model": "gpt-image-1-mini"}


def test_a_deployment_copies_its_models_card() -> None:
    catalog = build_catalog(settings(ENTRY))
    card = catalog.resolve("azure/img")
    mini = catalog.resolve("openai/gpt-image-1-mini")
    assert (card.provider, card.upstream_model) == ("azure", "gpt-image-1-mini")
    assert card.pricing.tokens == mini.pricing.tokens
    assert card.edit == mini.edit and card.sizing == mini.sizing
    assert catalog.aliases_of("azure/img") == []


def test_each_entry_is_one_deployment_with_its_own_overrides() -> None:
    other = {
        **ENTRY,
        "id": "azure/eu",
        "endpoint": "https://eu.openai.azure.com/",
        "api_version": "2025-06-01-preview",
        "api_key": "eu-key",
    }
    deployments = AZURE.deployments(settings(ENTRY, other))
    try:
        first, second = deployments
        assert first.cards == frozenset({"azure/img"})
        assert first.base_url == "https://res.openai.azure.com"
        assert dict(first.options) == {
            "deployment": "img-prod",
            "api_version": "2025-04-01-preview",
        }
        assert first.secret() == "k"
        assert second.base_url == "https://eu.openai.azure.com"
        assert second.options["api_version"] == "2025-06-01-preview"
        assert second.secret() == "eu-key"
    finally:
        for deployment in deployments:
            assert deployment.client is not None
            asyncio.run(deployment.client.aclose())


@pytest.mark.parametrize(
    ("entry", "more", "named"),
    [
        ({"id": "azure/x", "upstream_model": "gpt-image-1"}, {}, "azure_deployments[0].deployment"),
        ({**ENTRY, "upstream_model": "gpt-9"}, {}, "azure_deployments[0].upstream_model"),
        ({**ENTRY, "endpoint": "res.openai.azure.com"}, {}, "azure_deployments[0].endpoint"),
        ({**ENTRY, "id": "no-slash"}, {}, "azure_deployments[0].id"),
        ({**ENTRY, "id": "openai/gpt-image-1"}, {}, "azure_deployments[0].id"),
        ({**ENTRY, "region": "eu"}, {}, "azure_deployments[0].region"),
        (ENTRY, {"azure_openai_endpoint": None}, "azure_deployments[0].endpoint"),
    ],
)
def test_a_bad_entry_names_its_field(
    entry: dict[str, Any], more: dict[str, Any], named: str
) -> None:
    with pytest.raises(CatalogError) as refused:
        build_catalog(settings(entry, **more))
    assert str(refused.value).startswith(named + ":")


def test_the_same_id_twice_is_refused() -> None:
    with pytest.raises(CatalogError, match=r"azure_deployments\[1\]\.id"):
        build_catalog(settings(ENTRY, {**ENTRY, "deployment": "other"}))


def test_check_config_and_serve_stop_on_a_bad_entry(tmp_path: Path) -> None:
    config = tmp_path / "imagegate.yaml"
    config.write_text(yaml.safe_dump({"azure_deployments": [{**ENTRY, "upstream_model": "gpt-9"}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEGATE_", "AZURE_"))}
    env.update(AZURE_OPENAI_API_KEY="k", AZURE_OPENAI_ENDPOINT="https://res.openai.azure.com")
    for command in ("check-config", "serve"):
        done = subprocess.run(
            [sys.executable, "-m", "imagegate", command, "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,
        )
        assert done.returncode == 2, done.stderr
        assert "azure_deployments[0].upstream_model: 'gpt-9'" in done.stderr


def test_the_request_id_goes_upstream(upstream_client: OpenAI, fake: AzureFake) -> None:
    raw = upstream_client.images.with_raw_response.edit(
        model=MODEL, image=("a.png", SQUARE), prompt="invert"
    )
    request_id = raw.headers["x-request-id"]  # made by the gateway: the client sent none
    assert request_id.startswith("req_")
    assert only_call(fake).request_id == request_id
