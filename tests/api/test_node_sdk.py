"""The official OpenAI Node SDK (6.49, pinned in tests/node) against a running gateway.

Node uploads differ from Python's: ``fs.createReadStream`` is sent as a chunked body with no
Content-Length, and every file part is typed application/octet-stream. Node.js is part of this
machine's kind; the SDK comes from the npm registry into tests/node/node_modules on first use.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from tests import imaging
from tests.imaging import BLUE, RED
from tests.server import Gateway

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js and npm are not installed",
)


@pytest.fixture(scope="module")
def node_sdk() -> Path:
    if not (NODE_DIR / "node_modules" / "openai" / "package.json").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            check=True,
            capture_output=True,
            timeout=300,
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

    single = imaging.decode_b64(out["single"]["b64"]).convert("RGB")
    assert single.getpixel((1, 1)) == tuple(255 - c for c in RED)
    assert out["single"]["model"] == "local/pillow"
    assert out["list"]["size"] == "128x48"
    masked = imaging.decode_b64(out["masked"]["b64"]).convert("RGB")
    assert masked.getpixel((1, 1)) == tuple(255 - c for c in RED)
    assert masked.getpixel((62, 1)) == RED
    assert [e["type"] for e in out["events"]] == [
        "image_edit.partial_image",
        "image_edit.completed",
    ]
    assert all(e["hasImage"] and e["size"] == "64x48" for e in out["events"])
    assert out["notFound"]["name"] == "NotFoundError" and out["notFound"]["status"] == 404
    assert out["notFound"]["code"] == "model_not_found"
    assert out["notFound"]["requestID"].startswith("req_")
    assert out["badPrompt"] == {"name": "BadRequestError", "status": 400, "param": "prompt"}
