#!/usr/bin/env bash
# Shared settings and helpers for the local (no Docker) stack. Sourced by the other scripts.
# Every address and path can be overridden by the environment variable of the same name.
set -euo pipefail

ROOT=${SWITCHYARD_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
DATA=${SWITCHYARD_DATA:-$ROOT/.data}
CACHE=${SWITCHYARD_CACHE:-$ROOT/.cache}
RUN_DIR=$DATA/run   # pid files
LOG_DIR=$DATA/log

PG_HOST=${SWITCHYARD_PG_HOST:-127.0.0.1}
PG_PORT=${SWITCHYARD_PG_PORT:-15432}
PG_USER=${SWITCHYARD_PG_USER:-switchyard}
PG_PASSWORD=${SWITCHYARD_PG_PASSWORD:-switchyard}
PG_DB=${SWITCHYARD_PG_DB:-switchyard}
PG_BIN=${SWITCHYARD_PG_BIN:-/usr/lib/postgresql/15/bin}

KAFKA_VERSION=${SWITCHYARD_KAFKA_VERSION:-4.1.1}
KAFKA_HOST=${SWITCHYARD_KAFKA_HOST:-127.0.0.1}
KAFKA_PORT=${SWITCHYARD_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${SWITCHYARD_KAFKA_CONTROLLER_PORT:-19093}
KAFKA_HEAP=${SWITCHYARD_KAFKA_HEAP:-512m}

CH_HOST=${SWITCHYARD_CH_HOST:-127.0.0.1}
CH_PORT=${SWITCHYARD_CH_PORT:-19000}
CH_HTTP_PORT=${SWITCHYARD_CH_HTTP_PORT:-18123}

mkdir -p "$RUN_DIR" "$LOG_DIR" "$CACHE"

log() { printf '\033[1m[%s]\033[0m %s\n' "${COMPONENT:-local}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# service_url NAME DEFAULT_PORT: a service's base URL (SWITCHYARD_<NAME>_URL, else
# http://127.0.0.1:<SWITCHYARD_<NAME>_PORT or DEFAULT_PORT>).
service_url() {
  local up; up=$(echo "$1" | tr a-z A-Z)
  local url="SWITCHYARD_${up}_URL" port="SWITCHYARD_${up}_PORT"
  echo "${!url:-http://127.0.0.1:${!port:-$2}}"
}

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# pid_alive FILE: true when the pid file names a running process.
pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_until SECONDS LOGFILE DESCRIPTION COMMAND...: polls COMMAND every 0.2 s until it succeeds;
# on timeout prints the tail of LOGFILE and fails.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )) logfile=$2 what=$3; shift 3
  until "$@"; do
    if (( $(date +%s) >= deadline )); then
      log "$what did not become ready within the deadline; last lines of $logfile:"
      tail -n 40 "$logfile" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.2
  done
}

# stop_pidfile FILE NAME: stops exactly the process named by the pid file (TERM, then KILL after 20 s).
stop_pidfile() {
  local file=$1 name=$2
  if ! pid_alive "$file"; then rm -f "$file"; return 0; fi
  local pid; pid=$(cat "$file")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then log "$name did not stop in 20 s; killing"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$file"
}

# as_service_user USER CMD...: Postgres refuses to run as root, so when we are root run its
# commands as the package's system user.
as_service_user() {
  local user=$1; shift
  if [[ $(id -u) -eq 0 ]]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

# apt_install PKG...: installs Debian packages that are missing (needs root or sudo).
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]} (apt-get)"
  local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
