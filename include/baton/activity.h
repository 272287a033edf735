// Writing activities: the unit of real work (I/O, side effects) that
// orchestrators schedule.
//
// An activity is a plain function registered by name (registry.h):
//
//   baton::Json Hello(baton::ActivityContext& ctx) {
//     return "Hello, " + ctx.GetInput<std::string>() + "!";
//   }
//
// Activities run at least once: a crash between running one and recording its
// result runs it again, so make side effects idempotent (ctx.InstanceId() and
// ctx.TaskId() together identify one scheduled call). The result is recorded
// exactly once.
//
// To fail, throw. A `baton::DurableError` keeps its error type, message and
// details; any other std::exception becomes a failure whose type is the
// exception's type name and whose message is what(). The orchestrator sees it
// as a TaskFailedError and may retry (RetryPolicy) or catch it.
//
// Thread-safety: activities run concurrently on the worker's activity threads;
// the context is used by one call only.
#pragma once

#include <functional>
#include <string>

#include "baton/json.h"
#include "baton/orchestration.h"

namespace baton {

class ActivityContext {
 public:
  ActivityContext(std::string name, std::string instance_id, std::string execution_id,
                  int task_id, std::string input, int attempt)
      : name_(std::move(name)),
        instance_id_(std::move(instance_id)),
        execution_id_(std::move(execution_id)),
        task_id_(task_id),
        input_(std::move(input)),
        attempt_(attempt) {}

  const std::string& Name() const { return name_; }
  // The orchestration instance that scheduled this call.
  const std::string& InstanceId() const { return instance_id_; }
  const std::string& ExecutionId() const { return execution_id_; }
  // The scheduling event's id: unique per call within an execution.
  int TaskId() const { return task_id_; }
  // 1 the first time this scheduled call runs; more after a crash re-ran it.
  int DeliveryCount() const { return attempt_; }

  const std::string& RawInput() const { return input_; }
  template <typename T = Json>
  T GetInput() const {
    return FromPayload(input_).template get<T>();
  }

 private:
  std::string name_;
  std::string instance_id_;
  std::string execution_id_;
  int task_id_;
  std::string input_;
  int attempt_;
};

// The shape of an activity function: returns the result (JSON) or throws.
using ActivityFn = std::function<Json(ActivityContext&)>;

}  // namespace baton
