#!/usr/bin/env bash
# Seeds the demo after the services are up: the first owner and their API token
# (.data/admin-token), then a demo project through the public API. Safe to re-run.
COMPONENT=seed
source "$(dirname "$0")/lib.sh"

BIN=$DATA/bin
[[ -x $BIN/flagsvc ]] || die "flagsvc is not built; run make up"
export SWITCHYARD_PG_DSN=${SWITCHYARD_PG_DSN:-postgres://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DB?sslmode=disable}
export SWITCHYARD_KAFKA_BROKERS=${SWITCHYARD_KAFKA_BROKERS:-$KAFKA_HOST:$KAFKA_PORT}
FLAGSVC_URL=$(service_url flagsvc 8080)

"$BIN/flagsvc" bootstrap -token-file "$DATA/admin-token" -log-level warn
"$BIN/flagsvc" seed -flagsvc-url "$FLAGSVC_URL" -token-file "$DATA/admin-token" -keys-file "$DATA/sdk-keys.json"
# A simulated week of visitors for the demo experiment, through the SDK, relay and pipeline.
(cd "$ROOT/e2e" && go build -o "$BIN/demotraffic" ./cmd/demotraffic)
"$BIN/demotraffic" -keys-file "$DATA/sdk-keys.json" -token-file "$DATA/admin-token" \
  -relay-url "$(service_url evalrelay 8081)" -events-url "$(service_url ingest 8082)" -stats-url "$(service_url stats 8083)"
log "demo ready: project 'demo' with experiment checkout-redesign (owner token in $DATA/admin-token, SDK keys in $DATA/sdk-keys.json)"
