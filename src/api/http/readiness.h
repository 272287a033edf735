// Readiness: whether this node can do its work now (GET /readyz), as opposed
// to whether its process is alive (GET /healthz, 200 for as long as it serves
// HTTP). A load balancer or an orchestrator of machines asks /readyz before
// sending work and /healthz before restarting the process.
//
// A ReadinessProbe runs named checks — each a function returning a Status —
// concurrently, each bounded by `check_timeout`, and keeps the answer for
// `cache_for`: however many probes arrive, the store, the disk, dockerd and
// the registry see one round of checks per period, and a check that hangs
// holds one thread (the next round reports it as DeadlineExceeded instead of
// starting it again).
//
// What /readyz shows without a key is the verdict, the check names and a
// status code name per failing check — nothing else (no paths, hosts, error
// texts or sizes). An admin key adds each check's message and duration.
//
// Thread-safety: Check() may be called concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/http/http_server.h"
#include "baton/clock.h"
#include "baton/json.h"
#include "baton/status.h"

namespace baton {
class Store;
namespace runtime {
class ContainerRuntime;
struct RegistryCredentials;
}  // namespace runtime
namespace tenancy {
class TenantDirectory;
}  // namespace tenancy
}  // namespace baton

namespace baton::api {

struct ReadinessCheck {
  std::string name;  // [a-z]+, unique within a probe: "store", "disk", "dockerd", "registry"
  // OK when ready; any other Status says why not. May block; called from a
  // thread of the probe's own, never two calls of one check at a time.
  std::function<Status()> run;
};

struct ReadinessOptions {
  std::chrono::milliseconds check_timeout{std::chrono::seconds(5)};
  std::chrono::milliseconds cache_for{std::chrono::seconds(2)};
};

struct ReadinessReport {
  struct Entry {
    std::string name;
    Status status;  // OK, the check's error, or DeadlineExceeded when it did not answer in time
    std::chrono::milliseconds took{0};
  };
  bool ready = false;  // every check OK
  std::vector<Entry> checks;  // in the probe's order
  TimePoint checked_at;
};

class ReadinessProbe {
 public:
  ReadinessProbe(std::vector<ReadinessCheck> checks, ReadinessOptions options = ReadinessOptions());
  // Waits for the checks still running (each is bounded by its own I/O
  // deadlines): nothing a check uses may go before the probe.
  ~ReadinessProbe();
  ReadinessProbe(const ReadinessProbe&) = delete;
  ReadinessProbe& operator=(const ReadinessProbe&) = delete;

  // The latest report, at most `cache_for` old: runs a round of checks when
  // the last one is older (concurrent callers share that round).
  ReadinessReport Check();

  // The report as /readyz answers it: {"status": "ready" | "notReady",
  // "checkedAt", "checks": [{"name", "ok", "reason"?}]}, plus "detail" and
  // "ms" per check when `details`.
  static Json ToJson(const ReadinessReport& report, bool details);

 private:
  struct Slot;
  ReadinessReport RunRound();

  ReadinessOptions options_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::mutex mu_;  // guards the fields below and every slot's state
  std::condition_variable cv_;
  std::optional<ReadinessReport> last_;
  std::chrono::steady_clock::time_point last_at_;
  bool round_running_ = false;
};

// ---- The checks of a node ----

// The store answers a read and a write round trip: reads a probe instance
// that cannot exist (an id the APIs refuse) and asks to purge it, which goes
// through the store's writer and changes nothing; and `data_dir` accepts a
// new file, written and fsync'ed, then removed.
ReadinessCheck StoreCheck(Store& store, std::string data_dir);
// The file system of `dir` has at least `min_free_bytes` free for this user
// (ResourceExhausted otherwise).
ReadinessCheck DiskCheck(std::string dir, uint64_t min_free_bytes);
// The container runtime answers a ping.
ReadinessCheck RuntimeCheck(runtime::ContainerRuntime& runtime, std::chrono::milliseconds timeout);
// The runtime reaches the registry and logs in with the platform's credentials.
ReadinessCheck RegistryCheck(runtime::ContainerRuntime& runtime, const runtime::RegistryCredentials& credentials,
                             std::chrono::milliseconds timeout);

// GET /readyz: 200 when ready, 503 when not, with ReadinessProbe::ToJson.
// Without an Authorization header: the summary. With an admin key: the
// details too. Any other key: 401 (not a key) or 403 (a tenant's key).
// The probe and the directory must outlive the router's use.
void AddReadinessRoute(Router& router, ReadinessProbe& probe, tenancy::TenantDirectory& directory);

}  // namespace baton::api
