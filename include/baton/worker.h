// Worker: runs orchestrations and activities from a Store.
//
// A Worker fetches work items from its Store and runs them with the functions
// of its Registry:
//   - orchestration episodes on `orchestration_threads` threads. A live
//     orchestration keeps its coroutine in an in-memory cache between
//     episodes, so its next episode costs O(new events), not O(history);
//     the least recently used are evicted when the cache exceeds its budget
//     and are rebuilt by replay when they next have work;
//   - activities on `activity_threads` threads (the concurrency limit for
//     activities).
// Fetchers sleep until the store signals new work: there is no polling delay.
//
// Several Workers (in one or more processes) may share a store that supports
// it; with SqliteStore there is one process per file.
//
// An orchestrator name that is not registered fails its instance with
// error type "OrchestratorNotFound"; an unregistered activity fails the task
// with "ActivityNotFound" (which the orchestrator sees as TaskFailedError).
//
// Thread-safety: Start/Stop/Stats may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "baton/clock.h"
#include "baton/registry.h"
#include "baton/status.h"
#include "baton/store.h"

namespace baton {

class ExternalDispatcher;

struct WorkerOptions {
  int orchestration_threads = 2;
  int activity_threads = 8;
  // Orchestration cache budget: estimated bytes of cached instances, and a cap
  // on their number. 0 disables the cache (every episode replays).
  size_t cache_max_bytes = 256u << 20;
  size_t cache_max_instances = 100000;
  // Commit intermediate episodes without waiting for fsync (see
  // Durability::kAcknowledged in sqlite_store.h); completions always sync.
  bool sync_every_episode = false;
  // Delay before a work item that failed unexpectedly is retried.
  std::chrono::milliseconds abandon_delay{1000};
  // Upper bound on continue-as-new generations run back to back in one episode.
  int max_continue_as_new_per_episode = 20;
  std::shared_ptr<Clock> clock;  // null = SystemClock()
  // Takes the work of orchestrators and activities this worker's registry
  // does not know (see ExternalDispatcher). Not owned; null = such work fails
  // as "not registered".
  ExternalDispatcher* external = nullptr;
};

// ---- Work for workers outside this process ----
//
// The worker fetches every work item. One whose orchestrator, activity or
// entity is not registered here goes, when an ExternalDispatcher is set, to that
// dispatcher — the gRPC sidecar, which hands it to a connected Durable Task
// SDK worker. The dispatcher owns the item from then on and must complete or
// abandon it with the store (an item it sits on is fetched again when its
// lease expires).

// One orchestration episode for an external worker.
struct ExternalOrchestrationWork {
  OrchestrationWorkItem item;
  std::vector<HistoryEvent> past_events;  // the current execution's committed history
  std::vector<HistoryEvent> new_events;   // OrchestratorStarted (the episode's time) first
};

// One operation of an entity batch, in the order it must run.
struct EntityOperationRequest {
  std::string operation;
  std::string input;       // payload ("" = none)
  std::string request_id;
  bool is_call = false;    // a call is answered; a signal is not
  std::string caller_instance_id;   // calls only
  std::string caller_execution_id;
};

// What running one operation gave. A failed operation leaves the state as it
// found it and sends nothing.
struct EntityOperationResult {
  std::optional<std::string> output;     // payload, on success
  std::optional<FailureDetails> failure;
  std::vector<Message> sends;            // signals and starts, on success
};

// One entity batch for an external worker. Baton keeps the entity's lock and
// queue; the worker runs `operations` against `state` in order and returns
// the new state and one result per operation it ran (operations it did not
// reach are queued again). `finish` turns that into the commit.
struct ExternalEntityWork {
  OrchestrationWorkItem item;
  bool has_state = false;
  std::string state;  // JSON text of the user state
  std::vector<EntityOperationRequest> operations;
  std::function<OrchestrationUpdate(bool has_state, std::string state, std::vector<EntityOperationResult> results)>
      finish;
};

class ExternalDispatcher {
 public:
  virtual ~ExternalDispatcher() = default;
  // Called on a worker thread; must not block for long.
  virtual void DispatchOrchestration(ExternalOrchestrationWork work) = 0;
  virtual void DispatchActivity(ActivityWorkItem item) = 0;
  // A batch of an entity whose name is not registered here.
  virtual void DispatchEntity(ExternalEntityWork work) = 0;
  // The instance's committed history when the dispatcher still holds it (it
  // committed the last episode itself) and it matches the execution, history
  // generation and size the store reports (store.h OrchestrationWorkItem);
  // nullopt, and the worker reads the store.
  virtual std::optional<std::vector<HistoryEvent>> CachedHistory(const std::string& instance_id,
                                                                 const std::string& execution_id,
                                                                 int64_t history_generation,
                                                                 int64_t history_size) {
    return std::nullopt;
  }
};

// Counters since Start(), for tests, benchmarks and metrics.
struct WorkerStats {
  uint64_t episodes = 0;
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
  uint64_t cache_evictions = 0;
  uint64_t replayed_events = 0;   // history events re-applied to rebuild orchestrators
  uint64_t applied_events = 0;    // new events applied in episodes
  uint64_t activities_executed = 0;
  uint64_t commit_failures = 0;   // episodes whose commit was rejected (lease lost)
  size_t cached_instances = 0;
  size_t cached_bytes = 0;
};

class Worker {
 public:
  // `store` and `registry` must outlive the worker.
  Worker(Store& store, const Registry& registry, WorkerOptions options = {});
  ~Worker();  // Stop()s if running
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the threads. FailedPrecondition if already started.
  Status Start();

  // Graceful shutdown: stops fetching, lets running episodes and activities
  // finish and commit, then joins the threads. Work not yet fetched stays in
  // the store for the next start. It interrupts the store's blocking calls
  // to do so (Store::Interrupt), so a Client::WaitFor* running at that moment
  // on the same store may return Cancelled. Idempotent.
  void Stop();

  WorkerStats Stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton
