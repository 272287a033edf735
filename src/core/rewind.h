// Rewind: the history a Failed orchestration runs again from.
//
// The rewritten history is the failed one without
//   - each TaskFailed and the TaskScheduled it answers (the activity runs
//     again when the orchestrator, replaying, schedules it anew),
//   - each TaskScheduled and TimerCreated still unanswered when the run
//     failed (a fan-out's other branches): answers that reach a Failed
//     instance are dropped, so these are scheduled anew too,
//   - each SubOrchestrationInstanceFailed (the SubOrchestrationInstanceCreated
//     stays: the child is rewound too and answers again when it finishes),
//     except that a child in `recreate` (gone, not this parent's, or failed
//     as InstanceAlreadyExists) loses its Created event too and is created
//     anew by the replay,
//   - ExecutionCompleted,
//   - the OrchestratorCompleted episode markers after the first removed
//     action, and the failing episode's (the replay checks that an episode's
//     actions were all recorded by its end; the removed ones, and those the
//     failing episode discarded, are scheduled again instead).
// This is the rewrite the Durable Task SDKs make (durabletask-js
// worker/rewind.js), except that the execution id is kept, so that messages
// addressed to the execution (timers, children's answers) still arrive.
//
// Not rewindable (`refusal` says why): a run that failed inside a critical
// section (its locks were released as it failed: the replay would be back
// inside a section it no longer holds), or while it waited for an entity
// (the answer was dropped). Restart such an instance instead.
//
// Limitation, as in the SDKs: an activity retried by a retry policy leaves
// its retry timers in the history, and the replay may not line up.
// Pure; thread-safety: none needed.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "baton/history.h"

namespace baton::core {

struct ChildRef {
  std::string instance_id;
  int32_t task_id = -1;  // the SubOrchestrationInstanceCreated event id
};

struct RewoundHistory {
  std::string refusal;  // non-empty: this history cannot be rewound
  std::vector<HistoryEvent> events;
  std::vector<ChildRef> failed_children;      // to rewind too (unless recreated)
  std::vector<ChildRef> unanswered_children;  // created, with no answer in the history
};

RewoundHistory RewindHistory(const std::vector<HistoryEvent>& history,
                             const std::set<std::string>& recreate = {});

}  // namespace baton::core
