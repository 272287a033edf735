#include "baton/history.h"
#include "util/overloaded.h"
#include "baton/entity_id.h"
#include "baton/instance.h"
#include "baton/json.h"

#include <array>
#include <cctype>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

// The JSON form of history events (docs/history-format.md).
//
// Serialization and parsing both dispatch with std::visit over an overload set
// without a generic fallback, so an event kind added to EventBody that is not
// handled here fails to compile in both directions.

namespace baton {
namespace {

// ordered_json keeps "kind" first when a human reads a row; objects are small,
// so its linear key lookup costs nothing.
using OJson = nlohmann::ordered_json;

using util::Overloaded;

// Guards the recursion over FailureDetails::inner against hostile input.
constexpr int kMaxFailureDepth = 32;

constexpr std::array<std::pair<OrchestrationStatus, std::string_view>, 8> kStatusNames = {{
    {OrchestrationStatus::kRunning, "Running"},
    {OrchestrationStatus::kCompleted, "Completed"},
    {OrchestrationStatus::kContinuedAsNew, "ContinuedAsNew"},
    {OrchestrationStatus::kFailed, "Failed"},
    {OrchestrationStatus::kCanceled, "Canceled"},
    {OrchestrationStatus::kTerminated, "Terminated"},
    {OrchestrationStatus::kPending, "Pending"},
    {OrchestrationStatus::kSuspended, "Suspended"},
}};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// ---- Writing ----

void PutString(OJson& j, const char* key, const std::string& value) {
  if (!value.empty()) j[key] = value;
}

void PutTime(OJson& j, const char* key, TimePoint t) { j[key] = FormatIso8601(t); }

OJson FailureToJson(const FailureDetails& f) {
  OJson j = OJson::object();
  PutString(j, "errorType", f.error_type);
  PutString(j, "errorMessage", f.error_message);
  PutString(j, "stackTrace", f.stack_trace);
  PutString(j, "details", f.details);
  if (f.is_non_retriable) j["isNonRetriable"] = true;
  // The protocol has one inner failure; more than one (not expected) is kept
  // as an array rather than dropped.
  if (f.inner.size() == 1) {
    j["inner"] = FailureToJson(f.inner.front());
  } else if (f.inner.size() > 1) {
    OJson arr = OJson::array();
    for (const FailureDetails& inner : f.inner) arr.push_back(FailureToJson(inner));
    j["inner"] = std::move(arr);
  }
  return j;
}

OJson EventToJson(const HistoryEvent& event) {
  OJson j = OJson::object();
  j["kind"] = std::string(EventKindName(event.body));
  j["eventId"] = event.event_id;
  PutTime(j, "timestamp", event.timestamp);
  std::visit(Overloaded{
                 [&](const events::ExecutionStarted& e) {
                   PutString(j, "name", e.name);
                   PutString(j, "version", e.version);
                   PutString(j, "input", e.input);
                   PutString(j, "instanceId", e.instance_id);
                   PutString(j, "executionId", e.execution_id);
                   if (e.parent) {
                     OJson p = OJson::object();
                     p["taskScheduledId"] = e.parent->task_scheduled_id;
                     PutString(p, "name", e.parent->name);
                     PutString(p, "instanceId", e.parent->instance_id);
                     PutString(p, "executionId", e.parent->execution_id);
                     j["parent"] = std::move(p);
                   }
                   if (e.scheduled_start) PutTime(j, "scheduledStart", *e.scheduled_start);
                   if (!e.tags.empty()) {
                     OJson tags = OJson::object();
                     for (const auto& [k, v] : e.tags) tags[k] = v;
                     j["tags"] = std::move(tags);
                   }
                 },
                 [&](const events::ExecutionCompleted& e) {
                   j["status"] = std::string(OrchestrationStatusName(e.status));
                   PutString(j, "result", e.result);
                   if (e.failure) j["failure"] = FailureToJson(*e.failure);
                 },
                 [&](const events::ExecutionTerminated& e) {
                   PutString(j, "input", e.input);
                   if (e.recurse) j["recurse"] = true;
                 },
                 [&](const events::TaskScheduled& e) {
                   PutString(j, "name", e.name);
                   PutString(j, "version", e.version);
                   PutString(j, "input", e.input);
                 },
                 [&](const events::TaskCompleted& e) {
                   j["taskScheduledId"] = e.task_scheduled_id;
                   PutString(j, "result", e.result);
                 },
                 [&](const events::TaskFailed& e) {
                   j["taskScheduledId"] = e.task_scheduled_id;
                   j["failure"] = FailureToJson(e.failure);
                 },
                 [&](const events::SubOrchestrationInstanceCreated& e) {
                   PutString(j, "instanceId", e.instance_id);
                   PutString(j, "name", e.name);
                   PutString(j, "version", e.version);
                   PutString(j, "input", e.input);
                 },
                 [&](const events::SubOrchestrationInstanceCompleted& e) {
                   j["taskScheduledId"] = e.task_scheduled_id;
                   PutString(j, "result", e.result);
                 },
                 [&](const events::SubOrchestrationInstanceFailed& e) {
                   j["taskScheduledId"] = e.task_scheduled_id;
                   j["failure"] = FailureToJson(e.failure);
                 },
                 [&](const events::TimerCreated& e) { PutTime(j, "fireAt", e.fire_at); },
                 [&](const events::TimerFired& e) {
                   PutTime(j, "fireAt", e.fire_at);
                   j["timerId"] = e.timer_id;
                 },
                 [&](const events::OrchestratorStarted&) {},
                 [&](const events::OrchestratorCompleted&) {},
                 [&](const events::EventSent& e) {
                   PutString(j, "instanceId", e.instance_id);
                   PutString(j, "name", e.name);
                   PutString(j, "input", e.input);
                 },
                 [&](const events::EventRaised& e) {
                   PutString(j, "name", e.name);
                   PutString(j, "input", e.input);
                 },
                 [&](const events::ContinueAsNew& e) { PutString(j, "input", e.input); },
                 [&](const events::ExecutionSuspended& e) { PutString(j, "input", e.input); },
                 [&](const events::ExecutionResumed& e) { PutString(j, "input", e.input); },
                 [&](const events::ExecutionRewound& e) { PutString(j, "reason", e.reason); },
                 [&](const events::EntityOperationSignaled& e) {
                   PutString(j, "requestId", e.request_id);
                   PutString(j, "operation", e.operation);
                   if (e.scheduled_time) PutTime(j, "scheduledTime", *e.scheduled_time);
                   PutString(j, "input", e.input);
                   PutString(j, "targetInstanceId", e.target_instance_id);
                 },
                 [&](const events::EntityOperationCalled& e) {
                   PutString(j, "requestId", e.request_id);
                   PutString(j, "operation", e.operation);
                   if (e.scheduled_time) PutTime(j, "scheduledTime", *e.scheduled_time);
                   PutString(j, "input", e.input);
                   PutString(j, "parentInstanceId", e.parent_instance_id);
                   PutString(j, "parentExecutionId", e.parent_execution_id);
                   PutString(j, "targetInstanceId", e.target_instance_id);
                 },
                 [&](const events::EntityOperationCompleted& e) {
                   PutString(j, "requestId", e.request_id);
                   PutString(j, "output", e.output);
                 },
                 [&](const events::EntityOperationFailed& e) {
                   PutString(j, "requestId", e.request_id);
                   j["failure"] = FailureToJson(e.failure);
                 },
                 [&](const events::EntityLockRequested& e) {
                   PutString(j, "criticalSectionId", e.critical_section_id);
                   j["lockSet"] = e.lock_set;
                   j["position"] = e.position;
                   PutString(j, "parentInstanceId", e.parent_instance_id);
                 },
                 [&](const events::EntityLockGranted& e) {
                   PutString(j, "criticalSectionId", e.critical_section_id);
                 },
                 [&](const events::EntityUnlockSent& e) {
                   PutString(j, "criticalSectionId", e.critical_section_id);
                   PutString(j, "parentInstanceId", e.parent_instance_id);
                   PutString(j, "targetInstanceId", e.target_instance_id);
                 },
             },
             event.body);
  return j;
}

// ---- Reading ----

// Reads optional fields of one JSON object, remembering the first type error.
// An absent or null field leaves the output at its default: writers omit
// empty values, and older rows may lack newer fields.
class FieldReader {
 public:
  FieldReader(const OJson& object, std::string what) : object_(object), what_(std::move(what)) {}

  void String(const char* key, std::string* out) {
    const OJson* v = Find(key);
    if (v == nullptr) return;
    if (!v->is_string()) return Fail(key, "a string");
    *out = v->get<std::string>();
  }

  void Int32(const char* key, int32_t* out) {
    const OJson* v = Find(key);
    if (v == nullptr) return;
    auto x = JsonInteger(*v, INT32_MIN, INT32_MAX);
    if (!x) return Fail(key, "a 32-bit integer");
    *out = static_cast<int32_t>(*x);
  }

  void Bool(const char* key, bool* out) {
    const OJson* v = Find(key);
    if (v == nullptr) return;
    if (!v->is_boolean()) return Fail(key, "a boolean");
    *out = v->get<bool>();
  }

  void Time(const char* key, TimePoint* out) {
    const OJson* v = Find(key);
    if (v == nullptr) return;
    if (!v->is_string() || !ParseIso8601(v->get_ref<const std::string&>(), out)) {
      return Fail(key, "an ISO 8601 UTC time");
    }
  }

  void OptionalTime(const char* key, std::optional<TimePoint>* out) {
    if (Find(key) == nullptr) return;
    TimePoint t;
    Time(key, &t);
    if (ok()) *out = t;
  }

  void StringList(const char* key, std::vector<std::string>* out) {
    const OJson* v = Find(key);
    if (v == nullptr) return;
    if (!v->is_array()) return Fail(key, "an array of strings");
    for (const auto& item : *v) {
      if (!item.is_string()) return Fail(key, "an array of strings");
      out->push_back(item.get<std::string>());
    }
  }

  void StringMap(const char* key, std::map<std::string, std::string>* out) {
    const OJson* v = Find(key);
    if (v == nullptr) return;
    if (!v->is_object()) return Fail(key, "an object of strings");
    for (const auto& [k, value] : v->items()) {
      if (!value.is_string()) return Fail(key, "an object of strings");
      (*out)[k] = value.get<std::string>();
    }
  }

  void RuntimeStatus(const char* key, OrchestrationStatus* out) {
    const OJson* v = Find(key);
    if (v == nullptr) return;
    if (!v->is_string() || !ParseOrchestrationStatus(v->get_ref<const std::string&>(), out)) {
      return Fail(key, "an orchestration status name");
    }
  }

  void Failure(const char* key, FailureDetails* out, int depth);

  void OptionalFailure(const char* key, std::optional<FailureDetails>* out) {
    if (Find(key) == nullptr) return;
    FailureDetails f;
    Failure(key, &f, 0);
    if (ok()) *out = std::move(f);
  }

  void Parent(const char* key, std::optional<ParentInstance>* out) {
    const OJson* v = Find(key);
    if (v == nullptr) return;
    if (!v->is_object()) return Fail(key, "an object");
    ParentInstance p;
    FieldReader r(*v, what_ + "." + key);
    r.Int32("taskScheduledId", &p.task_scheduled_id);
    r.String("name", &p.name);
    r.String("instanceId", &p.instance_id);
    r.String("executionId", &p.execution_id);
    if (!r.ok()) return Propagate(r);
    *out = std::move(p);
  }

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // Fills `out` from an object holding FailureDetails fields.
  void FailureFields(FailureDetails* out, int depth);

 private:
  const OJson* Find(const char* key) const {
    if (!ok()) return nullptr;  // report only the first error
    auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  void Fail(const char* key, const char* expected) {
    if (ok()) error_ = what_ + "." + key + " is not " + expected;
  }

  void Propagate(const FieldReader& inner) {
    if (ok()) error_ = inner.error_;
  }

  const OJson& object_;
  std::string what_;
  std::string error_;
};

void FieldReader::FailureFields(FailureDetails* out, int depth) {
  String("errorType", &out->error_type);
  String("errorMessage", &out->error_message);
  String("stackTrace", &out->stack_trace);
  String("details", &out->details);
  Bool("isNonRetriable", &out->is_non_retriable);
  const OJson* inner = Find("inner");
  if (inner == nullptr) return;
  if (depth >= kMaxFailureDepth) {
    if (ok()) error_ = what_ + ".inner nests deeper than " + std::to_string(kMaxFailureDepth);
    return;
  }
  auto read_one = [&](const OJson& v, const std::string& what) {
    if (!v.is_object()) {
      if (ok()) error_ = what + " is not an object";
      return;
    }
    FieldReader r(v, what);
    FailureDetails f;
    r.FailureFields(&f, depth + 1);
    if (!r.ok()) return Propagate(r);
    out->inner.push_back(std::move(f));
  };
  if (inner->is_array()) {
    for (size_t i = 0; i < inner->size() && ok(); ++i) {
      read_one((*inner)[i], what_ + ".inner[" + std::to_string(i) + "]");
    }
  } else {
    read_one(*inner, what_ + ".inner");
  }
}

void FieldReader::Failure(const char* key, FailureDetails* out, int depth) {
  const OJson* v = Find(key);
  if (v == nullptr) return;
  if (!v->is_object()) return Fail(key, "an object");
  FieldReader r(*v, what_ + "." + key);
  r.FailureFields(out, depth);
  if (!r.ok()) Propagate(r);
}

// One default-constructed alternative per index, and its kind name, so that
// parsing finds the alternative for a "kind" without a hand-kept list.
using BodyFactory = EventBody (*)();

template <size_t I>
EventBody MakeAlternative() {
  return EventBody(std::in_place_index<I>);
}

template <size_t... I>
constexpr std::array<BodyFactory, sizeof...(I)> MakeFactories(std::index_sequence<I...>) {
  return {&MakeAlternative<I>...};
}

constexpr auto kBodyFactories =
    MakeFactories(std::make_index_sequence<std::variant_size_v<EventBody>>());

Result<EventBody> NewBodyOfKind(std::string_view kind) {
  for (BodyFactory factory : kBodyFactories) {
    EventBody body = factory();
    if (EventKindName(body) == kind) return body;
  }
  return DataLossError("history event has unknown kind '" + std::string(kind) + "'");
}

Result<HistoryEvent> EventFromJson(const OJson& j, const std::string& what) {
  if (!j.is_object()) return DataLossError(what + " is not a JSON object");
  auto kind_it = j.find("kind");
  if (kind_it == j.end() || !kind_it->is_string()) {
    return DataLossError(what + " has no string field 'kind'");
  }
  BATON_ASSIGN_OR_RETURN(EventBody body, NewBodyOfKind(kind_it->get_ref<const std::string&>()));

  HistoryEvent event;
  FieldReader r(j, what);
  r.Int32("eventId", &event.event_id);
  if (j.find("timestamp") == j.end()) return DataLossError(what + " has no 'timestamp'");
  r.Time("timestamp", &event.timestamp);
  std::visit(Overloaded{
                 [&](events::ExecutionStarted& e) {
                   r.String("name", &e.name);
                   r.String("version", &e.version);
                   r.String("input", &e.input);
                   r.String("instanceId", &e.instance_id);
                   r.String("executionId", &e.execution_id);
                   r.Parent("parent", &e.parent);
                   r.OptionalTime("scheduledStart", &e.scheduled_start);
                   r.StringMap("tags", &e.tags);
                 },
                 [&](events::ExecutionCompleted& e) {
                   r.RuntimeStatus("status", &e.status);
                   r.String("result", &e.result);
                   r.OptionalFailure("failure", &e.failure);
                 },
                 [&](events::ExecutionTerminated& e) {
                   r.String("input", &e.input);
                   r.Bool("recurse", &e.recurse);
                 },
                 [&](events::TaskScheduled& e) {
                   r.String("name", &e.name);
                   r.String("version", &e.version);
                   r.String("input", &e.input);
                 },
                 [&](events::TaskCompleted& e) {
                   r.Int32("taskScheduledId", &e.task_scheduled_id);
                   r.String("result", &e.result);
                 },
                 [&](events::TaskFailed& e) {
                   r.Int32("taskScheduledId", &e.task_scheduled_id);
                   r.Failure("failure", &e.failure, 0);
                 },
                 [&](events::SubOrchestrationInstanceCreated& e) {
                   r.String("instanceId", &e.instance_id);
                   r.String("name", &e.name);
                   r.String("version", &e.version);
                   r.String("input", &e.input);
                 },
                 [&](events::SubOrchestrationInstanceCompleted& e) {
                   r.Int32("taskScheduledId", &e.task_scheduled_id);
                   r.String("result", &e.result);
                 },
                 [&](events::SubOrchestrationInstanceFailed& e) {
                   r.Int32("taskScheduledId", &e.task_scheduled_id);
                   r.Failure("failure", &e.failure, 0);
                 },
                 [&](events::TimerCreated& e) { r.Time("fireAt", &e.fire_at); },
                 [&](events::TimerFired& e) {
                   r.Time("fireAt", &e.fire_at);
                   r.Int32("timerId", &e.timer_id);
                 },
                 [&](events::OrchestratorStarted&) {},
                 [&](events::OrchestratorCompleted&) {},
                 [&](events::EventSent& e) {
                   r.String("instanceId", &e.instance_id);
                   r.String("name", &e.name);
                   r.String("input", &e.input);
                 },
                 [&](events::EventRaised& e) {
                   r.String("name", &e.name);
                   r.String("input", &e.input);
                 },
                 [&](events::ContinueAsNew& e) { r.String("input", &e.input); },
                 [&](events::ExecutionSuspended& e) { r.String("input", &e.input); },
                 [&](events::ExecutionResumed& e) { r.String("input", &e.input); },
                 [&](events::ExecutionRewound& e) { r.String("reason", &e.reason); },
                 [&](events::EntityOperationSignaled& e) {
                   r.String("requestId", &e.request_id);
                   r.String("operation", &e.operation);
                   r.OptionalTime("scheduledTime", &e.scheduled_time);
                   r.String("input", &e.input);
                   r.String("targetInstanceId", &e.target_instance_id);
                 },
                 [&](events::EntityOperationCalled& e) {
                   r.String("requestId", &e.request_id);
                   r.String("operation", &e.operation);
                   r.OptionalTime("scheduledTime", &e.scheduled_time);
                   r.String("input", &e.input);
                   r.String("parentInstanceId", &e.parent_instance_id);
                   r.String("parentExecutionId", &e.parent_execution_id);
                   r.String("targetInstanceId", &e.target_instance_id);
                 },
                 [&](events::EntityOperationCompleted& e) {
                   r.String("requestId", &e.request_id);
                   r.String("output", &e.output);
                 },
                 [&](events::EntityOperationFailed& e) {
                   r.String("requestId", &e.request_id);
                   r.Failure("failure", &e.failure, 0);
                 },
                 [&](events::EntityLockRequested& e) {
                   r.String("criticalSectionId", &e.critical_section_id);
                   r.StringList("lockSet", &e.lock_set);
                   r.Int32("position", &e.position);
                   r.String("parentInstanceId", &e.parent_instance_id);
                 },
                 [&](events::EntityLockGranted& e) { r.String("criticalSectionId", &e.critical_section_id); },
                 [&](events::EntityUnlockSent& e) {
                   r.String("criticalSectionId", &e.critical_section_id);
                   r.String("parentInstanceId", &e.parent_instance_id);
                   r.String("targetInstanceId", &e.target_instance_id);
                 },
             },
             body);
  if (!r.ok()) return DataLossError(r.error());
  event.body = std::move(body);
  return event;
}

// Stored text is parsed with the same limits as any input: a corrupted or
// hostile row is DataLoss, never a crash.
Result<OJson> ParseStored(std::string_view text, std::string_view what) {
  OJson j;
  if (Status s = ParseJson(text, &j); !s.ok()) return DataLossError(std::string(what) + " " + s.message());
  return j;
}

}  // namespace

std::string_view OrchestrationStatusName(OrchestrationStatus s) {
  for (const auto& [status, name] : kStatusNames) {
    if (status == s) return name;
  }
  return "Unknown";
}

bool ParseOrchestrationStatus(std::string_view name, OrchestrationStatus* out) {
  for (const auto& [status, status_name] : kStatusNames) {
    if (EqualsIgnoreCase(name, status_name)) {
      *out = status;
      return true;
    }
  }
  return false;
}

bool IsTerminal(OrchestrationStatus s) {
  switch (s) {
    case OrchestrationStatus::kCompleted:
    case OrchestrationStatus::kFailed:
    case OrchestrationStatus::kTerminated:
    case OrchestrationStatus::kCanceled:
      return true;
    case OrchestrationStatus::kRunning:
    case OrchestrationStatus::kContinuedAsNew:
    case OrchestrationStatus::kPending:
    case OrchestrationStatus::kSuspended:
      return false;
  }
  return false;
}

std::string_view EventKindName(const EventBody& body) {
  return std::visit(
      Overloaded{
          [](const events::ExecutionStarted&) -> std::string_view { return "ExecutionStarted"; },
          [](const events::ExecutionCompleted&) -> std::string_view {
            return "ExecutionCompleted";
          },
          [](const events::ExecutionTerminated&) -> std::string_view {
            return "ExecutionTerminated";
          },
          [](const events::TaskScheduled&) -> std::string_view { return "TaskScheduled"; },
          [](const events::TaskCompleted&) -> std::string_view { return "TaskCompleted"; },
          [](const events::TaskFailed&) -> std::string_view { return "TaskFailed"; },
          [](const events::SubOrchestrationInstanceCreated&) -> std::string_view {
            return "SubOrchestrationInstanceCreated";
          },
          [](const events::SubOrchestrationInstanceCompleted&) -> std::string_view {
            return "SubOrchestrationInstanceCompleted";
          },
          [](const events::SubOrchestrationInstanceFailed&) -> std::string_view {
            return "SubOrchestrationInstanceFailed";
          },
          [](const events::TimerCreated&) -> std::string_view { return "TimerCreated"; },
          [](const events::TimerFired&) -> std::string_view { return "TimerFired"; },
          [](const events::OrchestratorStarted&) -> std::string_view {
            return "OrchestratorStarted";
          },
          [](const events::OrchestratorCompleted&) -> std::string_view {
            return "OrchestratorCompleted";
          },
          [](const events::EventSent&) -> std::string_view { return "EventSent"; },
          [](const events::EventRaised&) -> std::string_view { return "EventRaised"; },
          [](const events::ContinueAsNew&) -> std::string_view { return "ContinueAsNew"; },
          [](const events::ExecutionSuspended&) -> std::string_view {
            return "ExecutionSuspended";
          },
          [](const events::ExecutionResumed&) -> std::string_view { return "ExecutionResumed"; },
          [](const events::ExecutionRewound&) -> std::string_view { return "ExecutionRewound"; },
          [](const events::EntityOperationSignaled&) -> std::string_view {
            return "EntityOperationSignaled";
          },
          [](const events::EntityOperationCalled&) -> std::string_view {
            return "EntityOperationCalled";
          },
          [](const events::EntityOperationCompleted&) -> std::string_view {
            return "EntityOperationCompleted";
          },
          [](const events::EntityOperationFailed&) -> std::string_view {
            return "EntityOperationFailed";
          },
          [](const events::EntityLockRequested&) -> std::string_view { return "EntityLockRequested"; },
          [](const events::EntityLockGranted&) -> std::string_view { return "EntityLockGranted"; },
          [](const events::EntityUnlockSent&) -> std::string_view { return "EntityUnlockSent"; },
      },
      body);
}

// Strings that are not UTF-8 (a reason or name from an embedding program,
// say) are written with U+FFFD rather than thrown on in the middle of a commit.
static std::string Dump(const OJson& j) { return j.dump(-1, ' ', false, OJson::error_handler_t::replace); }

std::string SerializeEvent(const HistoryEvent& event) { return Dump(EventToJson(event)); }

Result<HistoryEvent> ParseEvent(std::string_view text) {
  BATON_ASSIGN_OR_RETURN(OJson j, ParseStored(text, "history event"));
  return EventFromJson(j, "history event");
}

std::string SerializeEvents(const std::vector<HistoryEvent>& events) {
  OJson arr = OJson::array();
  for (const HistoryEvent& e : events) arr.push_back(EventToJson(e));
  return Dump(arr);
}

Result<std::vector<HistoryEvent>> ParseEvents(std::string_view text) {
  BATON_ASSIGN_OR_RETURN(OJson j, ParseStored(text, "history event list"));
  if (!j.is_array()) return DataLossError("history event list is not a JSON array");
  std::vector<HistoryEvent> out;
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    BATON_ASSIGN_OR_RETURN(HistoryEvent e,
                           EventFromJson(j[i], "history event [" + std::to_string(i) + "]"));
    out.push_back(std::move(e));
  }
  return out;
}

std::string SerializeFailure(const FailureDetails& failure) {
  return Dump(FailureToJson(failure));
}

Result<FailureDetails> ParseFailure(std::string_view text) {
  if (text.empty()) return DataLossError("failure details text is empty");
  BATON_ASSIGN_OR_RETURN(OJson j, ParseStored(text, "failure details"));
  if (!j.is_object()) return DataLossError("failure details is not a JSON object");
  FailureDetails f;
  FieldReader r(j, "failure");
  r.FailureFields(&f, 0);
  if (!r.ok()) return DataLossError(r.error());
  return f;
}

}  // namespace baton

namespace baton {

std::string_view HubOf(std::string_view instance_id) {
  // An entity id ("@name@key") has no hub even if its key holds "::".
  if (!instance_id.empty() && instance_id[0] == '@') return std::string_view();
  size_t pos = instance_id.find(kHubSeparator);
  return pos == std::string_view::npos ? std::string_view() : instance_id.substr(0, pos);
}

bool IsEntityInstanceId(std::string_view instance_id) {
  std::string_view hub = HubOf(instance_id);
  std::string_view local = hub.empty() ? instance_id : instance_id.substr(hub.size() + kHubSeparator.size());
  return local.size() >= 2 && local[0] == '@' && local.find('@', 1) != std::string_view::npos;
}

std::string QualifyInHub(std::string_view instance_id, std::string_view id) {
  std::string_view hub = HubOf(instance_id);
  if (hub.empty()) return std::string(id);
  std::string prefix = std::string(hub) + std::string(kHubSeparator);
  if (id.substr(0, prefix.size()) == prefix) return std::string(id);
  return prefix + std::string(id);
}

}  // namespace baton

namespace baton {

EntityId::EntityId(std::string entity_name, std::string entity_key)
    : name(std::move(entity_name)), key(std::move(entity_key)) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string EntityId::ToInstanceId() const { return "@" + name + "@" + key; }

std::optional<EntityId> EntityId::FromInstanceId(std::string_view instance_id) {
  std::string_view hub = HubOf(instance_id);
  std::string_view local = hub.empty() ? instance_id : instance_id.substr(hub.size() + kHubSeparator.size());
  if (local.size() < 2 || local[0] != '@') return std::nullopt;
  size_t second = local.find('@', 1);
  if (second == std::string_view::npos) return std::nullopt;
  return EntityId(std::string(local.substr(1, second - 1)), std::string(local.substr(second + 1)));
}

}  // namespace baton
