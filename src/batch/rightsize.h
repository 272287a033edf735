// Right-sizing: the CPU and memory a job name should ask for, from what its
// recent runs used (docs/cli.md#baton-job-rightsize).
//
// Each attempt that ran a container records its figures (job_orchestration.h,
// resource_sampler.h): peak memory, CPU time, average cores, and the limits
// it ran with. From the measured attempts of a job name's recent runs:
//   memory = p95 of the peaks (nearest rank) + headroom, rounded up to a MiB,
//            at least the largest limit an attempt was OOM-killed at +
//            headroom (a kill at L says L is not enough), at least 6 MiB;
//   cpu    = p95 of the average cores an attempt used + headroom, rounded up
//            to 0.01 core, at least 0.01;
// and the saving is what the latest run asked for minus that (negative: the
// job asks for too little). With fewer than `min_runs` measured attempts
// there is no recommendation, and the answer says why.
//
// Pure functions; RecentRuns reads the store through the Client.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "baton/client.h"
#include "baton/json.h"

namespace baton::batch {

// One attempt's figures, as its collect activity recorded them.
struct MeasuredAttempt {
  std::string job_id;
  int attempt = 0;
  double cpu_limit = 0;            // cores it ran with
  int64_t memory_limit_bytes = 0;  // memory it ran with
  int64_t peak_memory_bytes = 0;
  std::optional<double> avg_cores;  // CPU time over wall time; none when not measured
  bool oom_killed = false;
};

struct RightsizeOptions {
  double headroom = 0.2;  // added to the p95 figures
  int min_runs = 3;       // measured attempts needed for a recommendation
};

// The measured attempts of one job's result (its "attemptResults"), oldest
// first; attempts without figures (peakMemoryBytes null) are left out.
std::vector<MeasuredAttempt> MeasuredAttempts(const std::string& job_id, const Json& result);

// The p-th percentile (0 < p <= 100) by nearest rank; REQUIRES: !values.empty().
double NearestRankPercentile(std::vector<double> values, double p);

// The recommendation for `name` from `attempts`, against what the latest run
// asked for (`requested_cpu`, `requested_memory_mb`):
//   {"name", "runs", "measuredAttempts", "enough", "message"?,
//    "requested": {"cpu", "memoryMb"},
//    "observed": {"peakMemoryMbP95", "peakMemoryMbMax", "avgCoresP95", "avgCoresMax", "oomKilled"},
//    "recommended": {"cpu", "memoryMb"} | null,
//    "saving": {"cpu", "memoryMb", "cpuPercent", "memoryPercent"} | null,
//    "headroom"}
Json Rightsize(const std::string& name, int runs, const std::vector<MeasuredAttempt>& attempts, double requested_cpu,
               int64_t requested_memory_mb, const RightsizeOptions& options = {});

// Reads the `max_runs` most recent finished jobs of `tenant` named `name`
// (scanning at most `max_scanned` of its newest jobs) and answers Rightsize
// for them. Only the tenant's own jobs are read. NotFound: no finished job
// of that name among those scanned.
Result<Json> RightsizeJobName(Client& client, const std::string& tenant, const std::string& name, int max_runs = 20,
                              int max_scanned = 1000, const RightsizeOptions& options = {});

}  // namespace baton::batch
