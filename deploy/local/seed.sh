#!/usr/bin/env bash
# Seeds the demo after the services are up: the first owner and their API token
# (.data/admin-token), then a demo project through the public API. Safe to re-run.
COMPONENT=seed
source "$(dirname "$0")/lib.sh"

BIN=$DATA/bin
[[ -x $BIN/flagsvc ]] || die "flagsvc is not built; run make up"
export SWITCHYARD_PG_DSN=${SWITCHYARD_PG_DSN:-postgres://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DB?sslmode=disable}
export SWITCHYARD_KAFKA_BROKERS=${SWITCHYARD_KAFKA_BROKERS:-$KAFKA_HOST:$KAFKA_PORT}
FLAGSVC_URL=${SWITCHYARD_FLAGSVC_URL:-http://127.0.0.1:${SWITCHYARD_FLAGSVC_PORT:-8080}}

"$BIN/flagsvc" bootstrap -token-file "$DATA/admin-token" -log-level warn
"$BIN/flagsvc" seed -flagsvc-url "$FLAGSVC_URL" -token-file "$DATA/admin-token" -keys-file "$DATA/sdk-keys.json"
log "demo ready: project 'demo' (owner token in $DATA/admin-token, SDK keys in $DATA/sdk-keys.json)"
