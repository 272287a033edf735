// What a tenant sees of a job (docs/http-api.md#batch-jobs): the job's state
// read from its orchestration, and its timeline read from the history.
//
// Pure functions of what the store holds; the HTTP API and the CLI's JSON
// output show exactly this.
#pragma once

#include <string>
#include <vector>

#include "baton/history.h"
#include "baton/instance.h"
#include "baton/json.h"
#include "batch/job_spec.h"

namespace baton::batch {

// "job.<tenant>.<id>"
std::string JobInstanceId(const std::string& tenant, const std::string& id);

// A new job id: 16 hex digits, the first 11 the creation time in ms (ids sort
// by creation), then a per-process counter (ids never repeat). Thread-safe.
std::string NewJobId();
// IsJobId: job_spec.h.

// The job, from its orchestration's state (with payloads) and, when given,
// the scheduler's state (for the live queue position). `brief` leaves out the
// spec and the per-attempt results (for lists).
Json JobView(const InstanceState& state, const Json& scheduler_state, bool brief = false);

// The job's status name ("Queued", "Running", "Completed", …), as in JobView.
std::string JobStatusOf(const InstanceState& state);

// Why an attempt or a job ended (docs/http-api.md#why-a-job-ended), the one
// word and the one line that the job's result, its AttemptEnded events and
// the CLI all show. `outcome` is an attempt's outcome or a job's result
// ({"exitCode", "oomKilled", "timedOut", "canceled", "reported", "message",
// "error", "reason"?}); `status` the attempt's or job's ("Completed",
// "Failed", "Canceled"). A `reason` already in `outcome` (a step before any
// attempt: "DependencyFailed", "ImagePullFailed") is kept.
//   reason: Completed | ExitCode | ReportedFailed | TimedOut | Canceled |
//           OOMKilled | ImagePullFailed | ContainerLost | DependencyFailed |
//           PermissionDenied | Error
struct EndReason {
  std::string reason;
  std::string summary;  // "exit code 3", "timed out after 60 s", …
};
EndReason WhyEnded(const Json& outcome, const std::string& status);

// The timeline: [{"time", "type", "attempt"?, …}] (see the API docs).
Json JobTimeline(const std::vector<HistoryEvent>& history);

}  // namespace baton::batch
