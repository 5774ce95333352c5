#!/usr/bin/env bash
# Builds the web app into dashboards/web/dist, which the dashboards binary embeds.
# Idempotent and cheap when nothing changed: `npm ci` runs only when package-lock.json changed
# (or node_modules is missing), the type check and `vite build` only when a source changed.
#   dashboards/scripts/build.sh [--force]
set -euo pipefail
WEB="$(cd "$(dirname "$0")/../web" && pwd)"
cd "$WEB"
log() { echo "[dashboards build] $*"; }

force=false
[[ ${1:-} == --force ]] && force=true

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if $force || [[ ! -d node_modules ]] || [[ "$(cat node_modules/.switchyard-lock 2>/dev/null)" != "$lock_hash" ]]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.switchyard-lock
fi

# Everything the build output depends on. The stamp lives in node_modules (git-ignored, and
# not in dist/, which the binary embeds).
src_hash=$( { find src public -type f -print0 | sort -z | xargs -0 sha256sum; sha256sum index.html vite.config.ts tsconfig.json package-lock.json; } | sha256sum | cut -d' ' -f1)
if ! $force && [[ -f dist/index.html ]] && [[ "$(cat node_modules/.switchyard-build 2>/dev/null)" == "$src_hash" ]]; then
  log "dist/ is up to date"
  exit 0
fi
log "type check"
npx tsc -p tsconfig.json --noEmit
log "vite build"
npx vite build --logLevel warn
echo "$src_hash" > node_modules/.switchyard-build
node scripts/budget.mjs
log "built dist/ (rebuild the dashboards binary to embed it)"
