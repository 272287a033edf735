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
//   - ExecutionCompleted,
//   - the OrchestratorCompleted episode markers after the first removed
//     TaskScheduled (the replay checks that an episode's actions were all
//     recorded by its end; the removed one is scheduled again instead).
// This is the rewrite the Durable Task SDKs make (durabletask-js
// worker/rewind.js), except that the execution id is kept, so that messages
// addressed to the execution (timers, children's answers) still arrive.
//
// Limitations: an activity retried by a retry policy leaves its retry
// timers in the history, and the replay may not line up (as in the SDKs); a
// child still running when the parent failed is not restarted, and its
// answer is lost if it came while the parent was Failed.
// Pure; thread-safety: none needed.
#pragma once

#include <string>
#include <vector>

#include "baton/history.h"

namespace baton::core {

struct RewoundHistory {
  std::vector<HistoryEvent> events;
  std::vector<std::string> failed_children;  // sub-orchestration instance ids to rewind too
};

RewoundHistory RewindHistory(const std::vector<HistoryEvent>& history);

}  // namespace baton::core
