#include "api/http/http_server.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "api/http/request_reader.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/url.h"
#include "util/utf8.h"

namespace baton::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

thread_local std::string t_request_tenant;

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

// Decodes the query string into `out`; on a malformed escape or a name or
// value that is not UTF-8, false with `*field` naming the parameter.
bool ParseQuery(std::string_view q, std::map<std::string, std::string>* out, std::string* field) {
  size_t i = 0;
  while (i <= q.size() && !q.empty()) {
    size_t amp = q.find('&', i);
    if (amp == std::string_view::npos) amp = q.size();
    std::string_view pair = q.substr(i, amp - i);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string key, value;
      *field = "query";
      if (!util::PercentDecode(pair.substr(0, eq), &key) || !util::IsValidUtf8(key)) return false;
      *field = key;
      if (eq != std::string_view::npos && !util::PercentDecode(pair.substr(eq + 1), &value)) return false;
      if (!util::IsValidUtf8(value)) return false;
      (*out)[key] = value;
    }
    if (amp == q.size()) break;
    i = amp + 1;
  }
  return true;
}

std::string DefaultPublicUrl(const std::string& address, unsigned short port) {
  std::string host = address == "0.0.0.0" ? "127.0.0.1" : address == "::" ? "[::1]" : address;
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(port);
}

}  // namespace

bool IsValidPublicUrl(std::string_view url) {
  std::string_view rest;
  if (url.substr(0, 7) == "http://") rest = url.substr(7);
  else if (url.substr(0, 8) == "https://") rest = url.substr(8);
  else return false;
  if (rest.empty() || url.back() == '/') return false;
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.empty()) return false;
  std::string_view host = authority, port;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return false;
    if (!after.empty()) port = after.substr(1), host = authority.substr(0, close + 1);
    if (host.size() < 3) return false;
    for (char c : authority.substr(1, close - 1)) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
    }
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos) port = authority.substr(colon + 1), host = authority.substr(0, colon);
    if (host.empty()) return false;
    for (char c : host) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
    }
  }
  if (authority.find(':') != std::string_view::npos || !port.empty()) {
    if (authority.back() == ':' || port.empty() || port.size() > 5) return false;
    if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
    if (std::stoi(std::string(port)) > 65535) return false;
  }
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    const bool ok = std::isalnum(u) || std::string_view("-._~/%!$&'()*+,;=:@").find(c) != std::string_view::npos;
    if (!ok) return false;
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

HttpResponse JsonResponse(unsigned status, const Json& body) { return JsonResponse(status, DumpJson(body)); }

HttpResponse ErrorResponse(unsigned status, std::string_view code, std::string_view message,
                           std::string_view field) {
  Json body = {{"error", {{"code", code}, {"message", message}, {"field", field}}}};
  return JsonResponse(status, body);
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
      {StatusCode::kOutOfRange, "OutOfRange"},
  };
  auto it = kCodes.find(status.code());
  std::string_view code = it == kCodes.end() ? std::string_view("Internal") : it->second;
  return ErrorResponse(static_cast<unsigned>(HttpStatusFor(status.code())), code, status.message(), field);
}

void NoteRequestTenant(std::string_view tenant) { t_request_tenant = tenant; }

void Router::Add(http::verb method, std::string pattern, Handler handler) {
  std::vector<std::string> segments = SplitPath(pattern);
  routes_.push_back(Route{method, std::move(pattern), std::move(segments), std::move(handler)});
}

HttpResponse Router::Dispatch(const HttpRequest& request, std::string_view public_url, std::string* route_name) const {
  std::string unused;
  std::string& route_out = route_name != nullptr ? *route_name : unused;
  route_out = "unmatched";
  std::string_view target = request.target();
  size_t qpos = target.find('?');
  std::string_view path = target.substr(0, qpos);
  RouteMatch match;
  match.public_url = std::string(public_url);
  std::string query_field;
  if (qpos != std::string_view::npos && !ParseQuery(target.substr(qpos + 1), &match.query, &query_field)) {
    return ErrorResponse(400, "InvalidArgument",
                         "malformed percent-encoding or invalid UTF-8 in query parameter '" + query_field + "'",
                         query_field);
  }
  std::vector<std::string> raw = SplitPath(path);
  std::vector<std::string> segments;
  std::vector<bool> utf8;  // per segment: valid UTF-8 (a parameter that is not is refused by name below)
  for (const std::string& s : raw) {
    std::string decoded;
    if (!util::PercentDecode(s, &decoded)) {
      return ErrorResponse(400, "InvalidArgument", "malformed percent-encoding in the path", "path");
    }
    utf8.push_back(util::IsValidUtf8(decoded));
    segments.push_back(std::move(decoded));
  }
  bool path_matched = false;
  for (const Route& route : routes_) {
    std::map<std::string, std::string> params;
    size_t n = route.segments.size();
    bool optional_last = n > 0 && route.segments.back().size() > 3 && route.segments.back().ends_with("?}");
    if (!(segments.size() == n || (optional_last && segments.size() == n - 1))) continue;
    bool ok = true;
    std::string bad_param;
    for (size_t i = 0; i < segments.size() && ok; ++i) {
      const std::string& p = route.segments[i];
      if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
        std::string name = p.substr(1, p.size() - 2);
        if (!name.empty() && name.back() == '?') name.pop_back();
        if (!utf8[i] && bad_param.empty()) bad_param = name;
        params[name] = segments[i];
      } else if (p != segments[i]) {
        ok = false;
      }
    }
    if (!ok) continue;
    if (!bad_param.empty()) {
      return ErrorResponse(400, "InvalidArgument", "path parameter '" + bad_param + "' is not valid UTF-8",
                           bad_param);
    }
    path_matched = true;
    route_out = route.pattern;
    if (route.method != request.method()) continue;
    match.params = std::move(params);
    return route.handler(request, match);
  }
  if (path_matched) {
    return ErrorResponse(405, "MethodNotAllowed",
                         "method " + std::string(request.method_string()) + " is not allowed on this path");
  }
  return ErrorResponse(404, "NotFound", "no such endpoint: " + util::ToValidUtf8(path));
}

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, const Router& router)
      : options_(std::move(options)),
        router_(router),
        acceptor_(io_),
        local_acceptor_(io_),
        handlers_(options_.handler_threads) {}

  ~Impl() { Stop(std::chrono::seconds(0)); }

  // Binds the TCP listener (no accept loop yet). Idempotent.
  Status Listen() {
    if (listening_) return Status::Ok();
    boost::system::error_code ec;
    auto address = asio::ip::make_address(options_.address, ec);
    if (ec) return InvalidArgumentError("invalid listen address '" + options_.address + "'");
    if (!options_.public_url.empty() && !IsValidPublicUrl(options_.public_url)) {
      return InvalidArgumentError("invalid public URL '" + options_.public_url +
                                  "': expected http(s)://host[:port][/path], no trailing '/'");
    }
    max_connections_ = EffectiveMaxConnections(options_.max_connections);
    if (!options_.unix_socket.empty()) return Status::Ok();
    tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    // SO_REUSEADDR only lets a restarted server bind over TIME_WAIT
    // connections; it never lets two listeners share the port (that is
    // SO_REUSEPORT, which is not set).
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      const std::string where = options_.address + ":" + std::to_string(options_.port);
      if (ec == asio::error::address_in_use) return AlreadyExistsError("port " + where + " is in use");
      return UnavailableError("cannot listen on " + where + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    public_url_ = options_.public_url.empty() ? DefaultPublicUrl(options_.address, port_) : options_.public_url;
    listening_ = true;
    return Status::Ok();
  }

  Status Start() {
    BATON_RETURN_IF_ERROR(Listen());
    if (!options_.unix_socket.empty()) return StartLocal();
    asio::co_spawn(io_, Accept(acceptor_), asio::detached);
    for (int i = 0; i < options_.io_threads; ++i) threads_.emplace_back([this] { io_.run(); });
    return Status::Ok();
  }

  Status StartLocal() {
    const std::string& path = options_.unix_socket;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) return InvalidArgumentError("'" + path + "' exists and is not a socket");
      ::unlink(path.c_str());  // left by a process that died
    }
    boost::system::error_code ec;
    asio::local::stream_protocol::endpoint endpoint(path);
    local_acceptor_.open(endpoint.protocol(), ec);
    if (!ec) local_acceptor_.bind(endpoint, ec);
    if (!ec) local_acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return UnavailableError("cannot listen on " + path + ": " + ec.message());
    if (::chmod(path.c_str(), 0666) != 0) return UnavailableError("cannot chmod " + path);
    public_url_ = options_.public_url.empty() ? "http://localhost" : options_.public_url;
    asio::co_spawn(io_, Accept(local_acceptor_), asio::detached);
    for (int i = 0; i < options_.io_threads; ++i) threads_.emplace_back([this] { io_.run(); });
    return Status::Ok();
  }

  unsigned short port() const { return port_; }
  const std::string& public_url() const { return public_url_; }

  void Stop(std::chrono::milliseconds drain) {
    if (stopped_.exchange(true)) return;
    asio::post(io_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      local_acceptor_.close(ec);
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
  // A quarter of the open-files limit, at most 4096 (and `configured` when
  // that is lower): the rest stays for stores, Docker and the registry.
  static size_t EffectiveMaxConnections(size_t configured) {
    rlimit files{};
    size_t bound = 4096;
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
      bound = std::min<size_t>(bound, std::max<size_t>(16, files.rlim_cur / 4));
    }
    return configured == 0 ? bound : std::min(configured, bound);
  }

  // Who is at the other end of a unix socket: the cgroup of its process (a
  // container's own), or its pid when that cannot be read.
  static std::string PeerOf(int fd) {
    ucred cred{};
    socklen_t size = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &size) != 0) return "?";
    std::ifstream in("/proc/" + std::to_string(cred.pid) + "/cgroup");
    std::string cgroup((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return cgroup.empty() ? "pid:" + std::to_string(cred.pid) : cgroup;
  }

  // A connection's place under the caps; given back when the session ends.
  class Slot {
   public:
    Slot(Impl* server, std::string peer) : server_(server), peer_(std::move(peer)) {}
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { server_->Release(peer_); }

   private:
    Impl* server_;
    std::string peer_;
  };

  // A slot for a new connection from `peer`, or null when over a cap.
  std::unique_ptr<Slot> Admit(const std::string& peer) {
    std::lock_guard lock(connections_mu_);
    if (connections_ >= max_connections_) return nullptr;
    if (!peer.empty() && options_.max_connections_per_peer > 0 &&
        peer_connections_[peer] >= options_.max_connections_per_peer) {
      return nullptr;
    }
    ++connections_;
    if (!peer.empty()) ++peer_connections_[peer];
    return std::make_unique<Slot>(this, peer);
  }
  void Release(const std::string& peer) {
    std::lock_guard lock(connections_mu_);
    --connections_;
    if (!peer.empty() && --peer_connections_[peer] == 0) peer_connections_.erase(peer);
  }

  // Says why connections are refused or accepts fail, at most once a second.
  void WarnAccept(const std::string& what) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(connections_mu_);
    ++warnings_skipped_;
    if (now - last_warning_ < std::chrono::seconds(1)) return;
    util::Log().warn("http {}: {} (x{} in the last second)", options_.unix_socket.empty() ? "server" : options_.unix_socket,
                     what, warnings_skipped_);
    last_warning_ = now;
    warnings_skipped_ = 0;
  }

  template <class Acceptor>
  asio::awaitable<void> Accept(Acceptor& acceptor) {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || stopped_) co_return;
        // Out of file descriptors (EMFILE, ENFILE) or another accept error:
        // pause instead of spinning on it; connections that end free some.
        WarnAccept("accept failed: " + ec.message());
        asio::steady_timer pause(io_, std::chrono::milliseconds(100));
        co_await pause.async_wait(kTuple);
        continue;
      }
      std::string peer;
      if constexpr (std::is_same_v<Acceptor, asio::local::stream_protocol::acceptor>) {
        if (options_.max_connections_per_peer > 0) peer = PeerOf(socket.native_handle());
      }
      std::unique_ptr<Slot> slot = Admit(peer);
      if (!slot) {
        WarnAccept("connection refused: over the cap of " + std::to_string(max_connections_) + " connections, or " +
                   std::to_string(options_.max_connections_per_peer) + " from one peer");
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      asio::co_spawn(io_, Session(std::move(socket), std::move(slot)), asio::detached);
    }
  }

  template <class Socket>
  asio::awaitable<void> Session(Socket socket, std::unique_ptr<Slot> slot) {
    beast::basic_stream<typename Socket::protocol_type> stream(std::move(socket));
    beast::flat_buffer buffer;
    const RequestLimits limits{options_.max_header_bytes, options_.max_body_bytes};
    for (;;) {
      RequestParser parser;
      ConfigureParser(limits, &parser);
      // The first read of a keep-alive connection may idle; a request once
      // started must arrive within read_timeout.
      stream.expires_after(buffer.size() == 0 ? options_.idle_timeout : options_.read_timeout);
      // The header first, so that framing Baton refuses is answered before a
      // byte of the body is taken for anything.
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kTuple);
      std::optional<HttpResponse> refusal;
      if (ec) {
        refusal = ReadErrorResponse(ec, parser, limits);
        if (!refusal) break;  // end of stream, timeout, reset
      } else {
        refusal = CheckHeader(parser);
      }
      if (!refusal && !parser.is_done()) {
        if (ExpectsContinue(parser)) {
          http::response<http::empty_body> go_on{http::status::continue_, 11};
          stream.expires_after(options_.write_timeout);
          auto [cec, cn] = co_await http::async_write(stream, go_on, kTuple);
          if (cec) break;
        }
        stream.expires_after(options_.read_timeout);
        auto [bec, bn] = co_await http::async_read(stream, buffer, parser, kTuple);
        if (bec) {
          refusal = ReadErrorResponse(bec, parser, limits);
          if (!refusal) break;
        }
      }
      if (refusal) {
        Record("-", "unparsed",
               refusal->result_int(), "", std::chrono::steady_clock::now());
        // The framing of what follows cannot be trusted: answer, then close.
        refusal->keep_alive(false);
        refusal->prepare_payload();
        stream.expires_after(options_.write_timeout);
        co_await http::async_write(stream, *refusal, kTuple);
        co_await LingeringClose(stream);
        co_return;
      }
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
    stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
  }

  // Closing a socket with unread data resets the connection, and the client,
  // still sending its oversize body, may never see our answer. So stop
  // sending, then read and discard what is still coming, within bounds.
  template <class Stream>
  asio::awaitable<void> LingeringClose(Stream& stream) {
    boost::system::error_code ignored;
    stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
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
    const auto start = std::chrono::steady_clock::now();
    t_request_tenant.clear();
    std::string route;
    HttpResponse response;
    try {
      response = router_.Dispatch(request, public_url_, &route);
    } catch (const std::exception& e) {
      util::Log().error("handler for {} {} failed: {}", std::string(request.method_string()), route, e.what());
      response = ErrorResponse(500, "Internal", "internal error");
    }
    // A verb Beast does not know is the client's own text: not a label.
    const auto verb = request.method_string();
    Record(request.method() == http::verb::unknown ? std::string_view("OTHER") : std::string_view(verb.data(), verb.size()),
           route, response.result_int(), t_request_tenant, start);
    t_request_tenant.clear();
    return response;
  }

  // The request's metrics and access log line. `route` is a route pattern
  // (or "unmatched"/"unparsed"), never the raw target: no id, query or
  // token a client sent reaches a label or the log.
  void Record(std::string_view method, const std::string& route, unsigned status, const std::string& tenant,
              std::chrono::steady_clock::time_point start) {
    const auto took = std::chrono::steady_clock::now() - start;
    if (util::metrics::Enabled()) {
      auto& registry = util::metrics::Default();
      registry
          .GetCounter("baton_http_requests_total", "HTTP requests answered, by server, method, route pattern and status",
                      {{"server", options_.name}, {"method", std::string(method)}, {"route", route},
                       {"code", std::to_string(status)}})
          .Inc();
      registry
          .GetHistogram("baton_http_request_duration_seconds",
                        "Time from a request read to its answer ready, by server and route pattern",
                        {{"server", options_.name}, {"route", route}})
          .Observe(took);
    }
    const auto level = options_.access_log ? spdlog::level::info : spdlog::level::debug;
    if (util::Log().should_log(level)) {
      util::LogEvent(level, "http_request",
                     Json{{"server", options_.name},
                          {"method", std::string(method)},
                          {"route", route},
                          {"status", status},
                          {"tenant", tenant},
                          {"ms", std::chrono::duration<double, std::milli>(took).count()}});
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
  asio::local::stream_protocol::acceptor local_acceptor_;
  asio::thread_pool handlers_;
  std::vector<std::thread> threads_;
  unsigned short port_ = 0;
  std::string public_url_;
  std::atomic<bool> stopped_{false};
  bool listening_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
  std::mutex connections_mu_;
  size_t max_connections_ = 0;
  size_t connections_ = 0;
  std::map<std::string, size_t> peer_connections_;
  std::chrono::steady_clock::time_point last_warning_{};
  int64_t warnings_skipped_ = 0;
};

HttpServer::HttpServer(HttpServerOptions options, const Router& router)
    : impl_(std::make_unique<Impl>(std::move(options), router)) {}
HttpServer::~HttpServer() = default;
Status HttpServer::Listen() { return impl_->Listen(); }
Status HttpServer::Start() { return impl_->Start(); }
unsigned short HttpServer::port() const { return impl_->port(); }
const std::string& HttpServer::public_url() const { return impl_->public_url(); }
void HttpServer::Stop(std::chrono::milliseconds drain) { impl_->Stop(drain); }

}  // namespace baton::api
