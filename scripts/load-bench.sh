#!/usr/bin/env bash
# Loopback load benchmark of the server's client endpoints (docs/benchmarks.md, "Server load
# (loopback)"). Builds the release benchmark server (crates/server/examples/bench_server.rs:
# the real server's router over a SQLite store seeded with 1,000 Normandy recipes and 300
# CloudBees flags over 20 target groups), starts it on 127.0.0.1, and runs wrk against it:
#
#   1. manifest, 304: GET /api/v1/manifest/ with If-None-Match: <current ETag>
#   2. manifest, full: GET /api/v1/manifest/ with Accept-Encoding: gzip (the 1,000-recipe
#      signed manifest, precompressed)
#   3. OFREP single evaluation: POST /ofrep/v1/evaluate/flags/flag-150 with a JSON context
#      (scripts/ofrep-post.lua, scripts/ofrep-context.json): a flag whose target-group
#      condition holds and serves a split
#
# Every request goes to the loopback address only; each run is bounded by DURATION.
# Settings (environment): DURATION (default 10s), CONNECTIONS (64), THREADS (wrk threads, 2:
# one wrk thread cannot read 1 GB/s of gzip manifests on this machine),
# WORKERS (server worker threads, default: one per core), PORT (8089), RECIPES (1000),
# FLAGS (300; at least 151, since the OFREP run evaluates flag-150).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PORT=${PORT:-8089}
RECIPES=${RECIPES:-1000}
FLAGS=${FLAGS:-300}
ADDRESS="127.0.0.1:${PORT}"
BASE="http://${ADDRESS}"
WORK_DIR=target/load-bench
mkdir -p "$WORK_DIR"

if ! command -v wrk >/dev/null 2>&1; then
  echo "wrk is not installed; installing it (Debian package wrk)" >&2
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }
fi

cargo build --release --locked -p flightdeck-server --example bench_server

SERVER_ARGS=(--listen "$ADDRESS" --recipes "$RECIPES" --flags "$FLAGS")
if [[ -n "${WORKERS:-}" ]]; then SERVER_ARGS+=(--workers "$WORKERS"); fi
target/release/examples/bench_server "${SERVER_ARGS[@]}" >"$WORK_DIR/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true' EXIT

# Ready when /healthz answers (the store is seeded and the snapshot built before the server
# listens); bounded.
ready=0
for _ in $(seq 1 1200); do
  if curl -fsS "$BASE/healthz" >/dev/null 2>&1; then ready=1; break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
  sleep 0.1
done
if [[ $ready != 1 ]]; then
  echo "the benchmark server did not start:" >&2
  cat "$WORK_DIR/server.log" >&2
  exit 1
fi
grep -E '^(seeded|snapshot|skipped):' "$WORK_DIR/server.log" || true

ETAG=$(curl -fsS -o /dev/null -D - "$BASE/api/v1/manifest/" | awk 'tolower($1) == "etag:" {print $2}' | tr -d '\r')
STATUS_304=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$BASE/api/v1/manifest/")
GZIP_BYTES=$(curl -s -H 'Accept-Encoding: gzip' "$BASE/api/v1/manifest/" | wc -c)
echo "manifest ETag $ETAG; conditional GET answers $STATUS_304; gzip body $GZIP_BYTES bytes"
[[ $STATUS_304 == 304 ]] || { echo "expected 304" >&2; exit 1; }

OFREP_FLAG=$(awk '/^ofrep: flag / {print $3}' "$WORK_DIR/server.log")
OFREP_URL="$BASE/ofrep/v1/evaluate/flags/$OFREP_FLAG"
# The context (scripts/ofrep-context.json) is in target group group-10 (plan "beta", country
# "NZ"), so flag-150's group condition holds and its three-way split decides by targetingKey.
OFREP_ANSWER=$(curl -fsS -H 'Content-Type: application/json' --data-binary @scripts/ofrep-context.json "$OFREP_URL")
echo "OFREP $OFREP_FLAG answers $OFREP_ANSWER"
[[ $OFREP_ANSWER == *'"reason":"SPLIT"'* ]] || { echo "expected a SPLIT evaluation" >&2; exit 1; }

# CPU time (user + system, in clock ticks) the server has used so far.
server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
TICKS_PER_SECOND=$(getconf CLK_TCK)

# Runs wrk, then prints the server's CPU time per request: on a shared machine the request
# rate depends on what else runs, the CPU cost per request much less.
run() {
  local name=$1; shift
  echo
  echo "== $name (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "\$ wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $*"
  local before after output requests
  before=$(server_ticks)
  output=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
  after=$(server_ticks)
  echo "$output"
  requests=$(echo "$output" | awk '/requests in/ {print $1}')
  awk -v ticks=$((after - before)) -v hz="$TICKS_PER_SECOND" -v n="$requests" \
    'BEGIN { printf "server CPU: %.2f s for %d requests = %.2f us per request\n", ticks / hz, n, ticks / hz / n * 1e6 }'
}

run "manifest 304 (If-None-Match)" -H "If-None-Match: $ETAG" "$BASE/api/v1/manifest/"
run "manifest full, gzip ($RECIPES recipes)" -H "Accept-Encoding: gzip" "$BASE/api/v1/manifest/"
run "OFREP single evaluation ($OFREP_FLAG)" -s scripts/ofrep-post.lua "$OFREP_URL"

echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
