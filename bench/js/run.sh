#!/usr/bin/env bash
# `scripts/bench hello5-js [N] [C]`: a fresh `baton serve` (scripts/lib/serve-tmp.sh)
# with a tenant and its key, one durabletask-js worker process, and hello5.js
# as the client; stops what it started by PID. After the client's result
# line, one line of CPU time per workflow of each process (scripts/lib/proc-cpu.sh):
#   hello5-js cpu/wf: baton=…ms worker=…ms client=…ms total=…ms (W workflows)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../scripts/lib/serve-tmp.sh"
source "$here/../../scripts/lib/proc-cpu.sh"
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
# Each client lane holds a WaitForInstanceCompletion open: allow more than
# the default 16 of a hub.
SERVE_ARGS=(--grpc-max-waits-per-hub 256)
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
baton_before="$(proc_cpu_ms "$SERVE_PID")"
worker_before="$(proc_cpu_ms "$worker")"
out="$(node hello5.js "$@")"
baton_after="$(proc_cpu_ms "$SERVE_PID")"
worker_after="$(proc_cpu_ms "$worker")"
grep -v '^hello5-js client:' <<<"$out"
wf="$(sed -n 's/^hello5-js client: workflows=\([0-9]*\).*/\1/p' <<<"$out")"
client_ms="$(sed -n 's/^hello5-js client: .*cpu_ms=\([0-9]*\).*/\1/p' <<<"$out")"
b="$(cpu_per_wf_ms "$baton_before" "$baton_after" "$wf")"
w="$(cpu_per_wf_ms "$worker_before" "$worker_after" "$wf")"
c="$(cpu_per_wf_ms 0 "$client_ms" "$wf")"
echo "hello5-js cpu/wf: baton=${b}ms worker=${w}ms client=${c}ms" \
  "total=$(awk -v a="$b" -v b="$w" -v c="$c" 'BEGIN { printf "%.2f", a + b + c }')ms ($wf workflows)"
