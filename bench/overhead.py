"""What the gateway adds around the embedded engine, and how fast it is ready.

Interleaves, in one run, the same edit done two ways:

* **engine**: ``render(job)`` called in this process (the work itself, no HTTP);
* **gateway**: the same edit as a multipart POST to a running ``imagegate serve``.

and reports the median of each and the added latency (gateway - engine), for one image and for
five, plus the time from process start to ``/readyz`` answering 200. Every gateway answer is
checked (status 200 and an image that decodes to the expected size).

    .venv/bin/python bench/overhead.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import base64
import io
import platform
import statistics
import sys
import time
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.server import Gateway

from imagegate.catalog.cards import ModelCard
from imagegate.catalog.sizing import ResolvedSizing
from imagegate.core.request import EditRequest
from imagegate.providers.base import EditJob
from imagegate.providers.local.card import LOCAL_CARDS
from imagegate.providers.local.engine import render
from imagegate.wire.body import check_image
from imagegate.wire.limits import WireLimits

PROMPT = "invert"


def make_png(side: int, seed: int) -> bytes:
    image = Image.effect_noise((side, side), 40 + seed).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def job_for(images: list[bytes]) -> EditJob:
    card = ModelCard.model_validate(LOCAL_CARDS[0])
    inputs = tuple(
        check_image(data, f"image[{i}]", None, WireLimits()) for i, data in enumerate(images)
    )
    request = EditRequest(model=card.id, prompt=PROMPT, images=inputs)
    return EditJob(request=request, card=card, sizing=ResolvedSizing())


def through_gateway(
    client: httpx.Client, url: str, images: list[bytes], side: int, request_id: str = "warm"
) -> float:
    files = [("image[]", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)]
    started = time.perf_counter()
    response = client.post(
        url,
        data={"model": "local/pillow", "prompt": PROMPT},
        files=files,
        headers={"x-request-id": request_id},
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"gateway answered {response.status_code}: {response.text[:200]}")
    out = Image.open(io.BytesIO(base64.b64decode(response.json()["data"][0]["b64_json"])))
    expected_width = side * len(images) if len(images) <= 3 else None
    if expected_width is not None and out.size != (expected_width, side):
        raise SystemExit(f"unexpected output size {out.size}")
    return elapsed


def in_process(job: EditJob) -> float:
    started = time.perf_counter()
    render(job)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--side", type=int, default=512)
    args = parser.parse_args()

    tmp = Path("/tmp/imagegate-bench")
    tmp.mkdir(exist_ok=True)
    started = time.perf_counter()
    gateway = Gateway(tmp).start()
    ready_s = time.perf_counter() - started
    url = gateway.base_url + "/v1/images/edits"
    rows = []
    try:
        with httpx.Client(timeout=120) as client:
            for count in (1, 5):
                images = [make_png(args.side, seed) for seed in range(count)]
                job = job_for(images)
                for _ in range(3):  # warm both paths
                    through_gateway(client, url, images, args.side)
                    in_process(job)
                engine, gw = [], []
                for r in range(args.rounds):  # interleaved, so both see the same machine
                    engine.append(in_process(job))
                    gw.append(through_gateway(client, url, images, args.side, f"bench-{count}-{r}"))
                body_kib = sum(len(i) for i in images) // 1024
                ids = {f"bench-{count}-{r}" for r in range(args.rounds)}
                server = [
                    line["latency_ms"]
                    for line in gateway.log_lines(
                        lambda line, ids=ids: line.get("request_id") in ids
                    )
                ]
                rows.append(
                    (
                        count,
                        body_kib,
                        statistics.median(engine) * 1000,
                        statistics.median(gw) * 1000,
                        statistics.median(server),
                    )
                )
    finally:
        gateway.stop()

    print(
        f"# {platform.node()} {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, {args.rounds} interleaved rounds, "
        f"{args.side}x{args.side} noise PNGs, prompt {PROMPT!r}"
    )
    print(f"ready after start: {ready_s * 1000:.0f} ms (process start to /readyz 200)")
    print(
        "| images | upload KiB | engine p50 ms | gateway p50 ms (client) | gateway p50 ms "
        "(its log) | added p50 ms (client - engine) |"
    )
    print("|---|---|---|---|---|---|")
    for count, kib, engine_ms, gw_ms, server_ms in rows:
        print(
            f"| {count} | {kib} | {engine_ms:.1f} | {gw_ms:.1f} | {server_ms:.1f} | "
            f"{gw_ms - engine_ms:.1f} |"
        )


if __name__ == "__main__":
    main()
