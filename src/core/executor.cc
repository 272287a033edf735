#include "core/executor.h"
#include "util/demangle.h"
#include "util/overloaded.h"

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <deque>
#include <typeinfo>

#include "baton/entity_id.h"
#include "baton/instance.h"
#include "util/uuid.h"

namespace baton::core {
namespace {

using util::Demangle;

using util::Overloaded;

// The namespace Durable Functions uses for deterministic GUIDs.
constexpr std::string_view kGuidNamespace = "9e952958-5e33-4daf-827f-2fa12937b875";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string DescribeAction(const ActionBody& body) {
  return std::visit(Overloaded{
                        [](const actions::ScheduleTask& a) { return "ScheduleTask '" + a.name + "'"; },
                        [](const actions::CreateTimer&) { return std::string("CreateTimer"); },
                        [](const actions::CreateSubOrchestration& a) {
                          return "CreateSubOrchestration '" + a.name + "'";
                        },
                        [](const actions::SendEvent& a) {
                          return "SendEvent '" + a.name + "' to '" + a.instance_id + "'";
                        },
                        [](const actions::SignalEntity& a) {
                          return "SignalEntity '" + a.operation + "' to '" + a.target_instance_id + "'";
                        },
                        [](const actions::CallEntity& a) {
                          return "CallEntity '" + a.operation + "' on '" + a.target_instance_id + "'";
                        },
                        [](const actions::LockEntities& a) {
                          std::string set;
                          for (const auto& id : a.lock_set) set += (set.empty() ? "" : ", ") + id;
                          return "LockEntities [" + set + "]";
                        },
                        [](const actions::UnlockEntity& a) {
                          return "UnlockEntity '" + a.target_instance_id + "'";
                        },
                    },
                    body);
}

}  // namespace

class Executor::Context final : public OrchestrationContext {
 public:
  Context(OrchestratorLookup lookup, std::string instance_id)
      : lookup_(std::move(lookup)), instance_id_(std::move(instance_id)) {}

  ~Context() override {
    // Destroy the coroutine frames first: their awaiters unregister from the
    // maps below.
    root_ = Task<Json>();
  }

  // ---- OrchestrationContext ----
  const std::string& InstanceId() const override { return instance_id_; }
  const std::string& ExecutionId() const override { return execution_id_; }
  const std::string& Name() const override { return name_; }
  const std::string& ParentInstanceId() const override { return parent_instance_id_; }
  const std::string& RawInput() const override { return input_; }
  TimePoint CurrentUtcDateTime() const override { return now_; }
  bool IsReplaying() const override { return replaying_; }

  std::string NewGuid() override {
    std::string name = instance_id_ + "_" + FormatIso8601(now_) + "_" + std::to_string(guid_counter_++);
    return util::NameBasedUuid(kGuidNamespace, name);
  }

  Task<void> CreateTimer(TimePoint fire_at) override {
    // Actions are built in named locals: g++ 12 destroys brace-initialized
    // aggregates inside a co_await expression twice.
    ActionBody action = actions::CreateTimer{fire_at};
    co_await OpAwaiter(this, std::move(action));
  }

  void SendEvent(const std::string& instance_id, const std::string& name,
                 const Json& data) override {
    Submit(actions::SendEvent{instance_id, name, ToPayload(data)});
  }

  void SetCustomStatus(const Json& status) override { custom_status_ = ToPayload(status); }

  void ContinueAsNew(const Json& input, bool preserve_unprocessed_events) override {
    continue_as_new_input_ = ToPayload(input);
    preserve_events_ = preserve_unprocessed_events;
  }

  void SignalEntity(const EntityId& entity, const std::string& operation, const Json& input,
                    std::optional<TimePoint> at) override {
    Submit(actions::SignalEntity{NewGuid(), entity.ToInstanceId(), operation, ToPayload(input), at});
  }

  Task<std::string> CallEntityRaw(EntityId entity, std::string operation, std::string input) override {
    std::string target = QualifyInHub(instance_id_, entity.ToInstanceId());
    if (!held_locks_.empty() &&
        std::find(held_locks_.begin(), held_locks_.end(), target) == held_locks_.end()) {
      throw DurableError("LockingRulesViolation",
                         "inside a critical section only its locked entities may be called; '" + target +
                             "' is not locked");
    }
    ActionBody action = actions::CallEntity{NewGuid(), target, operation, input};
    co_return co_await OpAwaiter(this, std::move(action));
  }

  Task<void> LockEntities(std::vector<EntityId> entities) override {
    if (!held_locks_.empty() || lock_pending_) {
      throw DurableError("LockingRulesViolation", "LockEntities inside a critical section");
    }
    if (entities.empty()) throw DurableError("LockingRulesViolation", "LockEntities needs at least one entity");
    std::vector<std::string> ids;
    for (const EntityId& e : entities) ids.push_back(QualifyInHub(instance_id_, e.ToInstanceId()));
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    lock_pending_ = true;
    ActionBody action = actions::LockEntities{NewGuid(), ids};
    co_await OpAwaiter(this, std::move(action));
    lock_pending_ = false;
    held_locks_ = std::move(ids);
    critical_section_id_ = last_lock_request_id_;
  }

  void UnlockEntities() override {
    if (completion_) return;  // released by the end of the execution already
    for (const std::string& target : held_locks_) {
      Submit(actions::UnlockEntity{critical_section_id_, target});
    }
    held_locks_.clear();
    critical_section_id_.clear();
  }

  bool IsInCriticalSection() const override { return !held_locks_.empty(); }

  Task<std::string> CallActivityRaw(std::string name, std::string input,
                                    std::optional<RetryPolicy> retry) override {
    const TimePoint first_attempt = now_;
    for (int attempt = 1;; ++attempt) {
      try {
        ActionBody action = actions::ScheduleTask{name, "", input};
        co_return co_await OpAwaiter(this, std::move(action));
      } catch (const TaskFailedError& e) {
        if (!ShouldRetry(retry, attempt, e.details(), first_attempt)) throw;
      }
      co_await CreateTimer(now_ + RetryDelay(*retry, attempt));
    }
  }

  Task<std::string> CallSubOrchestratorRaw(std::string name, std::string input,
                                           SubOrchestratorOptions options) override {
    const TimePoint first_attempt = now_;
    for (int attempt = 1;; ++attempt) {
      try {
        ActionBody action =
            actions::CreateSubOrchestration{options.instance_id, name, options.version, input};
        co_return co_await OpAwaiter(this, std::move(action));
      } catch (const TaskFailedError& e) {
        if (!ShouldRetry(options.retry, attempt, e.details(), first_attempt)) throw;
      }
      co_await CreateTimer(now_ + RetryDelay(*options.retry, attempt));
    }
  }

  Task<std::string> WaitForExternalEventRaw(std::string name,
                                            std::optional<Duration> timeout) override {
    if (std::optional<std::string> buffered = TakeBufferedEvent(Lower(name))) {
      co_return std::move(*buffered);
    }
    if (!timeout) co_return co_await EventAwaiter(this, name);
    Task<std::string> event = WaitEventTask(name);
    Task<void> timer = CreateTimer(now_ + *timeout);
    size_t winner = co_await WhenAny(event, timer);
    if (winner == 0) co_return co_await event;
    throw TaskFailedError("TimeoutError", "external event '" + name + "' was not received within " +
                                              std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(*timeout).count()) +
                                              " ms");
  }

  // ---- Driven by Executor ----

  void Apply(const HistoryEvent& event, bool replaying) {
    ++applied_;
    replaying_ = replaying;
    if (std::holds_alternative<events::OrchestratorStarted>(event.body)) now_ = event.timestamp;
    if (completion_) {
      // After the end only events to carry into the next generation matter.
      if (const auto* raised = std::get_if<events::EventRaised>(&event.body);
          raised && completion_->status == OrchestrationStatus::kContinuedAsNew &&
          preserve_events_) {
        completion_->carryover_events.push_back(event);
      }
      return;
    }
    if (suspended_ && IsDeferredWhileSuspended(event.body)) {
      suspended_events_.push_back(event);
      return;
    }
    Dispatch(event);
  }

  Episode TakeEpisode() {
    Episode ep;
    ep.actions.reserve(unconfirmed_.size());
    for (auto& [id, action] : unconfirmed_) ep.actions.push_back(std::move(action));
    unconfirmed_.clear();
    if (completion_ && !completion_reported_) {
      ep.completion = *completion_;
      completion_reported_ = true;
    }
    ep.custom_status = custom_status_;
    ep.suspended = suspended_;
    return ep;
  }

  bool started() const { return started_; }
  const std::string& version() const { return version_; }
  const std::optional<ParentInstance>& parent() const { return parent_; }
  bool completed() const { return completion_.has_value(); }
  int64_t applied() const { return applied_; }
  const std::optional<Divergence>& divergence() const { return divergence_; }
  std::vector<std::string> awaited_event_names() const {
    std::vector<std::string> names;
    for (const auto& [name, waiters] : event_waiters_) {
      if (!waiters.empty()) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  size_t ApproximateBytes() const {
    size_t bytes = 2048 + input_.size() + custom_status_.size() + 48 * known_.size() +
                   64 * (open_.size() + unconfirmed_.size());
    for (const auto& b : buffered_) bytes += 64 + b.payload.size();
    return bytes;
  }

 private:
  // Waits on one action's completion; lives in the awaiting coroutine's frame.
  class OpAwaiter final : public detail::DurableAwaitable {
   public:
    OpAwaiter(Context* ctx, ActionBody body) : ctx_(ctx), body_(std::move(body)) {}
    OpAwaiter(const OpAwaiter&) = delete;
    // Moved into the coroutine frame before it suspends, never after.
    OpAwaiter(OpAwaiter&& o) noexcept : ctx_(o.ctx_), body_(std::move(o.body_)) {
      assert(!o.registered_);
    }
    ~OpAwaiter() {
      if (registered_) ctx_->open_.erase(id_);
    }
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
      waiter_ = h;
      id_ = ctx_->Submit(std::move(body_));
      ctx_->open_[id_] = this;
      registered_ = true;
    }
    std::string await_resume() {
      if (failure_) throw TaskFailedError(std::move(*failure_));
      return std::move(result_);
    }
    // Called by the context when the completion event arrives.
    void Complete(std::string result, std::optional<FailureDetails> failure) {
      registered_ = false;
      result_ = std::move(result);
      failure_ = std::move(failure);
      waiter_.resume();
    }

   private:
    Context* ctx_;
    ActionBody body_;
    int32_t id_ = 0;
    bool registered_ = false;
    std::coroutine_handle<> waiter_;
    std::string result_;
    std::optional<FailureDetails> failure_;
  };

  // Waits for the next external event of one name.
  class EventAwaiter final : public detail::DurableAwaitable {
   public:
    EventAwaiter(Context* ctx, const std::string& name) : ctx_(ctx), key_(Lower(name)) {}
    EventAwaiter(const EventAwaiter&) = delete;
    // Moved into the coroutine frame before it suspends, never after.
    EventAwaiter(EventAwaiter&& o) noexcept : ctx_(o.ctx_), key_(std::move(o.key_)), payload_(std::move(o.payload_)) {
      assert(!o.registered_);
    }
    ~EventAwaiter() {
      if (!registered_) return;
      auto it = ctx_->event_waiters_.find(key_);
      if (it == ctx_->event_waiters_.end()) return;
      std::erase(it->second, this);
      if (it->second.empty()) ctx_->event_waiters_.erase(it);
    }
    bool await_ready() {
      if (auto p = ctx_->TakeBufferedEvent(key_)) {
        payload_ = std::move(*p);
        return true;
      }
      return false;
    }
    void await_suspend(std::coroutine_handle<> h) {
      waiter_ = h;
      ctx_->event_waiters_[key_].push_back(this);
      registered_ = true;
    }
    std::string await_resume() { return std::move(payload_); }
    void Deliver(std::string payload) {
      registered_ = false;
      payload_ = std::move(payload);
      waiter_.resume();
    }

   private:
    Context* ctx_;
    std::string key_;
    bool registered_ = false;
    std::coroutine_handle<> waiter_;
    std::string payload_;
  };

  struct BufferedEvent {
    std::string key;   // lower-cased name
    std::string name;  // as raised
    std::string payload;
  };

  Task<std::string> WaitEventTask(std::string name) { co_return co_await EventAwaiter(this, name); }

  static bool IsDeferredWhileSuspended(const EventBody& body) {
    return std::holds_alternative<events::EventRaised>(body) ||
           std::holds_alternative<events::TaskCompleted>(body) ||
           std::holds_alternative<events::TaskFailed>(body) ||
           std::holds_alternative<events::TimerFired>(body) ||
           std::holds_alternative<events::SubOrchestrationInstanceCompleted>(body) ||
           std::holds_alternative<events::SubOrchestrationInstanceFailed>(body) ||
           std::holds_alternative<events::EntityOperationCompleted>(body) ||
           std::holds_alternative<events::EntityOperationFailed>(body) ||
           std::holds_alternative<events::EntityLockGranted>(body);
  }

  bool ShouldRetry(const std::optional<RetryPolicy>& retry, int attempt,
                   const FailureDetails& failure, TimePoint first_attempt) const {
    if (!retry || failure.is_non_retriable) return false;
    if (attempt >= retry->max_attempts) return false;
    if (retry->retry_timeout != Duration::max() && now_ - first_attempt >= retry->retry_timeout)
      return false;
    if (retry->handle && !retry->handle(failure)) return false;
    return true;
  }

  static Duration RetryDelay(const RetryPolicy& retry, int attempt) {
    double factor = std::pow(retry.backoff_coefficient, attempt - 1);
    double delay = std::chrono::duration<double>(retry.first_retry_interval).count() * factor;
    double cap = std::chrono::duration<double>(retry.max_retry_interval).count();
    delay = std::min(delay, cap);
    return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(delay));
  }

  int32_t Submit(ActionBody body) {
    int32_t id = next_action_id_++;
    if (auto* sub = std::get_if<actions::CreateSubOrchestration>(&body)) {
      if (sub->instance_id.empty()) {
        char suffix[16];
        std::snprintf(suffix, sizeof suffix, ":%04x", static_cast<unsigned>(id));
        sub->instance_id = execution_id_ + suffix;
      }
      sub->instance_id = QualifyInHub(instance_id_, sub->instance_id);
      open_children_[id] = sub->instance_id;
    } else if (auto* send = std::get_if<actions::SendEvent>(&body)) {
      send->instance_id = QualifyInHub(instance_id_, send->instance_id);
    } else if (auto* signal = std::get_if<actions::SignalEntity>(&body)) {
      signal->target_instance_id = QualifyInHub(instance_id_, signal->target_instance_id);
    } else if (auto* call = std::get_if<actions::CallEntity>(&body)) {
      entity_requests_[call->request_id] = id;
    } else if (auto* lock = std::get_if<actions::LockEntities>(&body)) {
      entity_requests_[lock->critical_section_id] = id;
      last_lock_request_id_ = lock->critical_section_id;
      pending_lock_set_ = lock->lock_set;
    }
    known_.insert(id);
    unconfirmed_.emplace(id, Action{id, std::move(body)});
    return id;
  }

  std::optional<std::string> TakeBufferedEvent(const std::string& key) {
    for (auto it = buffered_.begin(); it != buffered_.end(); ++it) {
      if (it->key == key) {
        std::string payload = std::move(it->payload);
        buffered_.erase(it);
        return payload;
      }
    }
    return std::nullopt;
  }

  void Dispatch(const HistoryEvent& event) {
    std::visit(
        Overloaded{
            [&](const events::ExecutionStarted& e) { OnExecutionStarted(e); },
            [&](const events::ExecutionCompleted& e) {
              // Only seen when replaying a finished execution.
              Completion c;
              c.status = e.status;
              c.result = e.result;
              c.failure = e.failure;
              completion_ = std::move(c);
              completion_reported_ = true;
              DestroyRoot();
            },
            [&](const events::ExecutionTerminated& e) {
              Completion c;
              c.status = OrchestrationStatus::kTerminated;
              c.result = e.input;
              if (e.recurse) {
                for (const auto& [id, child] : open_children_) c.terminate_children.push_back(child);
              }
              unconfirmed_.clear();
              completion_ = std::move(c);
              ReleaseHeldLocks();
              DestroyRoot();
            },
            [&](const events::TaskScheduled& e) {
              Confirm(event, [&](const ActionBody& a) {
                const auto* t = std::get_if<actions::ScheduleTask>(&a);
                return t && t->name == e.name;
              }, "ScheduleTask '" + e.name + "'");
            },
            [&](const events::TaskCompleted& e) { Resolve(event, e.task_scheduled_id, e.result, std::nullopt); },
            [&](const events::TaskFailed& e) { Resolve(event, e.task_scheduled_id, "", e.failure); },
            [&](const events::SubOrchestrationInstanceCreated& e) {
              Confirm(event, [&](const ActionBody& a) {
                const auto* s = std::get_if<actions::CreateSubOrchestration>(&a);
                return s && s->name == e.name && s->instance_id == e.instance_id;
              }, "CreateSubOrchestration '" + e.name + "' as '" + e.instance_id + "'");
            },
            [&](const events::SubOrchestrationInstanceCompleted& e) {
              open_children_.erase(e.task_scheduled_id);
              Resolve(event, e.task_scheduled_id, e.result, std::nullopt);
            },
            [&](const events::SubOrchestrationInstanceFailed& e) {
              open_children_.erase(e.task_scheduled_id);
              Resolve(event, e.task_scheduled_id, "", e.failure);
            },
            [&](const events::TimerCreated&) {
              Confirm(event, [](const ActionBody& a) {
                return std::holds_alternative<actions::CreateTimer>(a);
              }, "CreateTimer");
            },
            [&](const events::TimerFired& e) { Resolve(event, e.timer_id, "", std::nullopt); },
            [&](const events::OrchestratorStarted&) {},
            [&](const events::OrchestratorCompleted&) {
              // Every action produced while replaying an episode must have been
              // recorded in that episode.
              if (replaying_ && !unconfirmed_.empty()) {
                const Action& a = unconfirmed_.begin()->second;
                NonDeterminism(event, "the end of a recorded episode",
                               DescribeAction(a.body) + " (action id " + std::to_string(a.id) +
                                   "), which history does not record");
              }
            },
            [&](const events::EventSent& e) {
              Confirm(event, [&](const ActionBody& a) {
                const auto* s = std::get_if<actions::SendEvent>(&a);
                return s && s->name == e.name && s->instance_id == e.instance_id;
              }, "SendEvent '" + e.name + "' to '" + e.instance_id + "'");
            },
            [&](const events::EventRaised& e) { DeliverEvent(e); },
            [&](const events::ContinueAsNew&) {},
            [&](const events::ExecutionSuspended&) { suspended_ = true; },
            [&](const events::ExecutionRewound&) {},  // the rewrite already happened (core/rewind.h)
            [&](const events::ExecutionResumed&) {
              suspended_ = false;
              std::deque<HistoryEvent> deferred;
              deferred.swap(suspended_events_);
              for (const HistoryEvent& e : deferred) {
                if (completion_) break;
                Dispatch(e);
              }
            },
            [&](const events::EntityOperationSignaled& e) {
              Confirm(event, [&](const ActionBody& a) {
                const auto* x = std::get_if<actions::SignalEntity>(&a);
                return x && x->operation == e.operation && x->target_instance_id == e.target_instance_id;
              }, "SignalEntity '" + e.operation + "' to '" + e.target_instance_id + "'");
            },
            [&](const events::EntityOperationCalled& e) {
              Confirm(event, [&](const ActionBody& a) {
                const auto* x = std::get_if<actions::CallEntity>(&a);
                return x && x->operation == e.operation && x->target_instance_id == e.target_instance_id;
              }, "CallEntity '" + e.operation + "' on '" + e.target_instance_id + "'");
            },
            [&](const events::EntityLockRequested& e) {
              Confirm(event, [&](const ActionBody& a) {
                const auto* x = std::get_if<actions::LockEntities>(&a);
                return x && x->lock_set == e.lock_set;
              }, "LockEntities");
            },
            [&](const events::EntityUnlockSent& e) {
              Confirm(event, [&](const ActionBody& a) {
                const auto* x = std::get_if<actions::UnlockEntity>(&a);
                return x && x->target_instance_id == e.target_instance_id;
              }, "UnlockEntity '" + e.target_instance_id + "'");
            },
            [&](const events::EntityOperationCompleted& e) { ResolveEntity(event, e.request_id, e.output, std::nullopt); },
            [&](const events::EntityOperationFailed& e) { ResolveEntity(event, e.request_id, "", e.failure); },
            [&](const events::EntityLockGranted& e) { ResolveEntity(event, e.critical_section_id, "", std::nullopt); },
        },
        event.body);
  }

  void OnExecutionStarted(const events::ExecutionStarted& e) {
    if (started_) return;  // a duplicate delivery
    started_ = true;
    name_ = e.name;
    input_ = e.input;
    execution_id_ = e.execution_id;
    version_ = e.version;
    parent_ = e.parent;
    if (e.parent) parent_instance_id_ = e.parent->instance_id;
    const OrchestratorFn* fn = lookup_ ? lookup_(e.name) : nullptr;
    if (fn == nullptr) {
      Fail(FailureDetails{"OrchestratorNotFound",
                          "no orchestrator named '" + e.name + "' is registered with this worker"});
      return;
    }
    try {
      root_ = (*fn)(*this);
    } catch (...) {
      FailFromException(std::current_exception());
      return;
    }
    root_.Start();
    CheckRoot();
  }

  template <typename Pred>
  void Confirm(const HistoryEvent& event, Pred matches, const std::string& expected) {
    if (!replaying_) return;  // live episodes record their own actions
    auto it = unconfirmed_.find(event.event_id);
    if (it == unconfirmed_.end()) {
      std::string actual = "no action with id " + std::to_string(event.event_id);
      if (!unconfirmed_.empty()) {
        actual += " (next produced: " + DescribeAction(unconfirmed_.begin()->second.body) +
                  " with id " + std::to_string(unconfirmed_.begin()->first) + ")";
      }
      NonDeterminism(event, expected, actual);
      return;
    }
    if (!matches(it->second.body)) {
      NonDeterminism(event, expected, DescribeAction(it->second.body));
      return;
    }
    unconfirmed_.erase(it);
  }

  void Resolve(const HistoryEvent& event, int32_t id, std::string result,
               std::optional<FailureDetails> failure) {
    auto it = open_.find(id);
    if (it == open_.end()) {
      // A result for an abandoned wait (the loser of a WhenAny) is expected;
      // one for an action this execution never took is not.
      if (!known_.contains(id)) {
        NonDeterminism(event, "an action with id " + std::to_string(id),
                       "no such action was scheduled by this execution");
      }
      return;
    }
    OpAwaiter* awaiter = it->second;
    open_.erase(it);
    awaiter->Complete(std::move(result), std::move(failure));
    CheckRoot();
  }

  // An entity's answer, matched to its call or lock request by request id.
  // An answer to a request this execution did not make (one sent before a
  // continue-as-new) is ignored.
  void ResolveEntity(const HistoryEvent& event, const std::string& request_id, std::string result,
                     std::optional<FailureDetails> failure) {
    auto it = entity_requests_.find(request_id);
    if (it == entity_requests_.end()) return;
    int32_t id = it->second;
    entity_requests_.erase(it);
    Resolve(event, id, std::move(result), std::move(failure));
  }

  // At the end of the execution, whatever its outcome: every lock it holds,
  // or asked for, is released (an unlock for a lock not taken yet is ignored
  // by the entity; a grant that arrives later is answered by the engine).
  void ReleaseHeldLocks() {
    std::vector<std::string> targets = !held_locks_.empty() ? held_locks_ : std::vector<std::string>();
    std::string cs = critical_section_id_;
    if (targets.empty() && lock_pending_) {
      targets = pending_lock_set_;
      cs = last_lock_request_id_;
    }
    for (const std::string& target : targets) Submit(actions::UnlockEntity{cs, target});
    held_locks_.clear();
    lock_pending_ = false;
  }

  void DeliverEvent(const events::EventRaised& e) {
    std::string key = Lower(e.name);
    auto it = event_waiters_.find(key);
    if (it != event_waiters_.end() && !it->second.empty()) {
      EventAwaiter* waiter = it->second.front();
      it->second.erase(it->second.begin());
      if (it->second.empty()) event_waiters_.erase(it);
      waiter->Deliver(e.input);
      CheckRoot();
      return;
    }
    buffered_.push_back(BufferedEvent{std::move(key), e.name, e.input});
  }

  void CheckRoot() {
    if (completion_ || !root_.Valid() || !root_.IsReady()) return;
    try {
      Json out = root_.await_resume();
      Completion c;
      if (continue_as_new_input_) {
        c.status = OrchestrationStatus::kContinuedAsNew;
        c.result = *continue_as_new_input_;
        if (preserve_events_) {
          for (const BufferedEvent& b : buffered_) {
            c.carryover_events.push_back(
                HistoryEvent{-1, now_, events::EventRaised{b.name, b.payload}});
          }
        }
      } else {
        c.status = OrchestrationStatus::kCompleted;
        c.result = ToPayload(out);
      }
      completion_ = std::move(c);
      ReleaseHeldLocks();
    } catch (...) {
      FailFromException(std::current_exception());
    }
    DestroyRoot();
  }

  void FailFromException(std::exception_ptr ex) {
    try {
      std::rethrow_exception(ex);
    } catch (const DurableError& e) {
      Fail(e.details());
    } catch (const std::exception& e) {
      Fail(FailureDetails{Demangle(typeid(e).name()), e.what()});
    } catch (...) {
      Fail(FailureDetails{"UnknownError", "the orchestrator threw a value that is not a std::exception"});
    }
  }

  void Fail(FailureDetails failure) {
    Completion c;
    c.status = OrchestrationStatus::kFailed;
    c.failure = std::move(failure);
    // The episode's actions are discarded, except unlocks: a critical section
    // left just before the failure must still release its entities.
    std::map<int32_t, Action> unlocks;
    for (auto& [id, action] : unconfirmed_) {
      if (std::holds_alternative<actions::UnlockEntity>(action.body)) unlocks.emplace(id, std::move(action));
    }
    unconfirmed_ = std::move(unlocks);
    completion_ = std::move(c);
    ReleaseHeldLocks();
  }

  void NonDeterminism(const HistoryEvent& event, const std::string& expected,
                      const std::string& actual) {
    std::string message = "Non-deterministic orchestration detected in instance '" + instance_id_ +
                          "': at history event #" + std::to_string(applied_ - 1) + " (" +
                          std::string(EventKindName(event.body)) + ", eventId " +
                          std::to_string(event.event_id) + ") history expected " + expected +
                          " but the orchestrator produced " + actual +
                          ". Was the orchestrator code changed while this instance was running?";
    if (!divergence_) {
      divergence_ = Divergence{applied_ - 1, std::string(EventKindName(event.body)), event.event_id,
                               expected, actual};
    }
    Fail(FailureDetails{"NonDeterminismError", std::move(message)});
    DestroyRoot();
  }

  void DestroyRoot() {
    // Never called from inside the coroutine: Apply() only runs between resumptions.
    root_ = Task<Json>();
  }

  OrchestratorLookup lookup_;
  std::string instance_id_;
  std::string execution_id_;
  std::string name_;
  std::string parent_instance_id_;
  std::string version_;
  std::optional<ParentInstance> parent_;
  std::string input_;
  TimePoint now_{};
  bool replaying_ = false;
  int64_t guid_counter_ = 0;
  int64_t applied_ = 0;
  std::optional<Divergence> divergence_;
  int32_t next_action_id_ = 1;

  std::map<int32_t, Action> unconfirmed_;         // produced, not yet recorded
  std::unordered_map<int32_t, OpAwaiter*> open_;  // awaiting a completion
  std::unordered_set<int32_t> known_;             // every action id produced
  std::map<int32_t, std::string> open_children_;  // running sub-orchestrations
  std::list<BufferedEvent> buffered_;             // raised, not yet consumed
  std::unordered_map<std::string, std::vector<EventAwaiter*>> event_waiters_;

  bool started_ = false;
  bool suspended_ = false;
  std::deque<HistoryEvent> suspended_events_;
  std::optional<Completion> completion_;
  bool completion_reported_ = false;
  std::string custom_status_;
  std::optional<std::string> continue_as_new_input_;
  bool preserve_events_ = true;

  // Entities: call and lock requests awaiting an answer, by request id.
  std::unordered_map<std::string, int32_t> entity_requests_;
  std::vector<std::string> held_locks_;  // the critical section's lock set
  std::string critical_section_id_;
  bool lock_pending_ = false;
  std::string last_lock_request_id_;
  std::vector<std::string> pending_lock_set_;

  Task<Json> root_;  // last member: destroyed first (see ~Context)
};

Executor::Executor(OrchestratorLookup lookup, std::string instance_id)
    : ctx_(std::make_unique<Context>(std::move(lookup), std::move(instance_id))) {}
Executor::~Executor() = default;

void Executor::Apply(const HistoryEvent& event, bool replaying) { ctx_->Apply(event, replaying); }
Episode Executor::TakeEpisode() { return ctx_->TakeEpisode(); }
bool Executor::Started() const { return ctx_->started(); }
bool Executor::Completed() const { return ctx_->completed(); }
const std::string& Executor::ExecutionId() const { return ctx_->ExecutionId(); }
const std::string& Executor::Name() const { return ctx_->Name(); }
const std::string& Executor::Version() const { return ctx_->version(); }
const std::optional<ParentInstance>& Executor::Parent() const { return ctx_->parent(); }
int64_t Executor::EventsApplied() const { return ctx_->applied(); }
size_t Executor::ApproximateBytes() const { return ctx_->ApproximateBytes(); }
const std::optional<Divergence>& Executor::FirstDivergence() const { return ctx_->divergence(); }
std::vector<std::string> Executor::AwaitedEventNames() const { return ctx_->awaited_event_names(); }

}  // namespace baton::core
