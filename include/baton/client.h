// Client: start, signal, inspect and manage orchestration instances.
//
// The Client talks to a Store directly (in-process). Every write it makes is
// acknowledged only once it is durable (see store.h). It does not need a
// running Worker to schedule or query; instances make progress when a Worker
// serves the same store.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "baton/clock.h"
#include "baton/entity_id.h"
#include "baton/history.h"
#include "baton/instance.h"
#include "baton/json.h"
#include "baton/status.h"
#include "baton/store.h"

namespace baton {

struct ScheduleOptions {
  std::string instance_id;                // "" = a new random UUID
  std::optional<TimePoint> start_at;      // nullopt = now; Pending until then
  std::string version;
  std::map<std::string, std::string> tags;
  // Statuses in which an existing instance with the same id may be replaced.
  // Empty: any existing instance makes ScheduleNewOrchestration fail.
  std::vector<OrchestrationStatus> replaceable_statuses;
};

// What a client sees of a durable entity.
struct EntityState {
  std::string instance_id;  // "[hub::]@name@key"
  EntityId id;
  bool has_state = false;
  std::string state;      // serialized JSON; "" without state
  std::string locked_by;  // the orchestration holding its lock, "" if none
  std::string critical_section;  // id of that lock's critical section
  int backlog = 0;        // operations waiting for the lock
  TimePoint last_modified;
};

struct EntityQuery {
  std::string hub;                  // "" = the default hub
  std::string name_prefix;          // entity names starting with this ("" = all)
  std::optional<TimePoint> last_modified_from;  // inclusive
  std::optional<TimePoint> last_modified_to;    // exclusive
  bool include_state = true;
  bool include_empty = false;       // entities with no state and no lock
  int page_size = 100;              // 1..1000
  std::string continuation_token;
};

struct EntityPage {
  std::vector<EntityState> entities;  // may be fewer than page_size before the last page
  std::string continuation_token;     // "" on the last page
};

class Client {
 public:
  // `store` must outlive the client.
  explicit Client(Store& store, std::shared_ptr<Clock> clock = nullptr);

  // Schedules orchestrator `name` (it need not be registered anywhere yet).
  // Returns the instance id. AlreadyExists: the id is taken (see
  // ScheduleOptions::replaceable_statuses). InvalidArgument: empty name or an
  // instance id that is longer than 256 characters or contains control characters.
  Result<std::string> ScheduleNewOrchestration(std::string_view name, const Json& input = nullptr,
                                               const ScheduleOptions& options = {});
  // The same with an input carried as the exact bytes given (json.h, JsonText):
  // `null` stays `null`, members keep their order. InvalidArgument ("input is
  // not valid JSON: …") when the text is not JSON within ParseJson's limits.
  // The Json overloads of this class store a null value as no value.
  Result<std::string> ScheduleNewOrchestration(std::string_view name, const JsonText& input,
                                               const ScheduleOptions& options = {});
  // The same without blocking the caller, for a server that holds no thread
  // per call: `done` receives the instance id or the error (the same as
  // above) once the store acknowledged the creation, on any thread, possibly
  // before the call returns (always for an invalid request; a store without
  // asynchronous calls, Store::SupportsAsyncClientCalls, blocks this thread
  // for the write). `done` must be quick.
  void ScheduleNewOrchestrationAsync(std::string_view name, const JsonText& input, const ScheduleOptions& options,
                                     std::function<void(Result<std::string>)> done);

  // Every method that takes a payload has a JsonText overload, which stores
  // the text as given (checked, never rewritten; InvalidArgument naming the
  // payload when it is not JSON) — what the gRPC sidecar and the HTTP API use.

  // Raises event `name` with `data`. NotFound: no such instance.
  // FailedPrecondition: the instance is terminal.
  Status RaiseEvent(const std::string& instance_id, const std::string& name,
                    const Json& data = nullptr);
  Status RaiseEvent(const std::string& instance_id, const std::string& name, const JsonText& data);

  // Terminates the instance with `output`. With `recursive`, its running
  // sub-orchestrations are terminated too. NotFound; FailedPrecondition if terminal.
  Status Terminate(const std::string& instance_id, const Json& output = nullptr,
                   bool recursive = true);
  Status Terminate(const std::string& instance_id, const JsonText& output, bool recursive = true);

  // Suspends / resumes the instance. Events raised while it is suspended are
  // kept and delivered, in order, after it resumes. NotFound; FailedPrecondition if terminal.
  Status Suspend(const std::string& instance_id, const std::string& reason = "");
  Status Resume(const std::string& instance_id, const std::string& reason = "");

  // The instance's state. NotFound when it does not exist.
  Result<InstanceState> GetState(const std::string& instance_id, bool include_payloads = true);

  // Block until the instance started / reached a terminal status, or until
  // `timeout`. NotFound; DeadlineExceeded on timeout.
  Result<InstanceState> WaitForStart(const std::string& instance_id,
                                     std::chrono::milliseconds timeout,
                                     bool include_payloads = false);
  Result<InstanceState> WaitForCompletion(const std::string& instance_id,
                                          std::chrono::milliseconds timeout,
                                          bool include_payloads = true);

  // One page of instances; see InstanceQuery for filters and paging.
  Result<QueryPage> Query(const InstanceQuery& query);
  // How many instances match `query` (its prefix, statuses and times; paging
  // fields ignored), counting no further than `limit`: the answer is
  // min(count, limit). Reads the store page by page, so it costs O(limit).
  Result<int64_t> Count(InstanceQuery query, int64_t limit);

  // The current execution's history, oldest first. NotFound.
  Result<std::vector<HistoryEvent>> GetHistory(const std::string& instance_id);

  // Deletes a terminal instance and its history. Returns 1.
  // NotFound; FailedPrecondition when it is not terminal.
  Result<int> Purge(const std::string& instance_id);
  // Deletes every terminal instance that matches; returns how many.
  Result<int> Purge(const PurgeFilter& filter);

  // ---- Durable entities (entity.h) ----

  // Sends `operation` to the entity (one-way), not before `at` if given.
  // Acknowledged like RaiseEvent. `entity_instance_id` is
  // EntityId::ToInstanceId(), optionally with a task hub prefix.
  // InvalidArgument: not an entity id.
  Status SignalEntity(const std::string& entity_instance_id, const std::string& operation,
                      const Json& input = nullptr, std::optional<TimePoint> at = std::nullopt);
  Status SignalEntity(const std::string& entity_instance_id, const std::string& operation,
                      const JsonText& input, std::optional<TimePoint> at = std::nullopt);
  Status SignalEntity(const EntityId& entity, const std::string& operation, const Json& input = nullptr,
                      std::optional<TimePoint> at = std::nullopt) {
    return SignalEntity(entity.ToInstanceId(), operation, input, at);
  }
  Status SignalEntity(const EntityId& entity, const std::string& operation, const JsonText& input,
                      std::optional<TimePoint> at = std::nullopt) {
    return SignalEntity(entity.ToInstanceId(), operation, input, at);
  }
  // The entity's state. NotFound when it was never signalled. `locked_by` is
  // "" once the lock's owner is terminal (QueryEntities too): an orchestration's locks are
  // released in the commit that completes it (the entity applies the release
  // when it next runs), so no reader sees a completed owner holding a lock.
  Result<EntityState> GetEntity(const std::string& entity_instance_id);
  Result<EntityState> GetEntity(const EntityId& entity) { return GetEntity(entity.ToInstanceId()); }
  // One page of entities, by name prefix and last-modified time.
  Result<EntityPage> QueryEntities(const EntityQuery& query);

  struct EntityCleanup {
    int empty_entities_removed = 0;
    int orphaned_locks_released = 0;
  };
  // Over every entity of `hub` ("" = the default hub): deletes those with no
  // state, no lock and nothing pending; releases locks whose owner no longer
  // runs (terminal, or purged). Safe to run at any time.
  Result<EntityCleanup> CleanEntityStorage(const std::string& hub, bool remove_empty,
                                           bool release_orphaned_locks);

  // Rewinds a Failed orchestration: its failed activities and failed
  // sub-orchestrations (rewound too, recursively) run again, and what
  // succeeded is kept (core/rewind.h). The instance is Pending at once (a
  // WaitForCompletion waits for the rewound run) and Running once a worker
  // has rewound it. NotFound; FailedPrecondition unless Failed, or when the
  // run failed inside a critical section or waiting for an entity (restart
  // it instead); InvalidArgument for an entity.
  Status Rewind(const std::string& instance_id, const std::string& reason = "");

  // Starts the instance again with its name and input (after continue-as-new,
  // the latest generation's input): under the
  // same id (which must be terminal: FailedPrecondition otherwise) or, with
  // `new_instance_id`, under a fresh id. Returns the id. NotFound.
  Result<std::string> Restart(const std::string& instance_id, bool new_instance_id = false);

 private:
  Status Send(const std::string& instance_id, HistoryEvent event);
  Status ResolveLock(EntityState& e);
  Result<EntityPage> QueryEntityRows(const EntityQuery& query, bool resolve_locks);

  Store& store_;
  std::shared_ptr<Clock> clock_;
};

}  // namespace baton
