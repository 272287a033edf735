#include "api/http/request_util.h"

#include <algorithm>
#include <cctype>

#include "util/utf8.h"

namespace baton::api {

namespace http = boost::beast::http;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string BearerToken(const HttpRequest& req) {
  std::string_view auth = req[http::field::authorization];
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() <= kBearer.size() || !EqualsIgnoreCase(auth.substr(0, kBearer.size()), kBearer)) return "";
  return std::string(auth.substr(kBearer.size()));
}

HttpResponse TooManyRequests(const Status& status, std::chrono::milliseconds retry_after, std::string_view field) {
  HttpResponse res = ErrorResponse(429, "ResourceExhausted", status.message(), field);
  const int64_t seconds = std::max<int64_t>(1, (retry_after.count() + 999) / 1000);
  res.set(http::field::retry_after, std::to_string(seconds));
  return res;
}

std::variant<tenancy::Principal, HttpResponse> AuthenticateBearer(const HttpRequest& req,
                                                                  tenancy::TenantDirectory& directory,
                                                                  tenancy::Admission* admission) {
  std::string token = BearerToken(req);
  if (token.empty()) {
    return ErrorResponse(401, "Unauthenticated", "an 'Authorization: Bearer <API key>' header is required",
                         "Authorization");
  }
  auto principal = directory.Authenticate(token);
  if (!principal.ok()) return ErrorResponse(principal.status(), "Authorization");
  NoteRequestTenant(principal->admin ? std::string_view("(admin)") : std::string_view(principal->tenant_id));
  if (admission != nullptr && !principal->admin) {
    std::chrono::milliseconds retry_after{1000};
    if (Status admitted = admission->AdmitRequest(principal->tenant_id, &retry_after); !admitted.ok()) {
      return TooManyRequests(admitted, retry_after, "Authorization");
    }
  }
  return *principal;
}

std::optional<bool> ParseBool(const RouteMatch& m, const std::string& name, bool fallback,
                                     HttpResponse* error) {
  if (!m.Has(name)) return fallback;
  std::string v = m.Query(name);
  if (EqualsIgnoreCase(v, "true") || v == "1" || v.empty()) return true;
  if (EqualsIgnoreCase(v, "false") || v == "0") return false;
  *error = ErrorResponse(400, "InvalidArgument", name + " must be true or false", name);
  return std::nullopt;
}

std::optional<int64_t> ParseInt(const RouteMatch& m, const std::string& name, int64_t fallback,
                                       int64_t min, int64_t max, HttpResponse* error) {
  if (!m.Has(name)) return fallback;
  const std::string v = m.Query(name);
  int64_t out = 0;
  bool ok = !v.empty() && v.size() < 18 && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (ok) out = std::stoll(v);
  if (!ok || out < min || out > max) {
    *error = ErrorResponse(400, "InvalidArgument",
                           name + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max),
                           name);
    return std::nullopt;
  }
  return out;
}

std::optional<std::optional<TimePoint>> ParseTime(const RouteMatch& m, const std::string& name,
                                                         HttpResponse* error) {
  if (!m.Has(name)) return std::optional<TimePoint>();
  TimePoint t;
  if (!ParseIso8601(m.Query(name), &t)) {
    *error = ErrorResponse(400, "InvalidArgument", name + " must be an ISO 8601 UTC time such as 2026-01-31T12:00:00Z",
                           name);
    return std::nullopt;
  }
  return std::optional<TimePoint>(t);
}

std::optional<Json> ParseBody(const HttpRequest& req, HttpResponse* error) {
  const std::string& body = req.body();
  if (std::all_of(body.begin(), body.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; })) {
    return Json();
  }
  Json value;
  if (Status s = ParseJson(body, &value); !s.ok()) {
    *error = ErrorResponse(400, "InvalidJson", "the request body " + s.message(), "body");
    return std::nullopt;
  }
  return value;
}

std::optional<JsonText> BodyPayload(const HttpRequest& req, HttpResponse* error) {
  const std::string& body = req.body();
  if (std::all_of(body.begin(), body.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; })) {
    return JsonText{};
  }
  if (Status s = ValidateJson(body); !s.ok()) {
    *error = ErrorResponse(400, "InvalidJson", "the request body " + s.message(), "body");
    return std::nullopt;
  }
  return JsonText{body};
}

std::optional<Json> ParseObjectBody(const HttpRequest& req, bool empty_ok, HttpResponse* error) {
  auto body = ParseBody(req, error);
  if (!body) return std::nullopt;
  if (body->is_null() && empty_ok) return Json::object();
  if (!body->is_object()) {
    *error = ErrorResponse(400, "InvalidArgument", "the body must be a JSON object", "body");
    return std::nullopt;
  }
  return body;
}

std::optional<std::string> StringMember(const Json& object, const std::string& name, const std::string& fallback,
                                        HttpResponse* error) {
  auto it = object.find(name);
  if (it == object.end()) return fallback;
  if (!it->is_string()) {
    *error = ErrorResponse(400, "InvalidArgument", name + " must be a string", name);
    return std::nullopt;
  }
  return it->get<std::string>();
}

std::optional<bool> BoolMember(const Json& object, const std::string& name, bool fallback, HttpResponse* error) {
  auto it = object.find(name);
  if (it == object.end()) return fallback;
  if (!it->is_boolean()) {
    *error = ErrorResponse(400, "InvalidArgument", name + " must be true or false", name);
    return std::nullopt;
  }
  return it->get<bool>();
}

std::optional<std::string> ParseFilterText(const RouteMatch& m, const std::string& name, size_t max_bytes,
                                           HttpResponse* error) {
  std::string v = m.Query(name);
  if (v.size() > max_bytes) {
    *error = ErrorResponse(400, "InvalidArgument", name + " has at most " + std::to_string(max_bytes) + " bytes", name);
    return std::nullopt;
  }
  if (!util::IsValidUtf8(v) ||
      std::any_of(v.begin(), v.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f; })) {
    *error = ErrorResponse(400, "InvalidArgument", name + " must be UTF-8 text without control characters", name);
    return std::nullopt;
  }
  return v;
}

std::optional<InstanceOrder> ParseSort(const RouteMatch& m, HttpResponse* error) {
  const std::string v = m.Query("sort");
  if (v.empty() || v == "newest") return InstanceOrder::kNewestFirst;
  if (v == "oldest") return InstanceOrder::kOldestFirst;
  if (v == "id") return InstanceOrder::kInstanceId;
  *error = ErrorResponse(400, "InvalidArgument", "sort is newest (the default), oldest or id", "sort");
  return std::nullopt;
}

bool ParseTimeRange(const RouteMatch& m, const std::string& from_name, const std::string& to_name,
                    std::optional<TimePoint>* from, std::optional<TimePoint>* to, HttpResponse* error) {
  auto f = ParseTime(m, from_name, error);
  if (!f) return false;
  auto t = ParseTime(m, to_name, error);
  if (!t) return false;
  if (*f && *t && **t < **f) {
    *error = ErrorResponse(400, "InvalidArgument", to_name + " is before " + from_name, to_name);
    return false;
  }
  *from = *f;
  *to = *t;
  return true;
}

}  // namespace baton::api
