#!/usr/bin/env bash
# Acknowledgement throughput and latency of a `delivery: async` route with the local queue,
# on 127.0.0.1. wrk posts bodies to a route without signature checks whose upstream is down,
# so every request costs one durable store and nothing else. The workers make one attempt
# per request they take and then wait an hour, so they barely compete. Run by hand, never by
# CI. BENCHMARKS.md shows the results.
#
#   benches/async_ack.sh
#
# Settings, from the environment, with their defaults:
#   DURATION=10        seconds of the measured run, after a 2 s warm-up
#   CONNECTIONS=32     wrk connections
#   SIZE=1024          body size in bytes
#   THREADS=1          hookgate worker threads for the webhook listener
#   QUEUE_DIR          directory of the queue file; its disk decides the fsync time.
#                      Default: OUT_DIR/queue
#   OUT_DIR=/tmp/hookgate-async-ack   config, logs and results; emptied first
#   BASE_PORT=18180    ports BASE_PORT to BASE_PORT+2 must be free
#   HOOKGATE_BIN       a prebuilt binary; without it, the script runs
#                      `cargo build --release --locked` (into CARGO_TARGET_DIR, else target/)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${HOOKGATE_BIN:-$TARGET/release/hookgate}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
SIZE=${SIZE:-1024}
THREADS=${THREADS:-1}
OUT=${OUT_DIR:-/tmp/hookgate-async-ack}
QUEUE=${QUEUE_DIR:-$OUT/queue}
BASE_PORT=${BASE_PORT:-18180}
PORT=$BASE_PORT
ADMIN_PORT=$((BASE_PORT + 1))
DOWN_PORT=$((BASE_PORT + 2))

for tool in wrk curl; do
    command -v "$tool" >/dev/null || { echo "async_ack.sh: $tool is missing" >&2; exit 1; }
done
if [[ -z ${HOOKGATE_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --locked)
fi

rm -rf "$OUT"
mkdir -p "$OUT"
cat >"$OUT/gateway.yaml" <<YAML
listeners:
  - address: "127.0.0.1:$PORT"
admin:
  address: "127.0.0.1:$ADMIN_PORT"
server:
  threads: $THREADS
  grace_period: 1s
queue:
  dir: "$QUEUE"
  max_bytes: 8GiB
  max_entries: 50000000
routes:
  - name: ack
    path: /hooks/ack
    provider: none
    replay: { enabled: false }
    upstream: "http://127.0.0.1:$DOWN_PORT"
    connect_timeout: 100ms
    delivery: async
    async: { backoff: 1h, max_backoff: 1h, max_age: 2h }
YAML
"$BIN" check -c "$OUT/gateway.yaml" >/dev/null

"$BIN" run -c "$OUT/gateway.yaml" --log-level warn >"$OUT/hookgate.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null || { echo "hookgate did not start" >&2; exit 1; }

cat >"$OUT/post.lua" <<LUA
wrk.method = "POST"
wrk.body = string.rep("x", $SIZE)
wrk.headers["Content-Type"] = "application/octet-stream"
LUA
URL="http://127.0.0.1:$PORT/hooks/ack"
wrk -t1 -c"$CONNECTIONS" -d2s -s "$OUT/post.lua" "$URL" >"$OUT/warmup.txt"

metric() {
    curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v name="$1" '$1 == name {print $2}'
}
queued_before=$(metric 'hookgate_requests_total{outcome="queued",route="ack"}')
commits_before=$(metric hookgate_queue_commit_duration_seconds_count)
seconds_before=$(metric hookgate_queue_commit_duration_seconds_sum)
wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$OUT/post.lua" "$URL" >"$OUT/run.txt"
queued=$(metric 'hookgate_requests_total{outcome="queued",route="ack"}')
commits=$(metric hookgate_queue_commit_duration_seconds_count)
seconds=$(metric hookgate_queue_commit_duration_seconds_sum)

cat "$OUT/run.txt"
python3 - "$queued_before" "$queued" "$commits_before" "$commits" "$seconds_before" "$seconds" <<'PY'
import sys
q0, q1, c0, c1, s0, s1 = map(float, sys.argv[1:])
queued, commits = q1 - q0, c1 - c0
print(f"stored and acknowledged: {queued:.0f}")
print(f"commits: {commits:.0f}, {queued / max(commits, 1):.1f} requests per commit, "
      f"mean commit {1000 * (s1 - s0) / max(commits, 1):.2f} ms")
PY
