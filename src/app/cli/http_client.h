// A small blocking HTTP/1.1 client that the `baton` CLI verbs use to talk to a
// running `baton serve` (docs/http-api.md).
//
// It speaks plain http:// only: the server has no TLS listener, and a client
// that silently downgraded an https:// URL would send the API key in clear, so
// https:// URLs are rejected with a message saying so.
//
// Every exchange is bounded in time: connecting must succeed within
// `connect_timeout`, and the whole exchange (connect, send, receive) within
// the request's timeout, so a stopped or wedged server never hangs the CLI.
// Each request uses its own connection (`Connection: close`): a CLI invocation
// makes one or a few requests, and this keeps the client free of connection
// state.
//
// Thread-safety: HttpClient is immutable after construction; Send may be
// called from several threads at once (each call has its own I/O context).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "baton/status.h"
#include "util/url.h"

namespace baton::cli {

// Where a Baton server listens: "http://host[:port][/base/path]".
struct ServerUrl {
  std::string host;       // a name or an IP address; IPv6 without brackets ("::1")
  uint16_t port = 80;     // 80 when the URL names none
  std::string base_path;  // "" or "/prefix" (no trailing '/'): for a server behind a proxy

  // "http://host:port/base" (IPv6 hosts in brackets); used in messages.
  std::string ToString() const;
};

// Parses a server URL. Accepts "http://host[:port][/path]" (scheme
// case-insensitive, "[v6addr]" hosts) and, for convenience, "host[:port]"
// without a scheme, meaning http. Returns InvalidArgument, with a message
// naming the problem, for https:// and other schemes, user info, a query or
// fragment, an empty host, or a port outside 1..65535.
Result<ServerUrl> ParseServerUrl(std::string_view url);

// The tree's one percent-encoder (util/url.h): everything but RFC 3986
// unreserved characters (A-Z a-z 0-9 - . _ ~) as %XX, so the result is safe as
// a path segment or as a query name or value. Space becomes "%20", never '+'.
using util::PercentEncode;

// "?a=1&b=x%20y" for {{"a","1"},{"b","x y"}}, in the given order; "" for none.
std::string BuildQueryString(const std::vector<std::pair<std::string, std::string>>& params);

enum class HttpMethod { kGet, kPost, kPut, kPatch, kDelete };

struct HttpRequestSpec {
  HttpMethod method = HttpMethod::kGet;
  // Path and query relative to the server's base path, e.g.
  // "/runtime/webhooks/durabletask/instances/abc?showHistory=true".
  // REQUIRES: starts with '/' and is already percent-encoded.
  std::string target;
  // Sent with "Content-Type: application/json" when `has_body`; a POST or
  // PUT without a body is sent with "Content-Length: 0".
  bool has_body = false;
  std::string body;
  // Sent as the x-ms-continuation-token header when not empty.
  std::string continuation_token;
  // Bound on the whole exchange; zero means HttpClientOptions::request_timeout.
  std::chrono::milliseconds timeout{0};
};

// What the server answered: any status, 2xx or not, is a response. Only the
// headers the CLI needs are kept.
struct HttpResponse {
  int status = 0;
  std::string body;
  std::string location;            // Location header; "" when absent
  std::string continuation_token;  // x-ms-continuation-token header; "" when absent
  std::string status_counts;       // x-baton-status-counts header ("Running=3,Failed=1"); "" when absent
};

struct HttpClientOptions {
  // Sent as "Authorization: Bearer <api_key>"; no header when empty.
  std::string api_key;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
  std::chrono::milliseconds request_timeout{std::chrono::seconds(30)};
  // Larger answers are an error rather than an unbounded allocation.
  size_t max_response_bytes = size_t{256} << 20;
};

class HttpClient {
 public:
  HttpClient(ServerUrl server, HttpClientOptions options);

  // Sends one request and reads the whole response.
  //
  // Returns the response for every HTTP status. Returns:
  //  - Unavailable "cannot reach Baton at URL: <reason>" when the host cannot
  //    be resolved or the connection is refused or not made within
  //    connect_timeout;
  //  - DeadlineExceeded when the response is not complete within the timeout;
  //  - Unavailable when the connection breaks mid-exchange or the response is
  //    not valid HTTP;
  //  - ResourceExhausted when the response exceeds max_response_bytes.
  //
  // Name resolution of a non-literal host runs getaddrinfo, which the
  // timeouts cannot interrupt; IP literals (the default 127.0.0.1) skip it.
  Result<HttpResponse> Send(const HttpRequestSpec& request) const;

  const ServerUrl& server() const { return server_; }

 private:
  ServerUrl server_;
  HttpClientOptions options_;
};

}  // namespace baton::cli
