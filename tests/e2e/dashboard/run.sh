#!/usr/bin/env bash
# Browser tests of the dashboard (docs/dashboard.md): playwright-core (npm,
# package-lock.json) driving Debian's chromium headless against a fresh
# `baton serve`, with the shared dockerd and registry (scripts/docker-up) for
# the job tests and the sample job image (scripts/sample-image).
# Usage: run.sh BATON_BINARY TESTJOB_BINARY [SCREENSHOT_DIR]
# With SCREENSHOT_DIR, also saves a screenshot of each view there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
source "$repo/scripts/lib/serve-tmp.sh"
cd "$here"
if [ ! -x /usr/bin/chromium ]; then
  echo "dashboard tests: /usr/bin/chromium is missing (scripts/install-deps installs it)" >&2
  exit 1
fi
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/@grpc/proto-loader ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
export BATON_RUN_DIR="${BATON_RUN_DIR:-$repo/.baton-run}"
"$repo/scripts/docker-up" >/dev/null
BATON_TESTJOB="$2" "$repo/scripts/sample-image" >/dev/null

trap serve_tmp_stop EXIT
SERVE_ARGS=(--registry 127.0.0.1:5000 --registry-user baton
            --registry-password-file "$BATON_RUN_DIR/registry/password")
serve_tmp_start "$1"
export BATON_HTTP="$SERVE_HTTP" BATON_GRPC="$SERVE_GRPC" BATON_ADMIN="$SERVE_ADMIN"
# The sample image's prefix, as `baton serve` grants its demo tenant.
limits='{"limits":{"requestsPerSecond":5000,"burst":10000},"grants":{"imagePrefixes":["127.0.0.1:5000/samples/"]}}'
BATON_KEY="$(serve_tmp_tenant_key dash "$limits")"
BATON_OTHER_KEY="$(serve_tmp_tenant_key other "$limits")"
export BATON_KEY BATON_OTHER_KEY
export BATON_SCREENSHOTS="${3:-}"
node --test --test-concurrency=1 dashboard.test.js
