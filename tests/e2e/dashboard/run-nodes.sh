#!/usr/bin/env bash
# Browser test of the admin view's nodes (docs/dashboard.md): two `baton
# serve` nodes on one PostgreSQL database (scripts/pg-up; a database of its
# own, dropped at exit), headless chromium against the first.
# Usage: run-nodes.sh BATON_BINARY [SCREENSHOT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cd "$here"
if [ ! -x /usr/bin/chromium ]; then
  echo "dashboard tests: /usr/bin/chromium is missing (scripts/install-deps installs it)" >&2
  exit 1
fi
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/@grpc/proto-loader ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
export BATON_RUN_DIR="${BATON_RUN_DIR:-$repo/.baton-run}"
admin_url="$("$repo/scripts/pg-up" | tail -1)"
db="baton_test_dashnodes_$$"
psql_admin() { psql "$admin_url" -qAt -v ON_ERROR_STOP=1 "$@"; }
psql_admin -c "CREATE DATABASE $db ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" >/dev/null
store_url="${admin_url/\/postgres\?//$db?}"
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# start_node NAME: a node on the shared database; sets NODE_HTTP, NODE_GRPC, NODE_PID.
start_node() {
  local log="$tmp/$1.log"
  "$BATON" serve --data-dir "$tmp/$1" --store "$store_url" --port 0 --grpc-port 0 >"$log" 2>&1 &
  NODE_PID=$!
  pids+=("$NODE_PID")
  for _ in $(seq 1 300); do
    grep -q "^listening on" "$log" && break
    kill -0 "$NODE_PID" 2>/dev/null || break
    sleep 0.1
  done
  NODE_HTTP="$(sed -n 's/^listening on http:\/\/\(.*\)$/\1/p' "$log")"
  NODE_GRPC="$(sed -n 's/^gRPC sidecar on \(.*\)$/\1/p' "$log")"
  if [ -z "$NODE_HTTP" ] || [ -z "$NODE_GRPC" ]; then
    cat "$log" >&2
    echo "run-nodes: node $1 did not start" >&2
    exit 1
  fi
}
BATON="$1"
start_node a
export BATON_HTTP="$NODE_HTTP" BATON_GRPC="$NODE_GRPC" BATON_PID_A="$NODE_PID"
BATON_ADMIN="$(sed -n 's/^admin key: \(.*\)$/\1/p' "$tmp/a.log")"
start_node b
export BATON_HTTP_B="$NODE_HTTP" BATON_GRPC_B="$NODE_GRPC" BATON_PID_B="$NODE_PID"
tenant_key() {
  curl -sf -X POST -H "Authorization: Bearer $BATON_ADMIN" -d "{\"id\":\"$1\"}" "http://$BATON_HTTP/api/v1/admin/tenants" >/dev/null
  curl -sf -X POST -H "Authorization: Bearer $BATON_ADMIN" -d '{"name":"script"}' \
    "http://$BATON_HTTP/api/v1/admin/tenants/$1/keys" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p'
}
BATON_KEY="$(tenant_key dash)"
BATON_OPS_KEY="$(tenant_key ops)"
export BATON_ADMIN BATON_KEY BATON_OPS_KEY
export BATON_SCREENSHOTS="${2:-}"
node --test --test-concurrency=1 nodes.test.js
