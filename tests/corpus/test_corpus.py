"""The hostile corpus: every case against one running gateway, then a good edit to prove it
still serves.

Cases live in the YAML files beside this module (``cases.py`` says how to read them). Each must
get its status, code and (where given) param, in the envelope with an ``x-request-id``, never a
5xx; after each, a real edit must come back and decode. Resource bombs also bound the server
process's peak memory growth and CPU time, read from /proc.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests import imaging
from tests.corpus.cases import MASTER_KEY, Case, build, load_cases
from tests.fuzz.checks import check_answer
from tests.imaging import RED
from tests.server import Gateway

FILES = (
    "multipart.yaml",
    "fields.yaml",
    "json.yaml",
    "images.yaml",
    "urls.yaml",
    "http.yaml",
    "unicode.yaml",
    "bombs.yaml",
)
CASES = load_cases(*FILES)
_TICKS = os.sysconf("SC_CLK_TCK")


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 150, len(CASES)


class ServerProcess:
    """Peak memory and CPU of the gateway process, from /proc (Linux)."""

    def __init__(self, pid: int) -> None:
        self.proc = Path(f"/proc/{pid}")

    def reset_peak(self) -> None:
        (self.proc / "clear_refs").write_text("5")  # VmHWM := VmRSS

    def kib(self, field: str) -> int:
        for line in (self.proc / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"{field} not in /proc status")

    def cpu_seconds(self) -> float:
        # utime and stime are fields 14 and 15; the command name (2) may hold spaces.
        fields = (self.proc / "stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS


def _send(gateway: Gateway, case: Case) -> httpx.Response:
    built = build(case)
    return httpx.request(
        built.method,
        gateway.base_url + built.path,
        content=built.body,
        headers=built.headers,
        timeout=120,
    )


def _good_edit_still_works(gateway: Gateway) -> None:
    response = httpx.post(
        gateway.base_url + "/v1/images/edits",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        data={"model": "local/pillow", "prompt": "invert"},
        files={"image": ("a.png", imaging.png(), "image/png")},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    out = imaging.decode_b64(response.json()["data"][0]["b64_json"]).convert("RGB")
    assert out.getpixel((0, 0)) == tuple(255 - c for c in RED)


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_corpus_case(corpus_gateway: Gateway, case: Case) -> None:
    server = ServerProcess(corpus_gateway.process.pid) if corpus_gateway.process else None
    if case.bomb and server is not None:
        server.reset_peak()
        rss_before, cpu_before = server.kib("VmRSS"), server.cpu_seconds()
    response = _send(corpus_gateway, case)
    where = f"{case.source}:{case.id}"
    error = check_answer(response, where)
    assert response.status_code == case.status, (
        f"{where}: {response.status_code} {response.text[:400]}"
    )
    if error is not None:
        assert error["code"] in case.codes, f"{where}: {error}"
        if case.check_param:
            assert error["param"] == case.param, f"{where}: {error}"
        assert MASTER_KEY not in error["message"]
    else:
        assert case.codes == ("ok",), f"{where}: expected a refusal, got {response.status_code}"
    if case.bomb and server is not None:
        grown_mb = (server.kib("VmHWM") - rss_before) / 1024
        cpu = server.cpu_seconds() - cpu_before
        used = f"{where}: peak RSS grew {grown_mb:.0f} MB, {cpu:.2f} s of CPU"
        assert grown_mb < case.bomb["rss_mb"] and cpu < case.bomb["cpu_s"], used
    _good_edit_still_works(corpus_gateway)
