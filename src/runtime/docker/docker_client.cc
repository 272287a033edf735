#include "runtime/docker/docker_client.h"

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <sys/un.h>

#include <cstdlib>
#include <optional>

namespace baton::runtime::docker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
// One socket type for both kinds of endpoint.
using Socket = asio::generic::stream_protocol::socket;
using Endpoint = asio::generic::stream_protocol::endpoint;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

DockerClient::DockerClient(std::string socket_path, std::string api_version)
    : socket_path_(std::move(socket_path)), api_version_(std::move(api_version)) {}

namespace {

// The endpoint an address names (DockerClient's header), or why it is not one.
Result<Endpoint> ParseEndpoint(const std::string& address) {
  constexpr std::string_view kUnix = "unix://", kTcp = "tcp://";
  if (address.rfind(kTcp, 0) == 0) {
    std::string rest = address.substr(kTcp.size());
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    const size_t colon = rest.rfind(':');
    if (colon == std::string::npos) return InvalidArgumentError("'" + address + "': a tcp:// endpoint needs a port");
    std::string host = rest.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    const asio::ip::address ip = asio::ip::make_address(host, ec);
    if (ec) return InvalidArgumentError("'" + address + "': the host must be a numeric loopback address");
    if (!ip.is_loopback()) {
      return InvalidArgumentError("'" + address + "': dockerd's plain TCP API is taken on loopback only");
    }
    const std::string port_text = rest.substr(colon + 1);
    char* end = nullptr;
    const long port = std::strtol(port_text.c_str(), &end, 10);
    if (port_text.empty() || *end != '\0' || port < 1 || port > 65535) {
      return InvalidArgumentError("'" + address + "': the port must be 1-65535");
    }
    return Endpoint(asio::ip::tcp::endpoint(ip, static_cast<unsigned short>(port)));
  }
  std::string path = address.rfind(kUnix, 0) == 0 ? address.substr(kUnix.size()) : address;
  if (path.empty() || path[0] != '/') {
    return InvalidArgumentError("'" + address + "': an endpoint is an absolute socket path, unix:///path or "
                                "tcp://127.0.0.1:PORT");
  }
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return InvalidArgumentError("'" + address + "': the socket path is too long for a unix socket");
  }
  return Endpoint(asio::local::stream_protocol::endpoint(path));
}

struct Exchanged {
  int status = 0;
  bool complete = false;  // the whole body was read (or on_data stopped it)
};

// One request on a fresh connection; the response body goes to `on_data`
// piece by piece. Everything must happen within `timeout`.
Result<Exchanged> Exchange(const std::string& address, const std::string& target, std::string_view method,
                           const std::string& body, const std::map<std::string, std::string>& headers,
                           const std::function<bool(std::string_view)>& on_data, std::chrono::milliseconds timeout) {
  BATON_ASSIGN_OR_RETURN(const Endpoint endpoint, ParseEndpoint(address));
  asio::io_context io;
  Socket socket(io);
  std::optional<Status> failure;
  Exchanged result;

  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "docker");
  req.set(http::field::user_agent, "baton");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() && !headers.count("Content-Type")) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();

  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [cec] = co_await socket.async_connect(endpoint, kTuple);
        if (cec) {
          failure = UnavailableError("cannot reach dockerd at " + address + ": " + cec.message());
          co_return;
        }
        auto [wec, wn] = co_await http::async_write(socket, req, kTuple);
        if (wec) {
          failure = UnavailableError("dockerd closed the connection: " + wec.message());
          co_return;
        }
        beast::flat_buffer buffer;
        http::response_parser<http::buffer_body> parser;
        parser.body_limit(boost::none);
        auto [hec, hn] = co_await http::async_read_header(socket, buffer, parser, kTuple);
        if (hec) {
          failure = UnavailableError("reading dockerd's answer failed: " + hec.message());
          co_return;
        }
        result.status = parser.get().result_int();
        char chunk[16 * 1024];
        while (!parser.is_done()) {
          parser.get().body().data = chunk;
          parser.get().body().size = sizeof chunk;
          // read_some: hand over whatever arrived, not wait for a full buffer.
          auto [rec, rn] = co_await http::async_read_some(socket, buffer, parser, kTuple);
          if (rec && rec != http::error::need_buffer) {
            // Our own close at the deadline aborts the read; anything else is dockerd's doing.
            if (rec != asio::error::operation_aborted && rec != asio::error::bad_descriptor) {
              failure = UnavailableError("dockerd broke off its answer: " + rec.message());
            }
            co_return;
          }
          size_t got = sizeof chunk - parser.get().body().size;
          if (got > 0 && !on_data(std::string_view(chunk, got))) break;
        }
        result.complete = true;
      },
      asio::detached);
  io.run_for(timeout);
  boost::system::error_code ignored;
  socket.close(ignored);
  // Let a cancelled coroutine unwind before its locals go out of scope.
  io.restart();
  io.run_for(std::chrono::seconds(1));
  if (failure) return *failure;
  return result;
}

}  // namespace

Status DockerClient::ValidEndpoint(const std::string& endpoint) { return ParseEndpoint(endpoint).status(); }

Result<DockerResponse> DockerClient::Request(std::string_view method, const std::string& path,
                                             const std::string& body,
                                             const std::map<std::string, std::string>& headers,
                                             std::chrono::milliseconds timeout) const {
  DockerResponse response;
  constexpr size_t kMaxBody = 512u << 20;
  BATON_ASSIGN_OR_RETURN(Exchanged x, Exchange(socket_path_, "/" + api_version_ + path, method, body, headers,
                                               [&](std::string_view data) {
                                                 response.body.append(data);
                                                 return response.body.size() <= kMaxBody;
                                               },
                                               timeout));
  if (!x.complete) {
    return DeadlineExceededError(std::string(method) + " " + path + ": dockerd did not answer within " +
                                 std::to_string(timeout.count()) + " ms");
  }
  response.status = x.status;
  return response;
}

Result<int> DockerClient::Stream(std::string_view method, const std::string& path,
                                 const std::function<bool(std::string_view)>& on_data,
                                 std::chrono::milliseconds timeout,
                                 const std::map<std::string, std::string>& headers) const {
  BATON_ASSIGN_OR_RETURN(Exchanged x, Exchange(socket_path_, "/" + api_version_ + path, method, "", headers, on_data,
                                               timeout));
  return x.status;
}

std::string QueryEscape(std::string_view value) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace baton::runtime::docker
