#include "app/cli/http_client.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <optional>

namespace baton::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Keeps I/O errors as values (STYLE.md): every co_await yields (error_code, ...).
constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

constexpr std::string_view kUserAgent = "baton-cli/0.1.0";

bool HasControlOrSpace(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

std::string Lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string Seconds(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

http::verb ToVerb(HttpMethod m) {
  switch (m) {
    case HttpMethod::kGet:
      return http::verb::get;
    case HttpMethod::kPost:
      return http::verb::post;
    case HttpMethod::kPut:
      return http::verb::put;
    case HttpMethod::kPatch:
      return http::verb::patch;
    case HttpMethod::kDelete:
      return http::verb::delete_;
  }
  return http::verb::get;
}

// The value of the Host header: the port is always given, so a server behind
// a proxy on a non-default port builds correct check-status URIs.
std::string HostHeader(const ServerUrl& s) {
  bool v6 = s.host.find(':') != std::string::npos;
  return (v6 ? "[" + s.host + "]" : s.host) + ":" + std::to_string(s.port);
}

// One exchange on a private io_context. Runs as a coroutine so that every
// step carries its error as a value and the stream's deadline covers it.
class Exchange {
 public:
  Exchange(const ServerUrl& server, const HttpClientOptions& options, const HttpRequestSpec& spec)
      : server_(server), options_(options), spec_(spec), resolver_(ioc_), stream_(ioc_) {}

  Result<HttpResponse> Run() {
    asio::co_spawn(ioc_, Go(), asio::detached);
    ioc_.run();
    // Go() always sets result_ before finishing; the fallback guards against
    // an exception escaping Boost (e.g. bad_alloc), which co_spawn swallows.
    if (!result_) return Status(StatusCode::kInternal, "HTTP exchange ended without a result");
    return std::move(*result_);
  }

 private:
  asio::awaitable<void> Go() {
    result_.emplace(co_await Attempt());
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  Status CannotReach(const std::string& reason) const {
    return UnavailableError("cannot reach Baton at " + server_.ToString() + ": " + reason);
  }

  asio::awaitable<Result<HttpResponse>> Attempt() {
    const auto timeout = spec_.timeout.count() > 0 ? spec_.timeout : options_.request_timeout;
    const auto deadline = std::chrono::steady_clock::now() + timeout;

    // Resolve: an IP literal needs no lookup.
    std::vector<tcp::endpoint> endpoints;
    beast::error_code ec;
    asio::ip::address address = asio::ip::make_address(server_.host, ec);
    if (!ec) {
      endpoints.emplace_back(address, server_.port);
    } else {
      auto [rec, results] =
          co_await resolver_.async_resolve(server_.host, std::to_string(server_.port), kAsTuple);
      if (rec)
        co_return CannotReach("cannot resolve host '" + server_.host + "': " + rec.message());
      for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    }

    stream_.expires_after(std::min(options_.connect_timeout, timeout));
    auto [cec, endpoint] = co_await stream_.async_connect(endpoints, kAsTuple);
    if (cec == beast::error::timeout) {
      co_return CannotReach("no connection within " + Seconds(options_.connect_timeout));
    }
    if (cec) co_return CannotReach(cec.message());

    http::request<http::string_body> req{ToVerb(spec_.method), server_.base_path + spec_.target,
                                         11};
    req.set(http::field::host, HostHeader(server_));
    req.set(http::field::user_agent, kUserAgent);
    req.set(http::field::accept, "application/json");
    if (!options_.api_key.empty())
      req.set(http::field::authorization, "Bearer " + options_.api_key);
    if (!spec_.continuation_token.empty())
      req.set("x-ms-continuation-token", spec_.continuation_token);
    if (spec_.has_body) {
      req.set(http::field::content_type, "application/json");
      req.body() = spec_.body;
    }
    req.keep_alive(false);
    req.prepare_payload();
    // A body-less POST or PUT still needs a length, or some servers wait for a body.
    if ((spec_.method == HttpMethod::kPost || spec_.method == HttpMethod::kPut) &&
        !spec_.has_body) {
      req.content_length(0);
    }

    stream_.expires_at(deadline);
    auto [wec, written] = co_await http::async_write(stream_, req, kAsTuple);
    if (wec == beast::error::timeout) co_return NoAnswer(timeout);
    if (wec) co_return LostConnection(wec);

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(options_.max_response_bytes);
    auto [rec, read] = co_await http::async_read(stream_, buffer, parser, kAsTuple);
    if (rec == beast::error::timeout) co_return NoAnswer(timeout);
    if (rec == http::error::body_limit) {
      co_return Status(StatusCode::kResourceExhausted,
                       "the response from " + server_.ToString() + " is larger than " +
                           std::to_string(options_.max_response_bytes) + " bytes");
    }
    if (rec) co_return LostConnection(rec);

    auto& res = parser.get();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
    out.location = std::string(res[http::field::location]);
    out.continuation_token = std::string(res["x-ms-continuation-token"]);
    out.status_counts = std::string(res["x-baton-status-counts"]);
    co_return out;
  }

  Status NoAnswer(std::chrono::milliseconds timeout) const {
    return DeadlineExceededError("Baton at " + server_.ToString() + " did not answer within " +
                                 Seconds(timeout));
  }

  Status LostConnection(const beast::error_code& ec) const {
    return UnavailableError("lost the connection to Baton at " + server_.ToString() + ": " +
                            ec.message());
  }

  const ServerUrl& server_;
  const HttpClientOptions& options_;
  const HttpRequestSpec& spec_;
  asio::io_context ioc_;
  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  std::optional<Result<HttpResponse>> result_;
};

}  // namespace

std::string ServerUrl::ToString() const {
  bool v6 = host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + base_path;
}

Result<ServerUrl> ParseServerUrl(std::string_view url) {
  const std::string quoted = "'" + std::string(url) + "'";
  std::string_view rest = url;
  if (size_t scheme_end = rest.find("://"); scheme_end != std::string_view::npos) {
    std::string scheme = Lowercase(rest.substr(0, scheme_end));
    if (scheme == "https") {
      return InvalidArgumentError(
          "https:// is not supported in server URL " + quoted +
          ": `baton serve` speaks plain HTTP; use http:// (through an SSH tunnel when the network "
          "is not trusted)");
    }
    if (scheme != "http") {
      return InvalidArgumentError("unsupported scheme '" + scheme + "' in server URL " + quoted +
                                  ": use http://HOST:PORT");
    }
    rest.remove_prefix(scheme_end + 3);
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return InvalidArgumentError("server URL " + quoted + " must not have a query or fragment");
  }
  if (HasControlOrSpace(rest)) {
    return InvalidArgumentError("server URL " + quoted + " contains spaces or control characters");
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgumentError("server URL " + quoted +
                                " must not contain user info; pass the API key with --key or "
                                "BATON_KEY");
  }

  ServerUrl out;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgumentError("server URL " + quoted + " has an unterminated '[' in its host");
    }
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return InvalidArgumentError("server URL " + quoted +
                                    " has text after ']' that is not a port");
      }
      port_text = after.substr(1);
      if (port_text.empty())
        return InvalidArgumentError("server URL " + quoted + " has an empty port");
    }
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos &&
        authority.find(':', colon + 1) != std::string_view::npos) {
      return InvalidArgumentError("server URL " + quoted +
                                  ": write an IPv6 address in brackets, e.g. http://[::1]:8080");
    }
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty())
        return InvalidArgumentError("server URL " + quoted + " has an empty port");
    }
  }
  if (out.host.empty()) return InvalidArgumentError("server URL " + quoted + " has no host");
  if (!port_text.empty()) {
    bool digits = port_text.size() <= 5 && std::all_of(port_text.begin(), port_text.end(),
                                                       [](char c) { return c >= '0' && c <= '9'; });
    int port = digits ? std::stoi(std::string(port_text)) : 0;
    if (port < 1 || port > 65535) {
      return InvalidArgumentError("server URL " + quoted + " has an invalid port '" +
                                  std::string(port_text) + "' (1 to 65535)");
    }
    out.port = static_cast<uint16_t>(port);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.base_path = std::string(path);
  return out;
}

std::string BuildQueryString(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [name, value] : params) {
    out += out.empty() ? '?' : '&';
    out += PercentEncode(name);
    out += '=';
    out += PercentEncode(value);
  }
  return out;
}

HttpClient::HttpClient(ServerUrl server, HttpClientOptions options)
    : server_(std::move(server)), options_(std::move(options)) {}

Result<HttpResponse> HttpClient::Send(const HttpRequestSpec& request) const {
  Exchange exchange(server_, options_, request);
  return exchange.Run();
}

}  // namespace baton::cli
