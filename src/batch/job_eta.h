// The admission ETA of a queued job as the job API and `baton why` show it
// (docs/eta.md): reads what admission_eta.h needs from the store, runs the
// estimate and says it for one viewer.
//
// Read: the scheduler's state (given by the caller, who has it already),
// each running and queued job's instance (its name; a running job's grant
// time, from its custom status "grantedAt" or else from its history), and
// per tenant with jobs there, its most recent finished jobs: the hold time
// (result "durations": granted to finished) of up to kEtaSamples runs of
// each name, canceled runs left out. Reads are bounded (kEtaMaxJobsRead,
// kEtaMaxTenantsRead, kEtaHistoryScan): what is past a bound counts as a job
// without history, so the answer becomes a lower bound, never a guess.
//
// What the viewer sees: the times, the counts of jobs it waits for, and the
// names without history of its own tenant's jobs only. Another tenant's
// jobs are counted, never named or identified.
//
// Thread-safety: as the Client's reads (safe from any thread).
#pragma once

#include <string>

#include "batch/admission_eta.h"
#include "baton/client.h"
#include "baton/clock.h"
#include "baton/json.h"

namespace baton::batch {

inline constexpr int kEtaSamples = 20;         // runs per name the durations come from
inline constexpr int kEtaHistoryScan = 300;    // finished jobs read per tenant, newest first
inline constexpr int kEtaMaxJobsRead = 1000;   // running and queued jobs read
inline constexpr int kEtaMaxTenantsRead = 32;  // tenants whose history is read

// The snapshot of the scheduler state `scheduler` (NormalizedSchedulerState
// is applied) at `now`, read from `client`. Errors of the store are returned;
// a job whose instance is gone counts as one without history.
Result<EtaSnapshot> ReadEtaSnapshot(Client& client, const Json& scheduler, TimePoint now);

// The "eta" member of a queued job (docs/http-api.md), for `viewer_tenant`
// ("" = an admin, who sees other tenants' job names too):
//   {"basis", "startAt", "startBy", "inSeconds", "estimatedAt",
//    "waitsFor": {"runningJobs", "queuedJobs"},
//    "withoutHistory": {"names": [own names], "ownJobs", "otherTenantsJobs"}  (lowerBound),
//    "runTime": {"p50Seconds", "p90Seconds", "runs"} | null,
//    "summary"}
// `own`: the holds of the job's own name (for runTime; nullopt: no history).
Json EtaJson(const EtaSnapshot& snapshot, const EtaEstimate& estimate, const std::optional<RunDurations>& own,
             const std::string& viewer_tenant);

// All of the above for the queued job `job` (its instance id): the "eta"
// member, or null when the job is not queued.
Result<Json> JobEta(Client& client, const Json& scheduler, const std::string& job, const std::string& viewer_tenant,
                    TimePoint now);

}  // namespace baton::batch
