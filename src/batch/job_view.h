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

namespace baton::batch {

// "job.<tenant>.<id>"
std::string JobInstanceId(const std::string& tenant, const std::string& id);

// A new job id: 16 hex digits, the first 11 the creation time in ms (ids sort
// by creation), then a per-process counter (ids never repeat). Thread-safe.
std::string NewJobId();
bool IsJobId(const std::string& id);

// The job, from its orchestration's state (with payloads) and, when given,
// the scheduler's state (for the live queue position). `brief` leaves out the
// spec and the per-attempt results (for lists).
Json JobView(const InstanceState& state, const Json& scheduler_state, bool brief = false);

// The job's status name ("Queued", "Running", "Completed", …), as in JobView.
std::string JobStatusOf(const InstanceState& state);

// The timeline: [{"time", "type", "attempt"?, …}] (see the API docs).
Json JobTimeline(const std::vector<HistoryEvent>& history);

}  // namespace baton::batch
