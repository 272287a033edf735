// FaultyRuntime: a ContainerRuntime that forwards every call to a real one
// (the shared dockerd) and can be told to fail them as an outage would — the
// way leveldb's tests inject faults through its Env. Hand-written, of our own
// interface: the containers are real, only the outage is pretended, which
// lets tests start and end one in milliseconds and at exact moments (the
// tests of real outages stop a private dockerd: tests/e2e/transient_fault_e2e_test.cc).
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

#include "runtime/container_runtime.h"

namespace baton::testing {

class FaultyRuntime final : public runtime::ContainerRuntime {
 public:
  enum class Fault {
    kNone,
    // The runtime is away: every call fails with Unavailable ("cannot reach
    // dockerd"), as DockerRuntime's do when its socket does not answer.
    kRuntimeDown,
    // The registry is away: pulls and registry checks fail with Unavailable
    // (what dockerd answers when it cannot dial the registry); the rest works.
    kRegistryDown,
  };

  explicit FaultyRuntime(runtime::ContainerRuntime& real) : real_(real) {}

  void Set(Fault fault) { fault_ = fault; }
  // The runtime goes away right after the next StartGroup was carried out:
  // its containers start, but the caller gets no answer (Unavailable) — the
  // case that must not start a container twice when the call is repeated.
  void FailAfterNextStart() { fail_after_start_ = true; }
  // Calls made to PullImage (whether or not they failed).
  int pulls() const { return pulls_; }
  // Calls failed by the fault.
  int failed_calls() const { return failed_; }

  Status Ping(std::chrono::milliseconds timeout) override {
    if (Down()) return Refused();
    return real_.Ping(timeout);
  }
  Result<runtime::GroupState> CreateGroup(const runtime::GroupSpec& spec) override {
    if (Down()) return Refused();
    return real_.CreateGroup(spec);
  }
  Status StartGroup(const std::string& group) override {
    if (Down()) return Refused();
    Status started = real_.StartGroup(group);
    if (fail_after_start_.exchange(false)) {
      fault_ = Fault::kRuntimeDown;
      return Refused();  // the answer is lost
    }
    return started;
  }
  Status StopGroup(const std::string& group, std::chrono::seconds grace) override {
    if (Down()) return Refused();
    return real_.StopGroup(group, grace);
  }
  Status RestartGroup(const std::string& group, std::chrono::seconds grace) override {
    if (Down()) return Refused();
    return real_.RestartGroup(group, grace);
  }
  Status DeleteGroup(const std::string& group) override {
    if (Down()) return Refused();
    return real_.DeleteGroup(group);
  }
  Result<runtime::GroupState> InspectGroup(const std::string& group) override {
    if (Down()) return Refused();
    return real_.InspectGroup(group);
  }
  Result<int> WaitContainer(const std::string& id, std::chrono::milliseconds timeout) override {
    if (Down()) return Refused();
    return real_.WaitContainer(id, timeout);
  }
  Result<std::vector<runtime::LogLine>> Logs(const std::string& id) override {
    if (Down()) return Refused();
    return real_.Logs(id);
  }
  Result<std::vector<runtime::LogLine>> LogsTail(const std::string& id, size_t lines) override {
    if (Down()) return Refused();
    return real_.LogsTail(id, lines);
  }
  Result<std::vector<runtime::LogLine>> LogsRange(const std::string& id, size_t skip, size_t limit) override {
    if (Down()) return Refused();
    return real_.LogsRange(id, skip, limit);
  }
  Result<runtime::Usage> Stats(const std::string& id) override {
    if (Down()) return Refused();
    return real_.Stats(id);
  }
  Status FollowLogs(const std::string& id, const std::function<bool(const runtime::LogLine&)>& on_line,
                    std::chrono::milliseconds timeout) override {
    if (Down()) return Refused();
    return real_.FollowLogs(id, on_line, timeout);
  }
  Status WatchEvents(const std::map<std::string, std::string>& selector,
                     const std::function<bool(const runtime::ContainerEvent&)>& on_event,
                     std::chrono::milliseconds timeout, std::optional<TimePoint> since) override {
    if (Down()) return Refused();
    // A stream that is open when the fault starts breaks off, as dockerd's does
    // when it stops: events from then on are not delivered.
    return real_.WatchEvents(selector, [&](const runtime::ContainerEvent& e) { return !Down() && on_event(e); },
                             timeout, since);
  }
  Result<std::vector<runtime::ContainerState>> ListByLabels(
      const std::map<std::string, std::string>& selector) override {
    if (Down()) return Refused();
    return real_.ListByLabels(selector);
  }
  Result<std::string> PullImage(const std::string& image, const runtime::RegistryCredentials& credentials,
                                std::chrono::milliseconds timeout,
                                const std::function<void(const std::string&)>& progress) override {
    ++pulls_;
    if (Down()) return Refused();
    if (fault_ == Fault::kRegistryDown) return RegistryAway(image);
    return real_.PullImage(image, credentials, timeout, progress);
  }
  Result<std::string> LocalImageDigest(const std::string& image) override {
    if (Down()) return Refused();
    return real_.LocalImageDigest(image);
  }
  Status CheckRegistry(const runtime::RegistryCredentials& credentials, std::chrono::milliseconds timeout) override {
    if (Down()) return Refused();
    if (fault_ == Fault::kRegistryDown) return RegistryAway(credentials.server);
    return real_.CheckRegistry(credentials, timeout);
  }

 private:
  bool Down() const { return fault_ == Fault::kRuntimeDown; }
  Status Refused() {
    ++failed_;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a refused connect is quick, not instant
    return UnavailableError("cannot reach dockerd at /var/run/docker.sock: Connection refused (injected)");
  }
  Status RegistryAway(const std::string& what) {
    ++failed_;
    return UnavailableError("'" + what + "': dial tcp 127.0.0.1:5000: connect: connection refused (injected)");
  }

  runtime::ContainerRuntime& real_;
  std::atomic<Fault> fault_{Fault::kNone};
  std::atomic<bool> fail_after_start_{false};
  std::atomic<int> pulls_{0};
  std::atomic<int> failed_{0};
};

}  // namespace baton::testing
