// What every API handler needs from a request: its caller (an API key in
// "Authorization: Bearer …") and its query parameters and JSON body, parsed
// with 400 answers that name the offending field (docs/http-api.md#errors).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "api/http/http_server.h"
#include "baton/clock.h"
#include "baton/json.h"
#include "tenancy/admission.h"
#include "tenancy/tenant_directory.h"

namespace baton::api {

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// The "<token>" of "Authorization: Bearer <token>", or "" when absent.
std::string BearerToken(const HttpRequest& req);

// The principal of the request's API key, or the answer to send: 401 for a
// missing or bad key; 429 with Retry-After when `admission` (if given) finds
// the key's tenant over its request rate. Admin keys are never limited.
std::variant<tenancy::Principal, HttpResponse> AuthenticateBearer(const HttpRequest& req,
                                                                  tenancy::TenantDirectory& directory,
                                                                  tenancy::Admission* admission = nullptr);

// The 429 (ResourceExhausted) answer with a Retry-After of at least one second.
HttpResponse TooManyRequests(const Status& status, std::chrono::milliseconds retry_after, std::string_view field = "");

// Query parameters. Each returns nullopt after setting `*error` to a 400
// naming the parameter; `fallback` when the parameter is absent.
std::optional<bool> ParseBool(const RouteMatch& m, const std::string& name, bool fallback, HttpResponse* error);
std::optional<int64_t> ParseInt(const RouteMatch& m, const std::string& name, int64_t fallback, int64_t min,
                                int64_t max, HttpResponse* error);
std::optional<std::optional<TimePoint>> ParseTime(const RouteMatch& m, const std::string& name, HttpResponse* error);

// The JSON body ("" and whitespace are JSON null); 400 InvalidJson otherwise.
std::optional<Json> ParseBody(const HttpRequest& req, HttpResponse* error);

}  // namespace baton::api
