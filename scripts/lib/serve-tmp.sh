# Sourced by scripts that need a throw-away `baton serve` (the durabletask-js
# tests and benchmark): starts it on free loopback ports with its own data dir.
#
#   serve_tmp_start BATON_BINARY   sets SERVE_TMP (a temp dir), SERVE_PID,
#                                  SERVE_HTTP (host:port), SERVE_GRPC, SERVE_ADMIN;
#                                  the array SERVE_ARGS, if set, adds flags
#   serve_tmp_tenant_key TENANT [SETTINGS]
#                                  creates the tenant (with the tenant settings
#                                  PATCH body SETTINGS, if given) and prints a new key of it
#   serve_tmp_stop                 stops the server by its PID, removes SERVE_TMP

serve_tmp_start() {
  SERVE_TMP="$(mktemp -d)"
  local log="$SERVE_TMP/serve.log"
  "$1" serve --data-dir "$SERVE_TMP/data" --port 0 --grpc-port 0 ${SERVE_ARGS[@]+"${SERVE_ARGS[@]}"} >"$log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 1 100); do
    grep -q "^listening on" "$log" && break
    sleep 0.1
  done
  SERVE_HTTP="$(sed -n 's/^listening on http:\/\/\(.*\)$/\1/p' "$log")"
  SERVE_GRPC="$(sed -n 's/^gRPC sidecar on \(.*\)$/\1/p' "$log")"
  SERVE_ADMIN="$(sed -n 's/^admin key: \(.*\)$/\1/p' "$log")"
  if [ -z "$SERVE_HTTP" ] || [ -z "$SERVE_GRPC" ] || [ -z "$SERVE_ADMIN" ]; then
    cat "$log" >&2
    echo "serve-tmp: baton serve did not start" >&2
    return 1
  fi
}

serve_tmp_tenant_key() {
  curl -sf -X POST -H "Authorization: Bearer $SERVE_ADMIN" -d "{\"id\":\"$1\"}" \
    "http://$SERVE_HTTP/api/v1/admin/tenants" >/dev/null
  if [ -n "${2:-}" ]; then
    curl -sf -X PATCH -H "Authorization: Bearer $SERVE_ADMIN" -d "$2" \
      "http://$SERVE_HTTP/api/v1/admin/tenants/$1/settings" >/dev/null
  fi
  curl -sf -X POST -H "Authorization: Bearer $SERVE_ADMIN" -d '{"name":"script"}' \
    "http://$SERVE_HTTP/api/v1/admin/tenants/$1/keys" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p'
}

serve_tmp_stop() {
  if [ -n "${SERVE_PID:-}" ]; then
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  [ -n "${SERVE_TMP:-}" ] && rm -rf "$SERVE_TMP"
  return 0
}
