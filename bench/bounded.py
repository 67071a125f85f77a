"""Bounded work, measured: event-loop responsiveness under huge requests, and peak memory.

Runs every workload against this checkout's gateway and, in the same run, against a baseline
(another commit, checked out into a temporary git worktree and served with the same venv), so
the two are compared on the same machine at the same moment:

* **responsiveness**: while a 100 MB JSON edit (ten 7.7 MB images as data URLs) and then an
  ``n=4`` edit of a 40 MB image (four ~40 MB results, a ~220 MB answer) go through, a probe
  sends ``GET /healthz`` every 50 ms on its own connection; its latencies (p50, p99, max) say
  how long the event loop was held;
* **peak memory**: 16 concurrent multipart edits, each of five 10 MB images; the gateway
  process's peak RSS (``VmHWM``, reset before the workload) and its RSS before.

Every edit's answer is checked (200, images that decode to the expected size).

    .venv/bin/python bench/bounded.py [--baseline REF] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import base64
import io
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import httpx
import orjson
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import Gateway  # noqa: E402

PROBE_INTERVAL = 0.05


def noise_png(width: int, height: int) -> bytes:
    """Random RGB pixels, stored without compression: PNG bytes of a predictable size."""
    pixels = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    pixels.save(out, format="PNG", compress_level=0)
    return out.getvalue()


def _probe_loop(url: str, stop: EventType, out: Queue[list[float]]) -> None:
    latencies = []
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            response = client.get(url)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
            stop.wait(PROBE_INTERVAL)
    out.put(latencies)


class Probe:
    """GET /healthz every 50 ms from a process of its own (so the benchmark's own work on
    100 MB bodies cannot delay it), recording each latency."""

    def __init__(self, url: str) -> None:
        self._stop = multiprocessing.Event()
        self._out: Queue[list[float]] = multiprocessing.Queue()
        self._process = multiprocessing.Process(
            target=_probe_loop, args=(url, self._stop, self._out), daemon=True
        )
        self.latencies: list[float] = []

    def __enter__(self) -> Probe:
        self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.latencies = self._out.get(timeout=60)
        self._process.join()

    def summary(self) -> tuple[int, float, float, float]:
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return len(ordered), statistics.median(ordered), p99, ordered[-1]


def rss_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def reset_peak_rss(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # Linux: VmHWM starts again from VmRSS


def check_answer(response: httpx.Response, count: int) -> None:
    """200, ``count`` images, and the first decodes to the size the answer states."""
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert len(body["data"]) == count
    with Image.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"]))) as image:
        assert "x".join(map(str, image.size)) == body["size"], (image.size, body["size"])


@dataclass
class Inputs:
    json_body: bytes  # ~100 MB
    big_png: bytes  # ~40 MB
    ten_mb: list[bytes]  # five ~10 MB images

    @classmethod
    def make(cls) -> Inputs:
        images = [noise_png(1600, 1600) for _ in range(10)]
        doc = {
            "model": "local/pillow",
            "prompt": "invert",
            "images": [
                {"image_url": "data:image/png;base64," + base64.b64encode(png).decode()}
                for png in images
            ],
        }
        big = noise_png(3650, 3650)
        return cls(
            json_body=orjson.dumps(doc),
            big_png=big,
            ten_mb=[noise_png(1830, 1830) for _ in range(5)],
        )


def run_workloads(gateway: Gateway, inputs: Inputs) -> dict[str, object]:
    url = gateway.base_url + "/v1/images/edits"
    results: dict[str, object] = {}
    with httpx.Client(timeout=600) as client:
        # Warm up both body shapes once: first-request imports are not what is measured.
        small = noise_png(64, 64)
        warm = {"model": "local/pillow", "prompt": "invert"}
        check_answer(client.post(url, data=warm, files={"image": ("a.png", small)}), 1)
        doc = {
            **warm,
            "images": [{"image_url": "data:image/png;base64," + base64.b64encode(small).decode()}],
        }
        check_answer(client.post(url, json=doc), 1)

        def timed(name: str, send: Callable[[], httpx.Response], count: int) -> None:
            with Probe(gateway.base_url + "/healthz") as probe:
                time.sleep(0.3)
                started = time.perf_counter()
                response = send()
                elapsed = time.perf_counter() - started
            results[name] = (probe.summary(), elapsed)
            check_answer(response, count)

        timed(
            "json",
            lambda: client.post(
                url, content=inputs.json_body, headers={"content-type": "application/json"}
            ),
            1,
        )
        timed(
            "results",
            lambda: client.post(
                url,
                data={"model": "local/pillow", "prompt": "invert", "n": "4"},
                files={"image": ("big.png", inputs.big_png, "image/png")},
            ),
            4,
        )

    pid = gateway.process.pid if gateway.process else 0
    before = rss_kib(pid, "VmRSS")
    reset_peak_rss(pid)

    def one(_index: int) -> None:
        files = [("image[]", (f"{i}.png", png, "image/png")) for i, png in enumerate(inputs.ten_mb)]
        with httpx.Client(timeout=900) as own:
            response = own.post(
                url, data={"model": "local/pillow", "prompt": "invert"}, files=files
            )
        check_answer(response, 1)

    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(16)))
    results["memory"] = (before, rss_kib(pid, "VmHWM"), time.perf_counter() - started)
    return results


def baseline_checkout(ref: str) -> Path:
    where = Path(tempfile.mkdtemp(prefix="imagegate-baseline-"))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), ref],
        check=True,
        capture_output=True,
    )
    return where


def serve(src: Path, tmp: Path) -> Gateway:
    env = {"PYTHONPATH": str(src), "IMAGEGATE_LOG_LEVEL": "warning"}
    return Gateway(tmp, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="1f6635b", help="commit to compare against")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()

    print("making inputs ...", file=sys.stderr)
    inputs = Inputs.make()
    arms: list[tuple[str, Path]] = [("this checkout", ROOT / "src")]
    checkout = None
    if not args.skip_baseline:
        checkout = baseline_checkout(args.baseline)
        arms.insert(0, (f"baseline {args.baseline}", checkout / "src"))
    rows = []
    try:
        for name, src in arms:
            print(f"running: {name} ...", file=sys.stderr)
            with tempfile.TemporaryDirectory() as tmp, serve(src, Path(tmp)) as gateway:
                rows.append((name, run_workloads(gateway, inputs)))
    finally:
        if checkout is not None:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(checkout)],
                check=False,
            )

    print(
        f"\nMachine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; JSON body {len(inputs.json_body) / 1e6:.0f} MB, "
        f"big input {len(inputs.big_png) / 1e6:.0f} MB, ten-MB inputs "
        f"{len(inputs.ten_mb[0]) / 1e6:.1f} MB each\n"
    )
    print("| gateway | workload | probes | probe p50 ms | probe p99 ms | probe max ms | edit s |")
    print("|---|---|---|---|---|---|---|")
    for name, result in rows:
        for key, label in (("json", "100 MB JSON edit"), ("results", "n=4 x 40 MB results")):
            (count, p50, p99, worst), elapsed = result[key]  # type: ignore[misc]
            print(
                f"| {name} | {label} | {count} | {p50:.1f} | {p99:.1f} | {worst:.1f} "
                f"| {elapsed:.1f} |"
            )
    print("\n| gateway | RSS before MiB | peak RSS, 16 x (5 x 10 MB) MiB | wall s |")
    print("|---|---|---|---|")
    for name, result in rows:
        before, peak, wall = result["memory"]  # type: ignore[misc]
        print(f"| {name} | {before / 1024:.0f} | {peak / 1024:.0f} | {wall:.1f} |")


if __name__ == "__main__":
    main()
