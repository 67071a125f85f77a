from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from imagegate.cli import bind_verdict, is_loopback
from imagegate.config import Settings
from tests import imaging
from tests.server import Gateway, free_port
from tests.support import schema
from tests.support.requests import post_edit


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGATE_")}
    return subprocess.run(
        [sys.executable, "-m", "imagegate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
        cwd=cwd,
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "gateway.internal"])
def test_non_loopback_hosts(host: str) -> None:
    assert not is_loopback(host)


def test_bind_verdicts() -> None:
    assert bind_verdict(Settings(host="127.0.0.1")) == "ok"
    assert bind_verdict(Settings(host="0.0.0.0")) == "refuse"
    assert bind_verdict(Settings(host="0.0.0.0", allow_unauthenticated=True)) == "warn"
    assert bind_verdict(Settings(host="0.0.0.0", master_key="k")) == "ok"


def test_serve_refuses_a_public_bind_without_a_key(tmp_path: Path) -> None:
    done = run_cli("serve", "--host", "0.0.0.0", "--port", "1", cwd=tmp_path)
    assert done.returncode == 2
    assert "IMAGEGATE_MASTER_KEY" in done.stderr and "--allow-unauthenticated" in done.stderr


def test_models_command(tmp_path: Path) -> None:
    done = run_cli("models", cwd=tmp_path)
    assert done.returncode == 0
    assert "local/pillow" in done.stdout and "up to 16 image(s), mask" in done.stdout
    as_json = orjson.loads(run_cli("models", "--json", cwd=tmp_path).stdout)
    assert as_json[0]["id"] == "local/pillow"


def test_config_file_from_flag_and_env(tmp_path: Path) -> None:
    config = tmp_path / "imagegate.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "aliases": {"house": "local/pillow"},
                "models": [{"id": "local/pillow", "n": {"max": 2}}],
            }
        )
    )
    by_flag = run_cli("models", "--config", str(config), cwd=tmp_path)
    assert "aliases: house, pillow" in by_flag.stdout and "n 1-2" in by_flag.stdout
    by_env = run_cli("models", env={"IMAGEGATE_CONFIG": str(config)}, cwd=tmp_path)
    assert by_env.stdout == by_flag.stdout


def test_check_config_names_the_broken_card(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"models": [{"id": "acme/x", "sizing": {"style": "warp"}}]}))
    done = run_cli("check-config", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert "acme/x" in done.stderr and "sizing.style" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_or_invalid_config_file(tmp_path: Path) -> None:
    missing = run_cli("check-config", "--config", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert missing.returncode == 2 and "cannot read the config file" in missing.stderr
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    listed = run_cli("check-config", "--config", str(tmp_path / "list.yaml"), cwd=tmp_path)
    assert listed.returncode == 2 and "mapping" in listed.stderr


def test_check_config_refuses_an_unknown_setting_and_names_the_closest(tmp_path: Path) -> None:
    config = tmp_path / "imagegate.yaml"
    config.write_text("max_imagez: 3\nIMAGEGATE_WORKERS: 2\n")
    done = run_cli("check-config", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown settings: max_imagez (did you mean max_images?)" in done.stderr
    assert "IMAGEGATE_WORKERS (did you mean workers?)" in done.stderr
    served = run_cli("serve", "--port", str(free_port()), "--config", str(config), cwd=tmp_path)
    assert served.returncode == 2  # it never started listening: run_cli returned
    assert "unknown settings: max_imagez (did you mean max_images?)" in served.stderr
    assert "Traceback" not in done.stderr + served.stderr


@pytest.mark.parametrize("where", ["file", "env"])
def test_a_default_model_not_in_the_catalog_is_refused(tmp_path: Path, where: str) -> None:
    config = tmp_path / "imagegate.yaml"
    config.write_text(yaml.safe_dump({"aliases": {"house": "local/pillow"}}))
    env = {"IMAGEGATE_CONFIG": str(config)}
    if where == "file":
        config.write_text(yaml.safe_dump({"default_model": "local/pilow"}))
    else:
        env["IMAGEGATE_DEFAULT_MODEL"] = "local/pilow"
    checked = run_cli("check-config", env=env, cwd=tmp_path)
    assert checked.returncode == 2
    assert "default_model 'local/pilow' is not in the catalog (did you mean local/pillow?)" in (
        checked.stderr
    )
    served = run_cli("serve", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert served.returncode == 2  # it never started listening: run_cli returned
    assert "default_model 'local/pilow' is not in the catalog" in served.stderr
    assert "Traceback" not in checked.stderr + served.stderr


def test_a_default_model_whose_provider_is_off_is_refused(tmp_path: Path) -> None:
    env = {"IMAGEGATE_DEFAULT_MODEL": "pillow", "IMAGEGATE_LOCAL_ENGINE": "false"}
    done = run_cli("check-config", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "is local/pillow, whose provider 'local' is not enabled" in done.stderr


def test_unknown_imagegate_environment_names_are_warned_about(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("IMAGEGATE_MASTERKEY=abc\n")
    env = {"IMAGEGATE_MAX_IMAGEZ": "3", "IMAGEGATE_OPENAI_API_KEY": "sk-x"}
    done = run_cli("check-config", env=env, cwd=tmp_path)
    assert done.returncode == 0  # a warning, not a refusal: the environment is shared
    assert (
        "warning: IMAGEGATE_MAX_IMAGEZ (in the environment) is not a setting "
        "(did you mean IMAGEGATE_MAX_IMAGES?); it is ignored"
    ) in done.stderr
    assert "IMAGEGATE_MASTERKEY (in .env) is not a setting" in done.stderr
    assert "did you mean IMAGEGATE_MASTER_KEY?" in done.stderr
    # A provider key goes by the provider's own name, as its SDK reads it.
    assert (
        "IMAGEGATE_OPENAI_API_KEY (in the environment) is not read; this setting is OPENAI_API_KEY"
    ) in done.stderr
    assert "sk-x" not in done.stderr
    clean = tmp_path / "clean"
    clean.mkdir()
    quiet = run_cli("check-config", env={"IMAGEGATE_MAX_IMAGES": "3"}, cwd=clean)
    assert quiet.returncode == 0 and "warning" not in quiet.stderr


def test_help_is_plain_text(tmp_path: Path) -> None:
    done = run_cli("--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "``" not in done.stdout and "|" not in done.stdout
    assert "An OpenAI-compatible image-edit gateway" in done.stdout
    assert "imagegate serve --config imagegate.yaml" in done.stdout


def test_invalid_setting_from_env(tmp_path: Path) -> None:
    done = run_cli("check-config", env={"IMAGEGATE_MAX_IMAGES": "zero"}, cwd=tmp_path)
    assert done.returncode == 2 and "max_images" in done.stderr
    done = run_cli(
        "check-config", env={"IMAGEGATE_FETCH_ALLOW_NETWORKS": "10.0.0.0/8, intranet"}, cwd=tmp_path
    )
    assert done.returncode == 2 and "'intranet' is not an IP network" in done.stderr
    assert "Traceback" not in done.stderr


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    # A copy of .env.example with one value filled in: the empty ones are ignored.
    example = (Path(__file__).parent.parent / ".env.example").read_text()
    (tmp_path / ".env").write_text(
        example.replace("IMAGEGATE_MASTER_KEY=", "IMAGEGATE_MASTER_KEY=from-dotenv")
    )
    done = run_cli("check-config", cwd=tmp_path)
    assert done.returncode == 0 and "auth on" in done.stdout


def test_settings_priority_env_over_file(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"max_images": 3, "default_model": "local/pillow"}))
    settings = Settings(config=config)
    assert settings.max_images == 3 and settings.default_model == "local/pillow"
    os.environ["IMAGEGATE_MAX_IMAGES"] = "5"
    try:
        assert Settings(config=config).max_images == 5
    finally:
        del os.environ["IMAGEGATE_MAX_IMAGES"]


def test_env_example_lists_every_setting() -> None:
    example = (Path(__file__).parent.parent / ".env.example").read_text()
    for name, field in Settings.model_fields.items():
        if name in (
            "models",
            "aliases",
            "azure_deployments",
            "keys",
            "deployments",
            "routes",
            "fallbacks",
        ):
            continue  # config file only
        alias = field.validation_alias
        env = alias.choices[0] if alias is not None else f"IMAGEGATE_{name.upper()}"  # type: ignore[union-attr]
        assert f"\n{env}=" in example, env


def test_sigterm_lets_an_edit_in_flight_finish(tmp_path: Path) -> None:
    gateway = Gateway(tmp_path).start()
    big = imaging.encode(imaging.picture(3000, 2000), "PNG")
    outcome: dict[str, httpx.Response] = {}

    def slow_edit() -> None:
        outcome["response"] = post_edit(
            gateway.base_url, big, prompt="blur radius 40, then sharpen", timeout=60
        )

    worker = threading.Thread(target=slow_edit)
    worker.start()
    time.sleep(0.5)  # the upload is in and the engine is working
    code = gateway.stop()
    worker.join(timeout=60)
    # A clean drain exits 0 (plain uvicorn would raise SIGTERM again and die of it).
    assert code == 0
    assert outcome["response"].status_code == 200
    body = schema.assert_images_response(outcome["response"].content)
    assert imaging.decode_b64(body["data"][0]["b64_json"]).size == (3000, 2000)
    assert "Application shutdown complete" in gateway.logs()


def test_default_model_setting_serves_sdk_calls_without_a_model(tmp_path: Path) -> None:
    with Gateway(tmp_path, env={"IMAGEGATE_DEFAULT_MODEL": "local/pillow"}) as gateway:
        response = post_edit(gateway.base_url, imaging.png(), prompt="invert", model=None)
    assert response.status_code == 200
    assert schema.assert_images_response(response.content)["model"] == "local/pillow"


def test_several_workers_serve_with_the_config_file(tmp_path: Path) -> None:
    config = {"aliases": {"house": "local/pillow"}}
    with Gateway(tmp_path, config=config, args=("--workers", "2")) as gateway:
        for _ in range(4):
            response = post_edit(gateway.base_url, imaging.png(), prompt="invert", model="house")
            assert response.status_code == 200
            assert schema.assert_images_response(response.content)["model"] == "local/pillow"
    assert gateway.logs().count("Started server process") >= 2
