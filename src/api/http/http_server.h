// A small HTTP/1.1 server on Boost.Beast and Asio coroutines, with a router.
//
// Connections are served by `asio::awaitable` coroutines on `io_threads`
// threads; every read and write has a deadline, so a slow or stalled client
// holds no thread. Handlers are plain blocking functions (they call the
// Client, which may wait for an fsync or for an instance): they run on a
// separate pool of `handler_threads`, never on the I/O threads.
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

#include "baton/status.h"

namespace baton::api {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// Path parameters by name, and decoded query parameters.
struct RouteMatch {
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> query;

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
  // 404 for an unknown path, 405 for a known path with another method.
  HttpResponse Dispatch(const HttpRequest& request) const;

 private:
  struct Route {
    boost::beast::http::verb method;
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
  size_t max_body_bytes = 1 << 20;
  std::chrono::milliseconds read_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, const Router& router);
  ~HttpServer();

  // Binds and starts serving. Unavailable when the address cannot be bound.
  Status Start();
  // The bound port (useful with port 0). REQUIRES: Start() succeeded.
  unsigned short port() const;
  // Stops accepting, lets in-flight requests finish (up to `drain`), then
  // closes every connection and joins the threads. Idempotent.
  void Stop(std::chrono::milliseconds drain = std::chrono::seconds(10));

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// {"error":{"code","message","field"}} with the given HTTP status.
HttpResponse ErrorResponse(unsigned status, std::string_view code, std::string_view message,
                           std::string_view field = "");
// The status that fits a Status code (status.h), with its gRPC-style name as code.
HttpResponse ErrorResponse(const Status& status, std::string_view field = "");
// A JSON body with the given HTTP status.
HttpResponse JsonResponse(unsigned status, const std::string& json);

// Percent-decodes a URL component ('+' stays '+'). False on a malformed escape.
bool UrlDecode(std::string_view in, std::string* out);

}  // namespace baton::api
