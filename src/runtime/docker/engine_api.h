// Helpers shared by the Engine API backends (DockerRuntime, SwarmRuntime):
// answers parsed through the one JSON entry point, Docker's errors turned into
// Status (with secret values scrubbed), times, registry auth headers and the
// multiplexed log stream. Internal to src/runtime/.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "baton/json.h"
#include "baton/status.h"
#include "runtime/container_runtime.h"
#include "runtime/docker/docker_client.h"

namespace baton::runtime::docker {

// A time as the events API takes it: "<unix seconds>.<microseconds>".
std::string EventTime(TimePoint t);

// An Engine API answer (or one line of a stream) through the one JSON entry
// point; a discarded value when it is not JSON within ParseJson's limits.
Json ParseAnswer(std::string_view text);

// Docker's error message from a non-2xx answer.
std::string MessageOf(const DockerResponse& r);

// Replaces every secret value in `text` (errors may quote what was sent).
std::string Scrub(std::string text, const std::vector<std::string>& secrets);

// A non-2xx answer as a Status: 400 InvalidArgument, 404 NotFound, 409
// FailedPrecondition, anything else Internal; "<what>: <Docker's message>"
// with `secrets` scrubbed.
Status FromDocker(const DockerResponse& r, const std::string& what, const std::vector<std::string>& secrets = {});

// The time in j[key] (RFC 3339), nullopt when absent or Docker's "never".
std::optional<TimePoint> DockerTime(const Json& j, const char* key);

// The X-Registry-Auth header for `c` (base64url JSON).
std::string RegistryAuthHeader(const RegistryCredentials& c);

// "host:5000/a/b:tag" -> ("host:5000/a/b", "tag"); "repo@sha256:…" -> ("repo", "sha256:…").
std::pair<std::string, std::string> SplitReference(const std::string& image);

// The ?filters= value selecting objects whose labels include all of `labels`
// (escaped).
std::string FilterJson(const std::map<std::string, std::string>& labels);

// Splits Docker's multiplexed log stream ([stream, 0, 0, 0, size as
// big-endian u32] + payload frames) into lines, stdout and stderr apart.
// Frames may arrive cut anywhere: Feed() keeps what it cannot use yet. A
// line longer than kMaxLineBytes is cut into pieces of that size.
class LogDemuxer {
 public:
  static constexpr size_t kMaxLineBytes = 64 * 1024;
  explicit LogDemuxer(std::function<bool(LogLine)> emit) : emit_(std::move(emit)) {}

  bool Feed(std::string_view data);
  void Finish();

 private:
  bool Emit(int type, std::string text);

  std::function<bool(LogLine)> emit_;
  std::string pending_;
  std::string partial_[3];
};

}  // namespace baton::runtime::docker
