// Batch-job benchmarks, run through scripts/bench (which first runs
// scripts/docker-up and scripts/sample-image, and scripts/swarm-up for the
// swarm):
//
//   scripts/bench job-latency [N] [--runtime R]          submit -> container running, by phase
//   scripts/bench job-throughput [N] [Q] [--runtime R]   tiny jobs per second under a quota of Q jobs
//
// R is "docker" (the default: this machine's dockerd), "swarm" (`baton serve
// --runtime swarm` on the private swarm of scripts/swarm-up, both nodes
// reachable) or "both" (docker, then swarm, in the same run: one line each).
//
// Each starts its own `baton serve` (temp data dir, free port on 127.0.0.1,
// credentials of the local registry at 127.0.0.1:5000 from
// $BATON_RUN_DIR/registry/password, default <repo>/.baton-run; on the swarm,
// its own registry's), creates the tenant "bench" with a key, a quota and a
// grant for the sample image's namespace, and runs the sample image
// 127.0.0.1:5000/samples/hello:1 (on the swarm: <its registry>/samples/hello:1,
// built on its manager; both the static testjob program) through the job
// API. At the end, and on SIGINT/SIGTERM, it stops that server by its pid
// (SIGTERM, SIGKILL after 30 s), force-removes any container (and swarm
// service) left of the server's node, and deletes the data dir. dockerd, the
// registry and the swarm are left running (scripts/docker-down,
// scripts/swarm-down stop them).
//
// Every wait is bounded. Figures are printed, not judged, with one exception:
// job-throughput fails when more than Q jobs were seen at once. The return
// value is 0, or 1 after a failed job, a bound hit, a signal or that check.
#pragma once

#include <string>

namespace baton::bench {

// Runs a first job (`exit 0`, cpu 0.25, memoryMb 32), then N more one at a
// time, each to its end, and prints the p50/p95 of each phase from the job's
// events timeline, its result and Docker's container events:
//   pull          Submitted -> ImageResolved (registry manifest lookup; the
//                 layers are local after scripts/sample-image)
//   queue         ImageResolved -> QuotaGranted (the scheduler entity's answer)
//   create        QuotaGranted -> Docker's `create` event of the container
//                 (Swarm: the manager's `create` event of the attempt's service)
//   start         that event -> the container's own StartedAt (on the swarm:
//                 the task's placement, the node's pull of the digest, its
//                 container's create and start)
//   create_start  create + start
//   total         Submitted -> the container's StartedAt
//   recorded      StartedAt -> AttemptStarted (Baton has recorded the start)
// and the first job's total, pull and create_start apart (first_*): the first
// job of a fresh server (first registry login; the image is already local).
int JobLatency(int n, const std::string& runtime = "docker");

// Sets the tenant's quota to Q jobs (cpu and memory to spare), submits N tiny
// jobs (`exit 0`, cpu 0.1, memoryMb 16) from 4 client threads as fast as the
// server accepts them, and waits for all to end. Prints
//   jobs_per_s, wall         N / (first submit -> last job's durations.finished)
//   max_concurrent_observed  the most job containers existing at once, from
//                            Docker's create/destroy events (exact: a job's
//                            container exists only while it holds quota; on
//                            the swarm, tasks placed and not ended, sampled
//                            from /tasks every 100 ms)
//   max_running_observed     the same for start/die (the process running;
//                            on the swarm, tasks "running")
//   max_granted_sampled      the most jobs holding quota in samples of
//                            GET /api/v1/admin/scheduler every 100 ms
//   p50/p95_job_ms           a job's life, durations.submitted -> finished
//   p50/p95_slot_ms          its time holding quota, granted -> finished
//   submit                   how long the N submits took
// Fails (after printing) when more than Q jobs were seen at once.
int JobThroughput(int n, int q, const std::string& runtime = "docker");

}  // namespace baton::bench
