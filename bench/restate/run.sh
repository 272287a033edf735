#!/usr/bin/env bash
# `bench/restate/run.sh [N] [C]` (run by `scripts/bench hello5-js-vs-restate`):
# hello5 on Restate 1.x: a fresh restate-server (npm @restatedev/restate-server,
# its default single-node configuration: durable log and state in RocksDB,
# fsync'ed), the Node service hello5-service.js (@restatedev/restate-sdk) and
# the client hello5.js (@restatedev/restate-sdk-clients), N workflows C at a
# time. Once with each kind of step (hello5-service.js): RESTATE_STEPS
# ("call run" by default). For each, the client's line and one line of CPU per
# workflow per process (scripts/lib/proc-cpu.sh):
#   restate (call) cpu/wf: server=…ms service=…ms client=…ms total=…ms (W workflows)
#
# The npm packages (package-lock.json) are installed on first use into a
# cache dir outside the repository ($BATON_BENCH_CACHE, default
# ~/.cache/baton-bench). Everything runs in a network namespace of its own
# (unshare --net, so as root) with only a loopback interface: the server
# binds 127.0.0.1, and its start-up check for a newer release cannot leave
# the machine. Stops what it started by PID and removes its data dir.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../scripts/lib/proc-cpu.sh"
N="${1:-2000}"
C="${2:-50}"
cache="${BATON_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/baton-bench}/restate-$(sha256sum "$here/package-lock.json" | cut -c1-12)"
if [ ! -d "$cache/node_modules/@restatedev/restate-sdk-clients" ]; then
  mkdir -p "$cache"
  cp "$here/package.json" "$here/package-lock.json" "$cache/"
  (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
if [ -z "${BATON_RESTATE_NETNS:-}" ]; then
  exec env BATON_RESTATE_NETNS=1 unshare --net bash "$0" "$@"
fi
ip link set lo up
arch="$(node -p 'process.arch')"
server_bin="$cache/node_modules/@restatedev/restate-server-linux-$arch/bin/restate-server"
export NODE_PATH="$cache/node_modules"
ingress=18080 admin=19070 fabric=15122 service_port=19080

tmp="$(mktemp -d)"
server="" service=""
stop() {
  if [ -n "$service" ]; then kill "$service" 2>/dev/null || true; wait "$service" 2>/dev/null || true; fi
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  server="" service=""
}
trap 'stop; rm -rf "$tmp"' EXIT
printf 'disable-telemetry = true\nlog-disable-ansi-codes = true\n' >"$tmp/restate.toml"

for step in ${RESTATE_STEPS:-call run}; do
  rm -rf "$tmp/data"
  RESTATE_INGRESS__BIND_PORT=$ingress RESTATE_ADMIN__BIND_PORT=$admin \
    "$server_bin" -c "$tmp/restate.toml" --no-logo --base-dir "$tmp/data" --bind-ip 127.0.0.1 \
    --bind-port $fabric --listen-mode tcp >"$tmp/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 300); do
    curl -sf --max-time 2 "http://127.0.0.1:$admin/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  RESTATE_STEP=$step PORT=$service_port node "$here/hello5-service.js" >"$tmp/service.log" 2>&1 &
  service=$!
  for _ in $(seq 1 100); do
    grep -q "service listening" "$tmp/service.log" && break
    sleep 0.1
  done
  curl -sf --max-time 20 -X POST -H 'content-type: application/json' -d "{\"uri\":\"http://127.0.0.1:$service_port\"}" \
    "http://127.0.0.1:$admin/deployments" >/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
  # The ingress learns the new deployment shortly after the admin API answers.
  for _ in $(seq 1 100); do
    code="$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$ingress/greeter/sayHello" \
      -H 'content-type: application/json' -d '"probe"')" || true
    [ "$code" = 200 ] && break
    sleep 0.1
  done
  server_before="$(proc_cpu_ms "$server")"
  service_before="$(proc_cpu_ms "$service")"
  out="$(RESTATE_STEP=$step node "$here/hello5.js" "http://127.0.0.1:$ingress" "$N" "$C")"
  server_after="$(proc_cpu_ms "$server")"
  service_after="$(proc_cpu_ms "$service")"
  grep -v '^restate client:' <<<"$out"
  wf="$(sed -n 's/^restate client: workflows=\([0-9]*\).*/\1/p' <<<"$out")"
  client_ms="$(sed -n 's/^restate client: .*cpu_ms=\([0-9]*\).*/\1/p' <<<"$out")"
  s="$(cpu_per_wf_ms "$server_before" "$server_after" "$wf")"
  v="$(cpu_per_wf_ms "$service_before" "$service_after" "$wf")"
  c="$(cpu_per_wf_ms 0 "$client_ms" "$wf")"
  echo "restate ($step) cpu/wf: server=${s}ms service=${v}ms client=${c}ms" \
    "total=$(awk -v a="$s" -v b="$v" -v c="$c" 'BEGIN { printf "%.2f", a + b + c }')ms ($wf workflows)"
  stop
done
