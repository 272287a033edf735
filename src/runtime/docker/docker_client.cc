#include "runtime/docker/docker_client.h"

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <optional>

namespace baton::runtime::docker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Socket = asio::local::stream_protocol::socket;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

DockerClient::DockerClient(std::string socket_path, std::string api_version)
    : socket_path_(std::move(socket_path)), api_version_(std::move(api_version)) {}

namespace {

struct Exchanged {
  int status = 0;
  bool complete = false;  // the whole body was read (or on_data stopped it)
};

// One request on a fresh connection; the response body goes to `on_data`
// piece by piece. Everything must happen within `timeout`.
Result<Exchanged> Exchange(const std::string& socket_path, const std::string& target, std::string_view method,
                           const std::string& body, const std::map<std::string, std::string>& headers,
                           const std::function<bool(std::string_view)>& on_data, std::chrono::milliseconds timeout) {
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
        auto [cec] = co_await socket.async_connect(asio::local::stream_protocol::endpoint(socket_path), kTuple);
        if (cec) {
          failure = UnavailableError("cannot reach dockerd at " + socket_path + ": " + cec.message());
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
