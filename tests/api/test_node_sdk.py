"""The official OpenAI Node SDK (6.49, pinned in tests/node) against a running gateway.

Node uploads differ from Python's: ``fs.createReadStream`` is sent as a chunked body with no
Content-Length, and every file part is typed application/octet-stream. ``./scripts/test.sh``
installs Node.js and npm where they are missing and the SDK into tests/node/node_modules.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from tests import imaging
from tests.imaging import BLUE, RED
from tests.server import Gateway
from tests.support import schema, tools
from tests.support.sse import SseEvent

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


@pytest.fixture(scope="module")
def node_sdk() -> Path:
    # Installed by ./scripts/test.sh (npm ci in tests/node), never from a test: tests stay on
    # this machine.
    tools.require("node")
    tools.require_file(
        NODE_DIR / "node_modules" / "openai" / "package.json",
        "The OpenAI Node SDK (npm ci in tests/node; ./scripts/test.sh does it)",
    )
    return NODE_DIR


def test_node_sdk_edits(gateway: Gateway, node_sdk: Path, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(imaging.png(64, 48, background=RED))
    (tmp_path / "b.png").write_bytes(imaging.png(64, 48, background=BLUE))
    (tmp_path / "mask.png").write_bytes(imaging.mask_left_half())
    done = subprocess.run(
        ["node", "edits.mjs", gateway.base_url + "/v1", str(tmp_path)],
        cwd=node_sdk,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = orjson.loads(done.stdout)

    for name in ("single", "list", "masked"):  # the bodies as the SDK received them
        schema.assert_images_response(out[name])
    single = imaging.decode_b64(out["single"]["data"][0]["b64_json"]).convert("RGB")
    assert single.getpixel((1, 1)) == tuple(255 - c for c in RED)
    assert out["single"]["model"] == "local/pillow"
    assert out["list"]["size"] == "128x48"
    side_by_side = imaging.decode_b64(out["list"]["data"][0]["b64_json"]).convert("RGB")
    assert side_by_side.getpixel((1, 1)) == RED and side_by_side.getpixel((127, 1)) == BLUE
    masked = imaging.decode_b64(out["masked"]["data"][0]["b64_json"]).convert("RGB")
    assert masked.getpixel((1, 1)) == tuple(255 - c for c in RED)
    assert masked.getpixel((62, 1)) == RED
    for event in out["events"]:
        schema.assert_stream_event(SseEvent(event["type"], event))
    assert [e["type"] for e in out["events"]] == [
        "image_edit.partial_image",
        "image_edit.completed",
    ]
    assert all(e["size"] == "64x48" for e in out["events"])
    grey = imaging.decode_b64(out["events"][-1]["b64_json"]).convert("RGB")
    assert imaging.is_grey(grey.getpixel((1, 1)))
    assert out["notFound"]["name"] == "NotFoundError" and out["notFound"]["status"] == 404
    assert out["notFound"]["code"] == "model_not_found"
    assert out["notFound"]["requestID"].startswith("req_")
    assert out["badPrompt"] == {"name": "BadRequestError", "status": 400, "param": "prompt"}
