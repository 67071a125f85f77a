"""A real nginx (Debian's ``/usr/sbin/nginx``) on a free loopback port, in front of gateways.

It runs ``docker/nginx.conf`` itself, rendered for the test: the listen address, the upstream
``server`` lines, the log, pid and temporary paths move to loopback and a temporary directory,
one worker process, no ``user`` switch. Each replacement must match exactly once, so a change to
the shipped file that the rendering no longer covers fails here instead of being silently
tested on a stale copy. Not daemonized: killed (after SIGQUIT, its graceful stop) at the end.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.server import free_port
from tests.support.tools import require_file

SHIPPED = Path(__file__).resolve().parents[2] / "docker" / "nginx.conf"
REPLICA_LINE = re.compile(r"^(\s*)server gateway(\d+):8000 (.*)$", re.M)


def render(conf: str, tmp: Path, port: int, replicas: Sequence[int]) -> str:
    """``docker/nginx.conf`` for a loopback nginx on ``port`` in front of ``replicas`` (ports)."""

    def once(old: str, new: str) -> None:
        nonlocal conf
        count = conf.count(old)
        assert count == 1, f"docker/nginx.conf: expected {old!r} once, found it {count} times"
        conf = conf.replace(old, new)

    once("user  nginx;\n", "")
    once("worker_processes  auto;", "worker_processes  1;")
    once("error_log  /var/log/nginx/error.log notice;", f"error_log  {tmp}/error.log notice;")
    once("pid        /run/nginx.pid;", f"pid        {tmp}/nginx.pid;")
    once("access_log /var/log/nginx/", f"access_log {tmp}/")
    once("listen 80 default_server;", f"listen 127.0.0.1:{port} default_server;")
    temp = "".join(
        f"    {kind}_temp_path {tmp}/{kind}_temp;\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    once("http {\n", "http {\n" + temp)
    shipped = REPLICA_LINE.findall(conf)
    assert len(shipped) == len(replicas), f"docker/nginx.conf has {len(shipped)} replicas"
    lines = iter(replicas)
    conf = REPLICA_LINE.sub(lambda m: f"{m[1]}server 127.0.0.1:{next(lines)} {m[3]}", conf)
    return conf


class Nginx:
    def __init__(self, tmp: Path, replicas: Sequence[int]) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.conf = tmp / "nginx.conf"
        self.conf.write_text(render(SHIPPED.read_text(), tmp, self.port, replicas))
        self.access_log = tmp / "access.log"
        self.error_log = tmp / "error.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        command = [binary, "-p", str(self.tmp), "-c", str(self.conf), "-e", str(self.error_log)]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
        assert checked.returncode == 0, f"nginx -t refused the rendered config:\n{checked.stderr}"
        self.process = subprocess.Popen(
            [*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited early:\n{self.errors()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx not answering in {timeout} s:\n{self.errors()}")

    def access(self) -> list[dict[str, Any]]:
        """The access log, one JSON object per request (docker/nginx.conf's format)."""
        if not self.access_log.exists():
            return []
        text = self.access_log.read_text(errors="replace")
        return [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]

    def errors(self) -> str:
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: finish open requests
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def require_nginx() -> None:
    """Skip (fail under CI=true) without nginx; Debian's is in /usr/sbin, off a user's PATH."""
    if shutil.which("nginx") is None:
        require_file(Path("/usr/sbin/nginx"), "nginx (./scripts/test-tools.sh installs it)")
