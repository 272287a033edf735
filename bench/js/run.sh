#!/usr/bin/env bash
# `scripts/bench hello5-js [N] [C]`: a fresh `baton serve` (scripts/lib/serve-tmp.sh)
# with a tenant and its key, one durabletask-js worker process, and hello5.js
# as the client; stops what it started by PID.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../scripts/lib/serve-tmp.sh"
baton="$1"
shift
cd "$here"
if [ ! -d node_modules/@microsoft/durabletask-js ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
worker=""
cleanup() {
  [ -n "$worker" ] && kill "$worker" 2>/dev/null
  serve_tmp_stop
}
trap cleanup EXIT
serve_tmp_start "$baton"
export BATON_GRPC="$SERVE_GRPC"
# A benchmark measures Baton, not a tenant's default admission limits.
BATON_KEY="$(serve_tmp_tenant_key bench '{"limits":{"requestsPerSecond":1000000,"burst":1000000,"maxInstances":1000000000}}')"
export BATON_KEY
node hello5-worker.js >"$SERVE_TMP/worker.log" 2>&1 &
worker=$!
for _ in $(seq 1 100); do
  grep -q "worker started" "$SERVE_TMP/worker.log" && break
  sleep 0.1
done
node hello5.js "$@"
