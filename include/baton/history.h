// History events: the append-only log that is the durable state of an
// orchestration instance.
//
// Every orchestration instance is an event-sourced log. The kinds and field
// names follow the Durable Task protocol's `HistoryEvent` (see
// docs/history-format.md) so that the gRPC sidecar can carry them without
// translation. Each kind is its own struct; `HistoryEvent::body` is a
// `std::variant` of them and every consumer dispatches with `std::visit`, so a
// new kind that some consumer forgot to handle fails to compile.
//
// Payloads (inputs, results, event data) are serialized JSON text; "" means
// absent (see json.h).
//
// Event ids: an event that records an action of the orchestrator
// (TaskScheduled, TimerCreated, SubOrchestrationInstanceCreated, EventSent)
// carries `event_id` = the action's sequence number within the execution,
// starting at 1. Completions refer back to it (`task_scheduled_id`,
// `timer_id`). Inbound events carry -1.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "baton/clock.h"
#include "baton/status.h"

namespace baton {

// Values match the Durable Task protocol's OrchestrationStatus enum.
enum class OrchestrationStatus : int {
  kRunning = 0,
  kCompleted = 1,
  kContinuedAsNew = 2,
  kFailed = 3,
  kCanceled = 4,
  kTerminated = 5,
  kPending = 6,
  kSuspended = 7,
};

// "Running", "Completed", ... (the Durable Functions spelling).
std::string_view OrchestrationStatusName(OrchestrationStatus s);
// Parses the names above, case-insensitively. False when unknown.
bool ParseOrchestrationStatus(std::string_view name, OrchestrationStatus* out);
// Completed, Failed, Terminated and Canceled are terminal: nothing runs after.
bool IsTerminal(OrchestrationStatus s);

// Why something failed, carried across every durable boundary (an activity's
// failure seen by its orchestrator, a child's failure seen by its parent).
struct FailureDetails {
  std::string error_type;     // e.g. "InvalidOperation" or a C++ type name
  std::string error_message;  // human-readable
  std::string stack_trace;    // optional
  std::string details;        // optional serialized JSON with structured details
  bool is_non_retriable = false;
  // The failure that caused this one, if any (a child orchestration's activity).
  std::vector<FailureDetails> inner;  // at most one element; a vector keeps the type complete

  friend bool operator==(const FailureDetails&, const FailureDetails&) = default;
};

struct ParentInstance {
  int32_t task_scheduled_id = -1;  // the parent's SubOrchestrationInstanceCreated event id
  std::string name;                // the parent's orchestrator name
  std::string instance_id;
  std::string execution_id;
  friend bool operator==(const ParentInstance&, const ParentInstance&) = default;
};

namespace events {

struct ExecutionStarted {
  std::string name;
  std::string version;
  std::string input;
  std::string instance_id;
  std::string execution_id;
  std::optional<ParentInstance> parent;
  std::optional<TimePoint> scheduled_start;
  std::map<std::string, std::string> tags;
  friend bool operator==(const ExecutionStarted&, const ExecutionStarted&) = default;
};
struct ExecutionCompleted {
  OrchestrationStatus status = OrchestrationStatus::kCompleted;
  std::string result;
  std::optional<FailureDetails> failure;
  friend bool operator==(const ExecutionCompleted&, const ExecutionCompleted&) = default;
};
struct ExecutionTerminated {
  std::string input;  // the termination reason / output
  bool recurse = false;
  friend bool operator==(const ExecutionTerminated&, const ExecutionTerminated&) = default;
};
struct TaskScheduled {
  std::string name;
  std::string version;
  std::string input;
  friend bool operator==(const TaskScheduled&, const TaskScheduled&) = default;
};
struct TaskCompleted {
  int32_t task_scheduled_id = -1;
  std::string result;
  friend bool operator==(const TaskCompleted&, const TaskCompleted&) = default;
};
struct TaskFailed {
  int32_t task_scheduled_id = -1;
  FailureDetails failure;
  friend bool operator==(const TaskFailed&, const TaskFailed&) = default;
};
struct SubOrchestrationInstanceCreated {
  std::string instance_id;
  std::string name;
  std::string version;
  std::string input;
  friend bool operator==(const SubOrchestrationInstanceCreated&,
                         const SubOrchestrationInstanceCreated&) = default;
};
struct SubOrchestrationInstanceCompleted {
  int32_t task_scheduled_id = -1;
  std::string result;
  friend bool operator==(const SubOrchestrationInstanceCompleted&,
                         const SubOrchestrationInstanceCompleted&) = default;
};
struct SubOrchestrationInstanceFailed {
  int32_t task_scheduled_id = -1;
  FailureDetails failure;
  friend bool operator==(const SubOrchestrationInstanceFailed&,
                         const SubOrchestrationInstanceFailed&) = default;
};
struct TimerCreated {
  TimePoint fire_at;
  friend bool operator==(const TimerCreated&, const TimerCreated&) = default;
};
struct TimerFired {
  TimePoint fire_at;
  int32_t timer_id = -1;
  friend bool operator==(const TimerFired&, const TimerFired&) = default;
};
// Opens every episode; its timestamp is the orchestrator's "now" for that episode.
struct OrchestratorStarted {
  friend bool operator==(const OrchestratorStarted&, const OrchestratorStarted&) = default;
};
// Closes every episode.
struct OrchestratorCompleted {
  friend bool operator==(const OrchestratorCompleted&, const OrchestratorCompleted&) = default;
};
struct EventSent {
  std::string instance_id;
  std::string name;
  std::string input;
  friend bool operator==(const EventSent&, const EventSent&) = default;
};
struct EventRaised {
  std::string name;
  std::string input;
  friend bool operator==(const EventRaised&, const EventRaised&) = default;
};
struct ContinueAsNew {
  std::string input;
  friend bool operator==(const ContinueAsNew&, const ContinueAsNew&) = default;
};
struct ExecutionSuspended {
  std::string input;  // reason
  friend bool operator==(const ExecutionSuspended&, const ExecutionSuspended&) = default;
};
struct ExecutionResumed {
  std::string input;  // reason
  friend bool operator==(const ExecutionResumed&, const ExecutionResumed&) = default;
};
// Asks a Failed instance to rewind: its failed tasks and sub-orchestrations
// are taken out of the history (core/rewind.h) and it runs again. In a
// running instance's history it records that the rewind happened.
struct ExecutionRewound {
  std::string reason;  // plain text
  friend bool operator==(const ExecutionRewound&, const ExecutionRewound&) = default;
};

// ---- Durable entities (entity.h). Entity instance ids are "@name@key". ----

// A one-way operation on an entity.
struct EntityOperationSignaled {
  std::string request_id;  // unique per operation
  std::string operation;
  std::optional<TimePoint> scheduled_time;  // not delivered before
  std::string input;
  std::string target_instance_id;  // "@name@key"
  friend bool operator==(const EntityOperationSignaled&, const EntityOperationSignaled&) = default;
};
// A request/response operation on an entity, from an orchestration.
struct EntityOperationCalled {
  std::string request_id;
  std::string operation;
  std::optional<TimePoint> scheduled_time;
  std::string input;
  std::string parent_instance_id;   // the caller, who gets the answer
  std::string parent_execution_id;
  std::string target_instance_id;
  friend bool operator==(const EntityOperationCalled&, const EntityOperationCalled&) = default;
};
// The answer to an EntityOperationCalled, delivered to the caller.
struct EntityOperationCompleted {
  std::string request_id;
  std::string output;
  friend bool operator==(const EntityOperationCompleted&, const EntityOperationCompleted&) = default;
};
struct EntityOperationFailed {
  std::string request_id;
  FailureDetails failure;
  friend bool operator==(const EntityOperationFailed&, const EntityOperationFailed&) = default;
};
// Asks the entity at lock_set[position] to join a critical section; the last
// one answers the orchestration with EntityLockGranted.
struct EntityLockRequested {
  std::string critical_section_id;
  std::vector<std::string> lock_set;  // entity instance ids, sorted, distinct
  int32_t position = 0;
  std::string parent_instance_id;  // the orchestration that asked
  friend bool operator==(const EntityLockRequested&, const EntityLockRequested&) = default;
};
struct EntityLockGranted {
  std::string critical_section_id;
  friend bool operator==(const EntityLockGranted&, const EntityLockGranted&) = default;
};
struct EntityUnlockSent {
  std::string critical_section_id;
  std::string parent_instance_id;
  std::string target_instance_id;
  friend bool operator==(const EntityUnlockSent&, const EntityUnlockSent&) = default;
};

}  // namespace events

using EventBody =
    std::variant<events::ExecutionStarted, events::ExecutionCompleted, events::ExecutionTerminated,
                 events::TaskScheduled, events::TaskCompleted, events::TaskFailed,
                 events::SubOrchestrationInstanceCreated, events::SubOrchestrationInstanceCompleted,
                 events::SubOrchestrationInstanceFailed, events::TimerCreated, events::TimerFired,
                 events::OrchestratorStarted, events::OrchestratorCompleted, events::EventSent,
                 events::EventRaised, events::ContinueAsNew, events::ExecutionSuspended,
                 events::ExecutionResumed, events::ExecutionRewound, events::EntityOperationSignaled,
                 events::EntityOperationCalled, events::EntityOperationCompleted,
                 events::EntityOperationFailed, events::EntityLockRequested,
                 events::EntityLockGranted, events::EntityUnlockSent>;

struct HistoryEvent {
  int32_t event_id = -1;
  TimePoint timestamp;
  EventBody body;

  friend bool operator==(const HistoryEvent&, const HistoryEvent&) = default;
};

// "TaskScheduled", "TimerFired", ... (the protocol's names).
std::string_view EventKindName(const EventBody& body);

// The JSON form used in storage and in the management APIs
// (docs/history-format.md): {"kind":"TaskScheduled","eventId":3,
// "timestamp":"...Z", ...fields in camelCase...}.
std::string SerializeEvent(const HistoryEvent& event);
// Parses what SerializeEvent wrote. DataLoss when the text is not a valid event.
Result<HistoryEvent> ParseEvent(std::string_view text);
// A whole list as one JSON array, and back.
std::string SerializeEvents(const std::vector<HistoryEvent>& events);
Result<std::vector<HistoryEvent>> ParseEvents(std::string_view text);

// FailureDetails as JSON text ("" for none), and back.
std::string SerializeFailure(const FailureDetails& failure);
Result<FailureDetails> ParseFailure(std::string_view text);

}  // namespace baton
