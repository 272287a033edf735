#include "api/http/insight_api.h"

#include "api/http/request_util.h"
#include "batch/job_view.h"
#include "batch/job_why.h"
#include "batch/rightsize.h"
#include "tenancy/tenant_settings.h"
#include "batch/receipts.h"

namespace baton::api {
namespace {

namespace http = boost::beast::http;
using http::verb;

class InsightApi : public std::enable_shared_from_this<InsightApi> {
 public:
  explicit InsightApi(InsightApiServices s) : s_(s) {}

  void Register(Router& r) {
    r.Add(verb::get, "/api/v1/jobs/{id}/receipts", BindTenant(&InsightApi::Receipts));
    r.Add(verb::get, "/api/v1/receipts/public-key", BindAny(&InsightApi::PublicKey));
    r.Add(verb::get, "/api/v1/jobs/{id}/why", BindTenant(&InsightApi::JobWhy));
    r.Add(verb::get, "/api/v1/instances/{id}/why", BindAny(&InsightApi::InstanceWhy));
    r.Add(verb::get, "/api/v1/rightsize", BindTenant(&InsightApi::Rightsize));
  }

 private:
  using Method = HttpResponse (InsightApi::*)(const HttpRequest&, const RouteMatch&, const std::string& tenant);

  Handler BindTenant(Method m) {
    return [self = shared_from_this(), m](const HttpRequest& req, const RouteMatch& match) {
      auto principal = AuthenticateBearer(req, *self->s_.directory, self->s_.admission);
      if (auto* refused = std::get_if<HttpResponse>(&principal)) return std::move(*refused);
      const tenancy::Principal& p = std::get<tenancy::Principal>(principal);
      if (p.admin) {
        return ErrorResponse(403, "PermissionDenied", "jobs belong to tenants: read them with a tenant key",
                             "Authorization");
      }
      return ((*self).*m)(req, match, p.tenant_id);
    };
  }
  Handler BindAny(Method m) {
    return [self = shared_from_this(), m](const HttpRequest& req, const RouteMatch& match) {
      auto principal = AuthenticateBearer(req, *self->s_.directory, self->s_.admission);
      if (auto* refused = std::get_if<HttpResponse>(&principal)) return std::move(*refused);
      return ((*self).*m)(req, match, std::get<tenancy::Principal>(principal).tenant_id);
    };
  }

  HttpResponse Receipts(const HttpRequest&, const RouteMatch& m, const std::string& tenant) {
    const std::string& id = m.params.at("id");
    if (!batch::IsJobId(id)) return ErrorResponse(400, "InvalidArgument", "a job id is 16 lower-case hex digits", "id");
    // Only under the caller's own prefix: another tenant's job is not found.
    auto history = s_.client->GetHistory(batch::JobInstanceId(tenant, id));
    if (!history.ok() && history.status().code() == StatusCode::kNotFound) {
      return ErrorResponse(404, "NotFound", "job '" + id + "' was not found", "id");
    }
    if (!history.ok()) return ErrorResponse(history.status());
    Json list = Json::array();
    for (Json& doc : batch::ReceiptsInHistory(*history)) list.push_back(std::move(doc));
    return JsonResponse(200, Json{{"jobId", id}, {"receipts", std::move(list)}});
  }

  // The chain from `subject`, as the caller (`tenant`; "" = admin) may see it.
  HttpResponse Why(const std::string& subject, const std::string& tenant) {
    batch::JobWaitSource jobs(*s_.client);
    batch::QuotaWaitSource quota(*s_.client, tenant);
    batch::ContainerWaitSource containers(s_.runtime);
    engine::InstanceWaitSource instances(*s_.client, s_.registry, s_.sdk_workers);
    engine::EntityWaitSource entities(*s_.client);
    engine::WorkerWaitSource workers(s_.sdk_workers);
    std::vector<engine::WaitSource*> sources = {&jobs, &quota, &containers, &instances, &entities, &workers};
    const std::string hub = tenant.empty() ? "" : tenant + std::string(kHubSeparator);
    const std::string jobs_prefix = "instance:" + batch::JobInstanceId(tenant, "");
    auto visible = [&](const std::string& next) {
      if (tenant.empty()) return true;
      if (next.starts_with("instance:")) return next.starts_with("instance:" + hub) || next.starts_with(jobs_prefix);
      if (next.starts_with("entity:")) return next.starts_with("entity:" + hub);
      if (next.starts_with("workers:")) return next == "workers:" + hub;
      // quota: and container: are reached only from the caller's own jobs.
      return true;
    };
    auto chain = engine::ExplainWait(subject, sources, visible);
    if (!chain.ok() && chain.status().code() == StatusCode::kNotFound) {
      return ErrorResponse(404, "NotFound", "not found", "id");
    }
    if (!chain.ok()) return ErrorResponse(chain.status());
    Json out = engine::WhyJson(*chain);
    if (!hub.empty()) StripPrefix(out, hub);
    return JsonResponse(200, out);
  }

  // A tenant sees the ids of its hub without the "<tenant>::" prefix, as
  // everywhere in the API. Only a prefix is taken away: at the start of a
  // string, after a space, quote or bracket, or after a subject's kind
  // ("instance:", "entity:"); "<tenant>::" inside an id (an entity key
  // "zzacme::q") is the tenant's own text and stays.
  static bool StartsAnId(const std::string& s, size_t at) {
    if (at == 0) return true;
    const char before = s[at - 1];
    if (before == ' ' || before == '\'' || before == '"' || before == '(' || before == '[' || before == ',' ||
        before == '=') {
      return true;
    }
    if (before != ':') return false;
    size_t word = at - 1;  // the kind before ':', lower-case letters and '-' from a boundary
    while (word > 0 && ((s[word - 1] >= 'a' && s[word - 1] <= 'z') || s[word - 1] == '-')) --word;
    return word < at - 1 && (word == 0 || s[word - 1] == ' ' || s[word - 1] == '\'' || s[word - 1] == '"' ||
                             s[word - 1] == '(' || s[word - 1] == '[');
  }
  static void StripPrefix(Json& j, const std::string& hub) {
    if (j.is_string()) {
      std::string s = j.get<std::string>();
      for (size_t at = s.find(hub); at != std::string::npos; at = s.find(hub, at)) {
        if (StartsAnId(s, at)) {
          s.erase(at, hub.size());
        } else {
          at += hub.size();
        }
      }
      j = s;
    } else if (j.is_structured()) {
      for (auto& v : j) StripPrefix(v, hub);
    }
  }

  HttpResponse JobWhy(const HttpRequest&, const RouteMatch& m, const std::string& tenant) {
    const std::string& id = m.params.at("id");
    if (!batch::IsJobId(id)) return ErrorResponse(400, "InvalidArgument", "a job id is 16 lower-case hex digits", "id");
    return Why(engine::InstanceSubject(batch::JobInstanceId(tenant, id)), tenant);
  }

  HttpResponse InstanceWhy(const HttpRequest&, const RouteMatch& m, const std::string& tenant) {
    const std::string& id = m.params.at("id");
    if (id.empty() || id.size() > 200) {
      return ErrorResponse(400, "InvalidArgument", "an instance id has 1 to 200 characters", "id");
    }
    for (char ch : id) {
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
        return ErrorResponse(400, "InvalidArgument", "an instance id has no control characters", "id");
      }
    }
    std::string internal = id;
    if (!tenant.empty()) {
      if (id.find(kHubSeparator) != std::string::npos) {
        return ErrorResponse(400, "InvalidArgument", "an instance id cannot contain '::'", "id");
      }
      internal = tenant + std::string(kHubSeparator) + id;
    } else if (std::string hub = m.Query("taskHub"); !hub.empty()) {
      if (!tenancy::IsValidTenantId(hub)) {
        return ErrorResponse(400, "InvalidArgument", "taskHub '" + hub + "' is not a valid tenant id", "taskHub");
      }
      internal = hub + std::string(kHubSeparator) + id;
    }
    return Why(engine::InstanceSubject(internal), tenant);
  }

  // GET /api/v1/rightsize?name=N[&runs=K]: CPU and memory for the caller's
  // job name N from its K (1-100, default 20) latest finished runs
  // (batch/rightsize.h). Only the caller's own jobs are read: another
  // tenant's job name is 404 like a name nobody used.
  HttpResponse Rightsize(const HttpRequest&, const RouteMatch& m, const std::string& tenant) {
    const std::string name = m.Query("name");
    bool valid = !name.empty() && name.size() <= 63;
    for (size_t i = 0; valid && i < name.size(); ++i) {
      const char c = name[i];
      valid = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && c == '-');
    }
    if (!valid) {
      return ErrorResponse(400, "InvalidArgument", name.empty() ? "name is required: a job name, 1-63 characters of a-z, 0-9 and '-'" : "name is not a job name: 1-63 characters of a-z, 0-9 and '-'",
                           "name");
    }
    HttpResponse error;
    auto runs = ParseInt(m, "runs", 20, 1, 100, &error);
    if (!runs) return error;
    auto answer = batch::RightsizeJobName(*s_.client, tenant, name, static_cast<int>(*runs));
    if (!answer.ok() && answer.status().code() == StatusCode::kNotFound) {
      return ErrorResponse(404, "NotFound", "no finished job named '" + name + "'", "name");
    }
    if (!answer.ok()) return ErrorResponse(answer.status());
    return JsonResponse(200, *answer);
  }

  HttpResponse PublicKey(const HttpRequest&, const RouteMatch&, const std::string&) {
    if (s_.receipts == nullptr) return ErrorResponse(404, "NotFound", "run receipts are not enabled on this server");
    return JsonResponse(200, Json{{"algorithm", "Ed25519"},
                                  {"keyId", s_.receipts->KeyId()},
                                  {"publicKeyPem", s_.receipts->PublicKeyPem()}});
  }

  InsightApiServices s_;
};

}  // namespace

void AddInsightApi(Router& router, const InsightApiServices& services) {
  std::make_shared<InsightApi>(services)->Register(router);
}

}  // namespace baton::api
