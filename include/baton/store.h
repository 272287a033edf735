// Store: the durable task hub behind the engine.
//
// A Store holds everything that must survive a crash: instances and their
// histories, each instance's inbox of pending messages (new events, due
// timers), and the queue of activity tasks. The engine (worker.h) drives it
// through work items:
//
//   1. FetchOrchestrationWorkItem() leases one instance that has visible
//      messages and returns them. The instance stays locked to that work item
//      until Complete/Abandon or until the lease expires.
//   2. The engine runs one *episode* of the orchestrator over those messages.
//   3. CompleteOrchestrationWorkItem() commits, in ONE transaction, the new
//      history, the instance's new metadata, the removal of the consumed
//      messages, and every message and activity task the episode sends. Only
//      after that commit are the sent messages and tasks visible to fetchers.
//
// Activities work the same way with FetchActivityWorkItem /
// CompleteActivityWorkItem, whose commit removes the task and delivers its
// result message to the orchestration in one transaction.
//
// Durability: every call documented as "acknowledged" returns only after its
// transaction is on disk (fsync'ed) when the store was opened with
// `Durability::kFull` (the default). Concurrent commits share one fsync (group
// commit). Work-item commits may set `sync = false` to ride on the next fsync:
// a crash of the process never loses them (the OS holds the data); a power cut
// may, and then the episode runs again (activities are at-least-once).
//
// "No work" is not an error: fetches return an empty optional.
//
// Implementations: SqliteStore (sqlite_store.h), PostgresStore
// (postgres_store.h). Every implementation must pass the conformance suite in
// tests/store/store_conformance_test.cc.
//
// Thread-safety: every method may be called concurrently from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "baton/clock.h"
#include "baton/history.h"
#include "baton/instance.h"
#include "baton/status.h"

namespace baton {

// An event addressed to one instance's inbox.
struct Message {
  uint64_t seq = 0;          // assigned by the store on insert; FIFO order
  std::string instance_id;   // the target instance
  // The target execution: messages that answer an action (TaskCompleted,
  // TimerFired, SubOrchestrationInstance*) name it, and the engine drops them
  // when the instance has moved on (continue-as-new). "" = any execution.
  std::string execution_id;
  TimePoint visible_at;      // not delivered before this time (timers, delayed starts)
  HistoryEvent event;
};

// A unit of activity work: the TaskScheduled action of one orchestration.
struct ActivityTask {
  uint64_t seq = 0;  // assigned by the store on insert
  std::string instance_id;
  std::string execution_id;
  int32_t task_id = -1;  // the TaskScheduled event id
  std::string name;
  std::string version;
  std::string input;
  TimePoint visible_at;  // not delivered before this time
};

struct OrchestrationWorkItem {
  std::string instance_id;
  uint64_t lock_token = 0;  // proves ownership to Complete/Abandon
  TimePoint locked_until;
  // The instance's metadata as committed (payloads omitted).
  InstanceState instance;
  // Number of events in the current execution's committed history. The engine
  // compares it with its cached copy to know whether the cache is current.
  int64_t history_size = 0;
  // How many times the committed history was rewritten rather than appended
  // to: every commit with `reset_history` (continue-as-new, a rewind) adds
  // exactly one; 0 for a new instance. A rewind keeps the execution id and
  // its rewritten history may regrow to a size the old one had, so
  // (execution_id, history_generation, history_size) — not the last two
  // alone — is what names the committed history a cached copy must match.
  int64_t history_generation = 0;
  std::vector<Message> messages;  // visible messages, in seq order; never empty
  int dequeue_count = 1;          // how many times these messages were fetched
};

struct ActivityWorkItem {
  ActivityTask task;
  uint64_t lock_token = 0;
  TimePoint locked_until;
  int dequeue_count = 1;
};

// The result of one orchestration episode, committed atomically.
struct OrchestrationUpdate {
  // Instance metadata after the episode.
  std::string execution_id;  // differs from the item's after continue-as-new
  OrchestrationStatus status = OrchestrationStatus::kRunning;
  std::string input;         // only written when reset_history (continue-as-new)
  std::string output;
  std::string custom_status;
  std::optional<FailureDetails> failure;
  // When true the committed history is replaced by `new_events` (continue-as-
  // new); otherwise `new_events` are appended.
  bool reset_history = false;
  std::vector<HistoryEvent> new_events;
  // Messages to any instance, this one included (timers). A message whose
  // event is ExecutionStarted creates its target instance (a
  // sub-orchestration): if the target exists and is not terminal, the store
  // instead sends SubOrchestrationInstanceFailed (error type
  // "InstanceAlreadyExists") back to the parent named in the event. Messages to
  // instances that do not exist (other than ExecutionStarted) are dropped.
  // An ExecutionStarted to the committing instance itself, naming the
  // update's new execution id, with reset_history and no new_events, starts
  // that generation (continue-as-new whose first episode runs later).
  std::vector<Message> outbox;
  std::vector<ActivityTask> tasks;
  bool sync = true;  // fsync before the callback (see Durability above)
  // Only consume the item's messages (and send the outbox, create the
  // tasks): the instance's status, payloads and history stay as the store
  // has them, whatever the fields above say. For late messages to a
  // finished instance.
  bool consume_only = false;
};

// Called once the commit is durable (or failed), after its effects are
// visible (the lease released, sent messages fetchable). Runs on a store
// thread, or on the calling thread before the Complete* call returns (a
// store may commit there when it has nothing else to commit): keep it
// short, never call back into the store synchronously from it, and do not
// hold a lock it takes while calling Complete*.
using CommitCallback = std::function<void(const Status&)>;

struct CreateInstanceRequest {
  std::string instance_id;  // required, 1..256 characters
  std::string name;         // required
  std::string version;
  std::string input;
  std::string execution_id;  // required: the first execution's id
  std::optional<TimePoint> scheduled_start;  // nullopt = now
  std::map<std::string, std::string> tags;
  // If an instance with this id exists and its status is one of these, it is
  // replaced (its history and inbox are deleted). Otherwise AlreadyExists.
  std::vector<OrchestrationStatus> replaceable_statuses;
};

enum class WaitCondition { kStarted, kCompleted };

// What waits in one task hub's queues (Store::QueueDepths).
struct QueueDepth {
  std::string hub;                     // "" = the default hub (entities count there)
  int64_t orchestration_messages = 0;  // messages in instances' inboxes, visible or not yet
  int64_t activity_tasks = 0;          // activity tasks not yet completed, leased or not
  // visible_at of the oldest message or task that is visible now: how long
  // the queue's head has waited is now - this. nullopt when none is visible.
  std::optional<TimePoint> oldest_visible;
};

// What a node says about itself at each heartbeat (Store::SetNodeReporter).
struct NodeReport {
  std::string version;  // the build, e.g. "0.1.0"
  // A JSON object of what the node does and serves now, as the application
  // decides (`baton serve`: docs/postgres.md#nodes). "" = {}.
  std::string details;
};

// Where a node stands (Store::ListNodes).
enum class NodeState {
  kUp,       // its last heartbeat is recent (kNodeGoneAfter)
  kStopped,  // it stopped cleanly; its row stays a while (kNodeForgottenAfter)
  kGone,     // no heartbeat for kNodeGoneAfter and no clean stop: it died or
             // lost the database; its leases expire (or are released) soon
  kUnknown,  // it holds leases but never reported (a build without heartbeats)
};
// "up", "stopped", "gone", "unknown" (the HTTP API's spelling).
inline const char* NodeStateName(NodeState state) {
  switch (state) {
    case NodeState::kUp: return "up";
    case NodeState::kStopped: return "stopped";
    case NodeState::kGone: return "gone";
    case NodeState::kUnknown: return "unknown";
  }
  return "unknown";
}

// Heartbeats of a node sharing the store, as ListNodes() reports them.
inline constexpr std::chrono::seconds kNodeHeartbeatEvery{2};
inline constexpr std::chrono::seconds kNodeGoneAfter{10};
inline constexpr std::chrono::hours kNodeForgottenAfter{1};
// ListNodes lists at most this many of a node's leased instances and tasks
// (the counts are exact).
inline constexpr int kMaxListedLeases = 20;

// A live activity task lease (NodeInfo::leased_tasks).
struct LeasedTask {
  uint64_t seq = 0;
  std::string instance_id;
  std::string name;  // the activity
};

// One node of the store, with the leases it holds now.
struct NodeInfo {
  std::string node_id;  // the id leases record (PostgresStoreOptions::node_id)
  NodeState state = NodeState::kUp;
  std::string version;  // the last NodeReport's; "" when it never reported
  std::string details;  // the last NodeReport's JSON object; "" when none
  std::optional<TimePoint> started_at;    // when its store opened
  std::optional<TimePoint> heartbeat_at;  // its last heartbeat
  std::optional<TimePoint> stopped_at;    // its clean stop
  // Leases held now: counts, and the first kMaxListedLeases of each kind
  // (instances by id, tasks by seq).
  int64_t instance_leases = 0;
  int64_t task_leases = 0;
  std::vector<std::string> leased_instances;
  std::vector<LeasedTask> leased_tasks;
};

// The schema version of a store's database before and after its pending
// migrations ran (each backend's Migrate… function; opening a store runs
// them too). Versions count the backend's migration files.
struct SchemaVersion {
  int before = 0;
  int after = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // ---- Client side. Each is acknowledged (see Durability). ----

  // Creates an instance in Pending state with an ExecutionStarted message.
  // AlreadyExists: the id is taken and its status is not replaceable.
  // InvalidArgument: empty id or name.
  virtual Status CreateInstance(const CreateInstanceRequest& request) = 0;

  // Appends `message` to the inbox of message.instance_id (EventRaised,
  // ExecutionTerminated, ExecutionSuspended, ExecutionResumed, entity
  // operations). A message to a durable entity that has no row yet creates
  // it (IsEntityInstanceId), here and in an episode's outbox alike.
  // NotFound: no such instance. FailedPrecondition: the instance is terminal
  // (except an ExecutionRewound to a Failed instance, which is what rewinds
  // it: the instance is Pending from then until a worker has rewound it).
  virtual Status SendMessage(Message message) = 0;

  // NotFound when the instance does not exist.
  virtual Result<InstanceState> GetInstance(const std::string& instance_id,
                                            bool include_payloads) = 0;
  // InvalidArgument: a malformed continuation token or page size.
  virtual Result<QueryPage> QueryInstances(const InstanceQuery& query) = 0;
  // The current execution's committed history, oldest first.
  // NotFound when the instance does not exist.
  virtual Result<std::vector<HistoryEvent>> GetHistory(const std::string& instance_id) = 0;

  // Deletes a terminal instance, its history and inbox. Returns 1. A durable
  // entity (never terminal) may be deleted when no message is pending for it.
  // NotFound: no such instance. FailedPrecondition: not terminal (an entity:
  // messages pending).
  virtual Result<int> PurgeInstance(const std::string& instance_id) = 0;
  // Deletes every terminal instance matching `filter`; returns how many.
  virtual Result<int> PurgeInstances(const PurgeFilter& filter) = 0;

  // Blocks until the instance has started (status not Pending) or is
  // terminal (kCompleted), or until `timeout`. Wakes on commit, never polls.
  // NotFound: no such instance. DeadlineExceeded: timed out.
  virtual Result<InstanceState> WaitForInstance(const std::string& instance_id,
                                                WaitCondition condition,
                                                std::chrono::milliseconds timeout,
                                                bool include_payloads) = 0;

  // ---- Client side, asynchronous: for a server that holds no thread per
  // call (the gRPC sidecar). A store that has these says so
  // (SupportsAsyncClientCalls); the defaults below do the synchronous call
  // on the caller's thread, and a caller that cannot block should not use
  // them then. A callback runs exactly once (a withdrawn wait's: at most
  // once), on any thread, possibly before the call returns. It must be
  // quick and must not call into the store. ----

  virtual bool SupportsAsyncClientCalls() const { return false; }

  // CreateInstance; `done` receives its status once acknowledged.
  virtual void CreateInstanceAsync(const CreateInstanceRequest& request, CommitCallback done) {
    done(CreateInstance(request));
  }

  using WaitCallback = std::function<void(Result<InstanceState>)>;

  // WaitForInstance with no timeout: `done` receives the state once the
  // instance reached `condition`, NotFound, another read error, or
  // Cancelled when the store is interrupted. Returns the wait's id (> 0)
  // for CancelWait; the caller keeps its own deadline. Default:
  // Unimplemented, given to `done` at once, and 0.
  virtual uint64_t WaitForInstanceAsync(const std::string& instance_id, WaitCondition condition,
                                        bool include_payloads, WaitCallback done) {
    (void)instance_id, (void)condition, (void)include_payloads;
    done(UnimplementedError("this store has no asynchronous waits"));
    return 0;
  }

  // Withdraws a wait: its callback is not called unless it already runs
  // (or ran). Unknown or ended ids are ignored.
  virtual void CancelWait(uint64_t wait) { (void)wait; }

  // ---- Engine side. ----

  // Leases one instance with visible messages, waiting up to `max_wait` for
  // one to become ready. Empty optional on timeout or after Interrupt().
  virtual Result<std::optional<OrchestrationWorkItem>> FetchOrchestrationWorkItem(
      std::chrono::milliseconds max_wait) = 0;

  // Commits an episode (see OrchestrationUpdate) and releases the lease.
  // `done` receives: OK; Aborted if the lease was lost (expired and taken by
  // another work item, or the instance was purged) — nothing was written.
  virtual void CompleteOrchestrationWorkItem(const OrchestrationWorkItem& item,
                                             OrchestrationUpdate update,
                                             CommitCallback done) = 0;

  // Releases the lease without consuming the messages; they become visible
  // again after `delay`. Stale tokens are ignored.
  virtual void AbandonOrchestrationWorkItem(const OrchestrationWorkItem& item,
                                            std::chrono::milliseconds delay) = 0;

  // Leases one visible activity task, waiting up to `max_wait`.
  virtual Result<std::optional<ActivityWorkItem>> FetchActivityWorkItem(
      std::chrono::milliseconds max_wait) = 0;

  // Deletes the task and delivers `result` (TaskCompleted or TaskFailed,
  // addressed to the task's instance and execution) in one transaction.
  // `done` receives OK or Aborted (lease lost: nothing written).
  virtual void CompleteActivityWorkItem(const ActivityWorkItem& item, Message result,
                                        CommitCallback done) = 0;

  // Releases the lease; the task becomes visible again after `delay`.
  virtual void AbandonActivityWorkItem(const ActivityWorkItem& item,
                                       std::chrono::milliseconds delay) = 0;

  // ---- Operations ----

  // The queues of every task hub that has something queued, read from the
  // store (so every node of a shared store sees the same). `now` decides
  // what is visible. Cost grows with the queues' length: for scrapes of
  // /metrics, not for every event. Unimplemented for a store that cannot
  // tell (the default).
  virtual Result<std::vector<QueueDepth>> QueueDepths(TimePoint now) {
    (void)now;
    return UnimplementedError("this store does not report queue depths");
  }

  // Sets what this node reports about itself. A store shared by many nodes
  // publishes it every kNodeHeartbeatEvery from a background thread (the
  // first time soon after this call), so `reporter` must be thread-safe,
  // quick, and outlive the store (or be replaced first). Default: ignored.
  virtual void SetNodeReporter(std::function<NodeReport()> reporter) { (void)reporter; }

  // The nodes of this store and the leases each holds now, by node id: the
  // nodes that heartbeat (stopped or gone ones for kNodeForgottenAfter), and
  // any other holder of a live lease (kUnknown). A one-process store reports
  // itself alone (its reporter called on this thread). Unimplemented for a
  // store that cannot tell (the default).
  virtual Result<std::vector<NodeInfo>> ListNodes() {
    return UnimplementedError("this store does not report its nodes");
  }

  // Wakes every blocked Fetch*/WaitForInstance call; fetches return empty
  // until ResumeFetching(). Used for graceful shutdown.
  virtual void Interrupt() = 0;
  virtual void ResumeFetching() = 0;
};

}  // namespace baton
