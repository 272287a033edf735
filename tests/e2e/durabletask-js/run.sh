#!/usr/bin/env bash
# Runs the durabletask-js end-to-end tests against a fresh `baton serve`.
# Usage: run.sh BATON_BINARY [TEST_FILE...]   (default: e2e.test.js)
# Installs the npm packages (package-lock.json) on first use; starts the
# server on free loopback ports with its own data dir (scripts/lib/serve-tmp.sh);
# creates two tenants; runs `node --test`; stops the server by its PID.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../../scripts/lib/serve-tmp.sh"
cd "$here"
if [ ! -d node_modules/@microsoft/durabletask-js ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
trap serve_tmp_stop EXIT
serve_tmp_start "$1"
export BATON_GRPC="$SERVE_GRPC" BATON_HTTP="$SERVE_HTTP"
BATON_KEY="$(serve_tmp_tenant_key jsacme)"
BATON_OTHER_KEY="$(serve_tmp_tenant_key jsother)"
export BATON_KEY BATON_OTHER_KEY
export BATON_SERVE_LOG="$SERVE_TMP/serve.log" BATON_ADMIN_KEY="$SERVE_ADMIN"
shift
node --test --test-concurrency=1 "${@:-e2e.test.js}"
