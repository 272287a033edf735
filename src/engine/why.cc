// The engine's wait sources (engine/why.h). An instance's waits are read from
// its history: every action that awaits something is recorded when it is
// scheduled (TaskScheduled, TimerCreated, SubOrchestrationInstanceCreated,
// EntityOperationCalled, EntityLockRequested) and closed by its answer, so
// what is still open is what the instance waits for. Only a wait for an
// external event leaves no trace; for a C++ orchestrator a replay (as a
// worker's after a cache miss, with nothing committed) tells its names.
#include "engine/why.h"

#include <map>
#include <set>
#include <variant>

#include "baton/entity_id.h"
#include "core/executor.h"

namespace baton::engine {
namespace {

std::string Iso(TimePoint t) { return FormatIso8601(t); }

// One open wait of an execution, from its history.
struct OpenWait {
  enum class Kind { kActivity, kTimer, kChild, kEntityCall, kEntityLock } kind;
  int32_t id = -1;
  std::string request_id;  // entity calls and locks
  std::string name;        // activity / child orchestrator / entity operation
  std::string target;      // child instance id / entity instance id
  std::vector<std::string> lock_set;
  TimePoint since;
  TimePoint due;  // timers
};

struct HistoryFacts {
  std::vector<OpenWait> open;  // in the order they were scheduled
  // The activity a retry timer waits to run again: its name, how many times
  // it failed in a row, and the last error.
  std::map<int32_t, std::pair<std::string, std::pair<int, FailureDetails>>> retry_of_timer;
  std::optional<TimePoint> last_episode;   // the last OrchestratorStarted
  std::optional<TimePoint> suspended_at;
  std::string suspend_reason;
};

HistoryFacts Analyze(const std::vector<HistoryEvent>& history) {
  HistoryFacts f;
  std::map<int32_t, OpenWait> open;
  std::map<std::string, int32_t> by_request;  // entity request id -> action id
  std::map<int32_t, std::string> task_names;
  // The last failed activity, while nothing else has been scheduled since.
  std::optional<std::pair<std::string, FailureDetails>> last_failure;
  std::map<std::string, int> failures_in_a_row;
  for (const HistoryEvent& e : history) {
    std::visit(
        [&](const auto& b) {
          using T = std::decay_t<decltype(b)>;
          if constexpr (std::is_same_v<T, events::TaskScheduled>) {
            open[e.event_id] = OpenWait{OpenWait::Kind::kActivity, e.event_id, "", b.name, "", {}, e.timestamp, {}};
            task_names[e.event_id] = b.name;
            last_failure.reset();
          } else if constexpr (std::is_same_v<T, events::TaskCompleted>) {
            open.erase(b.task_scheduled_id);
            failures_in_a_row.erase(task_names[b.task_scheduled_id]);
          } else if constexpr (std::is_same_v<T, events::TaskFailed>) {
            open.erase(b.task_scheduled_id);
            const std::string& name = task_names[b.task_scheduled_id];
            ++failures_in_a_row[name];
            last_failure = std::make_pair(name, b.failure);
          } else if constexpr (std::is_same_v<T, events::TimerCreated>) {
            open[e.event_id] = OpenWait{OpenWait::Kind::kTimer, e.event_id, "", "", "", {}, e.timestamp, b.fire_at};
            if (last_failure) {
              f.retry_of_timer[e.event_id] = {last_failure->first,
                                              {failures_in_a_row[last_failure->first], last_failure->second}};
              last_failure.reset();
            }
          } else if constexpr (std::is_same_v<T, events::TimerFired>) {
            open.erase(b.timer_id);
          } else if constexpr (std::is_same_v<T, events::SubOrchestrationInstanceCreated>) {
            open[e.event_id] = OpenWait{OpenWait::Kind::kChild, e.event_id, "", b.name, b.instance_id, {}, e.timestamp, {}};
          } else if constexpr (std::is_same_v<T, events::SubOrchestrationInstanceCompleted> ||
                               std::is_same_v<T, events::SubOrchestrationInstanceFailed>) {
            open.erase(b.task_scheduled_id);
          } else if constexpr (std::is_same_v<T, events::EntityOperationCalled>) {
            open[e.event_id] = OpenWait{OpenWait::Kind::kEntityCall, e.event_id, b.request_id, b.operation,
                                        b.target_instance_id, {}, e.timestamp, {}};
            by_request[b.request_id] = e.event_id;
          } else if constexpr (std::is_same_v<T, events::EntityOperationCompleted> ||
                               std::is_same_v<T, events::EntityOperationFailed>) {
            if (auto it = by_request.find(b.request_id); it != by_request.end()) open.erase(it->second);
          } else if constexpr (std::is_same_v<T, events::EntityLockRequested>) {
            open[e.event_id] = OpenWait{OpenWait::Kind::kEntityLock, e.event_id, b.critical_section_id, "", "",
                                        b.lock_set, e.timestamp, {}};
            by_request[b.critical_section_id] = e.event_id;
          } else if constexpr (std::is_same_v<T, events::EntityLockGranted>) {
            if (auto it = by_request.find(b.critical_section_id); it != by_request.end()) open.erase(it->second);
          } else if constexpr (std::is_same_v<T, events::OrchestratorStarted>) {
            f.last_episode = e.timestamp;
          } else if constexpr (std::is_same_v<T, events::ExecutionSuspended>) {
            f.suspended_at = e.timestamp;
            f.suspend_reason = b.input;
          } else if constexpr (std::is_same_v<T, events::ExecutionResumed>) {
            f.suspended_at.reset();
          }
        },
        e.body);
  }
  for (auto& [id, w] : open) f.open.push_back(std::move(w));
  return f;
}

// The external events a C++ orchestrator awaits after its history (a replay
// that commits nothing); nullopt when it cannot be replayed here.
std::optional<std::vector<std::string>> AwaitedEvents(const Registry* registry, const std::string& id,
                                                      const std::vector<HistoryEvent>& history) {
  if (registry == nullptr) return std::nullopt;
  core::Executor executor([registry, &id](std::string_view name) { return registry->FindOrchestratorFor(name, id); },
                          id);
  for (const HistoryEvent& e : history) executor.Apply(e, /*replaying=*/true);
  if (executor.FirstDivergence() || executor.Completed()) return std::nullopt;
  return executor.AwaitedEventNames();
}

std::string Unquote(const std::string& payload) {
  Json j = FromPayload(payload);
  return j.is_string() ? j.get<std::string>() : (j.is_null() ? std::string() : j.dump());
}

}  // namespace

std::string HubPrefixOf(std::string_view instance_id) {
  size_t at = instance_id.find(kHubSeparator);
  return at == std::string_view::npos ? std::string() : std::string(instance_id.substr(0, at + kHubSeparator.size()));
}

Result<WhyChain> ExplainWait(const std::string& subject, const std::vector<WaitSource*>& sources,
                             const std::function<bool(const std::string&)>& visible, int max_links) {
  WhyChain chain;
  std::set<std::string> seen;
  std::string at = subject;
  while (!at.empty()) {
    if (static_cast<int>(chain.links.size()) >= max_links) {
      chain.truncated = true;
      break;
    }
    WaitSource* owner = nullptr;
    for (WaitSource* s : sources) {
      if (s->Owns(at)) {
        owner = s;
        break;
      }
    }
    Result<WaitLink> link = owner != nullptr ? owner->Explain(at)
                                             : Result<WaitLink>(NotFoundError("nothing explains '" + at + "'"));
    if (!link.ok()) {
      if (chain.links.empty()) return link.status();
      chain.links.push_back(WaitLink{at, "unknown", "cannot tell: " + link.status().ToString(), Json::object(), ""});
      break;
    }
    seen.insert(at);
    WaitLink l = std::move(*link);
    l.subject = at;
    if (!l.next.empty() && visible && !visible(l.next)) {
      l.details["next"] = "outside what this key may see";
      l.next.clear();
      chain.truncated = true;
    }
    if (!l.next.empty() && seen.contains(l.next)) chain.cycle = true;
    at = chain.cycle ? std::string() : l.next;
    chain.links.push_back(std::move(l));
  }
  return chain;
}

Json WhyJson(const WhyChain& chain) {
  Json links = Json::array();
  for (const WaitLink& l : chain.links) {
    Json j = {{"subject", l.subject}, {"layer", l.layer}, {"summary", l.summary}, {"details", l.details}};
    if (!l.next.empty()) j["next"] = l.next;
    links.push_back(std::move(j));
  }
  Json out = {{"subject", chain.links.empty() ? "" : chain.links.front().subject},
              {"rootCause", chain.links.empty() ? Json() : links.back()},
              {"chain", links},
              {"cycle", chain.cycle},
              {"truncated", chain.truncated}};
  if (chain.cycle) {
    out["rootCause"]["summary"] =
        "a cycle: " + chain.links.back().next + " waits, through the links above, on itself (a deadlock)";
  }
  return out;
}

// ---- Instances ----

InstanceWaitSource::InstanceWaitSource(Client& client, const Registry* registry, SdkWorkerCount sdk_workers)
    : client_(client), registry_(registry), sdk_workers_(std::move(sdk_workers)) {}

bool InstanceWaitSource::Owns(std::string_view subject) const { return subject.starts_with("instance:"); }

Result<WaitLink> InstanceWaitSource::Explain(const std::string& subject) {
  const std::string id = subject.substr(9);
  BATON_ASSIGN_OR_RETURN(InstanceState s, client_.GetState(id, /*include_payloads=*/true));
  WaitLink l;
  l.details = {{"instanceId", id}, {"name", s.name}, {"status", std::string(OrchestrationStatusName(s.status))}};
  const bool cpp = registry_ != nullptr && registry_->FindOrchestratorFor(s.name, id) != nullptr;
  if (IsTerminal(s.status)) {
    l.layer = "done";
    l.summary = "instance " + id + " is " + std::string(OrchestrationStatusName(s.status)) +
                (s.completed_at ? " since " + Iso(*s.completed_at) : "");
    if (s.failure) l.details["failure"] = s.failure->error_type + ": " + s.failure->error_message;
    // Finished, but its parent will not take the result while suspended.
    if (!s.parent_instance_id.empty()) {
      auto parent = client_.GetState(s.parent_instance_id, false);
      if (parent.ok() && parent->status == OrchestrationStatus::kSuspended) {
        l.summary += "; its parent " + s.parent_instance_id + " is suspended and does not act on it";
        l.next = InstanceSubject(s.parent_instance_id);
      }
    }
    return l;
  }
  BATON_ASSIGN_OR_RETURN(std::vector<HistoryEvent> history, client_.GetHistory(id));
  HistoryFacts f = Analyze(history);
  if (s.status == OrchestrationStatus::kSuspended) {
    l.layer = "suspended";
    l.summary = "instance " + id + " is suspended" + (f.suspended_at ? " since " + Iso(*f.suspended_at) : "") +
                (f.suspend_reason.empty() ? "" : " (" + Unquote(f.suspend_reason) + ")") + ": it runs again when resumed";
    if (f.suspended_at) l.details["since"] = Iso(*f.suspended_at);
    l.details["reason"] = Unquote(f.suspend_reason);
    return l;
  }
  if (s.status == OrchestrationStatus::kPending || history.empty()) {
    if (s.scheduled_start && *s.scheduled_start > std::chrono::system_clock::now()) {
      l.layer = "scheduled";
      l.summary = "instance " + id + " starts at " + Iso(*s.scheduled_start);
      l.details["startAt"] = Iso(*s.scheduled_start);
      return l;
    }
    l.layer = "pending";
    l.summary = "instance " + id + " was created at " + Iso(s.created_at) + " and no worker has started it yet";
    l.details["since"] = Iso(s.created_at);
    if (!cpp) l.next = WorkersSubject(HubPrefixOf(id));
    return l;
  }
  if (!s.parent_instance_id.empty()) l.details["parent"] = s.parent_instance_id;
  if (!f.open.empty()) {
    Json open = Json::array();
    for (const OpenWait& w : f.open) open.push_back(w.id);
    l.details["openActions"] = open.size();
  }
  // The first open wait is the one the code reached first; the rest (a fan-out) are counted.
  for (const OpenWait& w : f.open) {
    l.details["since"] = Iso(w.since);
    switch (w.kind) {
      case OpenWait::Kind::kEntityLock: {
        // The lock set is taken in order; the first entity not yet ours is the one in the way.
        std::string blocking = w.lock_set.empty() ? "" : w.lock_set.front();
        for (const std::string& e : w.lock_set) {
          auto st = client_.GetEntity(e);
          if (!st.ok() || st->locked_by != id) {
            blocking = e;
            break;
          }
        }
        l.layer = "entity-lock";
        l.summary = "instance " + id + " waits since " + Iso(w.since) + " for the lock on " + blocking;
        l.details["lockSet"] = w.lock_set;
        l.details["criticalSection"] = w.request_id;
        l.next = EntitySubject(blocking);
        return l;
      }
      case OpenWait::Kind::kEntityCall:
        l.layer = "entity-call";
        l.summary = "instance " + id + " waits since " + Iso(w.since) + " for operation '" + w.name + "' on " + w.target;
        l.details["entity"] = w.target;
        l.details["operation"] = w.name;
        l.next = EntitySubject(w.target);
        return l;
      case OpenWait::Kind::kChild:
        l.layer = "child";
        l.summary = "instance " + id + " waits since " + Iso(w.since) + " for its child orchestration " + w.target +
                    " ('" + w.name + "')";
        l.details["child"] = w.target;
        l.next = InstanceSubject(w.target);
        return l;
      case OpenWait::Kind::kTimer: {
        auto retry = f.retry_of_timer.find(w.id);
        if (retry != f.retry_of_timer.end()) {
          const auto& [activity, rest] = retry->second;
          const auto& [failed, failure] = rest;
          l.layer = "retry";
          l.summary = "instance " + id + " retries activity '" + activity + "': attempt " + std::to_string(failed) +
                      " failed (" + failure.error_type + ": " + failure.error_message + "), attempt " +
                      std::to_string(failed + 1) + " at " + Iso(w.due);
          l.details["activity"] = activity;
          l.details["failedAttempts"] = failed;
          l.details["lastError"] = failure.error_type + ": " + failure.error_message;
          l.details["nextAttemptAt"] = Iso(w.due);
          return l;
        }
        l.layer = "timer";
        l.summary = "instance " + id + " waits for a durable timer due at " + Iso(w.due);
        l.details["dueAt"] = Iso(w.due);
        // A timer beside an event wait is that wait's timeout.
        if (auto events = AwaitedEvents(registry_, id, history); events && !events->empty()) {
          l.layer = "external-event";
          l.summary = "instance " + id + " waits for external event '" + events->front() + "' (timeout at " +
                      Iso(w.due) + ")";
          l.details["events"] = *events;
        }
        return l;
      }
      case OpenWait::Kind::kActivity: {
        const bool cpp_activity = registry_ != nullptr && registry_->FindActivityFor(w.name, id) != nullptr;
        l.layer = "activity";
        l.summary = "instance " + id + " waits since " + Iso(w.since) + " for activity '" + w.name + "'";
        l.details["activity"] = w.name;
        if (!cpp_activity) {
          l.next = WorkersSubject(HubPrefixOf(id));
        } else {
          l.summary += ", which a worker of this deployment runs";
        }
        return l;
      }
    }
  }
  // Nothing scheduled is open: the code awaits an external event (or, for an
  // SDK orchestrator, whatever its worker knows).
  if (!cpp) {
    l.layer = "sdk-orchestrator";
    l.summary = "instance " + id + " runs an SDK orchestrator ('" + s.name +
                "'); it waits for an external event or for its worker";
    l.next = WorkersSubject(HubPrefixOf(id));
    return l;
  }
  auto events = AwaitedEvents(registry_, id, history);
  l.layer = "external-event";
  if (events && !events->empty()) {
    std::string names;
    for (const std::string& n : *events) names += (names.empty() ? "'" : ", '") + n + "'";
    l.summary = "instance " + id + " waits for external event " + names +
                (f.last_episode ? " since " + Iso(*f.last_episode) : "");
    l.details["events"] = *events;
  } else {
    l.summary = "instance " + id + " waits for work in its queue (no wait is open)";
    l.layer = "running";
  }
  if (f.last_episode) l.details["since"] = Iso(*f.last_episode);
  return l;
}

// ---- Entities ----

bool EntityWaitSource::Owns(std::string_view subject) const { return subject.starts_with("entity:"); }

Result<WaitLink> EntityWaitSource::Explain(const std::string& subject) {
  const std::string id = subject.substr(7);
  BATON_ASSIGN_OR_RETURN(EntityState e, client_.GetEntity(id));
  WaitLink l;
  l.details = {{"entity", id}, {"backlog", e.backlog}};
  if (e.locked_by.empty()) {
    l.layer = "entity";
    l.summary = "entity " + id + " is not locked; " + std::to_string(e.backlog) + " operation(s) wait for it to run them";
    return l;
  }
  l.layer = "entity-lock";
  l.details["lockedBy"] = e.locked_by;
  l.details["criticalSection"] = e.critical_section;
  std::string since;
  if (auto h = client_.GetHistory(e.locked_by); h.ok()) {
    for (const HistoryEvent& ev : *h) {
      const auto* g = std::get_if<events::EntityLockGranted>(&ev.body);
      if (g != nullptr && g->critical_section_id == e.critical_section) since = Iso(ev.timestamp);
    }
  }
  if (!since.empty()) l.details["since"] = since;
  l.summary = "entity " + id + " is locked by " + e.locked_by + (since.empty() ? "" : " since " + since) +
              " (critical section " + e.critical_section + ")";
  l.next = InstanceSubject(e.locked_by);
  return l;
}

// ---- SDK workers ----

bool WorkerWaitSource::Owns(std::string_view subject) const { return subject.starts_with("workers:"); }

Result<WaitLink> WorkerWaitSource::Explain(const std::string& subject) {
  const std::string prefix = subject.substr(8);
  const std::string hub = prefix.empty() ? "the default task hub" : "task hub '" + prefix.substr(0, prefix.size() - 2) + "'";
  WaitLink l;
  l.layer = "sdk-worker";
  std::optional<int> n = sdk_workers_ ? sdk_workers_(prefix) : std::nullopt;
  l.details = {{"hub", prefix}, {"connectedWorkers", n ? Json(*n) : Json()}};
  if (!n) {
    l.summary = "no worker of this server runs it and the gRPC sidecar is off: no SDK worker can connect for " + hub;
  } else if (*n == 0) {
    l.summary = "no SDK worker is connected for " + hub + ": the work waits until one connects (GetWorkItems)";
  } else {
    l.summary = std::to_string(*n) + " SDK worker stream(s) connected for " + hub + ": the work is with them";
  }
  return l;
}

}  // namespace baton::engine
