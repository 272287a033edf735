#!/usr/bin/env bash
# `scripts/bench hello5-js [N] [C]`: starts `baton serve` on free loopback
# ports with its own data dir, a tenant and its key, one durabletask-js worker
# process, and runs hello5.js as the client; stops what it started by PID.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
baton="$1"
shift
cd "$here"
if [ ! -d node_modules/@microsoft/durabletask-js ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
data="$(mktemp -d)"
log="$data/serve.log"
"$baton" serve --data-dir "$data/data" --port 0 --grpc-port 0 >"$log" 2>&1 &
server=$!
worker=""
cleanup() {
  [ -n "$worker" ] && kill "$worker" 2>/dev/null
  kill "$server" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$data"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  grep -q "^listening on" "$log" && break
  sleep 0.1
done
http="$(sed -n 's/^listening on http:\/\/\(.*\)$/\1/p' "$log")"
admin="$(sed -n 's/^admin key: \(.*\)$/\1/p' "$log")"
export BATON_GRPC="$(sed -n 's/^gRPC sidecar on \(.*\)$/\1/p' "$log")"
[ -n "$http" ] && [ -n "$BATON_GRPC" ] || { cat "$log" >&2; exit 1; }
curl -sf -X POST -H "Authorization: Bearer $admin" -d '{"id":"bench"}' "http://$http/api/v1/admin/tenants" >/dev/null
export BATON_KEY="$(curl -sf -X POST -H "Authorization: Bearer $admin" -d '{"name":"bench"}' \
  "http://$http/api/v1/admin/tenants/bench/keys" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')"
node hello5-worker.js >"$data/worker.log" 2>&1 &
worker=$!
for _ in $(seq 1 100); do
  grep -q "worker started" "$data/worker.log" && break
  sleep 0.1
done
node hello5.js "$@"
