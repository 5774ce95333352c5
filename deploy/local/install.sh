#!/usr/bin/env bash
# Installs what the local stack needs and is missing: Debian packages (PostgreSQL 15, ClickHouse,
# wrk for load tests, curl), the Kafka jars (mvn), the Go modules, and staticcheck (make test's
# linter, pinned, in .data/bin). Safe to re-run.
COMPONENT=install
source "$(dirname "$0")/lib.sh"

command -v go >/dev/null || die "Go 1.26 is required (https://go.dev/dl/) and is not on PATH"
apt_install postgresql clickhouse-server clickhouse-client curl wrk ca-certificates
"$(dirname "$0")/kafka.sh" install
log "downloading Go modules"
(cd "$ROOT" && for m in $(go list -m -f '{{.Dir}}'); do (cd "$m" && go mod download); done)
STATICCHECK_VERSION=v0.8.2 # staticcheck 2026.2.2
if [[ "$("$DATA/bin/staticcheck" -version 2>/dev/null)" != *"(${STATICCHECK_VERSION#v})"* ]]; then
  log "installing staticcheck $STATICCHECK_VERSION"
  mkdir -p "$DATA/bin"
  GOBIN="$DATA/bin" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" || die "could not install staticcheck"
fi
log "everything is installed"
