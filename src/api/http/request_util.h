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
#include "baton/instance.h"
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
// A text filter (a prefix or a name): at most `max_bytes` of UTF-8 without
// control characters; "" when absent.
std::optional<std::string> ParseFilterText(const RouteMatch& m, const std::string& name, size_t max_bytes,
                                           HttpResponse* error);
// A list's order, from "sort": "newest" (the default), "oldest" or "id".
std::optional<InstanceOrder> ParseSort(const RouteMatch& m, HttpResponse* error);
// createdTimeFrom/createdTimeTo style range: both parsed, and a 400 naming
// `to_name` when the range is reversed.
bool ParseTimeRange(const RouteMatch& m, const std::string& from_name, const std::string& to_name,
                    std::optional<TimePoint>* from, std::optional<TimePoint>* to, HttpResponse* error);

// The JSON body ("" and whitespace are JSON null), parsed by ParseJson (depth
// limit kMaxJsonDepth; the size is bounded by the server's body limit). Else
// nullopt after setting `*error` to 400 InvalidJson naming "body" and saying
// why (not JSON, not UTF-8, nested too deeply).
std::optional<Json> ParseBody(const HttpRequest& req, HttpResponse* error);

// The JSON body as the exact bytes sent, checked like ParseBody's but never
// parsed into a value and dumped again (key order, `null`, number spelling
// kept): a payload to store (orchestration input, event data). "" and
// whitespace are no value (""). Same errors as ParseBody.
std::optional<JsonText> BodyPayload(const HttpRequest& req, HttpResponse* error);

// The body as a JSON object: ParseBody, then 400 InvalidArgument naming
// "body" unless it is an object; an empty body is {} when `empty_ok`.
std::optional<Json> ParseObjectBody(const HttpRequest& req, bool empty_ok, HttpResponse* error);

// Member `name` of `object` when it is a string (absent: `fallback`); else
// nullopt after setting `*error` to a 400 naming the field. Unlike
// Json::value(), never throws on a member of another type.
std::optional<std::string> StringMember(const Json& object, const std::string& name, const std::string& fallback,
                                        HttpResponse* error);
// The same for a boolean member.
std::optional<bool> BoolMember(const Json& object, const std::string& name, bool fallback, HttpResponse* error);

}  // namespace baton::api
