#!/usr/bin/env bash
# ClickHouse from Debian's clickhouse-server package (18.16), with our own config and data under
# .data/ch: native protocol on 127.0.0.1:19000, HTTP on 127.0.0.1:18123.
# Usage: clickhouse.sh install|start|stop|status
COMPONENT=clickhouse
source "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
CH_DATA=$DATA/ch
PID_FILE=$RUN_DIR/clickhouse.pid
CH_LOG=$CH_DATA/log/clickhouse-server.err.log
CH_STDOUT=$LOG_DIR/clickhouse.log

install() {
  command -v curl >/dev/null || apt_install curl
  command -v clickhouse-server >/dev/null || apt_install clickhouse-server clickhouse-client
  command -v clickhouse-server >/dev/null || die "clickhouse-server is not on PATH"
}

ready() { [[ $(curl -s --max-time 2 "http://$CH_HOST:$CH_HTTP_PORT/ping" 2>/dev/null) == "Ok." ]] && port_open "$CH_HOST" "$CH_PORT"; }

start() {
  install
  if pid_alive "$PID_FILE" && ready; then log "already running on $CH_HOST:$CH_PORT"; return 0; fi
  if port_open "$CH_HOST" "$CH_PORT" || port_open "$CH_HOST" "$CH_HTTP_PORT"; then die "port $CH_PORT or $CH_HTTP_PORT on $CH_HOST is taken by another process"; fi
  mkdir -p "$CH_DATA"/{data,tmp,user_files,format_schemas,log,etc}
  sed -e "s#@CH_HOST@#$CH_HOST#g" -e "s#@CH_PORT@#$CH_PORT#g" -e "s#@CH_HTTP_PORT@#$CH_HTTP_PORT#g" \
      -e "s#@CH_DATA@#$CH_DATA#g" "$HERE/clickhouse/config.xml.in" >"$CH_DATA/etc/config.xml"
  cp "$HERE/clickhouse/users.xml" "$CH_DATA/etc/users.xml"
  log "starting on $CH_HOST:$CH_PORT (HTTP $CH_HTTP_PORT)"
  : >"$CH_STDOUT"
  # exec, so the pid file names the server itself and stop stops exactly it; its own session
  # (setsid), so it does not die with the process group that started it — a test that restarts
  # ClickHouse (ingest's outage test), a shell whose job is killed.
  (cd "$CH_DATA" && exec setsid clickhouse-server --config-file="$CH_DATA/etc/config.xml" >>"$CH_STDOUT" 2>&1 </dev/null) &
  echo $! >"$PID_FILE"
  wait_until 60 "$CH_LOG" "ClickHouse" ready || { tail -n 20 "$CH_STDOUT" >&2; stop_pidfile "$PID_FILE" clickhouse; exit 1; }
  log "ready: native $CH_HOST:$CH_PORT, http://$CH_HOST:$CH_HTTP_PORT"
}

stop() { stop_pidfile "$PID_FILE" clickhouse; }

status() { if pid_alive "$PID_FILE" && ready; then echo "clickhouse: running on $CH_HOST:$CH_PORT"; else echo "clickhouse: stopped"; return 1; fi; }

case ${1:-} in
  install|start|stop|status) "$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
