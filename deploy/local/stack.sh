#!/usr/bin/env bash
# Starts or stops the whole local infrastructure: Postgres, Kafka, ClickHouse.
# Usage: stack.sh up|down|status
COMPONENT=stack
source "$(dirname "$0")/lib.sh"
HERE=$(dirname "$0")
case ${1:-} in
  up)
    "$HERE/postgres.sh" start
    "$HERE/kafka.sh" start
    "$HERE/clickhouse.sh" start ;;
  down)
    # Reverse order of start-up.
    "$HERE/clickhouse.sh" stop
    "$HERE/kafka.sh" stop
    "$HERE/postgres.sh" stop ;;
  status)
    rc=0
    for s in postgres kafka clickhouse; do "$HERE/$s.sh" status || rc=1; done
    exit $rc ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
