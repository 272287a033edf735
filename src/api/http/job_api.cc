#include "api/http/job_api.h"

#include <set>
#include <thread>

#include "api/http/request_util.h"
#include "batch/job_policy.h"
#include "batch/job_view.h"
#include "batch/runtime_support.h"
#include "batch/scheduler.h"

namespace baton::api {
namespace {

namespace http = boost::beast::http;
using http::verb;
using namespace std::chrono_literals;

constexpr size_t kMaxProgressBytes = 16 * 1024;
constexpr int kMaxListScanPages = 20;

const EntityId& Scheduler() {
  static const EntityId id(batch::kSchedulerEntity, batch::kSchedulerKey);
  return id;
}

HttpResponse Accepted(const Json& view) {
  HttpResponse r = JsonResponse(202, view);
  r.set(http::field::location, view["urls"]["self"].get<std::string>());
  return r;
}

Json LogLineJson(const runtime::LogLine& l) {
  return Json{{"stream", l.stream == runtime::LogLine::Stream::kStderr ? "stderr" : "stdout"},
              {"time", FormatIso8601(l.time)},
              {"text", l.text}};
}

class JobApi : public std::enable_shared_from_this<JobApi> {
 public:
  explicit JobApi(JobApiServices s) : s_(s) {}

  void Register(Router& r) {
    r.Add(verb::post, "/api/v1/jobs", Bind(&JobApi::Submit));
    r.Add(verb::get, "/api/v1/jobs", Bind(&JobApi::List));
    r.Add(verb::get, "/api/v1/jobs/{id}", Bind(&JobApi::Get));
    r.Add(verb::delete_, "/api/v1/jobs/{id}", Bind(&JobApi::Delete));
    r.Add(verb::post, "/api/v1/jobs/{id}/cancel", Bind(&JobApi::Cancel));
    r.Add(verb::get, "/api/v1/jobs/{id}/logs", Bind(&JobApi::Logs));
    r.Add(verb::get, "/api/v1/jobs/{id}/events", Bind(&JobApi::Events));
    RegisterCallback(r);
    r.Add(verb::get, "/api/v1/quota", Bind(&JobApi::OwnQuota));
    r.Add(verb::put, "/api/v1/admin/tenants/{tenant}/quota", BindAdmin(&JobApi::SetQuota));
    r.Add(verb::get, "/api/v1/admin/tenants/{tenant}/quota", BindAdmin(&JobApi::GetQuota));
    r.Add(verb::get, "/api/v1/admin/scheduler", BindAdmin(&JobApi::SchedulerState));
  }

  void RegisterCallback(Router& r) {
    r.Add(verb::post, "/api/v1/jobs/{id}/callback",
          [self = shared_from_this()](const HttpRequest& req, const RouteMatch& m) { return self->Callback(req, m); });
  }

 private:
  using Method = HttpResponse (JobApi::*)(const HttpRequest&, const RouteMatch&, const std::string& tenant);

  // A tenant key's routes: `tenant` is the caller's tenant.
  Handler Bind(Method m) {
    return [self = shared_from_this(), m](const HttpRequest& req, const RouteMatch& match) {
      auto principal = AuthenticateBearer(req, *self->s_.directory, self->s_.admission);
      if (auto* refused = std::get_if<HttpResponse>(&principal)) return std::move(*refused);
      const tenancy::Principal& p = std::get<tenancy::Principal>(principal);
      if (p.admin) {
        return ErrorResponse(403, "PermissionDenied",
                             "jobs belong to tenants: submit and read them with a tenant key", "Authorization");
      }
      return ((*self).*m)(req, match, p.tenant_id);
    };
  }
  Handler BindAdmin(Method m) {
    return [self = shared_from_this(), m](const HttpRequest& req, const RouteMatch& match) {
      auto principal = AuthenticateBearer(req, *self->s_.directory, self->s_.admission);
      if (auto* refused = std::get_if<HttpResponse>(&principal)) return std::move(*refused);
      if (!std::get<tenancy::Principal>(principal).admin) {
        return ErrorResponse(403, "PermissionDenied", "this endpoint needs an admin key", "Authorization");
      }
      return ((*self).*m)(req, match, "");
    };
  }

  Json SchedulerSnapshot() {
    auto e = s_.client->GetEntity(Scheduler());
    if (!e.ok() || !e->has_state) return Json::object();
    Json state = FromPayload(e->state);
    return state.is_object() ? state : Json::object();
  }

  // The job's state, or the 404 / 400 to answer.
  std::variant<InstanceState, HttpResponse> Find(const RouteMatch& m, const std::string& tenant) {
    const std::string& id = m.params.at("id");
    if (!batch::IsJobId(id)) {
      return ErrorResponse(400, "InvalidArgument", "a job id is 16 lower-case hex digits", "id");
    }
    auto state = s_.client->GetState(batch::JobInstanceId(tenant, id), /*include_payloads=*/true);
    if (!state.ok() && state.status().code() == StatusCode::kNotFound) {
      return ErrorResponse(404, "NotFound", "job '" + id + "' was not found", "id");
    }
    if (!state.ok()) return ErrorResponse(state.status());
    return *state;
  }

  // ---- Jobs ----

  HttpResponse Submit(const HttpRequest& req, const RouteMatch&, const std::string& tenant) {
    HttpResponse error;
    auto body = ParseBody(req, &error);
    if (!body) return error;
    if (!body->is_object()) return ErrorResponse(400, "InvalidArgument", "the body must be a job spec (a JSON object)", "body");
    auto spec = batch::ParseJobSpec(*body);
    if (!spec.ok()) return ErrorResponse(400, "InvalidArgument", spec.status().message(), batch::FieldOf(spec.status()));
    auto settings = s_.directory->GetSettings(tenant);
    if (!settings.ok()) return ErrorResponse(settings.status());
    batch::JobGrants grants{settings->grants.host_network, settings->grants.capabilities,
                            settings->grants.image_prefixes};
    if (Status s = batch::CheckJobPolicy(*spec, tenant, s_.platform_registry, grants); !s.ok()) {
      return ErrorResponse(s, batch::FieldOf(s));
    }
    if (Status s = batch::CheckRuntimeSupport(
            *spec, s_.runtime != nullptr ? s_.runtime->Features() : runtime::RuntimeFeatures{}); !s.ok()) {
      return ErrorResponse(422, "NotSupported", s.message(), batch::FieldOf(s));
    }
    Json scheduler = SchedulerSnapshot();
    Json capacity = scheduler.value("capacity", Json::object());
    // A cluster's job must fit one node: its largest (cluster_capacity.h).
    const bool cluster = capacity.contains("largestNode") && capacity["largestNode"].is_object();
    // No capacity at all is not "too large": the cluster's nodes were never
    // read (its manager was away since the deployment's first start), or none
    // is ready and active now. Say so and store nothing; the client retries.
    if (capacity.value("cpu", 0.0) <= 0 && capacity.value("memoryMb", 0.0) <= 0) {
      HttpResponse res = ErrorResponse(
          503, "Unavailable",
          cluster ? "the cluster has no ready and active node now (GET /api/v1/admin/scheduler shows its capacity)"
                  : "the capacity for jobs is not known yet: the container runtime (for --runtime swarm, the swarm "
                    "manager) has not been read since the deployment started",
          "");
      res.set(http::field::retry_after, "5");
      return res;
    }
    if (cluster) capacity = capacity["largestNode"];
    batch::Capacity node{capacity.value("cpu", 0.0), static_cast<int64_t>(capacity.value("memoryMb", 0.0)) << 20};
    if (Status s = batch::FitsWithin(*spec, node, cluster ? "the largest node of the cluster has" : "the node has");
        !s.ok()) {
      return ErrorResponse(422, "NeverFits", s.message(), batch::FieldOf(s));
    }
    Json quota = scheduler.value("tenants", Json::object()).value(tenant, Json::object()).value("quota", Json::object());
    batch::Capacity limit{quota.value("cpu", 0.0), static_cast<int64_t>(quota.value("memoryMb", 0.0)) << 20};
    if (Status s = batch::FitsWithin(*spec, limit, "the tenant's quota allows"); !s.ok()) {
      return ErrorResponse(422, "NeverFits", s.message(), batch::FieldOf(s));
    }
    if (s_.admission != nullptr) {
      const int64_t limit = settings->limits.max_queued_jobs;
      InstanceQuery unfinished;
      unfinished.instance_id_prefix = batch::JobInstanceId(tenant, "");
      unfinished.statuses = {OrchestrationStatus::kPending, OrchestrationStatus::kRunning,
                             OrchestrationStatus::kSuspended};
      Status admitted = s_.admission->AdmitObject(tenant, "unfinished jobs", limit,
                                                  [&] { return s_.client->Count(unfinished, limit + 1); });
      if (admitted.code() == StatusCode::kResourceExhausted) return TooManyRequests(admitted, 5s);
      if (!admitted.ok()) return ErrorResponse(admitted);
    }
    const std::string id = batch::NewJobId();
    const std::string instance = batch::JobInstanceId(tenant, id);
    if (Status s = s_.vault->Put(instance, *spec); !s.ok()) return ErrorResponse(s);
    ScheduleOptions options;
    options.instance_id = instance;
    auto scheduled = s_.client->ScheduleNewOrchestration(batch::kJobOrchestrator,
                                                         batch::JobInput(instance, tenant, *spec, id), options);
    if (!scheduled.ok()) return ErrorResponse(scheduled.status());
    auto state = s_.client->GetState(instance, true);
    if (!state.ok()) return ErrorResponse(state.status());
    return Accepted(batch::JobView(*state, scheduler));
  }

  HttpResponse Get(const HttpRequest&, const RouteMatch& m, const std::string& tenant) {
    auto found = Find(m, tenant);
    if (auto* e = std::get_if<HttpResponse>(&found)) return std::move(*e);
    const InstanceState& s = std::get<InstanceState>(found);
    Json scheduler = batch::JobStatusOf(s) == "Queued" ? SchedulerSnapshot() : Json::object();
    return JsonResponse(200, batch::JobView(s, scheduler));
  }

  HttpResponse List(const HttpRequest&, const RouteMatch& m, const std::string& tenant) {
    HttpResponse error;
    auto page_size = ParseInt(m, "pageSize", 50, 1, 500, &error);
    if (!page_size) return error;
    std::set<std::string> statuses;
    const std::string wanted = m.Query("status");
    static const std::set<std::string> kStatuses = {"Pending", "Queued",    "Starting", "Running",
                                                     "BackingOff", "Completed", "Failed", "Canceled"};
    for (size_t i = 0; i < wanted.size();) {
      size_t j = wanted.find(',', i);
      if (j == std::string::npos) j = wanted.size();
      std::string name = wanted.substr(i, j - i);
      if (!name.empty() && !kStatuses.count(name)) {
        return ErrorResponse(400, "InvalidArgument",
                             "unknown status '" + name +
                                 "' (Pending, Queued, Starting, Running, BackingOff, Completed, Failed, Canceled)",
                             "status");
      }
      if (!name.empty()) statuses.insert(name);
      i = j + 1;
    }
    const std::string name = m.Query("name");
    InstanceQuery q;
    q.instance_id_prefix = batch::JobInstanceId(tenant, "");
    q.include_payloads = true;
    q.page_size = static_cast<int>(*page_size);
    q.continuation_token = m.Query("continuationToken");
    Json scheduler = SchedulerSnapshot();
    Json jobs = Json::array();
    std::string next;
    // Filters apply to what is read; keep reading until a page is full.
    for (int pages = 0; pages < kMaxListScanPages; ++pages) {
      auto page = s_.client->Query(q);
      if (!page.ok()) return ErrorResponse(page.status(), "continuationToken");
      for (const InstanceState& s : page->instances) {
        if (s.name != batch::kJobOrchestrator) continue;
        Json view = batch::JobView(s, scheduler, /*brief=*/true);
        if (!statuses.empty() && !statuses.count(view["status"].get<std::string>())) continue;
        if (!name.empty() && view["name"] != name) continue;
        jobs.push_back(std::move(view));
      }
      next = page->continuation_token;
      if (next.empty() || static_cast<int64_t>(jobs.size()) >= *page_size) break;
      q.continuation_token = next;
    }
    Json out = {{"jobs", jobs}};
    if (!next.empty()) out["continuationToken"] = next;
    return JsonResponse(200, out);
  }

  HttpResponse Cancel(const HttpRequest&, const RouteMatch& m, const std::string& tenant) {
    auto found = Find(m, tenant);
    if (auto* e = std::get_if<HttpResponse>(&found)) return std::move(*e);
    const InstanceState& s = std::get<InstanceState>(found);
    if (IsTerminal(s.status)) {
      return ErrorResponse(409, "FailedPrecondition", "the job already ended (" + batch::JobStatusOf(s) + ")", "id");
    }
    if (Status st = s_.client->RaiseEvent(s.instance_id, batch::kCancelEvent, Json::object()); !st.ok()) {
      return ErrorResponse(st);
    }
    auto now = s_.client->GetState(s.instance_id, true);
    if (!now.ok()) return ErrorResponse(now.status());
    return Accepted(batch::JobView(*now, Json::object()));
  }

  // Deletes a finished job: its kept logs, its secrets (normally gone
  // already), then its instance and history — the order retention uses, so
  // that a delete cut short is finished by repeating it.
  HttpResponse Delete(const HttpRequest&, const RouteMatch& m, const std::string& tenant) {
    auto found = Find(m, tenant);
    if (auto* e = std::get_if<HttpResponse>(&found)) return std::move(*e);
    const InstanceState& s = std::get<InstanceState>(found);
    if (!IsTerminal(s.status)) {
      return ErrorResponse(409, "FailedPrecondition",
                           "the job has not ended (" + batch::JobStatusOf(s) + "): cancel it first", "id");
    }
    if (s_.logs != nullptr) {
      if (Status st = s_.logs->Delete(s.instance_id); !st.ok()) return ErrorResponse(st);
    }
    if (Status st = s_.vault->Delete(s.instance_id); !st.ok()) return ErrorResponse(st);
    auto purged = s_.client->Purge(s.instance_id);
    if (!purged.ok() && purged.status().code() != StatusCode::kNotFound) return ErrorResponse(purged.status());
    return JsonResponse(200, Json{{"id", m.params.at("id")}, {"deleted", true}});
  }

  HttpResponse Events(const HttpRequest&, const RouteMatch& m, const std::string& tenant) {
    auto found = Find(m, tenant);
    if (auto* e = std::get_if<HttpResponse>(&found)) return std::move(*e);
    auto history = s_.client->GetHistory(std::get<InstanceState>(found).instance_id);
    if (!history.ok()) return ErrorResponse(history.status());
    return JsonResponse(200, Json{{"events", batch::JobTimeline(*history)}});
  }

  HttpResponse Logs(const HttpRequest&, const RouteMatch& m, const std::string& tenant) {
    auto found = Find(m, tenant);
    if (auto* e = std::get_if<HttpResponse>(&found)) return std::move(*e);
    InstanceState s = std::get<InstanceState>(found);
    HttpResponse error;
    auto requested = ParseInt(m, "attempt", 0, 1, 1000, &error);
    if (!requested) return error;
    const bool pinned = m.Has("attempt");  // else: the latest attempt, as it changes
    auto after = ParseInt(m, "after", 0, 0, 1LL << 40, &error);
    if (!after) return error;
    auto follow = ParseBool(m, "follow", false, &error);
    if (!follow) return error;
    // A follow holds a handler thread while it waits: without a wait slot
    // (Admission::TryWait) it answers at once, as a follow may.
    std::unique_ptr<tenancy::Admission::WaitSlot> wait_slot;
    if (*follow && s_.admission != nullptr) {
      wait_slot = s_.admission->TryWait(tenant);
      if (!wait_slot) *follow = false;
    }
    auto timeout = ParseInt(m, "timeout", 20, 1, s_.max_follow.count(), &error);
    if (!timeout) return error;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(*timeout);
    for (;;) {
      Json custom = FromPayload(s.custom_status);
      const int latest = custom.is_object() ? custom.value("attempt", 0) : 0;
      const int attempt = pinned ? static_cast<int>(*requested) : latest;
      Json lines = Json::array();
      bool done = false;
      if (s_.logs != nullptr && attempt > 0) {
        auto kept = s_.logs->Read(s.instance_id, attempt, static_cast<size_t>(*after), 5000);
        if (kept.ok()) {
          for (const auto& l : *kept) lines.push_back(LogLineJson(l));
          done = kept->size() < 5000;
        }
      }
      bool from_container = false;
      if (lines.empty() && !done && attempt > 0) {
        auto group = s_.runtime->InspectGroup(batch::JobGroupName(s.instance_id, attempt));
        if (group.ok()) {
          from_container = true;
          // Only the page asked for is kept in memory, whatever the job printed.
          auto page = s_.runtime->LogsRange(group->containers[0].id, static_cast<size_t>(*after), 5000);
          if (page.ok()) {
            for (const runtime::LogLine& l : *page) lines.push_back(LogLineJson(l));
          }
        }
      }
      if (lines.empty() && !done && !from_container) {
        // Neither kept nor running: over if the job ended or moved on.
        done = IsTerminal(s.status) || latest > attempt;
      }
      const bool wait = *follow && lines.empty() && !done && std::chrono::steady_clock::now() < deadline;
      if (!wait) {
        Json out = {{"attempt", attempt},
                    {"lines", lines},
                    {"next", *after + static_cast<int64_t>(lines.size())},
                    {"done", done && lines.empty()}};
        return JsonResponse(200, out);
      }
      std::this_thread::sleep_for(250ms);
      auto now = s_.client->GetState(s.instance_id, true);
      if (now.ok()) s = *now;
    }
  }

  // ---- The job's own container ----

  HttpResponse Callback(const HttpRequest& req, const RouteMatch& m) {
    const std::string token = BearerToken(req);
    if (token.empty()) {
      return ErrorResponse(401, "Unauthenticated", "an 'Authorization: Bearer <BATON_JOB_TOKEN>' header is required",
                           "Authorization");
    }
    if (s_.tokens == nullptr) return ErrorResponse(501, "Unimplemented", "callbacks are not enabled", "");
    auto claims = s_.tokens->Verify(token);
    if (!claims.ok()) return ErrorResponse(401, "Unauthenticated", claims.status().message(), "Authorization");
    // A job's reports count against its tenant's request rate.
    if (s_.admission != nullptr && claims->instance.rfind(batch::kJobInstancePrefix, 0) == 0) {
      const std::string rest = claims->instance.substr(std::string(batch::kJobInstancePrefix).size());
      std::chrono::milliseconds retry_after{1000};
      if (Status admitted = s_.admission->AdmitRequest(rest.substr(0, rest.find('.')), &retry_after); !admitted.ok()) {
        return TooManyRequests(admitted, retry_after, "Authorization");
      }
    }
    const std::string& id = m.params.at("id");
    const std::string suffix = "." + id;
    if (!batch::IsJobId(id) || claims->instance.size() <= suffix.size() ||
        claims->instance.compare(claims->instance.size() - suffix.size(), suffix.size(), suffix) != 0) {
      return ErrorResponse(403, "PermissionDenied", "this token belongs to another job", "Authorization");
    }
    auto s = s_.client->GetState(claims->instance, true);
    if (!s.ok()) return ErrorResponse(404, "NotFound", "job '" + id + "' was not found", "id");
    Json custom = FromPayload(s->custom_status);
    const bool current = !IsTerminal(s->status) && custom.is_object() && custom.value("attempt", 0) == claims->attempt &&
                         (custom.value("phase", "") == "running" || custom.value("phase", "") == "starting");
    if (!current) {
      return ErrorResponse(409, "FailedPrecondition",
                           "attempt " + std::to_string(claims->attempt) + " of this job is over", "Authorization");
    }
    HttpResponse error;
    auto body = ParseBody(req, &error);
    if (!body) return error;
    if (!body->is_object() || (!body->contains("progress") && !body->contains("status"))) {
      return ErrorResponse(400, "InvalidArgument", "the body is {\"progress\": …} or {\"status\": \"Completed\"|\"Failed\"}",
                           "body");
    }
    std::string status;
    if (body->contains("status")) {
      status = (*body)["status"].is_string() ? (*body)["status"].get<std::string>() : "";
      if (status != "Completed" && status != "Failed") {
        return ErrorResponse(400, "InvalidArgument", "status is \"Completed\" or \"Failed\"", "status");
      }
      if (body->contains("exitCode") && !JsonInteger((*body)["exitCode"], INT32_MIN, INT32_MAX)) {
        return ErrorResponse(400, "InvalidArgument", "exitCode is an integer from -2147483648 to 2147483647",
                             "exitCode");
      }
    }
    if (body->contains("progress")) {
      if ((*body)["progress"].dump().size() > kMaxProgressBytes) {
        return ErrorResponse(400, "InvalidArgument", "progress is at most 16 KiB of JSON", "progress");
      }
      Json data = {{"attempt", claims->attempt}, {"progress", (*body)["progress"]}};
      if (Status st = s_.client->RaiseEvent(claims->instance, batch::kProgressEvent, data); !st.ok()) {
        return ErrorResponse(st);
      }
    }
    if (!status.empty()) {
      Json data = {{"attempt", claims->attempt}, {"source", "callback"}};
      if (body->contains("exitCode")) data["exitCode"] = (*body)["exitCode"];
      if (body->contains("message") && (*body)["message"].is_string()) {
        data["message"] = (*body)["message"].get<std::string>().substr(0, 1000);
      }
      const char* event = status == "Completed" ? batch::kCompletedEvent : batch::kFailedEvent;
      if (Status st = s_.client->RaiseEvent(claims->instance, event, data); !st.ok()) return ErrorResponse(st);
    }
    return JsonResponse(202, Json{{"accepted", true}, {"attempt", claims->attempt}});
  }

  // ---- Admin: quotas and the scheduler ----

  HttpResponse SetQuota(const HttpRequest& req, const RouteMatch& m, const std::string&) {
    const std::string& tenant = m.params.at("tenant");
    auto t = s_.directory->GetTenant(tenant);
    if (!t.ok()) return ErrorResponse(t.status(), "tenant");
    HttpResponse error;
    auto body = ParseBody(req, &error);
    if (!body) return error;
    if (!body->is_object()) return ErrorResponse(400, "InvalidArgument", "the body is {\"cpu\", \"memoryMb\", \"jobs\", \"weight\"}", "body");
    Json quota = {{"tenant", tenant}, {"cpu", 0}, {"memoryMb", 0}, {"jobs", 0}, {"weight", 1}};
    for (const auto& [k, v] : body->items()) {
      if (k != "cpu" && k != "memoryMb" && k != "jobs" && k != "weight") {
        return ErrorResponse(400, "InvalidArgument", "unknown field (cpu, memoryMb, jobs, weight)", k);
      }
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1e9) {
        return ErrorResponse(400, "InvalidArgument", "must be a number from 0 (unlimited) to 1e9", k);
      }
      if ((k == "memoryMb" || k == "jobs") && !v.is_number_integer()) {
        return ErrorResponse(400, "InvalidArgument", "must be an integer", k);
      }
      quota[k] = v;
    }
    if (quota["weight"].get<double>() <= 0) return ErrorResponse(400, "InvalidArgument", "must be more than 0", "weight");
    if (Status s = s_.client->SignalEntity(Scheduler(), "setTenant", quota); !s.ok()) return ErrorResponse(s);
    // The signal is durable now; wait briefly until the scheduler applied it,
    // so that a read right after shows it.
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < until) {
      Json q = QuotaOf(SchedulerSnapshot(), tenant);
      if (q["cpu"] == quota["cpu"] && q["memoryMb"] == quota["memoryMb"] && q["jobs"] == quota["jobs"] &&
          q["weight"] == quota["weight"]) {
        return JsonResponse(200, q);
      }
      std::this_thread::sleep_for(20ms);
    }
    quota.erase("tenant");
    return JsonResponse(200, quota);
  }

  static Json QuotaOf(const Json& scheduler, const std::string& tenant) {
    Json t = scheduler.value("tenants", Json::object()).value(tenant, Json::object());
    Json q = t.value("quota", Json::object());
    Json used = t.value("used", Json::object());
    int queued = 0;
    for (const Json& e : scheduler.value("queue", Json::array())) queued += e.value("tenant", "") == tenant;
    return Json{{"cpu", q.value("cpu", Json(0))},
                {"memoryMb", q.value("memoryMb", Json(0))},
                {"jobs", q.value("jobs", Json(0))},
                {"weight", t.value("weight", Json(1))},
                {"running",
                 {{"cpu", used.value("cpu", 0.0)}, {"memoryMb", used.value("memoryMb", 0.0)}, {"jobs", used.value("jobs", 0.0)}}},
                {"queued", queued}};
  }

  HttpResponse GetQuota(const HttpRequest&, const RouteMatch& m, const std::string&) {
    const std::string& tenant = m.params.at("tenant");
    auto t = s_.directory->GetTenant(tenant);
    if (!t.ok()) return ErrorResponse(t.status(), "tenant");
    return JsonResponse(200, QuotaOf(SchedulerSnapshot(), tenant));
  }

  // The caller's own quota, usage and queue: a tenant key reads its own
  // tenant's and no other (the admin route above takes a tenant id).
  HttpResponse OwnQuota(const HttpRequest&, const RouteMatch&, const std::string& tenant) {
    Json scheduler = SchedulerSnapshot();
    Json out = QuotaOf(scheduler, tenant);
    Json queue = Json::array();
    int position = 0;
    for (const Json& e : scheduler.value("queue", Json::array())) {
      ++position;
      if (e.value("tenant", "") != tenant) continue;
      Json entry = {{"position", position}};
      // Queue entries carry the job's instance id "job.<tenant>.<id>": show the id.
      const std::string job = e.value("job", "");
      if (const size_t dot = job.rfind('.'); dot != std::string::npos) entry["id"] = job.substr(dot + 1);
      for (const char* k : {"cpu", "memoryMb"}) {
        if (e.contains(k)) entry[k] = e[k];
      }
      queue.push_back(std::move(entry));
      if (queue.size() >= 100) break;
    }
    out["tenant"] = tenant;
    out["queue"] = queue;
    return JsonResponse(200, out);
  }

  HttpResponse SchedulerState(const HttpRequest&, const RouteMatch&, const std::string&) {
    return JsonResponse(200, SchedulerSnapshot());
  }

  JobApiServices s_;
};

}  // namespace

void AddJobApi(Router& router, const JobApiServices& services) {
  std::make_shared<JobApi>(services)->Register(router);
}

void AddJobCallbackRoute(Router& router, const JobApiServices& services) {
  std::make_shared<JobApi>(services)->RegisterCallback(router);
}

}  // namespace baton::api
