// The replay executor: runs one orchestration instance's coroutine over its
// history events.
//
// The engine feeds an Executor the committed history (`replaying` = true) and
// then the new events of an episode (`replaying` = false). The orchestrator
// coroutine runs eagerly as events resolve what it awaits and emits actions.
// A history event that records an action (TaskScheduled, TimerCreated,
// SubOrchestrationInstanceCreated, EventSent) must match the action the code
// produced with the same id; and every action produced while replaying an
// episode must be recorded in that episode (checked at OrchestratorCompleted).
// Any mismatch fails the instance with a NonDeterminismError; nothing the
// mismatching code produced is ever emitted.
//
// An Executor that is kept alive between episodes (the engine's cache) only
// needs the new events of the next episode.
//
// Thread-safety: none; one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "baton/history.h"
#include "baton/orchestration.h"

namespace baton::core {

// Finds the orchestrator function for a name; null when unknown.
using OrchestratorLookup = std::function<const OrchestratorFn*(std::string_view name)>;

namespace actions {
struct ScheduleTask {
  std::string name;
  std::string version;
  std::string input;
};
struct CreateTimer {
  TimePoint fire_at;
};
struct CreateSubOrchestration {
  std::string instance_id;
  std::string name;
  std::string version;
  std::string input;
};
struct SendEvent {
  std::string instance_id;
  std::string name;
  std::string input;
};
struct SignalEntity {
  std::string request_id;
  std::string target_instance_id;
  std::string operation;
  std::string input;
  std::optional<TimePoint> scheduled_time;
};
struct CallEntity {
  std::string request_id;
  std::string target_instance_id;
  std::string operation;
  std::string input;
};
struct LockEntities {
  std::string critical_section_id;
  std::vector<std::string> lock_set;  // sorted, distinct entity instance ids
};
struct UnlockEntity {
  std::string critical_section_id;
  std::string target_instance_id;
};
}  // namespace actions

using ActionBody =
    std::variant<actions::ScheduleTask, actions::CreateTimer, actions::CreateSubOrchestration,
                 actions::SendEvent, actions::SignalEntity, actions::CallEntity,
                 actions::LockEntities, actions::UnlockEntity>;

struct Action {
  int32_t id = 0;
  ActionBody body;
};

// How the execution ended, when it did in this episode.
struct Completion {
  OrchestrationStatus status = OrchestrationStatus::kCompleted;
  std::string result;  // output; the new input for kContinuedAsNew
  std::optional<FailureDetails> failure;
  std::vector<HistoryEvent> carryover_events;  // kContinuedAsNew: EventRaised to keep
  // Running sub-orchestrations to terminate (recursive terminate).
  std::vector<std::string> terminate_children;
};

// Where a replay diverged from history: the first NonDeterminismError of an
// execution, in parts (the failure message says the same in one sentence).
struct Divergence {
  int64_t event_index = 0;  // position of the event in the applied history (0-based)
  std::string event_kind;   // e.g. "TaskScheduled"
  int32_t event_id = 0;     // the event's eventId (-1 when it has none)
  std::string expected;     // what history recorded
  std::string actual;       // what the orchestrator code produced
};

struct Episode {
  // New actions, in the order the code produced them.
  std::vector<Action> actions;
  std::optional<Completion> completion;
  std::string custom_status;  // current value (serialized JSON, "" = none)
  bool suspended = false;
};

class Executor {
 public:
  Executor(OrchestratorLookup lookup, std::string instance_id);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Applies one event. Events after the execution completed are ignored,
  // except EventRaised after ContinueAsNew, which is carried over.
  void Apply(const HistoryEvent& event, bool replaying);

  // What the episode produced since the last call: the actions not yet
  // recorded in history, and the completion if the execution ended. After a
  // call the returned actions count as recorded.
  Episode TakeEpisode();

  bool Started() const;
  bool Completed() const;
  const std::string& ExecutionId() const;
  // From the ExecutionStarted event; empty/nullopt before it was applied.
  const std::string& Name() const;
  const std::string& Version() const;
  const std::optional<ParentInstance>& Parent() const;
  // Events applied so far (replayed and new).
  int64_t EventsApplied() const;
  // A rough estimate of the memory this executor holds, for the cache budget.
  size_t ApproximateBytes() const;
  // Set when a replay mismatch failed the execution (NonDeterminismError);
  // deploy preflight (baton/preflight.h) reports it.
  const std::optional<Divergence>& FirstDivergence() const;
  // The external events the code awaits now (lower-cased names, sorted), for
  // `baton why` (engine/why.h): history records no action for such a wait.
  std::vector<std::string> AwaitedEventNames() const;

  class Context;  // the OrchestrationContext implementation

 private:
  std::unique_ptr<Context> ctx_;
};

}  // namespace baton::core
