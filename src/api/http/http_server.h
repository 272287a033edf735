// A small HTTP/1.1 server on Boost.Beast and Asio coroutines, with a router.
//
// Connections are served by `asio::awaitable` coroutines on `io_threads`
// threads; every read and write has a deadline, so a slow or stalled client
// holds no thread. Handlers are plain blocking functions (they call the
// Client, which may wait for an fsync or for an instance): they run on a
// separate pool of `handler_threads`, never on the I/O threads.
//
// Requests are read with limits (request_reader.h): an oversize or malformed
// request gets a JSON error answer (400, 413, 431, 501), never a silently
// closed connection. Path and query parameters reach handlers percent-decoded
// and valid UTF-8 (else 400 naming the parameter).
//
// Thread-safety: Start/Stop from one thread; handlers run concurrently.
#pragma once

#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "baton/json.h"
#include "baton/status.h"

namespace baton::api {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// The request line and headers Baton reads, and the body, at most (defaults).
inline constexpr size_t kMaxHeaderBytes = 64 * 1024;
inline constexpr size_t kMaxBodyBytes = 1 << 20;

// Path parameters by name, and decoded query parameters: all valid UTF-8.
struct RouteMatch {
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> query;
  // The server's public base URL ("http://127.0.0.1:8080", no trailing '/'):
  // what URLs in answers start with. Never taken from the request's Host.
  std::string public_url;

  // The query parameter, or `fallback` when absent.
  std::string Query(const std::string& name, const std::string& fallback = "") const {
    auto it = query.find(name);
    return it == query.end() ? fallback : it->second;
  }
  bool Has(const std::string& name) const { return query.count(name) != 0; }
};

using Handler = std::function<HttpResponse(const HttpRequest&, const RouteMatch&)>;

// Maps (method, path pattern) to handlers. Patterns are '/'-separated; a
// segment "{name}" captures one segment, a last segment "{name?}" is optional.
class Router {
 public:
  void Add(boost::beast::http::verb method, std::string pattern, Handler handler);
  // 404 for an unknown path, 405 for a known path with another method, 400
  // naming the parameter for malformed percent-encoding or invalid UTF-8.
  // `public_url` is handed to the handler in RouteMatch. `*route`, when
  // given, is set to the pattern that matched ("/api/v1/jobs/{id}"), or to
  // "unmatched": what metrics and the access log name a request by (never
  // the raw path, which a client chooses).
  HttpResponse Dispatch(const HttpRequest& request, std::string_view public_url = "",
                        std::string* route = nullptr) const;

 private:
  struct Route {
    boost::beast::http::verb method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
  };
  std::vector<Route> routes_;
};

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  unsigned short port = 8080;  // 0 = pick a free port
  int io_threads = 2;
  int handler_threads = 64;
  size_t max_body_bytes = kMaxBodyBytes;
  size_t max_header_bytes = kMaxHeaderBytes;  // request line + headers
  // Base of the URLs in answers (status URIs); "" = http://<address>:<port>
  // (127.0.0.1 for 0.0.0.0, brackets around an IPv6 address). Start() refuses
  // one that is not http(s)://host[:port][/path] with InvalidArgument.
  std::string public_url;
  std::chrono::milliseconds read_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
  // When set, the server listens on this unix socket instead of
  // address:port: a stale socket file there is replaced, the new one is
  // mode 0666 (who may reach it is decided by its directory). Used for the
  // job callback endpoint that containers reach without a network.
  std::string unix_socket;
  // Connections open at once. 0 = a quarter of the process's open-files
  // limit (at most 4096); a configured value is bounded by that too. One
  // over the cap is closed at once, so no client can starve the process of
  // file descriptors (every store, Docker and registry call needs some).
  size_t max_connections = 0;
  // Unix socket only: connections open at once from one peer, a peer being
  // the cgroup of the connecting process (one container), found with
  // SO_PEERCRED. 0 = no per-peer cap. Keeps one job from taking every slot
  // of the callback socket that all jobs share.
  size_t max_connections_per_peer = 0;
  // Name of this server in metrics and the access log ("api", "callback").
  std::string name = "api";
  // One log line per request (util::LogEvent "http_request": method, route,
  // status, tenant, ms) at info level; off: at debug level.
  bool access_log = true;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, const Router& router);
  ~HttpServer();

  // Binds the TCP listener without serving yet, so that a caller can claim
  // its port before it creates anything else; connections wait in the
  // backlog until Start(). AlreadyExists when another socket listens on the
  // port (never shared: no SO_REUSEPORT); Unavailable when the address cannot
  // be bound otherwise; InvalidArgument for a bad address or public_url.
  // Idempotent; a no-op for a unix socket (bound by Start()).
  Status Listen();
  // Binds (unless Listen() did) and starts serving; errors as Listen().
  Status Start();
  // The bound port (useful with port 0). REQUIRES: Listen() or Start() succeeded.
  unsigned short port() const;
  // The public base URL in use. REQUIRES: Start() succeeded.
  const std::string& public_url() const;
  // Stops accepting, lets in-flight requests finish (up to `drain`), then
  // closes every connection and joins the threads. Idempotent.
  void Stop(std::chrono::milliseconds drain = std::chrono::seconds(10));

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The tenant the request being handled on this thread acts for: set by
// AuthenticateBearer (request_util.h) for the access log line and metrics
// of the request ("(admin)" for an admin key). Handler threads only.
void NoteRequestTenant(std::string_view tenant);

// {"error":{"code","message","field"}} with the given HTTP status. Text that
// is not UTF-8 (an echoed id, say) is shown with U+FFFD, never thrown on.
HttpResponse ErrorResponse(unsigned status, std::string_view code, std::string_view message,
                           std::string_view field = "");
// The status that fits a Status code (status.h), with its gRPC-style name as code.
HttpResponse ErrorResponse(const Status& status, std::string_view field = "");
// A JSON body with the given HTTP status.
HttpResponse JsonResponse(unsigned status, const std::string& json);
// The same with `body` serialized by DumpJson (never throws).
HttpResponse JsonResponse(unsigned status, const Json& body);
inline HttpResponse JsonResponse(unsigned status, const char* json) { return JsonResponse(status, std::string(json)); }

// Whether `url` is an acceptable public base URL: http:// or https://, a host
// (name, IPv4 or [IPv6]), an optional port and path, no query, fragment or
// user info, no trailing '/'.
bool IsValidPublicUrl(std::string_view url);

}  // namespace baton::api
