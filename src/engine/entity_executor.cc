#include "engine/entity_executor.h"
#include "util/demangle.h"

#include <deque>
#include <typeinfo>

#include "util/log.h"
#include "util/uuid.h"

namespace baton::engine {
namespace {

using util::Demangle;

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
    Json j = Json::parse(text, nullptr, false);
    if (!j.is_object()) {
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
      for (const HistoryEvent& e : queue) q.push_back(Json::parse(SerializeEvent(e)));
      j["queue"] = std::move(q);
    }
    return j.dump();
  }
};

class EntityContextImpl final : public EntityContext {
 public:
  EntityContextImpl(const EntityId& id, const std::string& instance_id, SchedulerState& s, TimePoint now)
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
    started.execution_id = util::NewRandomUuid();
    std::string execution = started.execution_id;
    pending_.push_back(Message{0, id, execution, now_, HistoryEvent{-1, now_, std::move(started)}});
    std::string_view hub = HubOf(id);
    return hub.empty() ? id : id.substr(hub.size() + kHubSeparator.size());
  }

 private:
  EntityId id_;
  std::string instance_id_;
  SchedulerState& s_;
  TimePoint now_;
  std::string operation_;
  std::string input_;
  std::vector<Message> pending_;
};

class BatchRunner {
 public:
  BatchRunner(const Registry& registry, const std::string& instance_id, SchedulerState& s, TimePoint now)
      : registry_(registry),
        instance_id_(instance_id),
        id_(EntityId::FromInstanceId(instance_id).value_or(EntityId())),
        s_(s),
        now_(now),
        ctx_(id_, instance_id, s, now) {}

  // Handles `e`; false when it must wait for the lock to be released.
  bool Handle(const HistoryEvent& e, std::vector<Message>& outbox, int& ops) {
    if (const auto* signal = std::get_if<events::EntityOperationSignaled>(&e.body)) {
      if (!s_.lock_owner.empty()) return false;  // only the owner's calls run while locked
      Run(signal->operation, signal->input, nullptr, outbox);
      ++ops;
      return true;
    }
    if (const auto* call = std::get_if<events::EntityOperationCalled>(&e.body)) {
      if (!s_.lock_owner.empty() && call->parent_instance_id != s_.lock_owner) return false;
      Run(call->operation, call->input, call, outbox);
      ++ops;
      return true;
    }
    if (const auto* lock = std::get_if<events::EntityLockRequested>(&e.body)) {
      if (!s_.lock_owner.empty()) return false;
      s_.lock_owner = lock->parent_instance_id;
      s_.lock_section = lock->critical_section_id;
      size_t next = static_cast<size_t>(lock->position) + 1;
      if (next < lock->lock_set.size()) {
        events::EntityLockRequested forward = *lock;
        forward.position = static_cast<int32_t>(next);
        const std::string& target = lock->lock_set[next];
        outbox.push_back(Message{0, target, "", now_, HistoryEvent{-1, now_, std::move(forward)}});
      } else {
        outbox.push_back(Message{0, lock->parent_instance_id, "", now_,
                                 HistoryEvent{-1, now_, events::EntityLockGranted{lock->critical_section_id}}});
      }
      return true;
    }
    if (const auto* unlock = std::get_if<events::EntityUnlockSent>(&e.body)) {
      if (unlock->critical_section_id == s_.lock_section && !s_.lock_section.empty()) {
        s_.lock_owner.clear();
        s_.lock_section.clear();
      }
      return true;  // an unlock of a section not held is stale: dropped
    }
    util::Log().warn("entity '{}' dropped an unexpected {} message", instance_id_, EventKindName(e.body));
    return true;
  }

 private:
  void Run(const std::string& operation, const std::string& input, const events::EntityOperationCalled* call,
           std::vector<Message>& outbox) {
    const EntityFn* fn = registry_.FindEntity(id_.name);
    std::optional<FailureDetails> failure;
    Json result;
    // An operation that throws leaves the state as it found it.
    bool had_state = s_.has_state;
    Json before = s_.state;
    if (fn == nullptr) {
      failure = FailureDetails{"EntityNotFound", "no entity named '" + id_.name + "' is registered with this worker"};
    } else {
      ctx_.Begin(operation, input);
      try {
        result = (*fn)(ctx_);
      } catch (const DurableError& e) {
        failure = e.details();
      } catch (const std::exception& e) {
        failure = FailureDetails{Demangle(typeid(e).name()), e.what()};
      } catch (...) {
        failure = FailureDetails{"UnknownError", "the entity threw a value that is not a std::exception"};
      }
      if (failure) {
        s_.has_state = had_state;
        s_.state = std::move(before);
        ctx_.TakePending();  // the failed operation sends nothing
      } else {
        for (Message& m : ctx_.TakePending()) outbox.push_back(std::move(m));
      }
    }
    if (call != nullptr) {
      HistoryEvent answer{-1, now_, events::EntityOperationCompleted{call->request_id, ToPayload(result)}};
      if (failure) answer.body = events::EntityOperationFailed{call->request_id, *failure};
      outbox.push_back(Message{0, call->parent_instance_id, call->parent_execution_id, now_, std::move(answer)});
    } else if (failure) {
      util::Log().info("signal '{}' to entity '{}' failed: {}: {}", operation, instance_id_, failure->error_type,
                       failure->error_message);
    }
  }

  const Registry& registry_;
  std::string instance_id_;
  EntityId id_;
  SchedulerState& s_;
  TimePoint now_;
  EntityContextImpl ctx_;
};

}  // namespace

EntityBatch RunEntityBatch(const Registry& registry, const std::string& instance_id,
                           const std::string& persisted, const std::vector<Message>& messages,
                           TimePoint now) {
  SchedulerState s = SchedulerState::Parse(persisted);
  std::deque<HistoryEvent> pending(s.queue.begin(), s.queue.end());
  for (const Message& m : messages) pending.push_back(m.event);
  s.queue.clear();

  EntityBatch batch;
  BatchRunner runner(registry, instance_id, s, now);
  // Messages run in arrival order; those that must wait for the lock keep
  // their order, and get another chance each time the lock is released.
  std::deque<HistoryEvent> waiting;
  while (!pending.empty()) {
    HistoryEvent e = std::move(pending.front());
    pending.pop_front();
    const bool was_locked = !s.lock_owner.empty();
    if (!runner.Handle(e, batch.outbox, batch.operations_run)) {
      waiting.push_back(std::move(e));
      continue;
    }
    if (was_locked && s.lock_owner.empty() && !waiting.empty()) {
      // Released: what waited goes first, ahead of what came after it.
      for (auto it = waiting.rbegin(); it != waiting.rend(); ++it) pending.push_front(std::move(*it));
      waiting.clear();
    }
  }
  s.queue.assign(std::make_move_iterator(waiting.begin()), std::make_move_iterator(waiting.end()));
  batch.state = s.Serialize();
  return batch;
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
