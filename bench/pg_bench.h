// The hello5 workload on the PostgreSQL task hub (docs/postgres.md), with one
// to a few nodes on this machine:
//
//   scripts/bench hello5-pg [N] [C] [NODES]
//
// Node 1 is the benchmark process itself (its own PostgresStore, a Worker and
// the Client that starts and awaits the orchestrations); nodes 2..NODES are
// child processes (`baton_bench hello5-pg-node URL`) with a store and a
// Worker each, stopped by PID at the end. Every run uses a fresh database on
// the cluster named by BATON_BENCH_POSTGRES_URL (scripts/bench starts one with
// scripts/pg-up), dropped afterwards. Last line:
//
//   baton hello5-pg: nodes=K N=… C=… thr=<wf/s>/s p50=… p99=… c1_p50=…
#pragma once

namespace baton::bench {

int Hello5Pg(int n, int c, int nodes);
// A worker-only node for Hello5Pg; runs until SIGTERM.
int Hello5PgNode(const char* url);

}  // namespace baton::bench
