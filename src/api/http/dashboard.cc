#include "api/http/dashboard.h"

#include <string>
#include <string_view>

#include "api/http/dashboard_files.h"

namespace baton::api {
namespace {

namespace http = boost::beast::http;

HttpResponse Static(std::string_view body, const char* type) {
  HttpResponse res{http::status::ok, 11};
  res.set(http::field::content_type, type);
  res.set(http::field::server, "baton");
  res.set(http::field::cache_control, "no-cache");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Content-Security-Policy",
          "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
          "form-action 'none'; frame-ancestors 'none'");
  res.body() = std::string(body);
  return res;
}

}  // namespace

void AddDashboard(Router& router) {
  router.Add(http::verb::get, "/dashboard",
             [](const HttpRequest&, const RouteMatch&) { return Static(web::kIndexHtml, "text/html; charset=utf-8"); });
  router.Add(http::verb::get, "/dashboard.js", [](const HttpRequest&, const RouteMatch&) {
    return Static(web::kDashboardJs, "text/javascript; charset=utf-8");
  });
  router.Add(http::verb::get, "/dashboard.css",
             [](const HttpRequest&, const RouteMatch&) { return Static(web::kDashboardCss, "text/css; charset=utf-8"); });
  router.Add(http::verb::get, "/favicon.ico", [](const HttpRequest&, const RouteMatch&) {
    HttpResponse res{http::status::no_content, 11};
    res.set(http::field::server, "baton");
    return res;
  });
  router.Add(http::verb::get, "/", [](const HttpRequest&, const RouteMatch&) {
    HttpResponse res{http::status::found, 11};
    res.set(http::field::location, "/dashboard");
    res.set(http::field::server, "baton");
    return res;
  });
}

}  // namespace baton::api
