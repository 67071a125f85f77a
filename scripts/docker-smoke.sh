#!/usr/bin/env bash
# Container smoke test: build the image, start docker/compose.yaml (nginx + three gateway replicas
# + Redis), send real edits through nginx, show that every replica served, stop one replica under
# load (it drains: no request may fail), then tear the stack down.
#
#   ./scripts/docker-smoke.sh            # KEEP=1 leaves the stack running afterwards
#
# Prints SKIP and exits 0 when no Docker engine is reachable (`docker info` fails). Needs on the
# host: docker, docker-compose (v1) or `docker compose` (v2), curl and python3 (standard library
# only: the test PNG is written and the answer decoded without Pillow).
# Environment: SMOKE_PORT (host port for nginx, default 18080), SMOKE_PROJECT (compose project,
# default imagegate-smoke), IMAGEGATE_IMAGE (tag to build, default imagegate:local), EDITS
# (requests for the load-balancing check, default 9), LOAD_SECONDS (the stop-under-load check,
# default 14), KEEP=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMPOSE_FILE=$ROOT/docker/compose.yaml
PROJECT=${SMOKE_PROJECT:-imagegate-smoke}
PORT=${SMOKE_PORT:-18080}
EDITS=${EDITS:-9}
LOAD_SECONDS=${LOAD_SECONDS:-14}
REPLICAS=(gateway1 gateway2 gateway3)
export IMAGEGATE_IMAGE=${IMAGEGATE_IMAGE:-imagegate:local}
export IMAGEGATE_HTTP_PORT=$PORT
# Keepalive comments every 0.5 s instead of 5, so a two-second edit shows whether SSE reaches the
# client as it is written or only when nginx's buffer fills (see "SSE is not buffered" below).
export IMAGEGATE_STREAM_KEEPALIVE_SECONDS=0.5
BASE=http://127.0.0.1:$PORT
WORKERS_CTR=$PROJECT-workers-check

# From each container's start to its first passing health check, read from `docker inspect`.
health_times() {
    docker inspect "$@" | python3 -c '
import datetime, json, sys
def ts(s):
    head, _, frac = s.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(head).timestamp() + float("0." + (frac or "0"))
for c in json.load(sys.stdin):
    log = (c["State"].get("Health") or {}).get("Log") or []
    ok = [e for e in log if e["ExitCode"] == 0]
    took = "%.1f s" % (ts(ok[0]["End"]) - ts(c["State"]["StartedAt"])) if ok else "not yet"
    print("  %s: first passing health check %s after start" % (c["Name"].lstrip("/"), took))
'
}

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" "$1" "$(now)"; }

# ------------------------------------------------------------------------------ prerequisites
if ! command -v docker >/dev/null 2>&1; then
    echo "SKIP: docker CLI not installed"
    exit 0
fi
if command -v timeout >/dev/null 2>&1; then probe=(timeout 30 docker info); else probe=(docker info); fi
if ! "${probe[@]}" >/dev/null 2>&1; then
    echo "SKIP: no Docker engine reachable (docker info failed); start one (or set DOCKER_HOST)" \
        "and run this again"
    exit 0
fi
if command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
else
    fail "a Docker engine is reachable but neither docker-compose nor 'docker compose' is installed"
fi
for tool in curl python3; do command -v "$tool" >/dev/null 2>&1 || fail "$tool is needed on the host"; done
compose() { "${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE" "$@"; }

# A throwaway key for this run only; compose refuses to start the replicas without one.
IMAGEGATE_MASTER_KEY=smoke-$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
export IMAGEGATE_MASTER_KEY
AUTH="Authorization: Bearer $IMAGEGATE_MASTER_KEY"

WORK=$(mktemp -d)
STATUS=fail
cleanup() {
    if [ "$STATUS" != ok ]; then
        echo "---- compose ps / last log lines (the run failed) ----" >&2
        compose ps >&2 || true
        compose logs --no-color --tail=40 >&2 || true
        docker logs --tail=20 "$WORKERS_CTR" >&2 2>/dev/null || true
    fi
    docker rm -f "$WORKERS_CTR" >/dev/null 2>&1 || true
    if [ "${KEEP:-0}" = 1 ]; then
        echo "KEEP=1: the stack is still up on $BASE (project $PROJECT)."
        echo "  stop it: IMAGEGATE_MASTER_KEY=... IMAGEGATE_HTTP_PORT=$PORT ${COMPOSE[*]} -p $PROJECT -f $COMPOSE_FILE down"
        echo "  key for this run: $IMAGEGATE_MASTER_KEY"
    else
        say "teardown"
        local t; t=$(now)
        compose down -v --remove-orphans 2>&1 | sed 's/^/  /' || true
        echo "  down in $(since "$t")"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

compose down -v --remove-orphans >/dev/null 2>&1 || true # leftovers of an earlier run
docker rm -f "$WORKERS_CTR" >/dev/null 2>&1 || true

# ------------------------------------------------------------------------------ the image
say "build $IMAGEGATE_IMAGE from $ROOT"
t=$(now)
docker build -t "$IMAGEGATE_IMAGE" "$ROOT" >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; fail "docker build failed"; }
echo "  built in $(since "$t")"
docker image inspect -f '  user {{.Config.User}}; cmd {{json .Config.Cmd}}; healthcheck {{json .Config.Healthcheck.Test}}' "$IMAGEGATE_IMAGE" | cut -c1-160
size=$(docker image inspect -f '{{.Size}}' "$IMAGEGATE_IMAGE")
base_size=$(docker image inspect -f '{{.Size}}' python:3.12-slim 2>/dev/null || echo 0)
echo "  size $((size / 1000000)) MB, of which the python:3.12-slim base is $((base_size / 1000000)) MB: the project adds $(((size - base_size) / 1000000)) MB"
docker history --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGEGATE_IMAGE" | awk -F'\t' '$1 != "0B"' | head -n 5 |
    cut -c1-110 | sed 's/^/  layer /'
uid=$(docker run --rm "$IMAGEGATE_IMAGE" id -u)
[ "$uid" != 0 ] || fail "the image runs as root"
echo "  runs as uid $uid"

# Without a key the gateway must refuse a 0.0.0.0 bind (the image's default command).
set +e
refusal=$(docker run --rm "$IMAGEGATE_IMAGE" 2>&1)
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "refusing to listen" <<<"$refusal" || fail "without a key the container should exit 2 with a refusal, got rc=$rc: $refusal"
echo "  no key -> exit $rc: ${refusal:0:60}..."

# IMAGEGATE_WORKERS, checked on a lone container while the stack starts; this also exercises
# the image's own HEALTHCHECK (/healthz).
docker run -d --name "$WORKERS_CTR" -e IMAGEGATE_MASTER_KEY="$IMAGEGATE_MASTER_KEY" \
    -e IMAGEGATE_WORKERS=2 "$IMAGEGATE_IMAGE" >/dev/null

# ------------------------------------------------------------------------------ the stack
say "compose up (project $PROJECT, nginx on $BASE)"
t=$(now)
# `up -d` returns once Redis and every replica are healthy (/readyz) and nginx has been started.
compose up -d --no-build 2>&1 | sed 's/^/  /'
echo "  replicas healthy, nginx started: $(since "$t") after up"
for _ in $(seq 1 60); do
    curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null && break
    sleep 0.5
done
curl -fsS "$BASE/readyz" >"$WORK/ready.json" || fail "nginx does not answer $BASE/readyz"
echo "  $BASE/readyz answers $(cat "$WORK/ready.json") $(since "$t") after up"
compose ps | sed 's/^/  /'
health_times "$(compose ps -q redis)" $(for svc in "${REPLICAS[@]}"; do compose ps -q "$svc"; done)

say "Redis: healthy, and reachable from a replica at IMAGEGATE_REDIS_URL"
pong=$(compose exec -T redis redis-cli ping | tr -d '\r')
[ "$pong" = PONG ] || fail "redis-cli ping answered $pong"
compose exec -T gateway1 python -c 'import os, redis; assert redis.Redis.from_url(os.environ["IMAGEGATE_REDIS_URL"], socket_timeout=3).ping()' \
    || fail "gateway1 cannot reach Redis at its IMAGEGATE_REDIS_URL"
echo "  redis-cli ping: $pong; gateway1 -> $(compose exec -T gateway1 printenv IMAGEGATE_REDIS_URL | tr -d '\r'): PONG"

# ------------------------------------------------------------------------------ a real edit
python3 - "$WORK/in.png" <<'PY'
# A 96x64 RGB gradient PNG from the standard library alone (zlib + struct).
import struct, sys, zlib
w, h = 96, 64
rows = b"".join(b"\x00" + bytes(v for x in range(w) for v in (x * 255 // (w - 1), y * 255 // (h - 1), 128)) for y in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY

say "POST /v1/images/edits through nginx"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$BASE/v1/images/edits" \
    -F model=local/pillow -F prompt="make it grayscale" -F image=@"$WORK/in.png")
[ "$code" = 401 ] || fail "an edit without the key got $code, not 401"
echo "  without the key: $code"

edit() { # edit <request id> <out file> [extra curl args]: prints "status content-type"
    local id=$1 out=$2
    shift 2
    curl -sS -o "$out" -D "$out.headers" -w '%{http_code} %{content_type}' "$BASE/v1/images/edits" \
        -H "$AUTH" -H "X-Request-ID: $id" -F model=local/pillow -F prompt="make it grayscale" "$@"
}
t=$(now)
res=$(edit smoke-edit-1 "$WORK/edit.json" -F image=@"$WORK/in.png;type=image/png")
echo "  with the key: $res in $(since "$t")"
[ "${res%% *}" = 200 ] || { cat "$WORK/edit.json" >&2; fail "the edit got ${res%% *}, not 200"; }
case ${res#* } in application/json*) ;; *) fail "the edit answered ${res#* }, not application/json" ;; esac
grep -qi '^x-request-id: smoke-edit-1' "$WORK/edit.json.headers" || fail "X-Request-ID was not passed through and echoed"
echo "  x-request-id echoed: $(grep -i '^x-request-id' "$WORK/edit.json.headers" | tr -d '\r')"

python3 - "$WORK/edit.json" <<'PY' || fail "the response is not an OpenAI images response with a grayscale PNG"
# data[0].b64_json must decode to a PNG of the input's size whose pixels are all gray
# (R == G == B), decoded here with zlib and the PNG filters, no Pillow.
import base64, json, struct, sys, zlib
body = json.load(open(sys.argv[1]))
png = base64.b64decode(body["data"][0]["b64_json"], validate=True)
assert png[:8] == b"\x89PNG\r\n\x1a\n", "b64_json is not a PNG"
pos, chunks = 8, []
while pos < len(png):
    (n,) = struct.unpack(">I", png[pos:pos + 4]); kind = png[pos + 4:pos + 8]; data = png[pos + 8:pos + 8 + n]
    assert struct.unpack(">I", png[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + data), f"bad CRC in {kind}"
    chunks.append((kind, data)); pos += 12 + n
assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", "PNG chunks out of order"
w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
assert (w, h) == (96, 64), f"output is {w}x{h}, not 96x64"
assert depth == 8 and ctype in (0, 2, 4, 6) and not interlace, f"unexpected PNG layout {depth=} {ctype=}"
bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
raw = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
stride, prev, gray, levels = w * bpp, bytearray(w * bpp), 0, set()
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(w):
        px = line[x * bpp:x * bpp + bpp]
        rgb = (px[0],) * 3 if ctype in (0, 4) else tuple(px[:3])
        gray += rgb[0] == rgb[1] == rgb[2]; levels.add(rgb[0])
    prev = line
assert gray == w * h, f"only {gray} of {w * h} pixels are gray"
assert len(levels) > 10, "the image lost its gradient"
print(f"  data[0].b64_json: {len(png)} byte PNG, {w}x{h}, colour type {ctype}, "
      f"{gray}/{w * h} pixels gray, {len(levels)} gray levels; revised_prompt={body['data'][0].get('revised_prompt')!r}; "
      f"model={body.get('model')!r}, size={body.get('size')!r}")
PY

say "a 12 MB upload spills to the replica's spill volume, not its in-memory /tmp"
tmpdir=$(compose exec -T gateway1 python -c 'import tempfile; print(tempfile.gettempdir())' | tr -d '\r')
[ "$tmpdir" = /var/lib/imagegate/spill ] || fail "the replica's TMPDIR is $tmpdir, not the spill volume"
compose exec -T gateway1 python -c 'import tempfile; tempfile.TemporaryFile().write(b"x")' \
    || fail "the runtime user cannot write to the spill volume"
python3 - "$WORK/big.png" <<'PY'
import os, struct, sys, zlib
w = h = 2000  # random RGB stored uncompressed: a 12 MB PNG, over the 8 MiB spill threshold
rows = b"".join(b"\x00" + os.urandom(w * 3) for _ in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows, 0)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
res=$(edit smoke-spill "$WORK/big.json" -F image=@"$WORK/big.png;type=image/png")
[ "${res%% *}" = 200 ] || { head -c 400 "$WORK/big.json" >&2; fail "the 12 MB edit got ${res%% *}, not 200"; }
echo "  TMPDIR $tmpdir is writable; a $(( $(stat -c %s "$WORK/big.png") / 1000000 )) MB edit answered ${res%% *}"

say "stream=true (SSE) through nginx"
res=$(edit smoke-stream-1 "$WORK/stream.txt" -F image=@"$WORK/in.png" -F stream=true -F partial_images=2)
echo "  $res"
[ "${res%% *}" = 200 ] || fail "the streamed edit got ${res%% *}"
case ${res#* } in text/event-stream*) ;; *) fail "the streamed edit answered ${res#* }, not text/event-stream" ;; esac
partials=$(grep -c '^event: image_edit.partial_image' "$WORK/stream.txt" || true)
completed=$(grep -c '^event: image_edit.completed' "$WORK/stream.txt" || true)
[ "$partials" = 2 ] && [ "$completed" = 1 ] || fail "expected 2 partial and 1 completed events, got $partials and $completed"
echo "  events: $partials x image_edit.partial_image, $completed x image_edit.completed"

say "SSE is not buffered: a ~2 s streamed edit, line arrival times at the client"
python3 - "$BASE" "$IMAGEGATE_MASTER_KEY" "$WORK/slow.png" <<'PY' || fail "SSE did not reach the client as it was written"
# A 3000x3000 PNG (written with zlib, no Pillow) and a prompt that keeps the engine busy for a
# couple of seconds. The gateway writes a keepalive comment every 0.5 s meanwhile; they must
# reach the client spread over the edit, not all at the end. This checks the end-to-end
# property; it is not a test of `proxy_buffering off` alone (a control run of nginx 1.22 with
# buffering on also passed chunked SSE through promptly).
import struct, subprocess, sys, time, zlib
base, key, path = sys.argv[1:4]
w = h = 3000
row = b"\x00" + bytes((x * 7) & 255 for x in range(w * 3))
rows = b"".join(row if y % 2 else b"\x00" + row[1:][::-1] for y in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
with open(path, "wb") as out:
    out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
              + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b""))
cmd = ["curl", "-sS", "-N", f"{base}/v1/images/edits", "-H", f"Authorization: Bearer {key}",
       "-H", "X-Request-ID: smoke-sse-timing", "-F", "model=local/pillow",
       "-F", "prompt=blur radius 100, sharpen, blur radius 80, sepia", "-F", f"image=@{path}",
       "-F", "stream=true"]
start = time.monotonic()
arrivals = []
with subprocess.Popen(cmd, stdout=subprocess.PIPE) as proc:
    for line in proc.stdout:
        arrivals.append((time.monotonic() - start, line[:40]))
keepalives = [t for t, line in arrivals if line.startswith(b": keepalive")]
completed = [t for t, line in arrivals if line.startswith(b"event: image_edit.completed")]
assert completed, "no image_edit.completed event"
print(f"  {len(keepalives)} keepalive comments at " + ", ".join(f"{t:.2f}" for t in keepalives[:8])
      + f"{' ...' if len(keepalives) > 8 else ''} s; image_edit.completed at {completed[0]:.2f} s")
if completed[0] < 1.0:
    print("  inconclusive: the edit finished within 1 s, too fast to tell")
else:
    assert keepalives and completed[0] - keepalives[0] >= 0.5, \
        "the keepalives arrived together with the result: the stream was buffered"
    print(f"  the first keepalive arrived {completed[0] - keepalives[0]:.2f} s before the result: not buffered")
PY

# ------------------------------------------------------------------------------ every replica
say "$EDITS more edits: does each replica serve?"
for i in $(seq 1 "$EDITS"); do
    if [ $((i % 2)) = 0 ]; then
        res=$(edit "smoke-lb-$i" "$WORK/lb.json" -F "image[]=@$WORK/in.png" -F "image[]=@$WORK/in.png")
    else
        res=$(edit "smoke-lb-$i" "$WORK/lb.json" -F image=@"$WORK/in.png")
    fi
    [ "${res%% *}" = 200 ] || { cat "$WORK/lb.json" >&2; fail "edit smoke-lb-$i got ${res%% *}"; }
done
echo "  all $EDITS answered 200"

for svc in "${REPLICAS[@]}" nginx; do compose logs --no-color "$svc" >"$WORK/$svc.log" 2>&1; done
for svc in "${REPLICAS[@]}"; do # "address service" lines, to name nginx's upstreams
    docker inspect -f "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}:8000 $svc" "$(compose ps -q "$svc")"
done >"$WORK/addresses"
python3 - "$WORK" "$EDITS" <<'PY' || fail "the replicas' logs do not show each serving"
# Each replica logs one JSON line per request; nginx logs which upstream served each one.
import json, os, sys
work, edits = sys.argv[1], int(sys.argv[2])
def lines(svc):
    for raw in open(os.path.join(work, svc + ".log"), errors="replace"):
        _, sep, rest = raw.partition("| ")
        text = rest if sep else raw
        try:
            yield json.loads(text)
        except ValueError:
            continue
served = {}
replicas = ("gateway1", "gateway2", "gateway3")
for svc in replicas:
    reqs = [r for r in lines(svc) if r.get("msg") == "request" and r.get("path") == "/v1/images/edits"]
    served[svc] = {r.get("request_id") for r in reqs}
    ok = [r for r in reqs if r.get("status") == 200]
    print(f"  {svc}: {len(reqs)} edit request lines ({len(ok)} x 200), e.g.")
    if ok:
        print("    " + json.dumps({k: ok[-1].get(k) for k in ("ts", "msg", "request_id", "method", "path", "client", "status", "latency_ms", "model", "images")}))
twice = {rid for a in replicas for b in replicas if a < b for rid in served[a] & served[b]}
assert not twice, f"request ids logged by two replicas: {twice}"
assert all(served[svc] for svc in replicas), "a replica served no edit"
ours = {f"smoke-lb-{i}" for i in range(1, edits + 1)} | {"smoke-edit-1", "smoke-stream-1", "smoke-sse-timing"}
missing = ours - set().union(*served.values())
assert not missing, f"request ids in no replica's log: {missing}"
names = dict(line.split() for line in open(os.path.join(work, "addresses")) if line.strip())
upstreams = {}
for r in lines("nginx"):
    if r.get("uri") == "/v1/images/edits" and str(r.get("request_id", "")).startswith("smoke-"):
        upstreams.setdefault(r.get("upstream"), []).append(r["request_id"])
print("  nginx access log, edits by upstream:")
for addr, ids in sorted(upstreams.items()):
    print(f"    {addr} ({names.get(addr, '?')}): {len(ids)} ({', '.join(sorted(ids)[:4])}{', ...' if len(ids) > 4 else ''})")
assert len(upstreams) == 3, f"nginx used {len(upstreams)} upstream address(es), not 3"
PY

health_times "$(compose ps -q nginx)"

# ------------------------------------------------------------------------------ drain under load
say "docker-compose stop gateway2 while 4 clients send edits for $LOAD_SECONDS s: nothing may fail"
# Each client runs curl in a loop (no retries of its own) and writes "start-time request-id
# status" per edit; an edit that nginx could not place, or that a stopping replica cut off,
# shows up here as a status other than 200 (000: no answer at all).
python3 - "$BASE" "$IMAGEGATE_MASTER_KEY" "$WORK/in.png" "$WORK/load.txt" "$LOAD_SECONDS" <<'PY' &
import subprocess, sys, threading, time
base, key, png, out, seconds = sys.argv[1:6]
end = time.monotonic() + float(seconds)
lock, results = threading.Lock(), []
def client(n):
    i = 0
    while time.monotonic() < end:
        rid, started = f"smoke-load-{n}-{i}", time.time()
        i += 1
        done = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "120",
             f"{base}/v1/images/edits", "-H", f"Authorization: Bearer {key}",
             "-H", f"X-Request-ID: {rid}", "-F", "model=local/pillow",
             "-F", "prompt=make it grayscale", "-F", f"image=@{png};type=image/png"],
            capture_output=True, text=True)
        with lock:
            results.append(f"{started:.3f} {rid} {done.stdout.strip() or '000'}")
threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
open(out, "w").write("\n".join(results) + "\n")
PY
load_pid=$!
sleep 3
stop_at=$(now)
compose stop -t 45 gateway2 2>&1 | sed 's/^/  /'
stopped_at=$(now)
echo "  gateway2 stopped $(since "$stop_at") after docker-compose stop (drain delay 5 s, then in-flight edits)"
wait "$load_pid" || fail "the load generator failed"
code=$(docker inspect -f '{{.State.ExitCode}}' "$(compose ps -q gateway2)")
[ "$code" = 0 ] || fail "gateway2 exited with status $code, not 0"
compose logs --no-color gateway2 >"$WORK/gateway2.log" 2>&1
grep -q '"msg":"draining' "$WORK/gateway2.log" || fail "gateway2's log does not show it draining"
compose logs --no-color nginx >"$WORK/nginx.log" 2>&1
python3 - "$WORK" "$stop_at" "$stopped_at" <<'PY' || fail "requests failed or went to the stopped replica"
import json, os, sys
from collections import Counter
work, stop_at, stopped_at = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
results = [line.split() for line in open(os.path.join(work, "load.txt")) if line.strip()]
failed = [r for r in results if r[2] != "200"]
print(f"  {len(results)} edits, {len(results) - len(failed)} answered 200")
assert len(results) >= 20, "too few edits to tell"
assert not failed, f"failed: {failed[:5]}"
names = dict(line.split() for line in open(os.path.join(work, "addresses")) if line.strip())
def lines():
    for raw in open(os.path.join(work, "nginx.log"), errors="replace"):
        text = raw.partition("| ")[2] or raw
        try:
            yield json.loads(text)
        except ValueError:
            continue
def phase(begun):
    return "before" if begun < stop_at else "stopping" if begun < stopped_at else "after"
by_phase, retried = {}, 0
for r in lines():
    if not str(r.get("request_id", "")).startswith("smoke-load-"):
        continue
    final = r["upstream"].split(",")[-1].strip()
    retried += "," in r["upstream"]
    begun = float(r["msec"]) - float(r["request_time"])
    by_phase.setdefault(phase(begun), Counter())[names.get(final, final)] += 1
for name in ("before", "stopping", "after"):
    print(f"  nginx: edits begun {name:8} docker-compose stop, by replica: {dict(sorted(by_phase.get(name, {}).items()))}")
print(f"  {retried} placed on another replica after a refused connect")
assert by_phase["before"]["gateway2"] > 0, "gateway2 served nothing before it was stopped"
assert by_phase.get("after", Counter())["gateway2"] == 0, "nginx sent edits to the stopped replica"
assert all(by_phase.get("after", Counter())[svc] > 0 for svc in ("gateway1", "gateway3")), "the others stopped serving"
PY
echo "  gateway2: exit status $code; its log: $(grep -o '"msg":"draining[^"]*"' "$WORK/gateway2.log" | head -n 1)"

# ------------------------------------------------------------------------------ workers check
say "IMAGEGATE_WORKERS=2 on a lone container (image HEALTHCHECK on /healthz)"
health=
for _ in $(seq 1 60); do
    health=$(docker inspect -f '{{.State.Health.Status}}' "$WORKERS_CTR" 2>/dev/null || echo gone)
    [ "$health" = starting ] || break
    sleep 0.5
done
[ "$health" = healthy ] || fail "the IMAGEGATE_WORKERS=2 container is $health"
health_times "$WORKERS_CTR"
started=$(docker logs "$WORKERS_CTR" 2>&1 | grep -c 'Started server process' || true)
echo "  worker processes started: $started"
[ "$started" = 2 ] || fail "expected 2 worker processes, the log shows $started"

STATUS=ok
say "PASS"
