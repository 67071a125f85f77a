"""A real ``imagegate serve`` process on a free loopback port, for the API tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gateway:
    """Starts the gateway with the given settings; ``stop()`` sends SIGTERM and waits."""

    def __init__(
        self,
        tmp: Path,
        *,
        env: Mapping[str, str] | None = None,
        config: Mapping[str, object] | None = None,
        args: tuple[str, ...] = (),
        command: Sequence[str] = (sys.executable, "-m", "imagegate", "serve"),
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"gateway-{self.port}.log"
        self._env = {
            key: value for key, value in os.environ.items() if not key.startswith("IMAGEGATE_")
        }
        self._env.update({"IMAGEGATE_LOG_FORMAT": "json", **(env or {})})
        self._command = list(command)  # what starts it, e.g. scripts/serve.sh; run in ``tmp``
        self._args = ["--host", "127.0.0.1", "--port", str(self.port), *args]
        if config is not None:
            path = tmp / f"config-{self.port}.yaml"
            path.write_text(yaml.safe_dump(dict(config)))
            self._args += ["--config", str(path)]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Gateway:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*self._command, *self._args],
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.log_path.parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{self.logs()}")
            try:
                if httpx.get(self.base_url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway not ready in {timeout} s:\n{self.logs()}")

    def log_lines(
        self, where: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """The JSON log lines matching ``where``; waits for one, since a request's line is
        written just after its response."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [orjson.loads(raw) for raw in self.logs().splitlines() if raw.startswith("{")]
            found = [line for line in lines if where(line)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
