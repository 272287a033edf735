#include "api/http/management_api.h"
#include "api/http/request_util.h"
#include "util/overloaded.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <variant>

#include "baton/json.h"
#include "batch/scheduler.h"
#include "util/duration.h"
#include "util/url.h"
#include "util/utf8.h"
#include "util/uuid.h"

namespace baton::api {
namespace {

using util::Overloaded;

namespace http = boost::beast::http;
using http::verb;

constexpr std::string_view kBase = "/runtime/webhooks/durabletask";
// A dry-run purge counts no further (Client::Count reads page by page).
constexpr int64_t kMaxDryRunCount = 100000;

// Who is calling and which task hub they act on.
struct Caller {
  tenancy::Principal principal;
  std::string hub;  // "" = the whole store (admin without taskHub)
};

// The Durable Task Scheduler's limit on instance ids (entities' "@name@key" too).
constexpr size_t kMaxInstanceIdChars = 100;
// Orchestrator, event and operation names (Baton's own bound).
constexpr size_t kMaxNameChars = 256;

std::string DfTime(TimePoint t) { return FormatIso8601(t).substr(0, 19) + "Z"; }

class Api : public std::enable_shared_from_this<Api> {
 public:
  Api(Client& client, tenancy::TenantDirectory& directory, ManagementApiOptions options)
      : client_(client), directory_(directory), options_(std::move(options)) {}

  void Register(Router& r) {
    const std::string b(kBase);
    r.Add(verb::post, b + "/orchestrators/{name}/{instanceId?}", Bind(&Api::Start));
    r.Add(verb::get, b + "/instances", Bind(&Api::List));
    r.Add(verb::delete_, b + "/instances", Bind(&Api::PurgeByFilter));
    r.Add(verb::get, b + "/instances/{id}", Bind(&Api::GetStatus));
    r.Add(verb::delete_, b + "/instances/{id}", Bind(&Api::PurgeOne));
    r.Add(verb::post, b + "/instances/{id}/raiseEvent/{event}", Bind(&Api::RaiseEvent));
    r.Add(verb::post, b + "/instances/{id}/terminate", Bind(&Api::Terminate));
    r.Add(verb::post, b + "/instances/{id}/suspend", Bind(&Api::Suspend));
    r.Add(verb::post, b + "/instances/{id}/resume", Bind(&Api::Resume));
    r.Add(verb::post, b + "/instances/{id}/rewind", Bind(&Api::Rewind));
    r.Add(verb::post, b + "/instances/{id}/restart", Bind(&Api::Restart));

    r.Add(verb::post, b + "/entities/clean", Bind(&Api::CleanEntities));
    r.Add(verb::get, b + "/entities/{name}", Bind(&Api::ListEntities));
    r.Add(verb::get, b + "/entities/{name}/{key}", Bind(&Api::GetEntity));
    r.Add(verb::post, b + "/entities/{name}/{key}", Bind(&Api::SignalEntity));
    r.Add(verb::delete_, b + "/entities/{name}/{key}", Bind(&Api::DeleteEntity));

    r.Add(verb::post, "/api/v1/admin/tenants", Bind(&Api::CreateTenant, /*admin_only=*/true));
    r.Add(verb::get, "/api/v1/admin/tenants", Bind(&Api::ListTenants, /*admin_only=*/true));
    r.Add(verb::post, "/api/v1/admin/tenants/{tenant}/disable", Bind(&Api::DisableTenant, /*admin_only=*/true));
    r.Add(verb::post, "/api/v1/admin/tenants/{tenant}/enable", Bind(&Api::EnableTenant, /*admin_only=*/true));
    r.Add(verb::post, "/api/v1/admin/tenants/{tenant}/keys", Bind(&Api::CreateTenantKey, /*admin_only=*/true));
    r.Add(verb::get, "/api/v1/admin/tenants/{tenant}/keys", Bind(&Api::ListTenantKeys, /*admin_only=*/true));
    r.Add(verb::get, "/api/v1/admin/tenants/{tenant}/settings", Bind(&Api::GetTenantSettings, /*admin_only=*/true));
    r.Add(verb::patch, "/api/v1/admin/tenants/{tenant}/settings",
          Bind(&Api::UpdateTenantSettings, /*admin_only=*/true));
    r.Add(verb::post, "/api/v1/admin/keys", Bind(&Api::CreateAdminKey, /*admin_only=*/true));
    r.Add(verb::delete_, "/api/v1/admin/keys/{key}", Bind(&Api::RevokeKey, /*admin_only=*/true));
    r.Add(verb::get, "/healthz", [](const HttpRequest&, const RouteMatch&) {
      return JsonResponse(200, R"({"status":"ok"})");
    });
  }

 private:
  using Method = HttpResponse (Api::*)(const HttpRequest&, const RouteMatch&, const Caller&);
  // Authenticates, then runs the handler as the caller. Routes hold the Api alive.
  Handler Bind(Method m, bool admin_only = false) {
    return [self = shared_from_this(), m, admin_only](const HttpRequest& req, const RouteMatch& match) {
      auto auth = self->Authenticate(req, match, admin_only);
      if (auto* refused = std::get_if<HttpResponse>(&auth)) return std::move(*refused);
      const Caller& caller = std::get<Caller>(auth);
      HttpResponse res = ((*self).*m)(req, match, caller);
      if (res.result_int() >= 400) HideHub(caller, &res);
      return res;
    };
  }

  // Ids in a caller's answers are relative to its hub: an error message from
  // the store names "acme::x", the caller knows "x".
  static void HideHub(const Caller& c, HttpResponse* res) {
    if (c.hub.empty()) return;
    const std::string prefix = HubPrefix(c);
    std::string& body = res->body();
    for (size_t at = body.find(prefix); at != std::string::npos; at = body.find(prefix, at)) {
      body.erase(at, prefix.size());
    }
    res->prepare_payload();
  }

  // ---- Authentication and ids ----

  std::variant<Caller, HttpResponse> Authenticate(const HttpRequest& req, const RouteMatch& match,
                                                  bool admin_only) {
    auto principal = AuthenticateBearer(req, directory_, options_.admission);
    if (auto* refused = std::get_if<HttpResponse>(&principal)) return std::move(*refused);
    Caller caller{std::get<tenancy::Principal>(principal), ""};
    if (admin_only && !caller.principal.admin) {
      return ErrorResponse(403, "PermissionDenied", "this endpoint needs an admin key", "Authorization");
    }
    if (caller.principal.admin) {
      std::string hub = match.Query("taskHub");
      if (!hub.empty() && !tenancy::IsValidTenantId(hub)) {
        return ErrorResponse(400, "InvalidArgument", "taskHub '" + hub + "' is not a valid tenant id", "taskHub");
      }
      caller.hub = hub;
    } else {
      caller.hub = caller.principal.tenant_id;  // a tenant key acts on its own hub, whatever taskHub says
    }
    return caller;
  }

  static std::string HubPrefix(const Caller& c) {
    return c.hub.empty() ? std::string() : c.hub + std::string(kHubSeparator);
  }

  // Validates an id from a URL; empty optional (and `error` set) when invalid.
  static std::optional<std::string> Internal(const Caller& c, const std::string& id, HttpResponse* error,
                                             std::string_view field = "instanceId") {
    if (id.empty() || id.size() > kMaxInstanceIdChars) {
      *error = ErrorResponse(400, "InvalidArgument",
                             "an instance id has 1 to " + std::to_string(kMaxInstanceIdChars) + " characters", field);
      return std::nullopt;
    }
    for (char ch : id) {
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
        *error = ErrorResponse(400, "InvalidArgument", "an instance id has no control characters", field);
        return std::nullopt;
      }
    }
    if (!c.hub.empty() && id.find(kHubSeparator) != std::string::npos) {
      *error = ErrorResponse(400, "InvalidArgument", "an instance id cannot contain '::'", field);
      return std::nullopt;
    }
    return HubPrefix(c) + id;
  }

  static std::string External(const Caller& c, const std::string& internal_id) {
    std::string prefix = HubPrefix(c);
    return internal_id.substr(0, prefix.size()) == prefix ? internal_id.substr(prefix.size()) : internal_id;
  }

  // ---- Shared pieces ----

  static std::optional<std::vector<OrchestrationStatus>> ParseStatuses(const RouteMatch& m, HttpResponse* error) {
    std::vector<OrchestrationStatus> out;
    std::string v = m.Query("runtimeStatus");
    size_t i = 0;
    while (i < v.size()) {
      size_t j = v.find(',', i);
      if (j == std::string::npos) j = v.size();
      std::string name = v.substr(i, j - i);
      name.erase(std::remove_if(name.begin(), name.end(), ::isspace), name.end());
      OrchestrationStatus s;
      if (!name.empty()) {
        if (!ParseOrchestrationStatus(name, &s)) {
          *error = ErrorResponse(400, "InvalidArgument",
                                 "unknown runtimeStatus '" + name +
                                     "' (Running, Pending, Completed, Failed, Terminated, Canceled, ContinuedAsNew, Suspended)",
                                 "runtimeStatus");
          return std::nullopt;
        }
        out.push_back(s);
      }
      i = j + 1;
    }
    return out;
  }

  // The configured public base URL (never the request's Host header), so an
  // answer cannot be made to point a client elsewhere.
  static std::string BaseUrl(const RouteMatch& m) { return m.public_url + std::string(kBase); }

  static std::string HubQuery(const Caller& c, char sep) {
    return c.principal.admin && !c.hub.empty() ? std::string(1, sep) + "taskHub=" + util::PercentEncode(c.hub)
                                               : std::string();
  }

  static std::string InstanceUrl(const RouteMatch& m, const std::string& external_id) {
    return BaseUrl(m) + "/instances/" + util::PercentEncode(external_id);
  }

  static Json CheckStatus(const RouteMatch& m, const Caller& c, const std::string& external_id) {
    std::string i = InstanceUrl(m, external_id);
    return Json{{"id", external_id},
                {"statusQueryGetUri", i + HubQuery(c, '?')},
                {"sendEventPostUri", i + "/raiseEvent/{eventName}" + HubQuery(c, '?')},
                {"terminatePostUri", i + "/terminate?reason={text}" + HubQuery(c, '&')},
                {"purgeHistoryDeleteUri", i + HubQuery(c, '?')},
                {"restartPostUri", i + "/restart" + HubQuery(c, '?')},
                {"suspendPostUri", i + "/suspend?reason={text}" + HubQuery(c, '&')},
                {"resumePostUri", i + "/resume?reason={text}" + HubQuery(c, '&')}};
  }

  static HttpResponse Accepted(const RouteMatch& m, const Caller& c, const std::string& external_id) {
    Json body = CheckStatus(m, c, external_id);
    HttpResponse res = JsonResponse(202, body);
    res.set(http::field::location, body["statusQueryGetUri"].get<std::string>());
    res.set(http::field::retry_after, "10");
    return res;
  }

  // Times in a history are exact (microseconds), as Durable Functions gives
  // them (fractional seconds): a timeline of one episode needs them.
  static Json HistoryJson(const Caller& c, const std::vector<HistoryEvent>& history, bool show_output,
                          bool show_input) {
    Json out = Json::array();
    for (const HistoryEvent& e : history) {
      Json j = {{"EventType", EventKindName(e.body)}, {"EventId", e.event_id}, {"Timestamp", FormatIso8601(e.timestamp)}};
      std::visit(Overloaded{
                     [&](const events::ExecutionStarted& b) {
                       j["FunctionName"] = b.name;
                       if (show_input) j["Input"] = FromPayload(b.input);
                     },
                     [&](const events::ExecutionCompleted& b) {
                       j["OrchestrationStatus"] = OrchestrationStatusName(b.status);
                       if (show_output) j["Result"] = FromPayload(b.result);
                       if (b.failure) j["FailureDetails"] = FromPayload(SerializeFailure(*b.failure));
                     },
                     [&](const events::ExecutionTerminated& b) {
                       if (show_output) j["Result"] = FromPayload(b.input);
                     },
                     [&](const events::TaskScheduled& b) {
                       j["FunctionName"] = b.name;
                       if (show_input) j["Input"] = FromPayload(b.input);
                     },
                     [&](const events::TaskCompleted& b) {
                       j["TaskScheduledId"] = b.task_scheduled_id;
                       if (show_output) j["Result"] = FromPayload(b.result);
                     },
                     [&](const events::TaskFailed& b) {
                       j["TaskScheduledId"] = b.task_scheduled_id;
                       j["FailureDetails"] = FromPayload(SerializeFailure(b.failure));
                     },
                     [&](const events::SubOrchestrationInstanceCreated& b) {
                       j["FunctionName"] = b.name;
                       j["InstanceId"] = External(c, b.instance_id);
                     },
                     [&](const events::SubOrchestrationInstanceCompleted& b) {
                       j["TaskScheduledId"] = b.task_scheduled_id;
                       if (show_output) j["Result"] = FromPayload(b.result);
                     },
                     [&](const events::SubOrchestrationInstanceFailed& b) {
                       j["TaskScheduledId"] = b.task_scheduled_id;
                       j["FailureDetails"] = FromPayload(SerializeFailure(b.failure));
                     },
                     [&](const events::TimerCreated& b) { j["ScheduledTime"] = FormatIso8601(b.fire_at); },
                     [&](const events::TimerFired& b) {
                       j["TimerId"] = b.timer_id;
                       j["ScheduledTime"] = FormatIso8601(b.fire_at);
                     },
                     [&](const events::OrchestratorStarted&) {},
                     [&](const events::OrchestratorCompleted&) {},
                     [&](const events::EventSent& b) {
                       j["Name"] = b.name;
                       j["InstanceId"] = External(c, b.instance_id);
                     },
                     [&](const events::EventRaised& b) {
                       j["Name"] = b.name;
                       if (show_input) j["Input"] = FromPayload(b.input);
                     },
                     [&](const events::ContinueAsNew&) {},
                     [&](const events::ExecutionSuspended&) {},
                     [&](const events::ExecutionResumed&) {},
                     [&](const events::ExecutionRewound& b) { j["Reason"] = b.reason; },
                     [&](const events::EntityOperationSignaled& b) {
                       j["RequestId"] = b.request_id;
                       j["Operation"] = b.operation;
                       j["TargetInstanceId"] = External(c, b.target_instance_id);
                       if (b.scheduled_time) j["ScheduledTime"] = DfTime(*b.scheduled_time);
                       if (show_input) j["Input"] = FromPayload(b.input);
                     },
                     [&](const events::EntityOperationCalled& b) {
                       j["RequestId"] = b.request_id;
                       j["Operation"] = b.operation;
                       j["TargetInstanceId"] = External(c, b.target_instance_id);
                       if (show_input) j["Input"] = FromPayload(b.input);
                     },
                     [&](const events::EntityOperationCompleted& b) {
                       j["RequestId"] = b.request_id;
                       if (show_output) j["Result"] = FromPayload(b.output);
                     },
                     [&](const events::EntityOperationFailed& b) {
                       j["RequestId"] = b.request_id;
                       j["FailureDetails"] = FromPayload(SerializeFailure(b.failure));
                     },
                     [&](const events::EntityLockRequested& b) {
                       j["CriticalSectionId"] = b.critical_section_id;
                       Json set = Json::array();
                       for (const std::string& id : b.lock_set) set.push_back(External(c, id));
                       j["LockSet"] = set;
                     },
                     [&](const events::EntityLockGranted& b) { j["CriticalSectionId"] = b.critical_section_id; },
                     [&](const events::EntityUnlockSent& b) { j["TargetInstanceId"] = External(c, b.target_instance_id); },
                 },
                 e.body);
      out.push_back(std::move(j));
    }
    return out;
  }

  // A stored payload as JSON text to splice into an answer: the bytes stored
  // (what the caller sent: member order and `null` kept) when they are JSON
  // within ParseJson's limits, else the text as a JSON string (an SDK
  // worker's result is stored as it came); null for none.
  static std::string PayloadText(const std::string& payload) {
    if (payload.empty()) return "null";
    if (ValidateJson(payload).ok()) return payload;
    return DumpJson(FromPayload(payload));
  }

  // The status object of the Durable Functions API, as JSON text: `extra`
  // members (historyEvents) are added to the object first; input, output and
  // customStatus are spliced in as stored (PayloadText), never re-serialized.
  static std::string StatusText(const Caller& c, const InstanceState& s, bool show_input, Json extra = Json::object()) {
    Json j = std::move(extra);
    j["name"] = s.name;
    j["instanceId"] = External(c, s.instance_id);
    j["runtimeStatus"] = OrchestrationStatusName(s.status);
    j["createdTime"] = DfTime(s.created_at);
    j["lastUpdatedTime"] = DfTime(s.last_updated_at);
    if (!s.version.empty()) j["version"] = s.version;
    if (!s.tags.empty()) {
      Json tags = Json::object();
      for (const auto& [k, v] : s.tags) tags[k] = v;
      j["tags"] = std::move(tags);
    }
    if (s.completed_at) j["completedTime"] = FormatIso8601(*s.completed_at);
    if (s.scheduled_start) j["scheduledStartTime"] = FormatIso8601(*s.scheduled_start);
    if (!s.parent_instance_id.empty()) j["parentInstanceId"] = External(c, s.parent_instance_id);
    std::string output = PayloadText(s.output);
    if (s.failure) {
      output = DumpJson(Json(s.failure->error_message));
      j["failureDetails"] = {{"errorType", s.failure->error_type},
                             {"errorMessage", s.failure->error_message},
                             {"details", FromPayload(s.failure->details)}};
    }
    std::string text = DumpJson(j);
    text.pop_back();  // the closing brace: the payloads go in before it
    text += ",\"input\":" + (show_input ? PayloadText(s.input) : std::string("null"));
    text += ",\"customStatus\":" + PayloadText(s.custom_status);
    text += ",\"output\":" + output + "}";
    return text;
  }

  // ---- Instances ----

  HttpResponse Start(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    HttpResponse error;
    const std::string& name = m.params.at("name");
    if (name.size() > kMaxNameChars) {
      return ErrorResponse(400, "InvalidArgument",
                           "an orchestrator name has at most " + std::to_string(kMaxNameChars) + " characters",
                           "functionName");
    }
    if (options_.is_known_orchestrator && !options_.is_known_orchestrator(name)) {
      return ErrorResponse(400, "UnknownOrchestrator", "no orchestrator named '" + name + "' is registered",
                           "functionName");
    }
    ScheduleOptions schedule;
    schedule.version = m.Query("version");
    if (schedule.version.size() > kMaxNameChars) {
      return ErrorResponse(400, "InvalidArgument", "a version has at most " + std::to_string(kMaxNameChars) + " characters",
                           "version");
    }
    std::string external_id;
    if (auto it = m.params.find("instanceId"); it != m.params.end()) {
      auto internal = Internal(c, it->second, &error);
      if (!internal) return error;
      schedule.instance_id = *internal;
      external_id = it->second;
    } else {
      // Durable Functions mints "N"-format GUIDs: 32 hex digits, no dashes.
      std::string guid = util::NewRandomUuid();
      guid.erase(std::remove(guid.begin(), guid.end(), '-'), guid.end());
      schedule.instance_id = HubPrefix(c) + guid;
      external_id = guid;
    }
    auto timeout = ParseInt(m, "timeout", -1, 0, options_.max_wait.count(), &error);
    if (!timeout) return error;
    auto polling = ParseInt(m, "pollingInterval", 1, 0, 3600, &error);
    if (!polling) return error;
    auto input = BodyPayload(req, &error);
    if (!input) return error;
    if (Status admitted = AdmitInstance(c); !admitted.ok()) {
      return admitted.code() == StatusCode::kResourceExhausted ? TooManyRequests(admitted, std::chrono::seconds(5))
                                                                : ErrorResponse(admitted);
    }
    auto id = client_.ScheduleNewOrchestration(name, *input, schedule);
    if (!id.ok()) return ErrorResponse(id.status(), "instanceId");
    if (*timeout >= 0) return WaitAndAnswer(m, c, *id, external_id, std::chrono::seconds(*timeout));
    return Accepted(m, c, external_id);
  }

  // The tenant's cap on stored instances (admin callers have none).
  Status AdmitInstance(const Caller& c) {
    if (options_.admission == nullptr || c.principal.admin) return Status::Ok();
    auto settings = directory_.GetSettings(c.hub);
    if (!settings.ok()) return Status::Ok();
    const int64_t limit = settings->limits.max_instances;
    InstanceQuery q;
    q.instance_id_prefix = HubPrefix(c);
    return options_.admission->AdmitObject(c.hub, "stored instances", limit,
                                           [&] { return client_.Count(q, limit + 1); });
  }

  HttpResponse WaitAndAnswer(const RouteMatch& m, const Caller& c, const std::string& internal_id,
                             const std::string& external_id, std::chrono::seconds timeout) {
    // The wait holds a handler thread: without a wait slot it is skipped,
    // and the answer is the 202 a wait that ran out would give.
    std::unique_ptr<tenancy::Admission::WaitSlot> slot;
    if (options_.admission != nullptr) {
      slot = options_.admission->TryWait(c.principal.admin ? std::string() : c.hub);
      if (!slot) return Accepted(m, c, external_id);
    }
    auto state = client_.WaitForCompletion(internal_id, timeout, /*include_payloads=*/true);
    if (!state.ok()) return Accepted(m, c, external_id);  // still running when the wait ended
    if (state->status == OrchestrationStatus::kCompleted) {
      std::string out = state->output.empty() ? "null" : state->output;
      return JsonResponse(200, out);
    }
    return JsonResponse(200, StatusText(c, *state, true));
  }

  HttpResponse GetStatus(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    HttpResponse error;
    auto internal = Internal(c, m.params.at("id"), &error);
    if (!internal) return error;
    auto show_history = ParseBool(m, "showHistory", false, &error);
    if (!show_history) return error;
    auto show_history_output = ParseBool(m, "showHistoryOutput", false, &error);
    if (!show_history_output) return error;
    auto show_input = ParseBool(m, "showInput", true, &error);
    if (!show_input) return error;
    auto ise_on_failure = ParseBool(m, "returnInternalServerErrorOnFailure", false, &error);
    if (!ise_on_failure) return error;

    auto state = client_.GetState(*internal, true);
    if (!state.ok()) return ErrorResponse(state.status(), "instanceId");
    Json extra = Json::object();
    if (*show_history) {
      auto history = client_.GetHistory(*internal);
      if (history.ok()) extra["historyEvents"] = HistoryJson(c, *history, *show_history_output, *show_input);
    }
    std::string body = StatusText(c, *state, *show_input, std::move(extra));
    unsigned code = 200;
    switch (state->status) {
      case OrchestrationStatus::kRunning:
      case OrchestrationStatus::kPending:
      case OrchestrationStatus::kSuspended:
      case OrchestrationStatus::kContinuedAsNew:
        code = 202;
        break;
      case OrchestrationStatus::kFailed:
        code = *ise_on_failure ? 500 : 200;
        break;
      default:
        code = 200;
    }
    HttpResponse res = JsonResponse(code, body);
    if (code == 202) {
      res.set(http::field::location, InstanceUrl(m, m.params.at("id")) + HubQuery(c, '?'));
      res.set(http::field::retry_after, "5");
    }
    return res;
  }

  HttpResponse List(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    HttpResponse error;
    InstanceQuery q;
    auto statuses = ParseStatuses(m, &error);
    if (!statuses) return error;
    q.statuses = *statuses;
    if (!ParseTimeRange(m, "createdTimeFrom", "createdTimeTo", &q.created_from, &q.created_to, &error)) return error;
    auto top = ParseInt(m, "top", 100, 1, 1000, &error);
    if (!top) return error;
    q.page_size = static_cast<int>(*top);
    auto show_input = ParseBool(m, "showInput", false, &error);
    if (!show_input) return error;
    auto order = ParseSort(m, &error);
    if (!order) return error;
    q.order = *order;
    auto prefix = ParseFilterText(m, "instanceIdPrefix", 200, &error);
    if (!prefix) return error;
    auto name = ParseFilterText(m, "name", 200, &error);
    if (!name) return error;
    q.name_prefix = *name;
    auto show_entities = ParseBool(m, "showEntities", false, &error);
    if (!show_entities) return error;
    q.exclude_entities = !*show_entities;
    auto counts = ParseBool(m, "countByStatus", false, &error);
    if (!counts) return error;
    q.count_by_status = *counts;
    q.include_payloads = true;
    q.instance_id_prefix = HubPrefix(c) + *prefix;
    q.continuation_token = std::string(req["x-ms-continuation-token"]);
    if (q.continuation_token.size() > 4096) {
      return ErrorResponse(400, "InvalidArgument", "malformed continuation token", "x-ms-continuation-token");
    }
    auto page = client_.Query(q);
    if (!page.ok()) return ErrorResponse(page.status(), "x-ms-continuation-token");
    std::string out = "[";
    for (const InstanceState& s : page->instances) out += (out.size() > 1 ? "," : "") + StatusText(c, s, *show_input);
    out += "]";
    HttpResponse res = JsonResponse(200, out);
    if (!page->continuation_token.empty()) res.set("x-ms-continuation-token", page->continuation_token);
    if (*counts) {
      // "Completed=6,Failed=2": every filter but runtimeStatus.
      std::string header;
      for (const auto& [status, n] : page->status_counts) {
        header += (header.empty() ? "" : ",") + std::string(OrchestrationStatusName(status)) + "=" + std::to_string(n);
      }
      res.set("x-baton-status-counts", header);
    }
    return res;
  }

  // Sends terminate/suspend/resume; 410 when the instance already finished.
  HttpResponse Control(const HttpRequest& req, const RouteMatch& m, const Caller& c,
                       const std::function<Status(const std::string&, const std::string&)>& action) {
    HttpResponse error;
    auto internal = Internal(c, m.params.at("id"), &error);
    if (!internal) return error;
    Status s = action(*internal, m.Query("reason"));
    if (s.code() == StatusCode::kFailedPrecondition) return ErrorResponse(410, "Gone", s.message(), "instanceId");
    if (!s.ok()) return ErrorResponse(s, "instanceId");
    HttpResponse res{http::status::accepted, 11};
    res.set(http::field::server, "baton");
    return res;
  }

  HttpResponse Terminate(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    return Control(req, m, c, [this](const std::string& id, const std::string& reason) {
      Status s = client_.Terminate(id, reason.empty() ? Json() : Json(reason), /*recursive=*/true);
      if (s.ok() && options_.on_instance_control) options_.on_instance_control();
      return s;
    });
  }
  HttpResponse Suspend(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    return Control(req, m, c, [this](const std::string& id, const std::string& reason) {
      Status s = client_.Suspend(id, reason);
      if (s.ok() && options_.on_instance_control) options_.on_instance_control();
      return s;
    });
  }
  HttpResponse Resume(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    return Control(req, m, c, [this](const std::string& id, const std::string& reason) {
      Status s = client_.Resume(id, reason);
      if (s.ok() && options_.on_instance_control) options_.on_instance_control();
      return s;
    });
  }

  HttpResponse RaiseEvent(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    HttpResponse error;
    auto internal = Internal(c, m.params.at("id"), &error);
    if (!internal) return error;
    std::string_view type = req[http::field::content_type];
    if (type.substr(0, 16) != "application/json") {
      return ErrorResponse(400, "UnsupportedContentType", "raiseEvent needs 'Content-Type: application/json'",
                           "Content-Type");
    }
    if (m.params.at("event").size() > kMaxNameChars) {
      return ErrorResponse(400, "InvalidArgument",
                           "an event name has at most " + std::to_string(kMaxNameChars) + " characters", "eventName");
    }
    auto data = BodyPayload(req, &error);
    if (!data) return error;
    Status s = client_.RaiseEvent(*internal, m.params.at("event"), *data);
    if (s.code() == StatusCode::kFailedPrecondition) return ErrorResponse(410, "Gone", s.message(), "instanceId");
    if (!s.ok()) return ErrorResponse(s, "instanceId");
    HttpResponse res{http::status::accepted, 11};
    res.set(http::field::server, "baton");
    return res;
  }

  HttpResponse Rewind(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    HttpResponse error;
    auto internal = Internal(c, m.params.at("id"), &error);
    if (!internal) return error;
    Status s = client_.Rewind(*internal, m.Query("reason"));
    if (s.code() == StatusCode::kFailedPrecondition) {
      return ErrorResponse(412, "FailedPrecondition", s.message(), "instanceId");
    }
    if (!s.ok()) return ErrorResponse(s, "instanceId");
    HttpResponse res{http::status::accepted, 11};
    res.set(http::field::server, "baton");
    return res;
  }

  HttpResponse Restart(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    HttpResponse error;
    auto internal = Internal(c, m.params.at("id"), &error);
    if (!internal) return error;
    auto new_id = ParseBool(m, "restartWithNewInstanceId", true, &error);
    if (!new_id) return error;
    auto timeout = ParseInt(m, "timeout", -1, 0, options_.max_wait.count(), &error);
    if (!timeout) return error;
    auto restarted = client_.Restart(*internal, *new_id);
    if (restarted.status().code() == StatusCode::kFailedPrecondition) {
      return ErrorResponse(409, "Conflict", restarted.status().message(), "instanceId");
    }
    if (!restarted.ok()) return ErrorResponse(restarted.status(), "instanceId");
    std::string external = External(c, *restarted);
    if (*timeout >= 0) return WaitAndAnswer(m, c, *restarted, external, std::chrono::seconds(*timeout));
    return Accepted(m, c, external);
  }

  HttpResponse PurgeOne(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    HttpResponse error;
    auto internal = Internal(c, m.params.at("id"), &error);
    if (!internal) return error;
    auto purged = client_.Purge(*internal);
    if (!purged.ok()) return ErrorResponse(purged.status(), "instanceId");
    return JsonResponse(200, Json{{"instancesDeleted", *purged}});
  }

  HttpResponse PurgeByFilter(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    HttpResponse error;
    if (!m.Has("createdTimeFrom")) {
      return ErrorResponse(400, "InvalidArgument", "createdTimeFrom is required to purge by filter",
                           "createdTimeFrom");
    }
    PurgeFilter filter;
    auto from = ParseTime(m, "createdTimeFrom", &error);
    if (!from) return error;
    auto to = ParseTime(m, "createdTimeTo", &error);
    if (!to) return error;
    auto statuses = ParseStatuses(m, &error);
    if (!statuses) return error;
    auto dry_run = ParseBool(m, "dryRun", false, &error);
    if (!dry_run) return error;
    filter.created_from = *from;
    filter.created_to = *to;
    filter.statuses = *statuses;
    filter.instance_id_prefix = HubPrefix(c);
    if (*dry_run) {
      // What the purge would delete: the terminal instances among the matches.
      InstanceQuery q;
      q.instance_id_prefix = filter.instance_id_prefix;
      q.created_from = filter.created_from;
      q.created_to = filter.created_to;
      for (OrchestrationStatus st : {OrchestrationStatus::kCompleted, OrchestrationStatus::kFailed,
                                     OrchestrationStatus::kCanceled, OrchestrationStatus::kTerminated}) {
        if (filter.statuses.empty() ||
            std::find(filter.statuses.begin(), filter.statuses.end(), st) != filter.statuses.end()) {
          q.statuses.push_back(st);
        }
      }
      int64_t matched = 0;
      if (!q.statuses.empty()) {
        auto counted = client_.Count(q, kMaxDryRunCount);
        if (!counted.ok()) return ErrorResponse(counted.status());
        matched = *counted;
      }
      return JsonResponse(200, Json{{"instancesDeleted", 0}, {"instancesMatched", matched},
                                    {"dryRun", true}, {"matchedAtLeast", matched >= kMaxDryRunCount}});
    }
    auto purged = client_.Purge(filter);
    if (!purged.ok()) return ErrorResponse(purged.status());
    if (*purged == 0) return ErrorResponse(404, "NotFound", "no terminal instance matches the filter");
    return JsonResponse(200, Json{{"instancesDeleted", *purged}});
  }

  // ---- Entities ----

  // The store id of entity {name}/{key} in the caller's hub, or an error.
  static std::optional<std::string> EntityInternal(const Caller& c, const RouteMatch& m, HttpResponse* error) {
    const std::string& name = m.params.at("name");
    std::string key = m.params.count("key") ? m.params.at("key") : std::string();
    if (key == "$") key.clear();
    auto bad = [](std::string_view v) {
      return std::any_of(v.begin(), v.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f; });
    };
    if (name.empty() || name.size() > 100 || name.find('@') != std::string::npos || bad(name)) {
      *error = ErrorResponse(400, "InvalidArgument", "an entity name has 1 to 100 characters and no '@'", "entityName");
      return std::nullopt;
    }
    if (bad(key)) {
      *error = ErrorResponse(400, "InvalidArgument", "an entity key has no control characters", "entityKey");
      return std::nullopt;
    }
    std::string id = EntityId(name, key).ToInstanceId();
    if (id.size() > kMaxInstanceIdChars) {
      *error = ErrorResponse(400, "InvalidArgument",
                             "an entity's instance id '@name@key' has at most " + std::to_string(kMaxInstanceIdChars) +
                                 " characters",
                             "entityKey");
      return std::nullopt;
    }
    return HubPrefix(c) + id;
  }

  HttpResponse GetEntity(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    HttpResponse error;
    auto id = EntityInternal(c, m, &error);
    if (!id) return error;
    auto entity = client_.GetEntity(*id);
    if (!entity.ok() || !entity->has_state) {
      return ErrorResponse(404, "NotFound", "entity '" + m.params.at("name") + "/" + m.params.at("key") + "' has no state",
                           "entityKey");
    }
    return JsonResponse(200, entity->state);
  }

  HttpResponse ListEntities(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    HttpResponse error;
    const std::string& name = m.params.at("name");
    if (name.empty() || name.find('@') != std::string::npos) {
      return ErrorResponse(400, "InvalidArgument", "an entity name has no '@'", "entityName");
    }
    EntityQuery q;
    q.hub = c.hub;
    std::string lower = name;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    q.name_prefix = lower + "@";  // exactly this name
    auto from = ParseTime(m, "lastOperationTimeFrom", &error);
    if (!from) return error;
    auto to = ParseTime(m, "lastOperationTimeTo", &error);
    if (!to) return error;
    q.last_modified_from = *from;
    q.last_modified_to = *to;
    auto fetch_state = ParseBool(m, "fetchState", false, &error);
    if (!fetch_state) return error;
    q.include_state = *fetch_state;
    auto top = ParseInt(m, "top", 100, 1, 1000, &error);
    if (!top) return error;
    q.page_size = static_cast<int>(*top);
    q.continuation_token = std::string(req["x-ms-continuation-token"]);
    auto page = client_.QueryEntities(q);
    if (!page.ok()) return ErrorResponse(page.status(), "x-ms-continuation-token");
    Json out = Json::array();
    for (const EntityState& e : page->entities) {
      Json j = {{"entityId", {{"name", e.id.name}, {"key", e.id.key}}}, {"lastOperationTime", DfTime(e.last_modified)}};
      if (*fetch_state) j["state"] = FromPayload(e.state);
      if (!e.locked_by.empty()) j["lockedBy"] = External(c, e.locked_by);
      out.push_back(std::move(j));
    }
    HttpResponse res = JsonResponse(200, out);
    if (!page->continuation_token.empty()) res.set("x-ms-continuation-token", page->continuation_token);
    return res;
  }

  HttpResponse Signal(const HttpRequest& req, const RouteMatch& m, const Caller& c, const std::string& operation,
                      bool has_body) {
    HttpResponse error;
    auto id = EntityInternal(c, m, &error);
    if (!id) return error;
    if (operation.empty()) return ErrorResponse(400, "InvalidArgument", "the operation is required: ?op=<name>", "op");
    if (operation.size() > kMaxNameChars) {
      return ErrorResponse(400, "InvalidArgument",
                           "an operation name has at most " + std::to_string(kMaxNameChars) + " characters", "op");
    }
    JsonText input;
    if (has_body) {
      std::string_view type = req[http::field::content_type];
      if (type.substr(0, 16) == "application/json") {
        auto parsed = BodyPayload(req, &error);
        if (!parsed) return error;
        input = std::move(*parsed);
      } else if (!req.body().empty()) {
        if (!util::IsValidUtf8(req.body())) {
          return ErrorResponse(400, "InvalidArgument", "a body that is not JSON is taken as text and must be UTF-8",
                               "body");
        }
        input.text = ToPayload(Json(req.body()));  // the text, as a JSON string
      }
    }
    if (!client_.GetState(*id, /*include_payloads=*/false).ok()) {  // a signal to a new entity creates it
      if (Status admitted = AdmitInstance(c); !admitted.ok()) {
        return admitted.code() == StatusCode::kResourceExhausted ? TooManyRequests(admitted, std::chrono::seconds(5))
                                                                  : ErrorResponse(admitted);
      }
    }
    Status s = client_.SignalEntity(*id, operation, input);
    if (!s.ok()) return ErrorResponse(s, "entityKey");
    HttpResponse res{http::status::accepted, 11};
    res.set(http::field::server, "baton");
    return res;
  }

  HttpResponse SignalEntity(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    return Signal(req, m, c, m.Query("op"), true);
  }
  HttpResponse DeleteEntity(const HttpRequest& req, const RouteMatch& m, const Caller& c) { return Signal(req, m, c, "delete", false); }

  HttpResponse CleanEntities(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    HttpResponse error;
    auto body = ParseObjectBody(req, /*empty_ok=*/true, &error);
    if (!body) return error;
    auto remove_empty = BoolMember(*body, "removeEmptyEntities", true, &error);
    if (!remove_empty) return error;
    auto release_locks = BoolMember(*body, "releaseOrphanedLocks", true, &error);
    if (!release_locks) return error;
    auto cleaned = client_.CleanEntityStorage(c.hub, *remove_empty, *release_locks);
    if (!cleaned.ok()) return ErrorResponse(cleaned.status());
    return JsonResponse(200, Json{{"emptyEntitiesRemoved", cleaned->empty_entities_removed},
                                  {"orphanedLocksReleased", cleaned->orphaned_locks_released}});
  }

  // ---- Admin ----

  static Json TenantJson(const tenancy::Tenant& t) {
    return {{"id", t.id}, {"displayName", t.display_name}, {"disabled", t.disabled}, {"createdTime", DfTime(t.created_at)}};
  }
  static Json KeyJson(const tenancy::ApiKey& k) {
    return {{"keyId", k.key_id},
            {"tenantId", k.tenant_id},
            {"name", k.name},
            {"createdTime", DfTime(k.created_at)},
            {"expiresTime", k.expires_at ? Json(DfTime(*k.expires_at)) : Json(nullptr)},
            {"revoked", k.revoked}};
  }

  HttpResponse CreateTenant(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    HttpResponse error;
    auto body = ParseObjectBody(req, /*empty_ok=*/false, &error);
    if (!body) return error;
    if (!body->contains("id") || !(*body)["id"].is_string()) {
      return ErrorResponse(400, "InvalidArgument", "the body must be {\"id\": \"<tenant id>\", \"displayName\": \"…\"}",
                           "id");
    }
    auto display = StringMember(*body, "displayName", "", &error);
    if (!display) return error;
    auto tenant = directory_.CreateTenant((*body)["id"].get<std::string>(), *display);
    if (!tenant.ok()) return ErrorResponse(tenant.status(), "id");
    if (options_.default_quota.is_object()) {
      // A new tenant starts with the server's default quota, never unlimited
      // (a signal to the scheduler: durable once this answers).
      Json quota = options_.default_quota;
      quota["tenant"] = tenant->id;
      if (Status s = client_.SignalEntity(EntityId(batch::kSchedulerEntity, batch::kSchedulerKey), "setTenant", quota);
          !s.ok()) {
        return ErrorResponse(s);
      }
    }
    return JsonResponse(201, TenantJson(*tenant));
  }

  HttpResponse ListTenants(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    auto tenants = directory_.ListTenants();
    if (!tenants.ok()) return ErrorResponse(tenants.status());
    Json out = Json::array();
    for (const auto& t : *tenants) out.push_back(TenantJson(t));
    return JsonResponse(200, out);
  }

  HttpResponse DisableTenant(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    Status s = directory_.DisableTenant(m.params.at("tenant"));
    if (!s.ok()) return ErrorResponse(s, "tenant");
    auto tenant = directory_.GetTenant(m.params.at("tenant"));
    if (!tenant.ok()) return ErrorResponse(tenant.status(), "tenant");
    return JsonResponse(200, TenantJson(*tenant));
  }

  HttpResponse EnableTenant(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    Status s = directory_.EnableTenant(m.params.at("tenant"));
    if (!s.ok()) return ErrorResponse(s, "tenant");
    auto tenant = directory_.GetTenant(m.params.at("tenant"));
    if (!tenant.ok()) return ErrorResponse(tenant.status(), "tenant");
    return JsonResponse(200, TenantJson(*tenant));
  }

  static HttpResponse SettingsResponse(const std::string& tenant, const tenancy::TenantSettings& settings) {
    Json out = tenancy::SettingsToJson(settings);
    out["tenant"] = tenant;
    return JsonResponse(200, out);
  }

  HttpResponse GetTenantSettings(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    const std::string& tenant = m.params.at("tenant");
    auto settings = directory_.GetSettings(tenant);
    if (!settings.ok()) return ErrorResponse(settings.status(), "tenant");
    return SettingsResponse(tenant, *settings);
  }

  // A merge patch: the members given change, the others stay.
  HttpResponse UpdateTenantSettings(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    HttpResponse error;
    auto body = ParseBody(req, &error);
    if (!body) return error;
    const std::string& tenant = m.params.at("tenant");
    auto settings = directory_.UpdateSettings(tenant, *body);
    if (!settings.ok()) {
      const Status& s = settings.status();
      if (s.code() == StatusCode::kNotFound) return ErrorResponse(s, "tenant");
      const std::string& text = s.message();
      return ErrorResponse(s, text.substr(0, text.find(": ")));
    }
    return SettingsResponse(tenant, *settings);
  }

  HttpResponse CreateKey(const HttpRequest& req, const std::string& tenant_id) {
    HttpResponse error;
    auto body = ParseObjectBody(req, /*empty_ok=*/true, &error);
    if (!body) return error;
    auto name = StringMember(*body, "name", "", &error);
    if (!name) return error;
    // Expiry: "expiresIn" (a duration, 1m to 10 years) or "expiresTime" (UTC).
    std::optional<TimePoint> expires_at;
    if (body->contains("expiresIn") && body->contains("expiresTime")) {
      return ErrorResponse(400, "InvalidArgument", "give expiresIn or expiresTime, not both", "expiresIn");
    }
    if (body->contains("expiresIn")) {
      const Json& in = (*body)["expiresIn"];
      auto age = in.is_string() ? util::ParseDuration(in.get<std::string>(), std::chrono::minutes(1),
                                                      std::chrono::hours(24 * 3653))
                                : Result<std::chrono::seconds>(InvalidArgumentError("must be a duration such as 90d"));
      if (!age.ok()) return ErrorResponse(400, "InvalidArgument", age.status().message(), "expiresIn");
      expires_at = SystemClock()->Now() + *age;
    }
    if (body->contains("expiresTime")) {
      TimePoint t;
      const Json& at = (*body)["expiresTime"];
      if (!at.is_string() || !ParseIso8601(at.get<std::string>(), &t)) {
        return ErrorResponse(400, "InvalidArgument", "must be a UTC time such as 2030-01-31T00:00:00Z", "expiresTime");
      }
      expires_at = t;
    }
    auto key = directory_.CreateKey(tenant_id, *name, expires_at);
    if (!key.ok()) return ErrorResponse(key.status(), "tenant");
    Json out = KeyJson(key->first);
    out["key"] = key->second;
    return JsonResponse(201, out);
  }

  HttpResponse CreateTenantKey(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    return CreateKey(req, m.params.at("tenant"));
  }

  HttpResponse CreateAdminKey(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    return CreateKey(req, "");
  }

  HttpResponse ListTenantKeys(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    auto tenant = directory_.GetTenant(m.params.at("tenant"));
    if (!tenant.ok()) return ErrorResponse(tenant.status(), "tenant");
    auto keys = directory_.ListKeys(tenant->id);
    if (!keys.ok()) return ErrorResponse(keys.status());
    Json out = Json::array();
    for (const auto& k : *keys) out.push_back(KeyJson(k));
    return JsonResponse(200, out);
  }

  HttpResponse RevokeKey(const HttpRequest& req, const RouteMatch& m, const Caller& c) {
    Status s = directory_.RevokeKey(m.params.at("key"));
    if (!s.ok()) return ErrorResponse(s, "keyId");
    return JsonResponse(200, Json{{"keyId", m.params.at("key")}, {"revoked", true}});
  }

  Client& client_;
  tenancy::TenantDirectory& directory_;
  ManagementApiOptions options_;
};

}  // namespace

void AddManagementApi(Router& router, Client& client, tenancy::TenantDirectory& directory,
                      ManagementApiOptions options) {
  auto api = std::make_shared<Api>(client, directory, std::move(options));
  api->Register(router);
}

}  // namespace baton::api
