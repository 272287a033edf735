#include "api/http/job_api.h"

#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "api/http/request_util.h"
#include "batch/job_eta.h"
#include "batch/job_policy.h"
#include "batch/job_view.h"
#include "batch/runtime_support.h"
#include "batch/scheduler.h"
#include "store/instance_query.h"

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
    r.Add(verb::get, "/api/v1/tenant", Bind(&JobApi::OwnTenant));
    r.Add(verb::post, "/api/v1/images", Bind(&JobApi::PushImage));
    r.Add(verb::get, "/api/v1/images", Bind(&JobApi::ListImages));
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

 public:
  // The tenant activity kStartJobActivity (JobStartActivity).
  Json StartJob(ActivityContext& ctx) { return StartJobImpl(ctx); }

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

  // Why a job cannot be submitted (an answer of POST /api/v1/jobs).
  struct Refusal {
    unsigned http_status = 0;
    std::string code;
    std::string message;
    std::string field;
    int retry_after_seconds = 0;  // > 0: may pass later (503, 429)
    std::optional<Status> status;  // answered as ErrorResponse(status, field) / TooManyRequests

    static Refusal Of(const Status& s, const std::string& field = "") {
      Refusal r;
      r.status = s;
      r.field = field;
      if (s.code() == StatusCode::kResourceExhausted) r.retry_after_seconds = 5;
      return r;
    }
    HttpResponse Response() const {
      if (status && status->code() == StatusCode::kResourceExhausted) {
        return TooManyRequests(*status, std::chrono::seconds(retry_after_seconds), field);
      }
      if (status) return ErrorResponse(*status, field);
      HttpResponse r = ErrorResponse(http_status, code, message, field);
      if (retry_after_seconds > 0) r.set(http::field::retry_after, std::to_string(retry_after_seconds));
      return r;
    }
    // {"code", "message", "field"}, as the answer's body says.
    Json Error() const {
      Json body = Json::parse(Response().body(), nullptr, false);
      return body.is_object() && body.contains("error") ? body["error"] : Json{{"code", "Internal"}, {"message", message}};
    }
  };

  // Every check of a submit after the spec parsed, in order: the tenant's
  // grants, what the runtime supports, the capacity (node or largest node;
  // the tenant's quota), the tenant's cap on unfinished jobs. Sets
  // `*scheduler_out` to the scheduler's state read. Also what a job started
  // from a tenant's orchestration passes (StartJob).
  std::optional<Refusal> CheckSubmit(const std::string& tenant, const batch::JobSpec& spec, Json* scheduler_out) {
    // Dependencies: jobs of this tenant (another tenant's id is not found here).
    for (size_t i = 0; i < spec.depends_on.size(); ++i) {
      const std::string field = "dependsOn[" + std::to_string(i) + "]";
      auto dep = s_.client->GetState(batch::JobInstanceId(tenant, spec.depends_on[i].job_id), true);
      if (!dep.ok() && dep.status().code() == StatusCode::kNotFound) {
        return Refusal{400, "InvalidArgument", field + ": no job '" + spec.depends_on[i].job_id + "' to wait for", field};
      }
      if (!dep.ok()) return Refusal::Of(dep.status(), field);
      if (spec.depends_on[i].n_to_n) {
        Json in = FromPayload(dep->input);
        const int size = in.is_object() && in.contains("spec") && in["spec"].is_object() && in["spec"].contains("array")
                             ? in["spec"]["array"].value("size", 0)
                             : 0;
        if (spec.array_size == 0 || size != spec.array_size) {
          return Refusal{400, "InvalidArgument",
                         field + ".type: N_TO_N needs two array jobs of equal size (this one: " +
                             std::to_string(spec.array_size) + ", job " + spec.depends_on[i].job_id + ": " +
                             std::to_string(size) + ")",
                         field + ".type"};
        }
      }
    }
    auto settings = s_.directory->GetSettings(tenant);
    if (!settings.ok()) return Refusal::Of(settings.status());
    batch::JobGrants grants{settings->grants.host_network, settings->grants.capabilities,
                            settings->grants.image_prefixes};
    if (Status s = batch::CheckJobPolicy(spec, tenant, s_.platform_registry, grants); !s.ok()) {
      return Refusal::Of(s, batch::FieldOf(s));
    }
    if (Status s = batch::CheckRuntimeSupport(
            spec, s_.runtime != nullptr ? s_.runtime->Features() : runtime::RuntimeFeatures{}); !s.ok()) {
      return Refusal{422, "NotSupported", s.message(), batch::FieldOf(s)};
    }
    Json& scheduler = *scheduler_out;
    scheduler = SchedulerSnapshot();
    Json capacity = scheduler.value("capacity", Json::object());
    // A cluster's job must fit one node: its largest (cluster_capacity.h).
    const bool cluster = capacity.contains("largestNode") && capacity["largestNode"].is_object();
    // No capacity at all is not "too large": the cluster's nodes were never
    // read (its manager was away since the deployment's first start), or none
    // is ready and active now. Say so and store nothing; the client retries.
    if (capacity.value("cpu", 0.0) <= 0 && capacity.value("memoryMb", 0.0) <= 0) {
      return Refusal{
          503, "Unavailable",
          cluster ? "the cluster has no ready and active node now (GET /api/v1/admin/scheduler shows its capacity)"
                  : "the capacity for jobs is not known yet: the container runtime (for --runtime swarm, the swarm "
                    "manager) has not been read since the deployment started",
          "", 5};
    }
    if (cluster) capacity = capacity["largestNode"];
    batch::Capacity node{capacity.value("cpu", 0.0), static_cast<int64_t>(capacity.value("memoryMb", 0.0)) << 20};
    if (Status s = batch::FitsWithin(spec, node, cluster ? "the largest node of the cluster has" : "the node has");
        !s.ok()) {
      return Refusal{422, "NeverFits", s.message(), batch::FieldOf(s)};
    }
    Json quota = scheduler.value("tenants", Json::object()).value(tenant, Json::object()).value("quota", Json::object());
    batch::Capacity limit{quota.value("cpu", 0.0), static_cast<int64_t>(quota.value("memoryMb", 0.0)) << 20};
    if (Status s = batch::FitsWithin(spec, limit, "the tenant's quota allows"); !s.ok()) {
      return Refusal{422, "NeverFits", s.message(), batch::FieldOf(s)};
    }
    if (s_.admission != nullptr) {
      const int64_t limit = settings->limits.max_queued_jobs;
      InstanceQuery unfinished;
      unfinished.instance_id_prefix = batch::JobInstanceId(tenant, "");
      unfinished.statuses = {OrchestrationStatus::kPending, OrchestrationStatus::kRunning,
                             OrchestrationStatus::kSuspended};
      Status admitted = s_.admission->AdmitObject(tenant, "unfinished jobs", limit,
                                                  [&] { return s_.client->Count(unfinished, limit + 1); });
      if (!admitted.ok()) return Refusal::Of(admitted);
    }
    return std::nullopt;
  }

  HttpResponse Submit(const HttpRequest& req, const RouteMatch&, const std::string& tenant) {
    HttpResponse error;
    auto body = ParseBody(req, &error);
    if (!body) return error;
    if (!body->is_object()) return ErrorResponse(400, "InvalidArgument", "the body must be a job spec (a JSON object)", "body");
    auto spec = batch::ParseJobSpec(*body);
    if (!spec.ok()) return ErrorResponse(400, "InvalidArgument", spec.status().message(), batch::FieldOf(spec.status()));
    Json scheduler;
    if (auto refused = CheckSubmit(tenant, *spec, &scheduler)) return refused->Response();
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

  // The tenant activity kStartJobActivity (job_orchestration.h): a job
  // started from a tenant's orchestration, with every check of Submit.
  Json StartJobImpl(ActivityContext& ctx) {
    const std::string& caller = ctx.InstanceId();
    const std::string tenant(HubOf(caller));
    // Only the bridge calls it: "baton.Job" in a tenant's hub, started as a
    // sub-orchestration (whose parent the job links to).
    auto bridge = tenant.empty() ? Result<InstanceState>(NotFoundError("")) : s_.client->GetState(caller, false);
    if (!bridge.ok() && bridge.status().code() != StatusCode::kNotFound) {
      throw DurableError("Unavailable", "reading the calling orchestration: " + bridge.status().message());
    }
    if (!bridge.ok() || bridge->name != batch::kJobOrchestrator) {
      throw DurableError("PermissionDenied",
                         std::string(batch::kStartJobActivity) + " is called by the sub-orchestration " +
                             batch::kJobOrchestrator + " only",
                         nullptr, true);
    }
    if (bridge->parent_instance_id.empty()) {
      throw DurableError("InvalidArgument",
                         std::string(batch::kJobOrchestrator) +
                             " runs as a sub-orchestration only (ctx.callSubOrchestrator(\"baton.Job\", spec)); "
                             "submit a job on its own with POST /api/v1/jobs",
                         nullptr, true);
    }
    auto t = s_.directory->GetTenant(tenant);
    if (!t.ok() && t.status().code() == StatusCode::kNotFound) {
      throw DurableError("PermissionDenied", "tenant '" + tenant + "' does not exist", nullptr, true);
    }
    if (!t.ok()) throw DurableError("Unavailable", "reading the tenant: " + t.status().message());
    if (t->disabled) throw DurableError("PermissionDenied", "tenant '" + tenant + "' is disabled", nullptr, true);
    const Json in = ctx.GetInput();
    const std::string id = in.is_object() && in["id"].is_string() ? in["id"].get<std::string>() : "";
    if (!batch::IsJobId(id) || id.find(':') != std::string::npos) throw DurableError("InvalidArgument", "id: a job id is 16 lower-case hex digits", nullptr, true);
    const Json body = in.is_object() ? in.value("spec", Json()) : Json();
    if (!body.is_object()) {
      throw DurableError("InvalidArgument", "body: the input of baton.Job is a job spec (a JSON object)", nullptr, true);
    }
    auto spec = batch::ParseJobSpec(body);
    if (!spec.ok()) throw DurableError("InvalidArgument", spec.status().message(), nullptr, true);
    // Its spec is kept in the orchestrations' histories (the parent's
    // SubOrchestrationInstanceCreated, the bridge's input): no place for a secret.
    for (size_t i = 0; i < spec->containers.size(); ++i) {
      const batch::JobContainer& c = spec->containers[i];
      if (!c.secret_env.empty() || !c.secret_files.empty()) {
        const std::string where = i == 0 ? "" : "sidecars[" + std::to_string(i - 1) + "].";
        throw DurableError("InvalidArgument",
                           where + (c.secret_env.empty() ? "secretFiles" : "secretEnv") +
                               ": a job started from an orchestration carries no secrets (its spec is kept in "
                               "the orchestration's history); submit it with POST /api/v1/jobs",
                           nullptr, true);
      }
    }
    Json scheduler;
    if (auto refused = CheckSubmit(tenant, *spec, &scheduler)) {
      Json error = refused->Error();
      if (refused->retry_after_seconds > 0) {
        return Json{{"started", false}, {"retryAfterSeconds", refused->retry_after_seconds}, {"reason", error}};
      }
      throw DurableError(error.value("code", "Internal"), error.value("message", ""), error, true);
    }
    const std::string instance = batch::JobInstanceId(tenant, id);
    Json input = batch::JobInput(instance, tenant, *spec, id);
    input["parent"] = {{"instance", bridge->parent_instance_id}, {"bridge", caller}};
    ScheduleOptions options;
    options.instance_id = instance;
    auto scheduled = s_.client->ScheduleNewOrchestration(batch::kJobOrchestrator, input, options);
    if (!scheduled.ok() && scheduled.status().code() == StatusCode::kAlreadyExists) {
      // Started already by this call (an answer lost in a crash), or the id
      // is another job's: then the bridge tries again with another.
      auto existing = s_.client->GetState(instance, true);
      Json was = existing.ok() ? FromPayload(existing->input) : Json();
      if (was.is_object() && was.contains("parent") && was["parent"].value("bridge", "") == caller) {
        return Json{{"started", true}, {"id", id}};
      }
      return Json{{"started", false}, {"retryAfterSeconds", 1}, {"reason", {{"code", "AlreadyExists"}}}};
    }
    if (!scheduled.ok()) throw DurableError("Unavailable", "starting the job: " + scheduled.status().message());
    return Json{{"started", true}, {"id", id}};
  }

  HttpResponse Get(const HttpRequest&, const RouteMatch& m, const std::string& tenant) {
    auto found = Find(m, tenant);
    if (auto* e = std::get_if<HttpResponse>(&found)) return std::move(*e);
    const InstanceState& s = std::get<InstanceState>(found);
    Json scheduler = batch::JobStatusOf(s) == "Queued" ? SchedulerSnapshot() : Json::object();
    Json view = batch::JobView(s, scheduler);
    if (view["status"] == "Queued") {
      // When it is expected to start (docs/eta.md); null when the store could not say.
      auto eta = batch::JobEta(*s_.client, scheduler, s.instance_id, tenant, std::chrono::system_clock::now());
      view["eta"] = eta.ok() ? *eta : Json(nullptr);
    }
    if (view.contains("array") && view["array"].contains("size")) {
      // An array job: how many of its children are in each status, now.
      Json counts = Json::object();
      InstanceQuery q;
      q.instance_id_prefix = s.instance_id + ":";
      q.include_payloads = true;
      q.page_size = 500;
      for (int pages = 0; pages < 3; ++pages) {
        auto page = s_.client->Query(q);
        if (!page.ok()) return ErrorResponse(page.status());
        for (const InstanceState& child : page->instances) {
          const std::string status = batch::JobStatusOf(child);
          counts[status] = counts.value(status, 0) + 1;
        }
        if (page->continuation_token.empty()) break;
        q.continuation_token = page->continuation_token;
      }
      view["array"]["counts"] = counts;
    }
    return JsonResponse(200, view);
  }

  // The orchestration statuses a job of each status can have (JobStatusOf):
  // what the store can filter on before the exact status is known.
  static void AddOrchestrationStatuses(const std::string& job_status, std::set<OrchestrationStatus>* out) {
    using S = OrchestrationStatus;
    if (job_status == "Completed") {
      out->insert(S::kCompleted);
    } else if (job_status == "Failed") {
      out->insert({S::kCompleted, S::kFailed});
    } else if (job_status == "Canceled") {
      out->insert({S::kCompleted, S::kTerminated, S::kCanceled});
    } else {
      out->insert({S::kPending, S::kRunning, S::kSuspended});
    }
  }

  // "k=v,k2=v2" (or "k" alone: the label is set, to any value).
  static std::optional<std::map<std::string, std::optional<std::string>>> ParseLabels(const RouteMatch& m,
                                                                                      HttpResponse* error) {
    auto text = ParseFilterText(m, "labels", 1024, error);
    if (!text) return std::nullopt;
    std::map<std::string, std::optional<std::string>> out;
    for (size_t i = 0; i < text->size();) {
      size_t j = text->find(',', i);
      if (j == std::string::npos) j = text->size();
      std::string item = text->substr(i, j - i);
      i = j + 1;
      if (item.empty()) continue;
      size_t eq = item.find('=');
      std::string k = item.substr(0, eq);
      if (k.empty() || out.size() >= 16) {
        *error = ErrorResponse(400, "InvalidArgument", "labels is up to 16 key=value (or key) items, comma-separated",
                               "labels");
        return std::nullopt;
      }
      out[k] = eq == std::string::npos ? std::nullopt : std::optional<std::string>(item.substr(eq + 1));
    }
    return out;
  }

  HttpResponse List(const HttpRequest&, const RouteMatch& m, const std::string& tenant) {
    HttpResponse error;
    auto page_size = ParseInt(m, "pageSize", 50, 1, 500, &error);
    if (!page_size) return error;
    std::set<std::string> statuses;
    std::set<OrchestrationStatus> coarse;
    const std::string wanted = m.Query("status");
    static const std::set<std::string> kStatuses = {"Pending", "Queued",    "Starting", "Running",
                                                     "BackingOff", "Completed", "Failed", "Canceled"};
    for (size_t i = 0; i < wanted.size();) {
      size_t j = wanted.find(',', i);
      if (j == std::string::npos) j = wanted.size();
      std::string name = wanted.substr(i, j - i);
      if (!name.empty() && !kStatuses.count(name)) {
        return ErrorResponse(400, "InvalidArgument",
                             "unknown status '" + name.substr(0, 40) +
                                 "' (Pending, Queued, Starting, Running, BackingOff, Completed, Failed, Canceled)",
                             "status");
      }
      if (!name.empty()) {
        statuses.insert(name);
        AddOrchestrationStatuses(name, &coarse);
      }
      i = j + 1;
    }
    auto name = ParseFilterText(m, "name", 200, &error);
    if (!name) return error;
    auto id_prefix = ParseFilterText(m, "idPrefix", 16, &error);
    if (!id_prefix) return error;
    if (id_prefix->find_first_not_of("0123456789abcdef") != std::string::npos) {
      return ErrorResponse(400, "InvalidArgument", "idPrefix is lower-case hex digits (job ids are 16 of them)",
                           "idPrefix");
    }
    auto labels = ParseLabels(m, &error);
    if (!labels) return error;
    auto order = ParseSort(m, &error);
    if (!order) return error;
    auto counts = ParseBool(m, "countByStatus", false, &error);
    if (!counts) return error;
    InstanceQuery q;
    if (!ParseTimeRange(m, "createdFrom", "createdTo", &q.created_from, &q.created_to, &error)) return error;
    q.instance_id_prefix = batch::JobInstanceId(tenant, *id_prefix);
    q.name_prefix = batch::kJobOrchestrator;
    q.statuses.assign(coarse.begin(), coarse.end());
    q.order = *order;
    q.include_payloads = true;
    q.page_size = static_cast<int>(*page_size);
    q.continuation_token = m.Query("continuationToken");
    if (q.continuation_token.size() > 4096) {
      return ErrorResponse(400, "InvalidArgument", "malformed continuation token", "continuationToken");
    }
    Json scheduler = SchedulerSnapshot();
    Json jobs = Json::array();
    std::string next;
    Json status_counts;
    // The exact status, the name and the labels are read from each job:
    // keep reading until a page is full (or kMaxListScanPages were read; the
    // token then goes on from there).
    for (int pages = 0; pages < kMaxListScanPages; ++pages) {
      q.count_by_status = *counts && pages == 0;
      auto page = s_.client->Query(q);
      if (!page.ok()) return ErrorResponse(page.status(), "continuationToken");
      if (q.count_by_status) {
        // Exact per job status needs each job read; the store counts what it
        // can: unfinished jobs, and finished ones by how the orchestration ended.
        status_counts = {{"unfinished", 0}, {"finished", 0}};
        for (const auto& [st, n] : page->status_counts) {
          if (!coarse.empty() && !coarse.count(st)) continue;
          const char* bucket = IsTerminal(st) ? "finished" : "unfinished";
          status_counts[bucket] = status_counts[bucket].get<int64_t>() + n;
        }
      }
      const InstanceState* full_after = nullptr;
      for (const InstanceState& s : page->instances) {
        if (s.name != batch::kJobOrchestrator) continue;
        Json view = batch::JobView(s, scheduler, /*brief=*/true);
        if (!statuses.empty() && !statuses.count(view["status"].get<std::string>())) continue;
        if (!name->empty() && view["name"] != *name) continue;
        if (!labels->empty()) {
          Json in = FromPayload(s.input);
          Json have = in.is_object() && in.contains("spec") && in["spec"].is_object()
                          ? in["spec"].value("labels", Json::object())
                          : Json::object();
          bool match = have.is_object();
          for (const auto& [k, v] : *labels) {
            if (!match) break;
            match = have.contains(k) && (!v || (have[k].is_string() && have[k].get<std::string>() == *v));
          }
          if (!match) continue;
        }
        jobs.push_back(std::move(view));
        if (static_cast<int64_t>(jobs.size()) == *page_size) {
          // Full: the next page starts after this job (the rest of this
          // store page is read again then).
          full_after = &s;
          break;
        }
      }
      if (full_after != nullptr) {
        if (full_after != &page->instances.back() || !page->continuation_token.empty()) {
          next = store::EncodeQueryCursor(q, *full_after);
        }
        break;
      }
      next = page->continuation_token;
      if (next.empty()) break;
      q.continuation_token = next;
    }
    Json out = {{"jobs", jobs}};
    if (!next.empty()) out["continuationToken"] = next;
    if (*counts) out["counts"] = status_counts;
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

  // ---- The tenant's images ----

  // "<registry>/<tenant>/": the tenant's namespace of the platform registry.
  std::string Namespace(const std::string& tenant) const { return s_.platform_registry + "/" + tenant + "/"; }

  static bool ValidRepository(const std::string& repo) {
    // Docker's path components: [a-z0-9]+ joined by '.', '_', '__' or '-'+, separated by '/'.
    if (repo.empty() || repo.size() > 200) return false;
    size_t start = 0;
    while (start <= repo.size()) {
      size_t end = repo.find('/', start);
      if (end == std::string::npos) end = repo.size();
      const std::string part = repo.substr(start, end - start);
      if (part.empty() || !std::isalnum(static_cast<unsigned char>(part.front())) ||
          !std::isalnum(static_cast<unsigned char>(part.back()))) {
        return false;
      }
      for (char c : part) {
        if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '.' ||
              c == '_' || c == '-')) {
          return false;
        }
      }
      start = end + 1;
    }
    return true;
  }
  static bool ValidTag(const std::string& tag) {
    if (tag.empty() || tag.size() > 128 || !(std::isalnum(static_cast<unsigned char>(tag[0])) || tag[0] == '_')) {
      return false;
    }
    return tag.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == std::string::npos;
  }

  // POST /api/v1/images {"image": <an image of the node>, "name": "repo[:tag]"}:
  // tags it "<registry>/<tenant>/repo:tag" and pushes it with the
  // platform's credentials; answers {"image", "digest"}.
  HttpResponse PushImage(const HttpRequest& req, const RouteMatch&, const std::string& tenant) {
    HttpResponse error;
    auto body = ParseObjectBody(req, /*empty_ok=*/false, &error);
    if (!body) return error;
    for (const auto& [k, v] : body->items()) {
      if (k != "image" && k != "name") return ErrorResponse(400, "InvalidArgument", "unknown field (image, name)", k);
    }
    auto image = StringMember(*body, "image", "", &error);
    if (!image) return error;
    auto name = StringMember(*body, "name", "", &error);
    if (!name) return error;
    // An image of the node: a reference or an id, nothing that reaches
    // another path of dockerd's API.
    if (image->empty() || image->size() > 256 ||
        image->find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@") !=
            std::string::npos ||
        image->find("..") != std::string::npos || image->front() == '/' || image->front() == '.') {
      return ErrorResponse(400, "InvalidArgument",
                           "an image of this node: a reference (repo[:tag], repo@sha256:…) or an image id", "image");
    }
    if (name->empty()) {
      // The image's own last path component and tag ("build/hello:1" -> "hello:1").
      std::string last = image->substr(image->rfind('/') == std::string::npos ? 0 : image->rfind('/') + 1);
      last = last.substr(0, last.find('@'));
      *name = last;
    }
    const size_t colon = name->find(':');
    const std::string repo = name->substr(0, colon);
    const std::string tag = colon == std::string::npos ? "latest" : name->substr(colon + 1);
    if (!ValidRepository(repo) || !ValidTag(tag)) {
      return ErrorResponse(400, "InvalidArgument",
                           "a repository (lower-case a-z, 0-9 and . _ - between path components) and an optional "
                           ":tag (1-128 of A-Z a-z 0-9 _ . -)",
                           "name");
    }
    if (s_.platform_registry.empty() || s_.runtime == nullptr) {
      return ErrorResponse(422, "NotSupported", "this deployment has no platform registry (--registry)", "image");
    }
    runtime::RegistryCredentials credentials{s_.platform_registry, "", ""};
    for (const auto& c : s_.registries) {
      if (c.server == s_.platform_registry) credentials = c;
    }
    // A push holds a handler thread while it runs, as a follow does.
    std::unique_ptr<tenancy::Admission::WaitSlot> slot;
    if (s_.admission != nullptr) {
      slot = s_.admission->TryWait(tenant);
      if (!slot) return TooManyRequests(ResourceExhaustedError("too many long requests of this tenant at once"), 5s);
    }
    const std::string target = Namespace(tenant) + repo + ":" + tag;
    const std::string registry_prefix = s_.platform_registry + "/";
    const std::string mine = Namespace(tenant);
    // Any name of the platform registry outside the tenant's namespace is
    // someone else's image on this node (pulled for their jobs, or pushed).
    auto may_take = [&](const std::string& n) { return n.rfind(registry_prefix, 0) != 0 || n.rfind(mine, 0) == 0; };
    auto pushed = s_.runtime->PushNodeImage(*image, target, credentials, may_take, s_.push_timeout);
    if (!pushed.ok()) return ErrorResponse(pushed.status(), pushed.status().code() == StatusCode::kUnimplemented ? "" : "image");
    return JsonResponse(200, Json{{"image", target}, {"digest", *pushed}});
  }

  // GET /api/v1/images: the tenant's repositories of the platform registry
  // that this node holds, with their tags and digests.
  HttpResponse ListImages(const HttpRequest&, const RouteMatch&, const std::string& tenant) {
    if (s_.platform_registry.empty() || s_.runtime == nullptr) return JsonResponse(200, Json{{"images", Json::array()}});
    const std::string mine = Namespace(tenant);
    auto names = s_.runtime->NodeImageNames(mine);
    if (!names.ok()) return ErrorResponse(names.status());
    std::map<std::string, Json> repos;
    for (const std::string& n : *names) {
      const std::string rest = n.substr(mine.size());
      const size_t at = rest.find('@');
      const size_t colon = rest.find(':');
      const std::string repo = rest.substr(0, std::min(at, colon));
      Json& r = repos[repo];
      if (r.is_null()) r = {{"repository", mine + repo}, {"tags", Json::array()}, {"digests", Json::array()}};
      if (at != std::string::npos) {
        r["digests"].push_back(n);
      } else if (colon != std::string::npos) {
        r["tags"].push_back(rest.substr(colon + 1));
      }
    }
    Json out = Json::array();
    for (auto& [k, v] : repos) out.push_back(std::move(v));
    return JsonResponse(200, Json{{"images", out}});
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

  // A tenant's own quota, use, weight and place in the queue: its queued
  // jobs with their positions in the whole queue (other tenants' entries
  // are counted in the positions, never shown).
  HttpResponse OwnTenant(const HttpRequest&, const RouteMatch&, const std::string& tenant) {
    Json scheduler = SchedulerSnapshot();
    Json out = QuotaOf(scheduler, tenant);
    out["tenant"] = tenant;
    Json queue = Json::array();
    const std::string prefix = batch::JobInstanceId(tenant, "");
    const Json all = scheduler.value("queue", Json::array());
    for (size_t i = 0; i < all.size(); ++i) {
      const Json& e = all[i];
      if (e.value("tenant", "") != tenant) continue;
      const std::string job = e.value("job", "");
      queue.push_back(Json{{"job", job.rfind(prefix, 0) == 0 ? job.substr(prefix.size()) : job},
                           {"position", i + 1},
                           {"cpu", e.value("cpu", Json(0))},
                           {"memoryMb", e.value("memoryMb", Json(0))},
                           {"priority", e.value("priority", Json(0))}});
    }
    out["queue"] = queue;
    out["queueLength"] = all.size();
    return JsonResponse(200, out);
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

ActivityFn JobStartActivity(const JobApiServices& services) {
  return [api = std::make_shared<JobApi>(services)](ActivityContext& ctx) -> Json { return api->StartJob(ctx); };
}

void AddJobCallbackRoute(Router& router, const JobApiServices& services) {
  std::make_shared<JobApi>(services)->RegisterCallback(router);
}

}  // namespace baton::api
