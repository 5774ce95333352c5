#!/usr/bin/env bash
# Builds and runs every Switchyard service that exists in the tree, against the local stack.
# Usage: services.sh up|down|status|build
COMPONENT=services
source "$(dirname "$0")/lib.sh"

BIN=$DATA/bin
# service:port (ports overridable with SWITCHYARD_<SERVICE>_PORT)
SERVICES="flagsvc:8080 evalrelay:8081 ingest:8082 stats:8083 jobs:8084 dashboards:8085"

export SWITCHYARD_PG_DSN=${SWITCHYARD_PG_DSN:-postgres://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DB?sslmode=disable}
export SWITCHYARD_KAFKA_BROKERS=${SWITCHYARD_KAFKA_BROKERS:-$KAFKA_HOST:$KAFKA_PORT}
export SWITCHYARD_CLICKHOUSE_ADDR=${SWITCHYARD_CLICKHOUSE_ADDR:-$CH_HOST:$CH_PORT}
# The shared token of ingest's usage API (the dashboards proxy it for signed-in users).
[[ -s $DATA/ingest-query-token ]] || (umask 077; head -c 32 /dev/urandom | base64 | tr -d '/+=' >"$DATA/ingest-query-token")
export SWITCHYARD_QUERY_TOKEN=${SWITCHYARD_QUERY_TOKEN:-$(cat "$DATA/ingest-query-token")}
export SWITCHYARD_INGEST_QUERY_TOKEN=$SWITCHYARD_QUERY_TOKEN
# The services' own API token (stats results workers, jobs), written by the seed; re-read when used.
export SWITCHYARD_FLAGSVC_TOKEN_FILE=${SWITCHYARD_FLAGSVC_TOKEN_FILE:-$DATA/service-token}

port_of() { local name=$1 default=$2 var; var="SWITCHYARD_$(echo "$name" | tr a-z A-Z)_PORT"; echo "${!var:-$default}"; }
exists() { [[ -f $ROOT/$1/cmd/$1/main.go ]]; }

# Service URLs, so services find each other.
for entry in $SERVICES; do
  name=${entry%%:*}
  export "SWITCHYARD_$(echo "$name" | tr a-z A-Z)_URL"="$(service_url "$name" "${entry##*:}")"
done

build() {
  mkdir -p "$BIN"
  for entry in $SERVICES; do
    local name=${entry%%:*}
    exists "$name" || continue
    log "building $name"
    (cd "$ROOT/$name" && go build -o "$BIN/$name" "./cmd/$name")
  done
}

up() {
  build
  for entry in $SERVICES; do
    local name=${entry%%:*} port
    exists "$name" || continue
    port=$(port_of "$name" "${entry##*:}")
    local pid_file=$RUN_DIR/$name.pid logfile=$LOG_DIR/$name.log
    if pid_alive "$pid_file"; then
      log "$name already running; restarting with the new build"
      stop_pidfile "$pid_file" "$name"
    fi
    if port_open 127.0.0.1 "$port"; then die "port $port for $name is taken by another process"; fi
    log "starting $name on :$port"
    mkdir -p "$DATA/state/$name"
    SWITCHYARD_HTTP_ADDR=127.0.0.1:$port SWITCHYARD_STATE_DIR=$DATA/state/$name \
      setsid nohup "$BIN/$name" serve >>"$logfile" 2>&1 </dev/null & # own session: outlives the caller's process group
    echo $! >"$pid_file"
    wait_until 60 "$logfile" "$name" curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" \
      || die "$name did not become ready"
  done
}

down() {
  # Reverse order of start-up.
  for entry in $(echo "$SERVICES" | tr ' ' '\n' | tac); do
    stop_pidfile "$RUN_DIR/${entry%%:*}.pid" "${entry%%:*}"
  done
}

status() {
  for entry in $SERVICES; do
    local name=${entry%%:*}
    exists "$name" || continue
    if pid_alive "$RUN_DIR/$name.pid"; then echo "$name: running on :$(port_of "$name" "${entry##*:}")"; else echo "$name: stopped"; fi
  done
}

case ${1:-} in
  up|down|status|build) "$1" ;;
  *) echo "usage: $0 up|down|status|build" >&2; exit 2 ;;
esac
