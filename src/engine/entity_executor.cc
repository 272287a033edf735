#include "engine/entity_executor.h"
#include "util/demangle.h"

#include <deque>
#include <typeinfo>

#include "util/log.h"
#include "util/uuid.h"

namespace baton::engine {
namespace {

using util::Demangle;

// The user's part of an entity's state.
struct UserState {
  bool has_state = false;
  Json state;
};

// The durable state of an entity.
struct SchedulerState {
  bool has_state = false;
  Json state;
  std::string lock_owner;  // orchestration instance id; "" when unlocked
  std::string lock_section;
  std::vector<HistoryEvent> queue;  // waiting for the lock

  static SchedulerState Parse(const std::string& text) {
    SchedulerState s;
    if (text.empty()) return s;
    Json j;
    if (!ParseJson(text, &j).ok() || !j.is_object()) {
      util::Log().error("entity state is not a JSON object; starting from an empty state");
      return s;
    }
    if (j.contains("state")) {
      s.has_state = true;
      s.state = j["state"];
    }
    if (j.contains("lock") && j["lock"].is_object()) {
      s.lock_owner = j["lock"].value("owner", "");
      s.lock_section = j["lock"].value("criticalSection", "");
    }
    if (j.contains("queue") && j["queue"].is_array()) {
      for (const Json& e : j["queue"]) {
        auto parsed = ParseEvent(e.dump());
        if (parsed.ok()) s.queue.push_back(std::move(*parsed));
      }
    }
    return s;
  }

  std::string Serialize() const {
    Json j = Json::object();
    if (has_state) j["state"] = state;
    if (!lock_owner.empty()) j["lock"] = {{"owner", lock_owner}, {"criticalSection", lock_section}};
    if (!queue.empty()) {
      Json q = Json::array();
      for (const HistoryEvent& e : queue) {
        Json event;
        [[maybe_unused]] Status parsed = ParseJson(SerializeEvent(e), &event);
        assert(parsed.ok() && "SerializeEvent writes shallow JSON");
        q.push_back(std::move(event));
      }
      j["queue"] = std::move(q);
    }
    return j.dump();
  }
};

class EntityContextImpl final : public EntityContext {
 public:
  EntityContextImpl(const EntityId& id, const std::string& instance_id, UserState& s, TimePoint now)
      : id_(id), instance_id_(instance_id), s_(s), now_(now) {}

  void Begin(const std::string& operation, const std::string& input) {
    operation_ = operation;
    input_ = input;
    pending_.clear();
  }
  std::vector<Message> TakePending() { return std::move(pending_); }

  const EntityId& Id() const override { return id_; }
  const std::string& OperationName() const override { return operation_; }
  const std::string& RawInput() const override { return input_; }
  bool HasState() const override { return s_.has_state; }
  const Json& RawState() const override {
    static const Json kNull;
    return s_.has_state ? s_.state : kNull;
  }
  void SetState(Json state) override {
    s_.state = std::move(state);
    s_.has_state = true;
  }
  void DeleteState() override {
    s_.state = Json();
    s_.has_state = false;
  }
  void SignalEntity(const EntityId& target, const std::string& operation, const Json& input,
                    std::optional<TimePoint> at) override {
    std::string target_id = QualifyInHub(instance_id_, target.ToInstanceId());
    events::EntityOperationSignaled e{util::NewRandomUuid(), operation, at, ToPayload(input), target_id};
    pending_.push_back(Message{0, target_id, "", at.value_or(now_), HistoryEvent{-1, now_, std::move(e)}});
  }
  void RaiseEvent(const std::string& instance_id, const std::string& name, const Json& data) override {
    std::string target = QualifyInHub(instance_id_, instance_id);
    pending_.push_back(
        Message{0, target, "", now_, HistoryEvent{-1, now_, events::EventRaised{name, ToPayload(data)}}});
  }
  std::string StartNewOrchestration(const std::string& name, const Json& input,
                                    const std::string& instance_id) override {
    std::string id = QualifyInHub(instance_id_, instance_id.empty() ? util::NewRandomUuid() : instance_id);
    events::ExecutionStarted started;
    started.name = name;
    started.input = ToPayload(input);
    started.instance_id = id;
    started.execution_id = util::NewExecutionId();
    std::string execution = started.execution_id;
    pending_.push_back(Message{0, id, execution, now_, HistoryEvent{-1, now_, std::move(started)}});
    std::string_view hub = HubOf(id);
    return hub.empty() ? id : id.substr(hub.size() + kHubSeparator.size());
  }

 private:
  EntityId id_;
  std::string instance_id_;
  UserState& s_;
  TimePoint now_;
  std::string operation_;
  std::string input_;
  std::vector<Message> pending_;
};

// Decides what each message does to the lock, and which operations run.
class Planner {
 public:
  Planner(EntityBatchPlan& plan, TimePoint now) : p_(plan), now_(now) {}

  // Handles `e`; false when it must wait for the lock to be released.
  bool Handle(const HistoryEvent& e) {
    const TimePoint now = now_;
    if (const auto* signal = std::get_if<events::EntityOperationSignaled>(&e.body)) {
      if (!p_.lock_owner.empty()) return false;  // only the owner's calls run while locked
      Add(EntityOperationRequest{signal->operation, signal->input, signal->request_id, false, "", ""}, e);
      return true;
    }
    if (const auto* call = std::get_if<events::EntityOperationCalled>(&e.body)) {
      if (!p_.lock_owner.empty() && call->parent_instance_id != p_.lock_owner) return false;
      Add(EntityOperationRequest{call->operation, call->input, call->request_id, true, call->parent_instance_id,
                                 call->parent_execution_id},
          e);
      return true;
    }
    if (const auto* lock = std::get_if<events::EntityLockRequested>(&e.body)) {
      if (!p_.lock_owner.empty()) return false;
      p_.lock_owner = lock->parent_instance_id;
      p_.lock_section = lock->critical_section_id;
      size_t next = static_cast<size_t>(lock->position) + 1;
      if (next < lock->lock_set.size()) {
        events::EntityLockRequested forward = *lock;
        forward.position = static_cast<int32_t>(next);
        const std::string& target = lock->lock_set[next];
        p_.lock_messages.push_back(Message{0, target, "", now, HistoryEvent{-1, now, std::move(forward)}});
      } else {
        p_.lock_messages.push_back(Message{0, lock->parent_instance_id, "", now,
                                           HistoryEvent{-1, now, events::EntityLockGranted{lock->critical_section_id}}});
      }
      return true;
    }
    if (const auto* unlock = std::get_if<events::EntityUnlockSent>(&e.body)) {
      if (unlock->critical_section_id == p_.lock_section && !p_.lock_section.empty()) {
        p_.lock_owner.clear();
        p_.lock_section.clear();
      }
      return true;  // an unlock of a section not held is stale: dropped
    }
    util::Log().warn("entity '{}' dropped an unexpected {} message", p_.instance_id, EventKindName(e.body));
    return true;
  }

 private:
  void Add(EntityOperationRequest op, const HistoryEvent& source) {
    p_.operations.push_back(std::move(op));
    p_.sources.push_back(source);
  }

  EntityBatchPlan& p_;
  TimePoint now_;
};

// Runs one operation with a registered entity function.
EntityOperationResult RunLocal(const EntityFn* fn, const EntityId& id, EntityContextImpl& ctx, UserState& s,
                               const EntityOperationRequest& op) {
  EntityOperationResult r;
  if (fn == nullptr) {
    r.failure = FailureDetails{"EntityNotFound", "no entity named '" + id.name + "' is registered with this worker"};
    return r;
  }
  // An operation that throws leaves the state as it found it.
  UserState before = s;
  ctx.Begin(op.operation, op.input);
  try {
    r.output = ToPayload((*fn)(ctx));
  } catch (const DurableError& e) {
    r.failure = e.details();
  } catch (const std::exception& e) {
    r.failure = FailureDetails{Demangle(typeid(e).name()), e.what()};
  } catch (...) {
    r.failure = FailureDetails{"UnknownError", "the entity threw a value that is not a std::exception"};
  }
  if (r.failure) {
    s = std::move(before);
    ctx.TakePending();  // the failed operation sends nothing
  } else {
    r.sends = ctx.TakePending();
  }
  return r;
}

}  // namespace

EntityBatchPlan PlanEntityBatch(const std::string& instance_id, const std::string& persisted,
                                const std::vector<Message>& messages, TimePoint now, size_t max_operations) {
  SchedulerState s = SchedulerState::Parse(persisted);
  EntityBatchPlan plan;
  plan.instance_id = instance_id;
  plan.has_state = s.has_state;
  plan.state = std::move(s.state);
  plan.lock_owner = std::move(s.lock_owner);
  plan.lock_section = std::move(s.lock_section);
  plan.persisted = persisted;
  plan.messages = messages;
  std::deque<HistoryEvent> pending(s.queue.begin(), s.queue.end());
  for (const Message& m : messages) pending.push_back(m.event);

  Planner planner(plan, now);
  // Messages run in arrival order; those that must wait for the lock keep
  // their order, and get another chance each time the lock is released.
  std::deque<HistoryEvent> waiting;
  while (!pending.empty()) {
    HistoryEvent e = std::move(pending.front());
    pending.pop_front();
    const bool was_locked = !plan.lock_owner.empty();
    if (!planner.Handle(e)) {
      waiting.push_back(std::move(e));
      continue;
    }
    if (plan.operations.size() > max_operations) {
      // Cut: this operation and everything after it wait for the next batch
      // (an operation changes no lock, so taking it back is exact).
      plan.operations.pop_back();
      plan.sources.pop_back();
      waiting.push_back(std::move(e));
      for (HistoryEvent& rest : pending) waiting.push_back(std::move(rest));
      pending.clear();
      break;
    }
    if (was_locked && plan.lock_owner.empty() && !waiting.empty()) {
      // Released: what waited goes first, ahead of what came after it.
      for (auto it = waiting.rbegin(); it != waiting.rend(); ++it) pending.push_front(std::move(*it));
      waiting.clear();
    }
  }
  plan.queue.assign(std::make_move_iterator(waiting.begin()), std::make_move_iterator(waiting.end()));
  return plan;
}

EntityBatch FinishEntityBatch(EntityBatchPlan plan, bool has_state, Json state,
                              std::vector<EntityOperationResult> results, TimePoint now) {
  if (results.size() < plan.operations.size()) {
    plan = PlanEntityBatch(plan.instance_id, plan.persisted, plan.messages, now, results.size());
  }
  EntityBatch batch;
  const size_t ran = std::min(results.size(), plan.operations.size());
  for (size_t i = 0; i < ran; ++i) {
    const EntityOperationRequest& op = plan.operations[i];
    EntityOperationResult& r = results[i];
    ++batch.operations_run;
    if (!r.failure) {
      for (Message& m : r.sends) batch.outbox.push_back(std::move(m));
    }
    if (op.is_call) {
      HistoryEvent answer{-1, now, events::EntityOperationCompleted{op.request_id, r.output.value_or("")}};
      if (r.failure) answer.body = events::EntityOperationFailed{op.request_id, *r.failure};
      batch.outbox.push_back(Message{0, op.caller_instance_id, op.caller_execution_id, now, std::move(answer)});
    } else if (r.failure) {
      util::Log().info("signal '{}' to entity '{}' failed: {}: {}", op.operation, plan.instance_id,
                       r.failure->error_type, r.failure->error_message);
    }
  }
  for (Message& m : plan.lock_messages) batch.outbox.push_back(std::move(m));
  SchedulerState s;
  s.has_state = has_state;
  if (has_state) s.state = std::move(state);
  s.lock_owner = std::move(plan.lock_owner);
  s.lock_section = std::move(plan.lock_section);
  for (HistoryEvent& e : plan.queue) s.queue.push_back(std::move(e));
  batch.state = s.Serialize();
  return batch;
}

EntityBatch RunEntityBatch(const Registry& registry, const std::string& instance_id,
                           const std::string& persisted, const std::vector<Message>& messages,
                           TimePoint now) {
  EntityBatchPlan plan = PlanEntityBatch(instance_id, persisted, messages, now);
  const EntityId id = EntityId::FromInstanceId(instance_id).value_or(EntityId());
  const EntityFn* fn = registry.FindEntity(id.name);
  UserState s{plan.has_state, plan.state};
  EntityContextImpl ctx(id, instance_id, s, now);
  std::vector<EntityOperationResult> results;
  results.reserve(plan.operations.size());
  for (const EntityOperationRequest& op : plan.operations) results.push_back(RunLocal(fn, id, ctx, s, op));
  return FinishEntityBatch(std::move(plan), s.has_state, std::move(s.state), std::move(results), now);
}

EntityView ViewEntityState(const std::string& persisted) {
  SchedulerState s = SchedulerState::Parse(persisted);
  EntityView v;
  v.has_state = s.has_state;
  v.state = s.has_state ? s.state.dump() : std::string();
  v.locked_by = s.lock_owner;
  v.critical_section = s.lock_section;
  v.backlog = static_cast<int>(s.queue.size());
  return v;
}

}  // namespace baton::engine
