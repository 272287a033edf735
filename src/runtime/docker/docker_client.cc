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

Result<DockerResponse> DockerClient::Request(std::string_view method, const std::string& path,
                                             const std::string& body,
                                             const std::map<std::string, std::string>& headers,
                                             std::chrono::milliseconds timeout) const {
  asio::io_context io;
  Socket socket(io);
  std::optional<Status> failure;
  DockerResponse response;
  bool done = false;

  http::request<http::string_body> req{http::string_to_verb(method), "/" + api_version_ + path, 11};
  req.set(http::field::host, "docker");
  req.set(http::field::user_agent, "baton");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() && !headers.count("Content-Type")) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();

  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [cec] = co_await socket.async_connect(asio::local::stream_protocol::endpoint(socket_path_), kTuple);
        if (cec) {
          failure = UnavailableError("cannot reach dockerd at " + socket_path_ + ": " + cec.message());
          co_return;
        }
        auto [wec, wn] = co_await http::async_write(socket, req, kTuple);
        if (wec) {
          failure = UnavailableError("dockerd closed the connection: " + wec.message());
          co_return;
        }
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(512u << 20);
        auto [rec, rn] = co_await http::async_read(socket, buffer, parser, kTuple);
        if (rec) {
          failure = UnavailableError("reading dockerd's answer failed: " + rec.message());
          co_return;
        }
        response.status = parser.get().result_int();
        response.body = std::move(parser.get().body());
        done = true;
      },
      asio::detached);
  io.run_for(timeout);
  if (!done && !failure) {
    boost::system::error_code ignored;
    socket.close(ignored);
    io.restart();
    io.run_for(std::chrono::seconds(1));  // let the cancelled coroutine unwind
    return DeadlineExceededError(std::string(method) + " " + path + ": dockerd did not answer within " +
                                 std::to_string(timeout.count()) + " ms");
  }
  if (failure) return *failure;
  return response;
}

Result<int> DockerClient::Stream(std::string_view method, const std::string& path,
                                 const std::function<bool(std::string_view)>& on_data,
                                 std::chrono::milliseconds timeout,
                                 const std::map<std::string, std::string>& headers) const {
  asio::io_context io;
  Socket socket(io);
  std::optional<Status> failure;
  int status = 0;

  http::request<http::empty_body> req{http::string_to_verb(method), "/" + api_version_ + path, 11};
  req.set(http::field::host, "docker");
  req.set(http::field::user_agent, "baton");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.prepare_payload();

  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [cec] = co_await socket.async_connect(asio::local::stream_protocol::endpoint(socket_path_), kTuple);
        if (cec) {
          failure = UnavailableError("cannot reach dockerd at " + socket_path_ + ": " + cec.message());
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
        status = parser.get().result_int();
        char chunk[16 * 1024];
        while (!parser.is_done()) {
          parser.get().body().data = chunk;
          parser.get().body().size = sizeof chunk;
          // read_some: hand over whatever arrived, not wait for a full buffer.
          auto [rec, rn] = co_await http::async_read_some(socket, buffer, parser, kTuple);
          if (rec && rec != http::error::need_buffer) co_return;  // closed, or cancelled at the deadline
          size_t got = sizeof chunk - parser.get().body().size;
          if (got > 0 && !on_data(std::string_view(chunk, got))) co_return;
        }
      },
      asio::detached);
  io.run_for(timeout);
  boost::system::error_code ignored;
  socket.close(ignored);
  // Let the cancelled coroutine unwind before its locals go out of scope.
  io.restart();
  io.run_for(std::chrono::seconds(1));
  if (failure) return *failure;
  return status;
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
