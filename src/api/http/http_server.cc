#include "api/http/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "util/log.h"

namespace baton::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

bool ParseQuery(std::string_view q, std::map<std::string, std::string>* out) {
  size_t i = 0;
  while (i <= q.size() && !q.empty()) {
    size_t amp = q.find('&', i);
    if (amp == std::string_view::npos) amp = q.size();
    std::string_view pair = q.substr(i, amp - i);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string key, value;
      if (!UrlDecode(pair.substr(0, eq), &key)) return false;
      if (eq != std::string_view::npos && !UrlDecode(pair.substr(eq + 1), &value)) return false;
      (*out)[key] = value;
    }
    if (amp == q.size()) break;
    i = amp + 1;
  }
  return true;
}

}  // namespace

bool UrlDecode(std::string_view in, std::string* out) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

HttpResponse JsonResponse(unsigned status, const std::string& json) {
  HttpResponse res{static_cast<http::status>(status), 11};
  res.set(http::field::content_type, "application/json; charset=utf-8");
  res.set(http::field::server, "baton");
  res.body() = json;
  return res;
}

HttpResponse ErrorResponse(unsigned status, std::string_view code, std::string_view message,
                           std::string_view field) {
  nlohmann::json body = {{"error", {{"code", code}, {"message", message}, {"field", field}}}};
  return JsonResponse(status, body.dump());
}

HttpResponse ErrorResponse(const Status& status, std::string_view field) {
  static const std::map<StatusCode, std::string_view> kCodes = {
      {StatusCode::kInvalidArgument, "InvalidArgument"},
      {StatusCode::kNotFound, "NotFound"},
      {StatusCode::kAlreadyExists, "AlreadyExists"},
      {StatusCode::kFailedPrecondition, "FailedPrecondition"},
      {StatusCode::kUnauthenticated, "Unauthenticated"},
      {StatusCode::kPermissionDenied, "PermissionDenied"},
      {StatusCode::kUnimplemented, "Unimplemented"},
      {StatusCode::kDeadlineExceeded, "DeadlineExceeded"},
      {StatusCode::kUnavailable, "Unavailable"},
      {StatusCode::kResourceExhausted, "ResourceExhausted"},
  };
  auto it = kCodes.find(status.code());
  std::string_view code = it == kCodes.end() ? std::string_view("Internal") : it->second;
  return ErrorResponse(static_cast<unsigned>(HttpStatusFor(status.code())), code, status.message(), field);
}

void Router::Add(http::verb method, std::string pattern, Handler handler) {
  routes_.push_back(Route{method, SplitPath(pattern), std::move(handler)});
}

HttpResponse Router::Dispatch(const HttpRequest& request) const {
  std::string_view target = request.target();
  size_t qpos = target.find('?');
  std::string_view path = target.substr(0, qpos);
  RouteMatch match;
  if (qpos != std::string_view::npos && !ParseQuery(target.substr(qpos + 1), &match.query)) {
    return ErrorResponse(400, "InvalidArgument", "malformed percent-encoding in the query string", "query");
  }
  std::vector<std::string> raw = SplitPath(path);
  std::vector<std::string> segments;
  for (const std::string& s : raw) {
    std::string decoded;
    if (!UrlDecode(s, &decoded)) {
      return ErrorResponse(400, "InvalidArgument", "malformed percent-encoding in the path", "path");
    }
    segments.push_back(std::move(decoded));
  }
  bool path_matched = false;
  for (const Route& route : routes_) {
    std::map<std::string, std::string> params;
    size_t n = route.segments.size();
    bool optional_last = n > 0 && route.segments.back().size() > 3 && route.segments.back().ends_with("?}");
    if (!(segments.size() == n || (optional_last && segments.size() == n - 1))) continue;
    bool ok = true;
    for (size_t i = 0; i < segments.size() && ok; ++i) {
      const std::string& p = route.segments[i];
      if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
        std::string name = p.substr(1, p.size() - 2);
        if (!name.empty() && name.back() == '?') name.pop_back();
        params[name] = segments[i];
      } else if (p != segments[i]) {
        ok = false;
      }
    }
    if (!ok) continue;
    path_matched = true;
    if (route.method != request.method()) continue;
    match.params = std::move(params);
    return route.handler(request, match);
  }
  if (path_matched) {
    return ErrorResponse(405, "MethodNotAllowed",
                         "method " + std::string(request.method_string()) + " is not allowed on this path");
  }
  return ErrorResponse(404, "NotFound", "no such endpoint: " + std::string(path));
}

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, const Router& router)
      : options_(std::move(options)), router_(router), acceptor_(io_), handlers_(options_.handler_threads) {}

  ~Impl() { Stop(std::chrono::seconds(0)); }

  Status Start() {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(options_.address, ec);
    if (ec) return InvalidArgumentError("invalid listen address '" + options_.address + "'");
    tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return UnavailableError("cannot listen on " + options_.address + ":" + std::to_string(options_.port) +
                              ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, Accept(), asio::detached);
    for (int i = 0; i < options_.io_threads; ++i) threads_.emplace_back([this] { io_.run(); });
    return Status::Ok();
  }

  unsigned short port() const { return port_; }

  void Stop(std::chrono::milliseconds drain) {
    if (stopped_.exchange(true)) return;
    asio::post(io_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
    });
    {
      // In-flight requests finish; idle keep-alive connections are closed below.
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, drain, [this] { return in_flight_ == 0; });
    }
    io_.stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    handlers_.join();
  }

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || stopped_) co_return;
        util::Log().warn("http accept failed: {}", ec.message());
        continue;
      }
      asio::co_spawn(io_, Session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> Session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(options_.max_body_bytes);
      parser.header_limit(64 * 1024);
      // The first read of a keep-alive connection may idle; a request once
      // started must arrive within read_timeout.
      stream.expires_after(buffer.size() == 0 ? options_.idle_timeout : options_.read_timeout);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
      if (ec == http::error::body_limit) {
        HttpResponse res = ErrorResponse(413, "PayloadTooLarge",
                                         "the request body exceeds " + std::to_string(options_.max_body_bytes) +
                                             " bytes",
                                         "body");
        res.keep_alive(false);
        res.prepare_payload();
        stream.expires_after(options_.write_timeout);
        co_await http::async_write(stream, res, kTuple);
        co_await LingeringClose(stream);
        co_return;
      }
      if (ec) break;  // end of stream, timeout, reset, malformed request
      HttpRequest request = parser.release();
      Enter();
      HttpResponse response = co_await asio::co_spawn(
          handlers_,
          [this, &request]() -> asio::awaitable<HttpResponse> { co_return Handle(request); },
          asio::use_awaitable);
      Leave();
      response.keep_alive(request.keep_alive() && !stopped_);
      response.prepare_payload();
      stream.expires_after(options_.write_timeout);
      auto [wec, wn] = co_await http::async_write(stream, response, kTuple);
      if (wec || !response.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  // Closing a socket with unread data resets the connection, and the client,
  // still sending its oversize body, may never see our answer. So stop
  // sending, then read and discard what is still coming, within bounds.
  asio::awaitable<void> LingeringClose(beast::tcp_stream& stream) {
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    std::vector<char> sink(64 * 1024);
    size_t drained = 0;
    stream.expires_after(std::chrono::seconds(5));
    while (drained < (64u << 20)) {
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
      if (ec) break;
      drained += n;
    }
  }

  HttpResponse Handle(const HttpRequest& request) {
    try {
      return router_.Dispatch(request);
    } catch (const std::exception& e) {
      util::Log().error("handler for {} {} failed: {}", std::string(request.method_string()),
                        std::string(request.target()), e.what());
      return ErrorResponse(500, "Internal", "internal error");
    }
  }

  void Enter() {
    std::lock_guard lock(mu_);
    ++in_flight_;
  }
  void Leave() {
    std::lock_guard lock(mu_);
    if (--in_flight_ == 0) cv_.notify_all();
  }

  HttpServerOptions options_;
  const Router& router_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::thread_pool handlers_;
  std::vector<std::thread> threads_;
  unsigned short port_ = 0;
  std::atomic<bool> stopped_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
};

HttpServer::HttpServer(HttpServerOptions options, const Router& router)
    : impl_(std::make_unique<Impl>(std::move(options), router)) {}
HttpServer::~HttpServer() = default;
Status HttpServer::Start() { return impl_->Start(); }
unsigned short HttpServer::port() const { return impl_->port(); }
void HttpServer::Stop(std::chrono::milliseconds drain) { impl_->Stop(drain); }

}  // namespace baton::api
