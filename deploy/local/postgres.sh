#!/usr/bin/env bash
# PostgreSQL 15 from Debian's package, as our own cluster under .data/pg on 127.0.0.1:15432.
# Usage: postgres.sh install|start|stop|status
COMPONENT=postgres
source "$(dirname "$0")/lib.sh"

PGDATA_DIR=$DATA/pg/data
PG_LOG=$DATA/pg/postgres.log
PID_FILE=$RUN_DIR/postgres.pid
SOCKET_DIR=$DATA/pg/socket

install() {
  [[ -x $PG_BIN/postgres ]] || apt_install postgresql
  [[ -x $PG_BIN/postgres ]] || die "no PostgreSQL binaries in $PG_BIN (set SWITCHYARD_PG_BIN)"
}

ready() { "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT"; }

psql_admin() {
  PGPASSWORD=$PG_PASSWORD psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres "$@"
}

start() {
  install
  if pid_alive "$PID_FILE" && ready; then log "already running on $PG_HOST:$PG_PORT"; return 0; fi
  if port_open "$PG_HOST" "$PG_PORT"; then die "$PG_HOST:$PG_PORT is taken by another process"; fi
  mkdir -p "$DATA/pg"
  local owner=postgres
  [[ $(id -u) -eq 0 ]] && chown "$owner:" "$DATA/pg" || owner=$(id -un)
  if [[ ! -f $PGDATA_DIR/PG_VERSION ]]; then
    log "initializing a new cluster in $PGDATA_DIR"
    local pwfile; pwfile=$(mktemp)
    printf '%s\n' "$PG_PASSWORD" >"$pwfile"; chmod 644 "$pwfile"
    as_service_user "$owner" "$PG_BIN/initdb" -D "$PGDATA_DIR" -U "$PG_USER" --pwfile="$pwfile" \
      --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$LOG_DIR/initdb.log" 2>&1 \
      || { rm -f "$pwfile"; cat "$LOG_DIR/initdb.log" >&2; die "initdb failed"; }
    rm -f "$pwfile"
  fi
  as_service_user "$owner" mkdir -p "$SOCKET_DIR"
  rm -f "$PGDATA_DIR/postmaster.pid.stale"
  log "starting on $PG_HOST:$PG_PORT"
  as_service_user "$owner" "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -s \
    -o "-p $PG_PORT -k $SOCKET_DIR -c listen_addresses=$PG_HOST -c max_connections=300 -c shared_buffers=256MB -c fsync=on" start \
    || { tail -n 40 "$PG_LOG" >&2; die "pg_ctl start failed"; }
  wait_until 60 "$PG_LOG" "PostgreSQL" ready
  head -n 1 "$PGDATA_DIR/postmaster.pid" >"$PID_FILE"
  if ! psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
    log "creating database $PG_DB"
    psql_admin -c "CREATE DATABASE \"$PG_DB\""
  fi
  log "ready: postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB"
}

stop() {
  if [[ -f $PGDATA_DIR/postmaster.pid ]] && pid_alive "$PID_FILE"; then
    log "stopping"
    local owner=postgres; [[ $(id -u) -eq 0 ]] || owner=$(id -un)
    as_service_user "$owner" "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -s -w -t 30 stop || stop_pidfile "$PID_FILE" postgres
  fi
  rm -f "$PID_FILE"
}

status() { if pid_alive "$PID_FILE" && ready; then echo "postgres: running on $PG_HOST:$PG_PORT"; else echo "postgres: stopped"; return 1; fi; }

case ${1:-} in
  install|start|stop|status) "$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
