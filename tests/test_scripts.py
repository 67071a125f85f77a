"""scripts/: what a new user runs first, from wherever they are."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.server import Gateway
from tests.support import tools

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"


def run_script(
    script: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEGATE_", "PYTHON"))}
    return subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**clean, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def skeleton(tmp_path: Path) -> Path:
    """A copy of the repository's bootstrap with a stand-in project, to run it on a fresh tree."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPTS / "bootstrap.sh", repo / "scripts" / "bootstrap.sh")
    (repo / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=77"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "stand-in"\nversion = "0"\n'
        "[project.optional-dependencies]\ndev = []\n"
    )
    (repo / "constraints.txt").write_text("")
    return repo


def test_serve_reads_the_config_and_dotenv_of_the_folder_it_is_run_from(tmp_path: Path) -> None:
    # A user's own folder, not the repository: relative --config and .env are found there.
    (tmp_path / "imagegate.yaml").write_text("aliases:\n  house: local/pillow\n")
    (tmp_path / ".env").write_text("IMAGEGATE_MASTER_KEY=from-dotenv\n")
    command = (str(SCRIPTS / "serve.sh"),)
    with Gateway(tmp_path, command=command, args=("--config", "imagegate.yaml")) as gateway:
        url = gateway.base_url + "/v1/models/house"
        assert httpx.get(url).status_code == 401  # the key from ./.env is in force
        model = httpx.get(url, headers={"authorization": "Bearer from-dotenv"})
        assert model.status_code == 200, model.text
        assert model.json()["id"] == "local/pillow"  # the alias from ./imagegate.yaml


def test_bootstrap_is_quiet_when_the_venv_is_ready(tmp_path: Path) -> None:
    done = run_script(SCRIPTS / "bootstrap.sh", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == ""


def test_a_first_bootstrap_says_what_it_does_as_it_goes(tmp_path: Path) -> None:
    repo = skeleton(tmp_path)
    # No package index (the tests stay on this machine): pip cannot fetch setuptools, so the
    # install fails, after showing its progress and before anything is marked installed.
    env = {"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull, "PYTHON": sys.executable}
    done = run_script(repo / "scripts" / "bootstrap.sh", cwd=tmp_path, env=env)
    lines = done.stderr.splitlines()
    assert done.returncode == 1
    assert lines[0].startswith(f"bootstrap: creating {repo}/.venv with {sys.executable}")
    assert lines[1].startswith("bootstrap: installing imagegate and its dev tools into .venv")
    assert any("Requirement already satisfied: pip" in line for line in lines)  # pip's output
    assert any("setuptools>=77" in line for line in lines)
    assert lines[-1] == (
        "bootstrap: installing into .venv failed (pip's output is above and in "
        f"{repo}/.venv/bootstrap.log)"
    )
    assert not (repo / ".venv" / ".imagegate-installed").exists()
    assert not (tmp_path / ".venv").exists()  # it worked in the repository, not in the cwd


def test_an_unusable_python_is_an_error_not_ignored(tmp_path: Path) -> None:
    repo = skeleton(tmp_path)
    old = tmp_path / "python3.8"
    old.write_text(
        '#!/bin/sh\ncase "$2" in *print*) echo 3.8.18; exit 0;; esac\nexit 1\n'  # too old
    )
    old.chmod(0o755)
    for python, message in [
        (str(tmp_path / "nope"), "is neither a command on PATH nor an executable file"),
        ("/bin/true", "does not run as Python"),
        (str(old), "is Python 3.8.18; imagegate needs 3.11 or newer"),
    ]:
        done = run_script(repo / "scripts" / "bootstrap.sh", cwd=tmp_path, env={"PYTHON": python})
        assert done.returncode == 1, python
        assert done.stderr == f"bootstrap: PYTHON={python} {message}\n"
        assert not (repo / ".venv").exists()


def test_a_missing_tool_fails_under_ci_and_is_skipped_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"curl not installed.*CI must run these tests"):
        tools.require("curl")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="curl not installed"):
        tools.require("curl")
