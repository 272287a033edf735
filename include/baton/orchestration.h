// Writing orchestrators: the OrchestrationContext and its durable operations.
//
// An orchestrator is a C++20 coroutine registered by name (registry.h):
//
//   baton::Task<baton::Json> Greet(baton::OrchestrationContext& ctx) {
//     auto name = ctx.GetInput<std::string>();
//     std::string a = co_await ctx.CallActivity<std::string>("Hello", name);
//     co_await ctx.CreateTimer(std::chrono::minutes(5));
//     co_return a;
//   }
//
// Baton checkpoints the orchestrator at every await and, after a crash or an
// eviction from the cache, rebuilds it by replaying its history: the code runs
// again from the top and every durable operation it repeats is answered from
// history instead of being executed again. For that, orchestrator code must be
// deterministic:
//   - take time from CurrentUtcDateTime(), ids from NewGuid(), never from the
//     system; no random numbers, no I/O, no threads — do those in activities;
//   - branch only on inputs and on results of durable operations.
// Code that replays differently from its history (a deploy that changed the
// order of activities, say) fails the instance with a NonDeterminismError
// naming the instance, the history event, the expected and the actual action.
// The instance is never silently corrupted.
//
// Failures: awaiting a durable operation that failed throws TaskFailedError
// carrying the failure's type, message and details; the orchestrator may
// catch it. An exception that escapes the orchestrator fails the instance with
// the same details.
//
// Thread-safety: a context is used only by the orchestration's own coroutine,
// on the thread that runs its episode.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "baton/clock.h"
#include "baton/entity_id.h"
#include "baton/history.h"
#include "baton/json.h"
#include "baton/task.h"

namespace baton {

// An error with a durable shape: thrown by activities and orchestrators to
// fail with a chosen type and structured details, and the base of
// TaskFailedError.
class DurableError : public std::runtime_error {
 public:
  DurableError(std::string error_type, std::string message, const Json& details = nullptr,
               bool non_retriable = false);
  explicit DurableError(FailureDetails details);
  const FailureDetails& details() const { return details_; }
  const std::string& error_type() const { return details_.error_type; }

 private:
  FailureDetails details_;
};

// Thrown by `co_await` on a durable operation that failed: an activity or a
// sub-orchestration failed (after its retries), or WaitForExternalEvent timed
// out (error_type "TimeoutError").
class TaskFailedError : public DurableError {
 public:
  using DurableError::DurableError;
};

// How failed activities and sub-orchestrations are retried. Each retry waits
// on a durable timer, so the waiting, like the attempts, is in history.
// Attempt n (n >= 1) that fails is retried after
//   min(first_retry_interval * backoff_coefficient^(n-1), max_retry_interval)
// as long as n < max_attempts, the time since the first attempt is below
// retry_timeout, the failure is not non-retriable, and `handle` (if set)
// returns true for it.
//
// RetryPolicy and SubOrchestratorOptions have constructors on purpose: g++ 12
// destroys a brace-initialized aggregate inside a co_await expression twice,
// so these types cannot be aggregates (see docs/sdk.md, "Compiler pitfalls").
struct RetryPolicy {
  RetryPolicy() {}
  RetryPolicy(int attempts, Duration first_interval, double backoff = 2.0)
      : max_attempts(attempts), first_retry_interval(first_interval), backoff_coefficient(backoff) {}

  int max_attempts = 3;
  Duration first_retry_interval = std::chrono::seconds(1);
  double backoff_coefficient = 2.0;
  Duration max_retry_interval = std::chrono::hours(1);
  Duration retry_timeout = Duration::max();
  std::function<bool(const FailureDetails&)> handle;
};

struct SubOrchestratorOptions {
  SubOrchestratorOptions() {}
  explicit SubOrchestratorOptions(std::string id) : instance_id(std::move(id)) {}

  // "" = derived deterministically from this execution and the action id.
  std::string instance_id;
  std::optional<RetryPolicy> retry;
  std::string version;
};

class OrchestrationContext {
 public:
  virtual ~OrchestrationContext() = default;

  virtual const std::string& InstanceId() const = 0;
  virtual const std::string& ExecutionId() const = 0;
  // The registered name of the orchestrator being run.
  virtual const std::string& Name() const = 0;
  // "" for a top-level instance.
  virtual const std::string& ParentInstanceId() const = 0;

  // The input, as serialized JSON ("" = none), and typed.
  virtual const std::string& RawInput() const = 0;
  template <typename T = Json>
  T GetInput() const {
    return FromPayload(RawInput()).template get<T>();
  }

  // Deterministic "now": the time this episode started, the same on replay.
  virtual TimePoint CurrentUtcDateTime() const = 0;
  // True while the code re-runs from history (use it to silence logging).
  virtual bool IsReplaying() const = 0;
  // A deterministic UUID (version 5), different at each call, the same on replay.
  virtual std::string NewGuid() = 0;

  // Schedules activity `name` with `input` and yields its result.
  // Throws TaskFailedError when it fails (after `retry`, if given).
  template <typename R = Json>
  Task<R> CallActivity(std::string name, Json input = nullptr,
                       std::optional<RetryPolicy> retry = std::nullopt) {
    std::string raw = co_await CallActivityRaw(std::move(name), ToPayload(input), std::move(retry));
    if constexpr (std::is_same_v<R, Json>) {
      co_return FromPayload(raw);
    } else {
      co_return FromPayload(raw).template get<R>();
    }
  }

  // Starts orchestrator `name` as a child instance and yields its output.
  // Throws TaskFailedError with the child's failure when it fails, or with
  // error_type "InstanceAlreadyExists" when the chosen id is taken by a
  // running instance.
  template <typename R = Json>
  Task<R> CallSubOrchestrator(std::string name, Json input = nullptr,
                              SubOrchestratorOptions options = SubOrchestratorOptions()) {
    std::string raw =
        co_await CallSubOrchestratorRaw(std::move(name), ToPayload(input), std::move(options));
    if constexpr (std::is_same_v<R, Json>) {
      co_return FromPayload(raw);
    } else {
      co_return FromPayload(raw).template get<R>();
    }
  }

  // A durable timer: completes at `fire_at` (or after `delay` from
  // CurrentUtcDateTime()). It fires even if the process was down at that time.
  virtual Task<void> CreateTimer(TimePoint fire_at) = 0;
  Task<void> CreateTimer(Duration delay) { return CreateTimer(CurrentUtcDateTime() + delay); }

  // Yields the payload of the next event named `name` (case-insensitive)
  // raised to this instance. Events raised before the wait are buffered and
  // consumed in arrival order. With a timeout, throws TaskFailedError
  // ("TimeoutError") if none arrives in time; the wait is then withdrawn and a
  // later event stays buffered for the next wait.
  template <typename R = Json>
  Task<R> WaitForExternalEvent(std::string name, std::optional<Duration> timeout = std::nullopt) {
    std::string raw = co_await WaitForExternalEventRaw(std::move(name), timeout);
    if constexpr (std::is_same_v<R, Json>) {
      co_return FromPayload(raw);
    } else {
      co_return FromPayload(raw).template get<R>();
    }
  }

  // Raises event `name` on another instance (fire and forget; dropped if the
  // instance does not exist).
  virtual void SendEvent(const std::string& instance_id, const std::string& name,
                         const Json& data = nullptr) = 0;

  // ---- Durable entities (entity.h) ----

  // Runs `operation` on the entity and yields its result. Throws
  // TaskFailedError when the operation throws (its state change is rolled
  // back). Inside a critical section, only entities of the lock set may be
  // called (DurableError "LockingRulesViolation" otherwise).
  template <typename R = Json>
  Task<R> CallEntity(EntityId entity, std::string operation, Json input = nullptr) {
    std::string raw = co_await CallEntityRaw(std::move(entity), std::move(operation), ToPayload(input));
    if constexpr (std::is_same_v<R, Json>) {
      co_return FromPayload(raw);
    } else {
      co_return FromPayload(raw).template get<R>();
    }
  }

  // Sends `operation` to the entity without waiting (optionally not before `at`).
  virtual void SignalEntity(const EntityId& entity, const std::string& operation,
                            const Json& input = nullptr, std::optional<TimePoint> at = std::nullopt) = 0;

  // Locks every entity of `entities` for this orchestration and completes
  // once all are held: a critical section. Until UnlockEntities() (or the end
  // of the orchestration, whatever its outcome) those entities run only this
  // orchestration's calls. Locks are taken in sorted order, so critical
  // sections never deadlock. DurableError "LockingRulesViolation" when
  // already inside a critical section or when `entities` is empty.
  virtual Task<void> LockEntities(std::vector<EntityId> entities) = 0;
  // Ends the critical section (no-op outside one).
  virtual void UnlockEntities() = 0;
  virtual bool IsInCriticalSection() const = 0;

  // Sets the custom status visible to clients (any JSON; null clears it).
  virtual void SetCustomStatus(const Json& status) = 0;

  // Ends this execution and starts a fresh one of the same instance with
  // `input` and an empty history, once the orchestrator returns (the value it
  // returns is ignored). Events received but not yet consumed are carried
  // into the new execution unless `preserve_unprocessed_events` is false.
  virtual void ContinueAsNew(const Json& input, bool preserve_unprocessed_events = true) = 0;

  // The untyped forms the templates above use; payloads are serialized JSON.
  virtual Task<std::string> CallActivityRaw(std::string name, std::string input,
                                            std::optional<RetryPolicy> retry) = 0;
  virtual Task<std::string> CallSubOrchestratorRaw(std::string name, std::string input,
                                                   SubOrchestratorOptions options) = 0;
  virtual Task<std::string> WaitForExternalEventRaw(std::string name,
                                                    std::optional<Duration> timeout) = 0;
  virtual Task<std::string> CallEntityRaw(EntityId entity, std::string operation, std::string input) = 0;
};

// The shape of an orchestrator function: returns the output (JSON).
using OrchestratorFn = std::function<Task<Json>(OrchestrationContext&)>;

}  // namespace baton
