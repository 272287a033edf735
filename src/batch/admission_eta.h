// Admission ETA: when a queued job is expected to start (docs/eta.md).
//
// EstimateStart is a pure function of a snapshot: the capacity scheduler's
// state (what runs, what waits, each tenant's quota, weight and use, the
// node's capacity) and, for each running or queued job, how long jobs of its
// name held their capacity in recent runs and, for a running job, when it
// was granted. It replays the scheduler forward from `now`:
//
//   - a running job releases at  granted_at + expected hold,  or at
//     now + floor when it is already past that (an overdue job ends "soon");
//   - whenever capacity frees up, queued jobs are granted in the order the
//     scheduler itself grants them (scheduler.h NextSchedulerGrant: fair
//     share between tenants, priority then arrival within one), and each
//     releases after its own expected hold;
//   - the job's estimated start is the moment it is granted.
//
// A "hold" is a job's time from the grant of its capacity to its release:
// every attempt, the backoffs between them, creating and removing the
// containers. The expected hold of a job is the p50 of recent runs of its
// name (start_at), or the p90 (start_by). A job whose name has no history
// (or a running one whose grant time is unknown) has no expected hold. The
// replay is run with such jobs ending at once and again with them never
// ending: when both give the same start, it does not depend on them
// (Basis::kHistory); otherwise the earlier is only a lower bound
// (Basis::kLowerBound), and the estimate says which jobs it waits for.
//
// Thread-safety: pure functions; no state.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "baton/clock.h"
#include "baton/json.h"

namespace baton::batch {

using Seconds = std::chrono::duration<double>;

// The hold times of recent runs of one job name.
struct RunDurations {
  int samples = 0;
  Seconds p50{0};  // the median
  Seconds p90{0};
};

// The p50 and p90 (nearest rank) of `holds`; nullopt when it is empty.
// Negative holds (clock steps) are dropped.
std::optional<RunDurations> SummarizeRunDurations(std::vector<Seconds> holds);

// What is known of one running or queued job.
struct EtaJobInfo {
  std::string name;                       // the job's name (for wording only)
  std::optional<RunDurations> durations;  // nullopt: no history for its name
  std::optional<TimePoint> granted_at;    // a running job: when its capacity was granted
};

struct EtaSnapshot {
  TimePoint now;
  Json scheduler;  // the scheduler entity's state (scheduler.h "snapshot")
  // By the scheduler's job key (the job's instance id); a job missing here
  // has no expected hold.
  std::map<std::string, EtaJobInfo> jobs;
};

struct EtaOptions {
  // The least a running job is expected to still hold its capacity, and
  // the least any hold lasts.
  Seconds floor{1};
  // Grants and releases simulated at most (a bound on the work for a huge
  // queue); past it the estimate is Basis::kNever.
  int max_steps = 20000;
};

struct EtaEstimate {
  enum class Basis {
    kHistory,     // the start waits only for releases with an expected hold
    kLowerBound,  // it waits for some without (`unknown`): start_at is the earliest start
    kNotQueued,   // the job is not in the scheduler's queue (granted, ended, unknown)
    kNever,       // no expected release frees enough capacity for it
  };
  Basis basis = Basis::kNever;
  std::optional<TimePoint> start_at;  // with p50 holds (kHistory, kLowerBound)
  std::optional<TimePoint> start_by;  // with p90 holds (kHistory only)
  // In the replay that gave start_at:
  int running_first = 0;  // jobs running now released before the start
  int queued_first = 0;   // jobs queued now granted before it
  // kLowerBound: the keys of the jobs without an expected hold released
  // before the start when they end at once (each once, in release order).
  std::vector<std::string> unknown;
};

// When `job` (a scheduler job key) is expected to be granted its capacity.
EtaEstimate EstimateStart(const EtaSnapshot& snapshot, const std::string& job, const EtaOptions& options = {});

const char* EtaBasisName(EtaEstimate::Basis basis);  // "history", "lowerBound", "notQueued", "never"

}  // namespace baton::batch
