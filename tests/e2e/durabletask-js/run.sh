#!/usr/bin/env bash
# Runs the durabletask-js end-to-end tests against a fresh `baton serve`.
# Usage: run.sh BATON_BINARY
# Installs the npm packages (package-lock.json) on first use; starts the
# server on free loopback ports with its own data dir; creates two tenants;
# runs `node --test`; stops the server by its PID.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
baton="$1"
cd "$here"
if [ ! -d node_modules/@microsoft/durabletask-js ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
data="$(mktemp -d)"
log="$data/serve.log"
"$baton" serve --data-dir "$data/data" --port 0 --grpc-port 0 >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  grep -q "^listening on" "$log" && break
  sleep 0.1
done
http="$(sed -n 's/^listening on http:\/\/\(.*\)$/\1/p' "$log")"
grpc_addr="$(sed -n 's/^gRPC sidecar on \(.*\)$/\1/p' "$log")"
admin="$(sed -n 's/^admin key: \(.*\)$/\1/p' "$log")"
[ -n "$http" ] && [ -n "$grpc_addr" ] && [ -n "$admin" ] || { cat "$log"; echo "run.sh: baton serve did not start" >&2; exit 1; }
key_for() {
  curl -sf -X POST -H "Authorization: Bearer $admin" -d "{\"id\":\"$1\"}" "http://$http/api/v1/admin/tenants" >/dev/null
  curl -sf -X POST -H "Authorization: Bearer $admin" -d '{"name":"e2e"}' "http://$http/api/v1/admin/tenants/$1/keys" |
    sed -n 's/.*"key":"\([^"]*\)".*/\1/p'
}
export BATON_GRPC="$grpc_addr"
export BATON_KEY="$(key_for jsacme)"
export BATON_OTHER_KEY="$(key_for jsother)"
node --test --test-concurrency=1 e2e.test.js
