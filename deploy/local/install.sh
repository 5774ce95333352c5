#!/usr/bin/env bash
# Installs what the local stack needs and is missing: Debian packages (PostgreSQL 15, ClickHouse,
# wrk for load tests, curl), the Kafka jars (mvn), and the Go modules. Safe to re-run.
COMPONENT=install
source "$(dirname "$0")/lib.sh"

command -v go >/dev/null || die "Go 1.26 is required (https://go.dev/dl/) and is not on PATH"
apt_install postgresql clickhouse-server clickhouse-client curl wrk ca-certificates
"$(dirname "$0")/kafka.sh" install
log "downloading Go modules"
(cd "$ROOT" && for m in $(go list -m -f '{{.Dir}}'); do (cd "$m" && go mod download); done)
log "everything is installed"
