"""What imagegate adds between a client and an image provider, against the least a plain-Python
proxy can add: the image-edit gateway benchmark (megabytes per request, not chat payloads).

Three arms, in one run, against one fast fake upstream (``bench/fastfake.py``):

* **direct**: client -> fake, the request in the provider's own shape;
* **floor**: client -> ``bench/floor.py`` (a buffered pass-through proxy on imagegate's server
  stack) -> fake;
* **imagegate**: client -> ``imagegate serve`` as a team runs it (a virtual key with a model
  list, rate limits and a budget whose admission and settle go through a redis-server this
  script starts; metrics and JSON logs on) -> fake, the request in OpenAI's edit shape.

Layout on a 2-core machine: the gateway and the floor on core 0, the fake and the clients (this
script and wrk) on core 1, so the arm measured has a core of its own.

Workloads: multipart edits of 1 and 5 reference images of ~1 MB, 16 images of ~5 MB, the JSON
body with 5 data URLs, the Gemini path (inline base64), the fal queue (submit, polls, result,
download) and ``stream=true``. For each: sequential rounds with the arms interleaved (p50/p99
and the added latency over direct), the server's CPU per request; then, for 1 and 5 images,
``wrk`` at concurrency 16 (throughput, p50/p99, CPU per request, peak RSS); then RSS after 30 s
idle; and the time from start to ready. Every answer is checked (200 and a PNG): an arm that
errors fails the run.

    apt-get install -y wrk        # the load tool (Debian/Ubuntu)
    .venv/bin/python bench/passthrough.py [--rounds 40] [--duration 10] [--out FILE]
        [--baseline COMMIT]   # also that commit's gateway, as a 4th arm in the same run
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import http.client
import io
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from PIL import Image

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
MASTER_KEY = "sk-bench-master-0123456789"
# The key the gateway arms are sent: a virtual key with limits and a budget on imagegate (its
# admission and settle go through Redis), the master key of a --baseline commit that has no keys.
TEAM_KEY = "ig-bench-team-key-0123456789abcdefghijklmnopqrstu"
PNG_B64 = b"iVBORw0KGgo"
POLL_SECONDS = 0.05  # fal: the gateway's first poll interval, and the direct client's
GATEWAY_CORE, CLIENT_CORE = 0, 1
GATEWAYS = ("imagegate", "baseline")  # arms sent the client's (OpenAI) shape


# -- inputs ----------------------------------------------------------------------------------
def noise_png(side: int, seed: int) -> bytes:
    """A noise PNG (noise so the size is real): 820x820 is ~1 MB, 1830x1830 ~5 MB."""
    image = Image.effect_noise((side, side), 40 + seed).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


BOUNDARY = "imagegatebench7d1c"


def multipart(fields: Mapping[str, str], files: list[tuple[str, str, bytes]]) -> bytes:
    """Fields first, then files, as the SDKs send them."""
    out = bytearray()
    for name, value in fields.items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for name, filename, data in files:
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        out += data + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
JSON = "application/json"


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


# -- what each arm sends ---------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    """One request as an arm sends it; ``flow`` says how the answer is read and checked."""

    path: str
    body: bytes
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)
    flow: str = "openai"  # openai | sse | gemini | fal


@dataclass(frozen=True)
class Workload:
    name: str
    upload_bytes: int
    upstream: Call  # what direct and floor send (the provider's shape)
    gateway: Call  # what a client sends imagegate (OpenAI's shape)
    rounds_divisor: int = 1  # heavy workloads run fewer rounds
    load: bool = False  # also measured at concurrency 16 with wrk


def workloads(small: list[bytes], large: list[bytes], wanted: set[str] | None) -> list[Workload]:
    auth = {"Authorization": f"Bearer {TEAM_KEY}"}
    up_auth = {"Authorization": "Bearer sk-bench-upstream"}

    def openai_pair(images: list[bytes], extra: Mapping[str, str] = {}) -> tuple[Call, Call]:
        files = [("image[]", f"{i}.png", data) for i, data in enumerate(images)]
        up = multipart({"model": "gpt-image-1", "prompt": "bench", **extra}, files)
        gw = multipart({"model": "openai/gpt-image-1", "prompt": "bench", **extra}, files)
        flow = "sse" if extra.get("stream") == "true" else "openai"
        return (
            Call("/v1/images/edits", up, MULTIPART, up_auth, flow),
            Call("/v1/images/edits", gw, MULTIPART, auth, flow),
        )

    one = openai_pair(small[:1])
    five = openai_pair(small[:5])
    sixteen = openai_pair(large[:16])
    stream = openai_pair(small[:1], {"stream": "true", "partial_images": "1"})
    urls = [{"image_url": data_url(data)} for data in small[:5]]
    json_up = orjson.dumps({"model": "gpt-image-1", "prompt": "bench", "images": urls})
    json_gw = orjson.dumps({"model": "openai/gpt-image-1", "prompt": "bench", "images": urls})
    inline = base64.b64encode(small[0]).decode()
    gemini_up = orjson.dumps(
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"text": "bench"},
                        {"inline_data": {"mime_type": "image/png", "data": inline}},
                    ],
                }
            ],
            "generationConfig": {"responseModalities": ["IMAGE"]},
        }
    )
    gemini_gw = multipart(
        {"model": "gemini/gemini-2.5-flash-image", "prompt": "bench"},
        [("image[]", "0.png", small[0])],
    )
    fal_up = orjson.dumps({"prompt": "bench", "image_url": data_url(small[0])})
    fal_gw = multipart(
        {"model": "fal/fal-ai/flux-pro/kontext", "prompt": "bench"},
        [("image[]", "0.png", small[0])],
    )
    gemini_path = "/v1beta/models/gemini-2.5-flash-image:generateContent"
    all_loads = [
        Workload("multipart 1 x 1 MB", sum(map(len, small[:1])), *one, load=True),
        Workload("multipart 5 x 1 MB", sum(map(len, small[:5])), *five, load=True),
        Workload("multipart 16 x 5 MB", sum(map(len, large)), *sixteen, rounds_divisor=4),
        Workload(
            "JSON 5 data URLs x 1 MB",
            sum(map(len, small[:5])),
            Call("/v1/images/edits", json_up, JSON, up_auth),
            Call("/v1/images/edits", json_gw, JSON, auth),
        ),
        Workload(
            "Gemini 1 x 1 MB",
            len(small[0]),
            Call(gemini_path, gemini_up, JSON, {"x-goog-api-key": "bench-gemini"}, "gemini"),
            Call("/v1/images/edits", gemini_gw, MULTIPART, auth),
        ),
        Workload(
            "fal queue 1 x 1 MB",
            len(small[0]),
            Call("/fal-ai/flux-pro/kontext", fal_up, JSON, {"Authorization": "Key bench"}, "fal"),
            Call("/v1/images/edits", fal_gw, MULTIPART, auth),
        ),
        Workload("stream=true 1 x 1 MB", len(small[0]), *stream),
    ]
    if not wanted:
        return all_loads
    return [w for w in all_loads if any(key in w.name for key in wanted)]


# -- the client --------------------------------------------------------------------------------
class Failed(SystemExit):
    pass


class Client:
    """One keep-alive connection to one arm; raw ``http.client`` so the client costs little."""

    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def request(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, str, bytes]:
        try:
            self.conn.request(method, path, body=body, headers=dict(headers))
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            raise
        return response.status, response.getheader("content-type", ""), data

    def run(self, call: Call) -> tuple[float, bytes]:
        """The time one call takes, and its checked answer (the image's base64 or PNG bytes)."""
        headers = {"Content-Type": call.content_type, **call.headers}
        started = time.perf_counter()
        status, ctype, data = self.request("POST", call.path, call.body, headers)
        if call.flow == "fal" and status == 200:
            status, data = self._fal(orjson.loads(data), call.headers)
        elapsed = time.perf_counter() - started
        if status != 200:
            raise Failed(f"{self.name}: {call.path} answered {status}: {data[:300]!r}")
        return elapsed, check(self.name, call.flow, ctype, data)

    def _fal(self, handle: dict[str, str], headers: Mapping[str, str]) -> tuple[int, bytes]:
        """What a client of fal's queue does itself: poll, read the result, download."""
        delay = POLL_SECONDS
        while True:
            status, _, data = self.request("GET", _path(handle["status_url"]), None, headers)
            if status == 200:
                break
            if status != 202:
                return status, data
            time.sleep(delay)
            delay *= 1.5
        status, _, data = self.request("GET", _path(handle["response_url"]), None, headers)
        if status != 200:
            return status, data
        url = orjson.loads(data)["images"][0]["url"]
        status, _, data = self.request("GET", _path(url), None, {})
        return status, data


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def check(arm: str, flow: str, ctype: str, data: bytes) -> bytes:
    """The image an answer carries, or the run fails: status 200 alone is not an answer."""
    image: bytes | None = None
    if flow == "fal" and data.startswith(b"\x89PNG"):
        image = data
    elif ctype.startswith("text/event-stream"):
        events = [line for line in data.split(b"\n") if line.startswith(b"data: {")]
        for line in events:
            doc = orjson.loads(line[6:])
            if doc.get("type", "").endswith(".completed"):
                image = base64.b64decode(doc["b64_json"][:64])
    else:
        doc = orjson.loads(data)
        if "candidates" in doc:
            b64 = doc["candidates"][0]["content"]["parts"][0]["inlineData"]["data"]
        else:
            b64 = doc["data"][0]["b64_json"]
        image = base64.b64decode(b64[:64])
    if image is None or not image.startswith(b"\x89PNG"):
        raise Failed(f"{arm}: answered 200 without an image ({flow}, {ctype})")
    return image


# -- processes ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin(core: int) -> Callable[[], None]:
    def pinned() -> None:
        if (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {core})

    return pinned


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    ready_seconds: float

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def status(self, key: str) -> int:
        """A ``/proc/PID/status`` figure in bytes (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    def reset_peak(self) -> None:
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start(
    name: str, argv: list[str], port: int, core: int, env: Mapping[str, str], log: Path, ready: str
) -> Server:
    """Start a server pinned to ``core``; the time until ``ready`` answers 200 is kept."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        env=dict(env),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=pin(core),
        cwd=log.parent,
    )
    deadline = started + 30
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise Failed(f"{name} exited early:\n{log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", ready)
            if conn.getresponse().status in (200, 404):
                print(f"{name}: pid {process.pid}, port {port}", flush=True)
                return Server(name, port, process, time.perf_counter() - started)
        except OSError:
            pass
        time.sleep(0.005)
    process.kill()
    raise Failed(f"{name} not ready in 30 s:\n{log.read_text()[-2000:]}")


def gateway_settings(fake: str, redis_url: str) -> tuple[dict[str, str], dict[str, object]]:
    """imagegate as a team runs it: the environment and the config file.

    Keys, limits and metrics switched on: the arm sends a virtual key with a model list, rpm,
    images per minute and a monthly budget (all far above the run, so nothing is refused),
    whose rate windows, budget hold, settle and usage live in Redis (one Lua round trip to
    admit, one to settle); metrics are always on (GET /metrics); logs are JSON lines at info.
    """
    env = {
        "IMAGEGATE_MASTER_KEY": MASTER_KEY,
        "IMAGEGATE_REDIS_URL": redis_url,
        "IMAGEGATE_LOG_LEVEL": "info",
        "IMAGEGATE_LOG_FORMAT": "json",
        "IMAGEGATE_FAL_POLL_INTERVAL_SECONDS": str(POLL_SECONDS),
        "OPENAI_API_KEY": "sk-bench-upstream",
        "OPENAI_BASE_URL": f"{fake}/v1",
        "GEMINI_API_KEY": "bench-gemini",
        "GEMINI_BASE_URL": fake,
        "FAL_KEY": "bench",
        "FAL_BASE_URL": fake,
    }
    team = {
        "name": "bench-team",
        "key_sha256": hashlib.sha256(TEAM_KEY.encode()).hexdigest(),
        "models": ["openai/*", "gemini/*", "fal/*"],
        "rpm": 10_000_000,
        "images_per_minute": 10_000_000,
        "budget_usd": 1_000_000.0,
        "period": "month",
    }
    return env, {"keys": [team]}


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server of the bench's own on a free loopback port, beside the client."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is missing: apt-get install -y redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=pin(CLIENT_CORE),
        cwd=tmp,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return process, port
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise Failed("redis-server did not answer PING within 10 s")


def base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {k: v for k, v in os.environ.items() if k in keep}


# -- measurements ------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Seq:
    times: dict[str, list[float]]
    cpu_ms: dict[str, float]


def sequential(
    work: Workload, rounds: int, clients: dict[str, Client], servers: dict[str, Server]
) -> Seq:
    times: dict[str, list[float]] = {arm: [] for arm in clients}
    cpu: dict[str, float] = {arm: 0.0 for arm in servers}
    arms = list(clients)
    for arm in arms:  # warm: connections, caches, lazy imports
        call = work.gateway if arm in GATEWAYS else work.upstream
        clients[arm].run(call)
    for index in range(rounds):
        order = arms[index % len(arms) :] + arms[: index % len(arms)]
        for arm in order:
            call = work.gateway if arm in GATEWAYS else work.upstream
            server = servers.get(arm)
            before = server.cpu_seconds() if server else 0.0
            elapsed, _ = clients[arm].run(call)
            if server:
                time.sleep(0.002)  # the log line and metrics are written after the answer
                cpu[arm] += server.cpu_seconds() - before
            times[arm].append(elapsed)
    return Seq(times, {arm: 1000 * cpu[arm] / rounds for arm in cpu})


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_ms: float | None
    peak_rss: int | None


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def load(
    arm: str, port: int, call: Call, duration: float, tmp: Path, server: Server | None
) -> Load:
    body = tmp / "wrk-body.bin"
    body.write_bytes(call.body)
    env = {
        **base_env(),
        "BENCH_BODY": str(body),
        "BENCH_CONTENT_TYPE": call.content_type,
        "BENCH_AUTH": call.headers.get("Authorization", ""),
    }
    argv = ["wrk", "-t1", "-c16", f"-d{duration:g}s", "--latency", "--timeout", "60s"]
    argv += ["-s", str(HERE / "wrk_post.lua"), f"http://127.0.0.1:{port}{call.path}"]
    if server:
        server.reset_peak()
        cpu_before = server.cpu_seconds()
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, preexec_fn=pin(CLIENT_CORE), check=False
    )
    out = done.stdout
    good = re.search(r"BENCH good=(\d+) bad=(\d+)", out)
    if done.returncode != 0 or not good:
        raise Failed(f"wrk against {arm} failed:\n{out}\n{done.stderr}")
    if int(good.group(2)) or "Socket errors" in out:
        raise Failed(f"{arm} failed under load: {good.group(0)}\n{out}")
    requests = int(good.group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    cpu_ms = peak = None
    if server:
        cpu_ms = 1000 * (server.cpu_seconds() - cpu_before) / max(1, requests)
        peak = server.status("VmHWM")
    return Load(rps, p50, p99, requests, cpu_ms, peak)


# -- the run -----------------------------------------------------------------------------------
def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} CPUs ({model}), {platform.machine()}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def baseline_source(ref: str, tmp: Path) -> Path:
    """The ``src`` of another commit (``git archive``), served by this venv as a baseline."""
    where = tmp / "baseline"
    where.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(HERE.parent), "archive", ref, "src"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    return where / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="sequential rounds per workload")
    parser.add_argument("--duration", type=float, default=10, help="seconds of wrk per arm")
    parser.add_argument("--idle", type=float, default=30, help="seconds idle before RSS")
    parser.add_argument("--latency-ms", type=float, default=0, help="fake upstream latency")
    parser.add_argument("--only", action="append", help="run workloads whose name has this")
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    parser.add_argument(
        "--baseline", help="also run the gateway of this git commit (same venv), as a 4th arm"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (Debian/Ubuntu)")
    pin(CLIENT_CORE)()

    small = [noise_png(820, seed) for seed in range(5)]
    large = [noise_png(1830, seed) for seed in range(16)]
    works = workloads(small, large, set(args.only or ()))
    tmp = Path(tempfile.mkdtemp(prefix="imagegate-bench-"))
    fake_port = free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    servers: dict[str, Server] = {}
    fake: Server | None = None
    redis: subprocess.Popen[bytes] | None = None
    try:
        redis, redis_port = start_redis(tmp)
        env = base_env()
        fake_argv = [PYTHON, str(HERE / "fastfake.py"), "--port", str(fake_port)]
        fake_argv += ["--latency-ms", str(args.latency_ms)]
        fake = start("fake", fake_argv, fake_port, CLIENT_CORE, env, tmp / "fake.log", "/")
        port = free_port()
        floor_argv = [PYTHON, str(HERE / "floor.py"), "--port", str(port), "--upstream", fake_url]
        servers["floor"] = start(
            "floor", floor_argv, port, GATEWAY_CORE, env, tmp / "floor.log", "/readyz"
        )
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        gate_env, config = gateway_settings(fake_url, redis_url)
        gateways: dict[str, dict[str, str]] = {"imagegate": {**env, **gate_env}}
        if args.baseline:
            source = baseline_source(args.baseline, tmp)
            # A commit from before virtual keys: the team key is its master key, and no config.
            gateways["baseline"] = {
                **env,
                **gate_env,
                "IMAGEGATE_MASTER_KEY": TEAM_KEY,
                "PYTHONPATH": str(source),
            }
        for name, arm_env in gateways.items():
            port = free_port()
            argv = [PYTHON, "-m", "imagegate", "serve", "--host", "127.0.0.1", "--port", str(port)]
            if name == "imagegate":
                import yaml

                path = tmp / f"{name}.yaml"
                path.write_text(yaml.safe_dump(config))
                argv += ["--config", str(path)]
            servers[name] = start(
                name,
                argv,
                port,
                GATEWAY_CORE,
                arm_env,
                tmp / f"{name}.log",
                "/readyz",
            )
        ports = {"direct": fake_port, **{name: s.port for name, s in servers.items()}}
        clients = {arm: Client(arm, port) for arm, port in ports.items()}
        seq: dict[str, Seq] = {}
        for work in works:
            rounds = max(5, args.rounds // work.rounds_divisor)
            print(f"{work.name}: {rounds} interleaved rounds", flush=True)
            seq[work.name] = sequential(work, rounds, clients, servers)
        time.sleep(5)  # idle: what a quiet gateway holds after serving every workload
        idle = {name: server.status("VmRSS") for name, server in servers.items()}
        loads: dict[tuple[str, str], Load] = {}
        for work in works:
            if not work.load:
                continue
            for arm, port in ports.items():
                print(f"{work.name}: wrk -c16 against {arm}", flush=True)
                call = work.gateway if arm in GATEWAYS else work.upstream
                loads[work.name, arm] = load(arm, port, call, args.duration, tmp, servers.get(arm))
        peak = {
            name: max((r.peak_rss or 0) for (_, arm), r in loads.items() if arm == name)
            for name in servers
            if loads
        }
        print(f"idle {args.idle:g} s for the RSS after load", flush=True)
        time.sleep(args.idle)
        after = {name: server.status("VmRSS") for name, server in servers.items()}
        report = render(args, works, seq, loads, idle, peak, after, servers)
        print(report)
        if args.out:
            args.out.write_text(report)
    finally:
        for server in servers.values():
            server.stop()
        if fake is not None:
            fake.stop()
        if redis is not None:
            redis.kill()
            redis.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def render(
    args: argparse.Namespace,
    works: list[Workload],
    seq: dict[str, Seq],
    loads: dict[tuple[str, str], Load],
    idle: dict[str, int],
    peak: dict[str, int],
    after: dict[str, int],
    servers: dict[str, Server],
) -> str:
    mib = 1024 * 1024
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = f"--rounds {args.rounds} --duration {args.duration:g} --idle {args.idle:g}"
    command += f" --baseline {args.baseline}" if args.baseline else ""
    command += f" --latency-ms {args.latency_ms:g}" if args.latency_ms else ""
    lines = [
        f"- Run: {now} on {machine()}.",
        f"- Command: `.venv/bin/python bench/passthrough.py {command}`",
        f"- Layout: {', '.join(servers)} pinned to core {GATEWAY_CORE}; the fake upstream, this "
        f"client and wrk on core {CLIENT_CORE}.",
        "",
        "Sequential, arms interleaved. ms; added = arm p50 - direct p50; vs floor = added / "
        "floor's added; CPU = the server's CPU ms per request.",
        "",
        "| workload | arm | p50 | p99 | added p50 | added p99 | vs floor | CPU ms/req |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for work in works:
        s = seq[work.name]
        d50 = 1000 * statistics.median(s.times["direct"])
        d99 = 1000 * pct(s.times["direct"], 99)
        f_added = 1000 * statistics.median(s.times["floor"]) - d50
        lines.append(
            f"| {work.name} ({work.upload_bytes / 1e6:.1f} MB up) | direct | {d50:.1f} "
            f"| {d99:.1f} | | | | |"
        )
        for arm in servers:
            p50 = 1000 * statistics.median(s.times[arm])
            p99 = 1000 * pct(s.times[arm], 99)
            ratio = f"{(p50 - d50) / f_added:.2f}" if arm != "floor" and f_added > 0.05 else ""
            lines.append(
                f"| | {arm} | {p50:.1f} | {p99:.1f} | {p50 - d50:.1f} | {p99 - d99:.1f} "
                f"| {ratio} | {s.cpu_ms[arm]:.1f} |"
            )
    if loads:
        lines += [
            "",
            f"wrk, 16 connections, {args.duration:g} s per arm (every answer checked); vs floor = "
            "req/s / floor's req/s, and CPU ms/req / floor's:",
            "",
            "| workload | arm | req/s | p50 ms | p99 ms | requests | CPU ms/req "
            "| peak RSS MiB | vs floor req/s | vs floor CPU |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for (name, arm), result in loads.items():
            cpu = f"{result.cpu_ms:.1f}" if result.cpu_ms is not None else ""
            rss = f"{result.peak_rss / mib:.0f}" if result.peak_rss else ""
            vs_rps = vs_cpu = ""
            floor = loads.get((name, "floor"))
            if arm in GATEWAYS and floor is not None:
                vs_rps = f"{result.rps / floor.rps:.2f}"
                vs_cpu = f"{(result.cpu_ms or 0) / (floor.cpu_ms or 1):.2f}"
            lines.append(
                f"| {name} | {arm} | {result.rps:.1f} | {result.p50_ms:.1f} "
                f"| {result.p99_ms:.1f} | {result.requests} | {cpu} | {rss} | {vs_rps} "
                f"| {vs_cpu} |"
            )
    lines += [
        "",
        "| server | ready after start ms | RSS idle MiB | peak RSS under load MiB "
        f"| RSS after {args.idle:g} s idle MiB | after / idle |",
        "|---|---|---|---|---|---|",
    ]
    for name, server in servers.items():
        top = f"{peak[name] / mib:.0f}" if name in peak else ""
        lines.append(
            f"| {name} | {1000 * server.ready_seconds:.0f} | {idle[name] / mib:.0f} | {top} "
            f"| {after[name] / mib:.0f} | {after[name] / idle[name]:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
