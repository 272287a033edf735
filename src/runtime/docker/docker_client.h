// DockerClient: HTTP/1.1 to the Docker Engine API, with deadlines on
// everything (Beast + Asio). The one Engine API client: DockerRuntime and
// SwarmRuntime (a swarm manager's API) use it.
//
// The endpoint is a unix socket ("/var/run/docker.sock" or
// "unix:///var/run/docker.sock") or a plain-TCP address on loopback
// ("tcp://127.0.0.1:2375"): dockerd's TCP API without TLS gives root on the
// node to whoever reaches it, so no other address is taken (put an SSH tunnel
// or a unix socket forward in front of a remote one).
//
// Thread-safety: thread-safe; each request uses its own connection.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "baton/status.h"

namespace baton::runtime::docker {

struct DockerResponse {
  int status = 0;
  std::string body;
};

class DockerClient {
 public:
  // `api_version` prefixes every path ("/v1.41/containers/json"). An
  // endpoint that is not a valid one (above) makes every request fail with
  // InvalidArgument; ValidEndpoint() tells beforehand.
  explicit DockerClient(std::string socket_path = "/var/run/docker.sock", std::string api_version = "v1.41");

  // OK for "/path", "unix:///path" and "tcp://127.x.y.z:port" (or
  // "tcp://[::1]:port"); InvalidArgument naming what is wrong otherwise.
  static Status ValidEndpoint(const std::string& endpoint);

  // Sends one request; the whole exchange must finish within `timeout`.
  // Unavailable: the socket cannot be reached. DeadlineExceeded: no complete
  // answer in time. Any HTTP status is returned as is.
  Result<DockerResponse> Request(std::string_view method, const std::string& path, const std::string& body = "",
                                 const std::map<std::string, std::string>& headers = {},
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  // Sends one request and passes the response body to `on_data` piece by
  // piece as it arrives (streaming endpoints: events, logs with follow,
  // progress), until `on_data` returns false, the body ends, or `timeout`
  // passes. Returns the HTTP status; Unavailable when the socket cannot be
  // reached; reaching `timeout` is not an error (the caller chose it).
  Result<int> Stream(std::string_view method, const std::string& path,
                     const std::function<bool(std::string_view)>& on_data, std::chrono::milliseconds timeout,
                     const std::map<std::string, std::string>& headers = {}) const;

  // The endpoint as given.
  const std::string& socket_path() const { return socket_path_; }

 private:
  std::string socket_path_;
  std::string api_version_;
};

// Percent-encodes a query parameter value.
std::string QueryEscape(std::string_view value);

}  // namespace baton::runtime::docker
