#!/usr/bin/env bash
# Relay benchmarks against the running local stack (make up), load from a second process:
#   1. cached ruleset 304s (wrk), 2. remote evaluation of 10 flags (wrk + Lua),
#   3. propagation to 1,000 streaming Go SDK clients and memory per stream (relaybench).
# Usage: scripts/bench-relay.sh [duration]   (results: docs/benchmarks.md)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20s}
RELAY=${SWITCHYARD_EVALRELAY_URL:-http://127.0.0.1:8081}
BIN=.data/bin
mkdir -p "$BIN"
(cd e2e && go build -o "../$BIN/relaybench" ./cmd/relaybench)
eval "$("$BIN/relaybench" setup -project "bench-relay-$(date +%s)")"
# Wait until the relay serves the new environment, then read its ETag.
for _ in $(seq 1 100); do
  ETAG=$(curl -s -o /dev/null -D - -H "Authorization: $SERVER_KEY" "$RELAY/sdk/v1/ruleset" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
  [[ -n $ETAG ]] && break
  sleep 0.1
done
[[ -n ${ETAG:-} ]] || { echo "relay never served the benchmark environment" >&2; exit 1; }

echo "== 1. GET /sdk/v1/ruleset with a matching If-None-Match (304), wrk -t2 -c64 -d$DURATION"
wrk -t2 -c64 -d"$DURATION" --latency -H "Authorization: $SERVER_KEY" -H "If-None-Match: $ETAG" "$RELAY/sdk/v1/ruleset" | sed -n '1,20p'

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
echo "== 2. POST /sdk/v1/evaluate, 10 flags per request, random contexts, wrk -t2 -c64 -d$DURATION"
wrk -t2 -c64 -d"$DURATION" --latency -s "$LUA" "$RELAY/sdk/v1/evaluate" | sed -n '1,20p'
rm -f "$LUA"

echo "== 3. Propagation: flag service API -> Kafka -> relay -> 1,000 streaming SDK clients"
"$BIN/relaybench" propagation -clients "${CLIENTS:-1000}" -changes "${CHANGES:-20}" -relay-pid "$(cat .data/run/evalrelay.pid)" \
  -project "bench-prop-$(date +%s)"
