#!/usr/bin/env bash
# Relay benchmarks against the running local stack (make up), load from a second process:
#   1. cached ruleset 304s (wrk), 2. remote evaluation of 10 flags at 2, 8 and 64 connections and
#   paced to ~10k req/s (wrk + Lua)
#   and at fixed rates of 2,000, 5,000 and 10,000 req/s (vegeta; RATES=...),
#   3. propagation to 1,000 streaming Go SDK clients and memory per stream (relaybench),
#   4. the same in an environment of 1,000 flags.
# Usage: scripts/bench-relay.sh [duration]   (results: docs/benchmarks.md)
#   STEPS="3 4" runs only those steps (default: all four); PROFILE=FILE writes a CPU profile of
#   step 3's clients (relaybench -cpuprofile); RELAY_FLAGS adds flags to the benchmark relay's
#   command line. The benchmark relay serves its Go profiles at /debug/pprof/ on BENCH_RELAY_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20s}
BIN=.data/bin
mkdir -p "$BIN"
(cd e2e && go build -o "../$BIN/relaybench" ./cmd/relaybench)
(cd evalrelay && go build -o "../$BIN/evalrelay" ./cmd/evalrelay)

# A relay of its own, beside the stack's, with the per-key rate limits off: one key driven from
# one machine exceeds the default 50,000 req/s, and 429s would flatter the throughput. The relay
# reads the rulesets topic directly (no consumer group), so it does not disturb the stack's.
source deploy/local/lib.sh
PORT=${BENCH_RELAY_PORT:-18181}
port_open 127.0.0.1 "$PORT" && { echo "port $PORT is taken; set BENCH_RELAY_PORT" >&2; exit 1; }
STATE=$(mktemp -d)
LOGFILE=$STATE/evalrelay.log
SWITCHYARD_KAFKA_BROKERS=${SWITCHYARD_KAFKA_BROKERS:-$KAFKA_HOST:$KAFKA_PORT} \
  "$BIN/evalrelay" serve -http-addr "127.0.0.1:$PORT" -state-dir "$STATE" -server-key-rate 0 -client-key-rate 0 -pprof ${RELAY_FLAGS:-} >"$LOGFILE" 2>&1 &
RELAY_PID=$!
# Its profiles (-pprof, on loopback) also let relaybench collect its garbage before measuring its
# memory per stream. The benchmark's projects are deleted at the end, so relays do not keep serving them.
PROJECTS=()
delete_projects() {
  local p
  for p in "${PROJECTS[@]}"; do
    curl -fs -o /dev/null -X DELETE -H "Authorization: Bearer $(cat "$DATA/admin-token")" "$FLAGSVC/api/v1/projects/$p" ||
      echo "could not delete the benchmark project $p" >&2
  done
}
trap 'delete_projects; kill $RELAY_PID 2>/dev/null; wait $RELAY_PID 2>/dev/null; rm -rf "$STATE"' EXIT
RELAY=http://127.0.0.1:$PORT
wait_until 60 "$LOGFILE" "benchmark relay" curl -fs -o /dev/null "$RELAY/readyz" || exit 1

FLAGSVC=$(service_url flagsvc 8080)
PROJECTS+=("bench-relay-$(date +%s)")
eval "$("$BIN/relaybench" setup -flagsvc-url "$FLAGSVC" -relay-url "$RELAY" -project "${PROJECTS[0]}")"
# Wait until the relay serves the new environment, then read its ETag.
for _ in $(seq 1 100); do
  ETAG=$(curl -s -o /dev/null -D - -H "Authorization: $SERVER_KEY" "$RELAY/sdk/v1/ruleset" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
  [[ -n $ETAG ]] && break
  sleep 0.1
done
[[ -n ${ETAG:-} ]] || { echo "relay never served the benchmark environment" >&2; exit 1; }

STEPS=${STEPS:-1 2 3 4}
step() { [[ " $STEPS " == *" $1 "* ]]; }

if step 1; then
echo "== 1. GET /sdk/v1/ruleset with a matching If-None-Match (304), wrk -t2 -c64 -d$DURATION"
wrk -t2 -c64 -d"$DURATION" --latency -H "Authorization: $SERVER_KEY" -H "If-None-Match: $ETAG" "$RELAY/sdk/v1/ruleset" | sed -n '1,20p'
fi

if step 2; then
LUA=$(mktemp --suffix .lua)
cat >"$LUA" <<LUAEOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "$CLIENT_KEY"
local flags = '"flag-0","flag-1","flag-2","flag-3","flag-4","flag-5","flag-6","flag-7","flag-8","flag-9"'
local countries = {"DE", "US", "FR", "BR"}
request = function()
  local body = string.format('{"context":{"kind":"user","key":"user-%d","country":"%s","plan":"pro"},"flags":[%s]}',
    math.random(1, 10000000), countries[math.random(1, 4)], flags)
  return wrk.format(nil, nil, nil, body)
end
LUAEOF
# Latency at light and moderate loads (2 and 8 connections) and the throughput ceiling (64).
for CONNS in 2 8 64; do
  echo "== 2. POST /sdk/v1/evaluate, 10 flags per request, random contexts, wrk -t2 -c$CONNS -d$DURATION"
  wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$LUA" "$RELAY/sdk/v1/evaluate" | sed -n '1,20p'
done
# Paced: every connection waits 2 ms after each response, so PACED_CONNS connections offer about
# PACED_CONNS x 330 req/s here (32: ~10.5k req/s) — a fixed load from wrk, which costs far less
# CPU per request than vegeta below (the two share the relay's cores).
echo 'delay = function() return 2 end' >>"$LUA"
echo "== 2a. POST /sdk/v1/evaluate paced: wrk -t2 -c${PACED_CONNS:-32}, 2 ms between a response and the next request"
wrk -t2 -c"${PACED_CONNS:-32}" -d"$DURATION" --latency -s "$LUA" "$RELAY/sdk/v1/evaluate" | sed -n '1,20p'
rm -f "$LUA"

# The same at fixed rates (an open model: the latency at a given load, not at saturation).
[[ -x $BIN/vegeta ]] || GOBIN="$PWD/$BIN" go install github.com/tsenart/vegeta/v12@v12.13.0
TARGETS=$(mktemp)
"$BIN/relaybench" targets -relay-url "$RELAY" -key "$CLIENT_KEY" -n 20000 >"$TARGETS"
for RATE in ${RATES:-2000 5000 10000}; do
  echo "== 2b. POST /sdk/v1/evaluate, 10 flags, random users, fixed $RATE req/s (vegeta) for $DURATION"
  "$BIN/vegeta" attack -format json -targets "$TARGETS" -rate "$RATE" -duration "$DURATION" -workers 16 -max-workers 256 |
    "$BIN/vegeta" report -type text | sed -n '1,3p;6,7p'
done
rm -f "$TARGETS"
fi

if step 3; then
PROJECTS+=("bench-prop-$(date +%s)")
echo "== 3. Propagation: flag service API -> Kafka -> relay -> 1,000 streaming SDK clients"
"$BIN/relaybench" propagation -flagsvc-url "$FLAGSVC" -kafka-brokers "$KAFKA_HOST:$KAFKA_PORT" -clients "${CLIENTS:-1000}" -changes "${CHANGES:-20}" -relay-url "$RELAY" -relay-pid "$RELAY_PID" \
  -project "${PROJECTS[-1]}" ${PROFILE:+-cpuprofile "$PROFILE"}
fi

if step 4; then
PROJECTS+=("bench-prop-large-$(date +%s)")
echo "== 4. Propagation as in 3, in an environment of ${FLAGS:-1000} more flags (~190 bytes each), so patches matter"
"$BIN/relaybench" propagation -flagsvc-url "$FLAGSVC" -kafka-brokers "$KAFKA_HOST:$KAFKA_PORT" -clients "${CLIENTS:-1000}" -changes "${CHANGES:-20}" -relay-url "$RELAY" -relay-pid "$RELAY_PID" \
  -project "${PROJECTS[-1]}" -flags "${FLAGS:-1000}"
fi
