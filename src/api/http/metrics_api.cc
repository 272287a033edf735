#include "api/http/metrics_api.h"

#include <variant>

#include "api/http/request_util.h"

namespace baton::api {

namespace http = boost::beast::http;

void AddMetricsRoute(Router& router, util::metrics::Registry& registry, tenancy::TenantDirectory& directory) {
  router.Add(http::verb::get, "/metrics", [&registry, &directory](const HttpRequest& req, const RouteMatch&) {
    if (!util::metrics::Enabled()) {
      return ErrorResponse(404, "NotFound", "metrics are off on this server (--metrics off)");
    }
    auto principal = AuthenticateBearer(req, directory);
    if (auto* refused = std::get_if<HttpResponse>(&principal)) return std::move(*refused);
    if (!std::get<tenancy::Principal>(principal).admin) {
      return ErrorResponse(403, "PermissionDenied", "/metrics shows every tenant's figures: it needs an admin key",
                           "Authorization");
    }
    HttpResponse res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.body() = registry.Expose();
    return res;
  });
}

}  // namespace baton::api
