"""SIGTERM drains a replica: ``/readyz`` answers 503 at once, requests are still served for the
drain delay, then new connections are refused while in-flight edits (JSON and streamed) finish,
and the process exits 0 -- one process, and a supervisor with two workers."""

from __future__ import annotations

import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests import imaging
from tests.server import Gateway
from tests.support import sdk
from tests.topology.conftest import MODEL, SlowOpenAI, decoded

DRAIN_DELAY = 1.5
UPSTREAM_SECONDS = 3.5  # an edit sent before SIGTERM is still upstream when the listener closes
GRACE = 10.0
PHOTO = imaging.png(96, 64)
INVERTED_BOX = tuple(255 - c for c in imaging.GREEN)


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True


def assert_inverted_photo(b64: str | None) -> None:
    image = decoded(b64).convert("RGB")
    assert image.getpixel((image.width // 2, image.height // 2)) == INVERTED_BOX


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_then_finishes_in_flight_edits(
    tmp_path: Path, slow_openai: SlowOpenAI, workers: int
) -> None:
    env = {
        **slow_openai.env(),
        "IMAGEGATE_DRAIN_DELAY_SECONDS": str(DRAIN_DELAY),
        "IMAGEGATE_GRACEFUL_SHUTDOWN_SECONDS": str(GRACE),
        "IMAGEGATE_WORKERS": str(workers),
    }
    gateway = Gateway(tmp_path, env=env).start(timeout=30)
    assert gateway.process is not None
    slow_openai.latency.seconds = UPSTREAM_SECONDS
    client = OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0)
    try:
        with ThreadPoolExecutor(2) as pool:
            arrived = slow_openai.latency.arrived
            as_json = pool.submit(sdk.edit, client, model=MODEL, image=PHOTO, prompt="invert")
            streamed = pool.submit(sdk.stream, client, model=MODEL, image=PHOTO, prompt="invert")
            deadline = time.monotonic() + 10
            while slow_openai.latency.arrived < arrived + 2:
                assert time.monotonic() < deadline, "the edits never reached the upstream"
                time.sleep(0.02)

            gateway.process.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            # Unready at once: one process, on the first probe after the signal; a supervisor
            # checks its signals every half second.
            polls = 1
            while (ready := httpx.get(gateway.base_url + "/readyz", timeout=2)).status_code == 200:
                assert time.monotonic() - sent < 1.0, "/readyz still 200 a second after SIGTERM"
                polls += 1
                time.sleep(0.02)
            unready_after = time.monotonic() - sent
            assert ready.status_code == 503 and ready.json() == {"status": "draining"}
            assert workers > 1 or polls == 1

            # Still serving during the delay, but handing each connection back.
            models = httpx.get(gateway.base_url + "/v1/models", timeout=2)
            assert models.status_code == 200 and models.json()["data"]
            assert models.headers["connection"] == "close"

            while not refused(gateway.port):
                assert time.monotonic() - sent < DRAIN_DELAY + 2, "still accepting connections"
                time.sleep(0.05)
            refused_after = time.monotonic() - sent
            assert refused_after > DRAIN_DELAY - 0.2, "stopped accepting before the drain delay"
            assert slow_openai.latency.in_flight >= 1, "nothing was in flight when it stopped"

            result = as_json.result(timeout=GRACE)
            events = streamed.result(timeout=GRACE)
        assert_inverted_photo(result.data[0].b64_json if result.data else None)
        assert events[-1].type == "image_edit.completed"
        assert_inverted_photo(events[-1].b64_json)
        status = gateway.process.wait(timeout=GRACE)
        exited_after = time.monotonic() - sent
    finally:
        slow_openai.latency.seconds = 1.0
        gateway.stop()
    assert status == 0, gateway.logs()[-2000:]
    assert exited_after < UPSTREAM_SECONDS + 3
    assert "draining" in gateway.logs()
    print(
        f"workers={workers}: unready after {unready_after:.2f} s, refusing connections after "
        f"{refused_after:.2f} s, exited 0 after {exited_after:.2f} s"
    )
