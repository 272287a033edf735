# Sourced by the benchmarks that report CPU per workflow per process.
#
#   proc_cpu_ms PID    prints the CPU time (user + system, all threads) the
#                      process has used so far, in ms (from /proc/PID/stat;
#                      0 when it is gone)
#   cpu_per_wf_ms BEFORE AFTER WORKFLOWS
#                      prints (AFTER - BEFORE) / WORKFLOWS with two decimals
#
# CPU time, unlike wall-clock throughput, does not depend on what else the
# machine runs at the same time, so it compares runs on a shared machine.

proc_cpu_ms() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return 0; }
  # The command name (field 2) may hold spaces: count fields after its ')'.
  awk -v hz="$(getconf CLK_TCK)" '{ print int(($12 + $13) * 1000 / hz) }' <<<"${stat##*) }"
}

cpu_per_wf_ms() {
  awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.2f", (n > 0 ? (b - a) / n : 0) }'
}
