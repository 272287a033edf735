#include "baton/client.h"

#include <algorithm>

#include "engine/rewind_plan.h"

#include "engine/entity_executor.h"
#include "util/uuid.h"

namespace baton {
namespace {

Status ValidateInstanceId(std::string_view id) {
  if (id.empty()) return InvalidArgumentError("instance id must not be empty");
  if (id.size() > 256) return InvalidArgumentError("instance id is longer than 256 characters");
  for (char c : id) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgumentError("instance id contains a control character");
    }
  }
  return Status::Ok();
}

// The text of a JsonText payload, checked: "" stays no value.
Result<std::string> Checked(const JsonText& payload, const char* field) {
  if (payload.text.empty()) return std::string();
  if (Status s = ValidateJson(payload.text); !s.ok()) return InvalidArgumentError(std::string(field) + " " + s.message());
  return payload.text;
}

std::string ReasonPayload(const std::string& reason) {
  return reason.empty() ? std::string() : ToPayload(Json(reason));
}

}  // namespace

Client::Client(Store& store, std::shared_ptr<Clock> clock)
    : store_(store), clock_(clock ? std::move(clock) : SystemClock()) {}

Result<std::string> Client::ScheduleNewOrchestration(std::string_view name, const Json& input,
                                                     const ScheduleOptions& options) {
  return ScheduleNewOrchestration(name, JsonText{ToPayload(input)}, options);
}

namespace {

// The store's request for a new instance, or why there is none.
Result<CreateInstanceRequest> CreateRequest(std::string_view name, const JsonText& input,
                                            const ScheduleOptions& options) {
  BATON_ASSIGN_OR_RETURN(std::string text, Checked(input, "input"));
  if (name.empty()) return InvalidArgumentError("orchestrator name must not be empty");
  std::string id = options.instance_id.empty() ? util::NewRandomUuid() : options.instance_id;
  BATON_RETURN_IF_ERROR(ValidateInstanceId(id));
  CreateInstanceRequest request;
  request.instance_id = id;
  request.name = std::string(name);
  request.version = options.version;
  request.input = std::move(text);
  request.execution_id = util::NewExecutionId();
  request.scheduled_start = options.start_at;
  request.tags = options.tags;
  request.replaceable_statuses = options.replaceable_statuses;
  return request;
}

}  // namespace

Result<std::string> Client::ScheduleNewOrchestration(std::string_view name, const JsonText& input,
                                                     const ScheduleOptions& options) {
  BATON_ASSIGN_OR_RETURN(CreateInstanceRequest request, CreateRequest(name, input, options));
  BATON_RETURN_IF_ERROR(store_.CreateInstance(request));
  return request.instance_id;
}

void Client::ScheduleNewOrchestrationAsync(std::string_view name, const JsonText& input, const ScheduleOptions& options,
                                           std::function<void(Result<std::string>)> done) {
  Result<CreateInstanceRequest> request = CreateRequest(name, input, options);
  if (!request.ok()) return done(request.status());
  store_.CreateInstanceAsync(*request, [id = request->instance_id, done = std::move(done)](const Status& s) {
    if (!s.ok()) return done(s);
    done(id);
  });
}

Status Client::Send(const std::string& instance_id, HistoryEvent event) {
  BATON_RETURN_IF_ERROR(ValidateInstanceId(instance_id));
  TimePoint now = clock_->Now();
  event.timestamp = now;
  return store_.SendMessage(Message{0, instance_id, "", now, std::move(event)});
}

Status Client::RaiseEvent(const std::string& instance_id, const std::string& name,
                          const Json& data) {
  return RaiseEvent(instance_id, name, JsonText{ToPayload(data)});
}

Status Client::RaiseEvent(const std::string& instance_id, const std::string& name, const JsonText& data) {
  if (name.empty()) return InvalidArgumentError("event name must not be empty");
  BATON_ASSIGN_OR_RETURN(std::string text, Checked(data, "input"));
  return Send(instance_id, HistoryEvent{-1, {}, events::EventRaised{name, std::move(text)}});
}

Status Client::Terminate(const std::string& instance_id, const Json& output, bool recursive) {
  return Terminate(instance_id, JsonText{ToPayload(output)}, recursive);
}

Status Client::Terminate(const std::string& instance_id, const JsonText& output, bool recursive) {
  BATON_ASSIGN_OR_RETURN(std::string text, Checked(output, "output"));
  return Send(instance_id, HistoryEvent{-1, {}, events::ExecutionTerminated{std::move(text), recursive}});
}

Status Client::Suspend(const std::string& instance_id, const std::string& reason) {
  return Send(instance_id, HistoryEvent{-1, {}, events::ExecutionSuspended{ReasonPayload(reason)}});
}

Status Client::Resume(const std::string& instance_id, const std::string& reason) {
  return Send(instance_id, HistoryEvent{-1, {}, events::ExecutionResumed{ReasonPayload(reason)}});
}

Status Client::Rewind(const std::string& instance_id, const std::string& reason) {
  if (IsEntityInstanceId(instance_id)) return InvalidArgumentError("an entity cannot be rewound");
  BATON_ASSIGN_OR_RETURN(InstanceState state, store_.GetInstance(instance_id, /*include_payloads=*/false));
  if (state.status != OrchestrationStatus::kFailed) {
    return FailedPreconditionError("instance '" + instance_id + "' is " +
                                   std::string(OrchestrationStatusName(state.status)) +
                                   "; only a Failed instance can be rewound");
  }
  BATON_ASSIGN_OR_RETURN(engine::RewindPlan plan,
                         engine::PlanRewind(store_, instance_id, state.execution_id, clock_->Now()));
  if (!plan.refusal.empty()) return FailedPreconditionError("instance '" + instance_id + "': " + plan.refusal);
  return Send(instance_id, HistoryEvent{-1, {}, events::ExecutionRewound{reason}});
}

Result<InstanceState> Client::GetState(const std::string& instance_id, bool include_payloads) {
  return store_.GetInstance(instance_id, include_payloads);
}

Result<InstanceState> Client::WaitForStart(const std::string& instance_id,
                                           std::chrono::milliseconds timeout,
                                           bool include_payloads) {
  return store_.WaitForInstance(instance_id, WaitCondition::kStarted, timeout, include_payloads);
}

Result<InstanceState> Client::WaitForCompletion(const std::string& instance_id,
                                                std::chrono::milliseconds timeout,
                                                bool include_payloads) {
  return store_.WaitForInstance(instance_id, WaitCondition::kCompleted, timeout, include_payloads);
}

Result<QueryPage> Client::Query(const InstanceQuery& query) { return store_.QueryInstances(query); }

Result<int64_t> Client::Count(InstanceQuery query, int64_t limit) {
  query.page_size = 1000;
  query.include_payloads = false;
  query.continuation_token.clear();
  int64_t n = 0;
  while (n < limit) {
    BATON_ASSIGN_OR_RETURN(QueryPage page, store_.QueryInstances(query));
    n += static_cast<int64_t>(page.instances.size());
    if (page.continuation_token.empty()) break;
    query.continuation_token = page.continuation_token;
  }
  return std::min(n, limit);
}

Result<std::vector<HistoryEvent>> Client::GetHistory(const std::string& instance_id) {
  return store_.GetHistory(instance_id);
}

Result<int> Client::Purge(const std::string& instance_id) {
  return store_.PurgeInstance(instance_id);
}

Result<int> Client::Purge(const PurgeFilter& filter) { return store_.PurgeInstances(filter); }

Result<std::string> Client::Restart(const std::string& instance_id, bool new_instance_id) {
  BATON_ASSIGN_OR_RETURN(InstanceState state, store_.GetInstance(instance_id, true));
  if (!new_instance_id && !IsTerminal(state.status)) {
    return FailedPreconditionError("instance '" + instance_id + "' is " +
                                   std::string(OrchestrationStatusName(state.status)) +
                                   "; only a terminal instance can be restarted under the same id");
  }
  CreateInstanceRequest request;
  // A fresh id stays in the instance's task hub.
  request.instance_id = new_instance_id ? QualifyInHub(instance_id, util::NewRandomUuid()) : instance_id;
  request.name = state.name;
  request.version = state.version;
  request.input = state.input;
  request.execution_id = util::NewExecutionId();
  request.replaceable_statuses = {OrchestrationStatus::kCompleted, OrchestrationStatus::kFailed,
                                  OrchestrationStatus::kTerminated, OrchestrationStatus::kCanceled};
  BATON_RETURN_IF_ERROR(store_.CreateInstance(request));
  return request.instance_id;
}

Status Client::SignalEntity(const std::string& entity_instance_id, const std::string& operation,
                            const Json& input, std::optional<TimePoint> at) {
  return SignalEntity(entity_instance_id, operation, JsonText{ToPayload(input)}, at);
}

Status Client::SignalEntity(const std::string& entity_instance_id, const std::string& operation,
                            const JsonText& input, std::optional<TimePoint> at) {
  BATON_ASSIGN_OR_RETURN(std::string text, Checked(input, "input"));
  if (!IsEntityInstanceId(entity_instance_id)) {
    return InvalidArgumentError("'" + entity_instance_id + "' is not an entity id (@name@key)");
  }
  if (operation.empty()) return InvalidArgumentError("operation name must not be empty");
  TimePoint now = clock_->Now();
  events::EntityOperationSignaled e{util::NewRandomUuid(), operation, at, std::move(text), entity_instance_id};
  return store_.SendMessage(Message{0, entity_instance_id, "", at.value_or(now), HistoryEvent{-1, now, std::move(e)}});
}

namespace {
EntityState ToEntityState(const InstanceState& row, bool include_state) {
  EntityState e;
  e.instance_id = row.instance_id;
  e.id = EntityId::FromInstanceId(row.instance_id).value_or(EntityId());
  engine::EntityView view = engine::ViewEntityState(row.output);
  e.has_state = view.has_state;
  if (include_state) e.state = std::move(view.state);
  e.locked_by = std::move(view.locked_by);
  e.critical_section = std::move(view.critical_section);
  e.backlog = view.backlog;
  e.last_modified = row.last_updated_at;
  return e;
}
}  // namespace

Result<EntityState> Client::GetEntity(const std::string& entity_instance_id) {
  if (!IsEntityInstanceId(entity_instance_id)) {
    return InvalidArgumentError("'" + entity_instance_id + "' is not an entity id (@name@key)");
  }
  BATON_ASSIGN_OR_RETURN(InstanceState row, store_.GetInstance(entity_instance_id, true));
  EntityState e = ToEntityState(row, true);
  BATON_RETURN_IF_ERROR(ResolveLock(e));
  return e;
}

// An orchestration releases the locks it holds in the commit that completes
// it: the EntityUnlockSent messages go out with its ExecutionCompleted (the
// SDKs release on completion; the sidecar and the engine add the releases
// an orchestrator left out). The entity applies them when it next runs, so
// its own row may still name the owner for a moment; a reader must not see
// a completed owner holding a lock, so a lock whose owner is terminal is
// shown as released. (An owner that does not exist sent no release: its
// lock stays until CleanEntityStorage releases it.) This reads the owner's
// row once per locked entity.
Status Client::ResolveLock(EntityState& e) {
  if (e.locked_by.empty()) return Status::Ok();
  auto owner = store_.GetInstance(e.locked_by, /*include_payloads=*/false);
  if (!owner.ok()) return owner.status().code() == StatusCode::kNotFound ? Status::Ok() : owner.status();
  if (IsTerminal(owner->status)) {
    e.locked_by.clear();
    e.critical_section.clear();
  }
  return Status::Ok();
}

Result<EntityPage> Client::QueryEntities(const EntityQuery& query) { return QueryEntityRows(query, true); }

Result<EntityPage> Client::QueryEntityRows(const EntityQuery& query, bool resolve_locks) {
  InstanceQuery q;
  std::string name = query.name_prefix;
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  q.instance_id_prefix = (query.hub.empty() ? std::string() : query.hub + std::string(kHubSeparator)) + "@" + name;
  q.page_size = query.page_size;
  q.continuation_token = query.continuation_token;
  q.include_payloads = true;
  BATON_ASSIGN_OR_RETURN(QueryPage page, store_.QueryInstances(q));
  EntityPage out;
  out.continuation_token = page.continuation_token;
  for (const InstanceState& row : page.instances) {
    if (!IsEntityInstanceId(row.instance_id)) continue;
    if (query.last_modified_from && row.last_updated_at < *query.last_modified_from) continue;
    if (query.last_modified_to && row.last_updated_at >= *query.last_modified_to) continue;
    EntityState e = ToEntityState(row, query.include_state);
    if (resolve_locks) BATON_RETURN_IF_ERROR(ResolveLock(e));
    if (!query.include_empty && !e.has_state && e.locked_by.empty() && e.backlog == 0) continue;
    out.entities.push_back(std::move(e));
  }
  return out;
}

Result<Client::EntityCleanup> Client::CleanEntityStorage(const std::string& hub, bool remove_empty,
                                                        bool release_orphaned_locks) {
  EntityCleanup out;
  EntityQuery q;
  q.hub = hub;
  q.include_empty = true;
  q.include_state = false;
  q.page_size = 500;
  for (int pages = 0; pages < 100000; ++pages) {
    // The locks as the entities' rows hold them (not ResolveLock's view).
    BATON_ASSIGN_OR_RETURN(EntityPage page, QueryEntityRows(q, /*resolve_locks=*/false));
    for (const EntityState& e : page.entities) {
      if (release_orphaned_locks && !e.locked_by.empty()) {
        auto owner = store_.GetInstance(e.locked_by, false);
        bool orphaned = (!owner.ok() && owner.status().code() == StatusCode::kNotFound) ||
                        (owner.ok() && IsTerminal(owner->status));
        if (orphaned) {
          TimePoint now = clock_->Now();
          events::EntityUnlockSent unlock{e.critical_section, e.locked_by, e.instance_id};
          BATON_RETURN_IF_ERROR(
              store_.SendMessage(Message{0, e.instance_id, "", now, HistoryEvent{-1, now, std::move(unlock)}}));
          ++out.orphaned_locks_released;
        }
      } else if (remove_empty && !e.has_state && e.locked_by.empty() && e.backlog == 0) {
        auto purged = store_.PurgeInstance(e.instance_id);
        // Pending operations (or a purge that raced with us) keep the entity.
        if (purged.ok()) ++out.empty_entities_removed;
      }
    }
    if (page.continuation_token.empty()) break;
    q.continuation_token = page.continuation_token;
  }
  return out;
}

}  // namespace baton
