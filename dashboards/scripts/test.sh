#!/usr/bin/env bash
# The web app's tests: builds it (scripts/build.sh), runs the component tests (Vitest) and the
# JavaScript budget of the results page, then the end-to-end tests in a real browser
# (Playwright driving Debian's Chromium) against the dashboards server, flag service, stats,
# ingest, Postgres, Kafka and ClickHouse (the local stack must be up: `make infra-up`).
#   dashboards/scripts/test.sh [unit|e2e]     (default: both)
set -euo pipefail
DASH="$(cd "$(dirname "$0")/.." && pwd)"
what=${1:-all}
log() { echo "[dashboards test] $*"; }

"$DASH/scripts/build.sh"

if [[ $what == all || $what == unit ]]; then
  log "vitest"
  (cd "$DASH/web" && npx vitest run)
  log "JavaScript budget of the results page"
  (cd "$DASH/web" && node scripts/budget.mjs --max-kb 300)
fi

if [[ $what == all || $what == e2e ]]; then
  if [[ ! -x /usr/bin/chromium ]]; then
    log "installing Debian's chromium (Playwright's own browser download does not work here)"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
  # The Go harness starts the services as processes (like e2e/stack), seeds a project, and
  # runs the browser tests (web/e2e/*.test.mjs) against them; screenshots land in
  # dashboards/web/e2e-artifacts/ (or $SWITCHYARD_E2E_ARTIFACTS).
  log "browser end-to-end tests"
  (cd "$DASH" && go test -v -tags browser -count=1 -timeout 15m -run TestBrowser ./e2e/)
fi
