#include "api/http/readiness.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>
#include <variant>

#include "api/http/request_util.h"
#include "baton/store.h"
#include "runtime/container_runtime.h"
#include "tenancy/tenant_directory.h"

namespace baton::api {

namespace http = boost::beast::http;
using SteadyClock = std::chrono::steady_clock;

// One check and the thread that runs it. A check still running when a round
// ends keeps its thread; the next round finds it running, does not start it
// again and reports it as not answering.
struct ReadinessProbe::Slot {
  ReadinessCheck check;
  std::thread thread;
  bool running = false;
  uint64_t answered_round = 0;  // the round `result` belongs to
  Status result;
  std::chrono::milliseconds took{0};
};

ReadinessProbe::ReadinessProbe(std::vector<ReadinessCheck> checks, ReadinessOptions options)
    : options_(options) {
  for (ReadinessCheck& c : checks) {
    auto slot = std::make_unique<Slot>();
    slot->check = std::move(c);
    slots_.push_back(std::move(slot));
  }
}

ReadinessProbe::~ReadinessProbe() {
  for (auto& slot : slots_) {
    if (slot->thread.joinable()) slot->thread.join();
  }
}

ReadinessReport ReadinessProbe::Check() {
  std::unique_lock lock(mu_);
  if (last_ && SteadyClock::now() - last_at_ < options_.cache_for) return *last_;
  if (round_running_) {
    cv_.wait(lock, [this] { return !round_running_; });
    if (last_) return *last_;  // the round just finished
  }
  round_running_ = true;
  lock.unlock();
  ReadinessReport report = RunRound();
  lock.lock();
  last_ = report;
  last_at_ = SteadyClock::now();
  round_running_ = false;
  cv_.notify_all();
  return report;
}

ReadinessReport ReadinessProbe::RunRound() {
  static std::atomic<uint64_t> rounds{0};
  const uint64_t round = ++rounds;
  const auto deadline = SteadyClock::now() + options_.check_timeout;
  std::unique_lock lock(mu_);
  for (auto& slot : slots_) {
    if (slot->running) continue;  // hung since an earlier round
    if (slot->thread.joinable()) slot->thread.join();  // finished: its thread is exiting
    slot->running = true;
    slot->thread = std::thread([this, s = slot.get(), round] {
      const auto start = SteadyClock::now();
      Status result;
      try {
        result = s->check.run();
      } catch (const std::exception& e) {
        result = InternalError(std::string("the check threw: ") + e.what());
      }
      std::lock_guard done(mu_);
      s->result = std::move(result);
      s->took = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start);
      s->answered_round = round;
      s->running = false;
      cv_.notify_all();
    });
  }
  cv_.wait_until(lock, deadline, [this] {
    for (const auto& slot : slots_) {
      if (slot->running) return false;
    }
    return true;
  });
  ReadinessReport report;
  report.ready = true;
  report.checked_at = std::chrono::system_clock::now();
  for (const auto& slot : slots_) {
    ReadinessReport::Entry entry{slot->check.name, Status::Ok(), options_.check_timeout};
    if (!slot->running && slot->answered_round == round) {
      entry.status = slot->result;
      entry.took = slot->took;
    } else {
      entry.status = DeadlineExceededError("no answer within " + std::to_string(options_.check_timeout.count()) + " ms");
    }
    report.ready = report.ready && entry.status.ok();
    report.checks.push_back(std::move(entry));
  }
  return report;
}

Json ReadinessProbe::ToJson(const ReadinessReport& report, bool details) {
  Json checks = Json::array();
  for (const ReadinessReport::Entry& e : report.checks) {
    Json c = {{"name", e.name}, {"ok", e.status.ok()}};
    if (!e.status.ok()) c["reason"] = std::string(StatusCodeName(e.status.code()));
    if (details) {
      if (!e.status.ok()) c["detail"] = e.status.message();
      c["ms"] = e.took.count();
    }
    checks.push_back(std::move(c));
  }
  return Json{{"status", report.ready ? "ready" : "notReady"},
              {"checkedAt", FormatIso8601(report.checked_at)},
              {"checks", checks}};
}

namespace {

// Creates, writes, fsyncs and removes a file in `dir`.
Status WriteProbeFile(const std::string& dir) {
  static std::atomic<uint64_t> counter{0};
  const std::string path =
      dir + "/.readyz-" + std::to_string(getpid()) + "-" + std::to_string(counter.fetch_add(1));
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int e = errno;
    return Status(e == ENOSPC || e == EDQUOT ? StatusCode::kResourceExhausted : StatusCode::kUnavailable,
                  "cannot create a file in the data dir: " + std::string(std::strerror(e)));
  }
  Status result;
  if (write(fd, "ok\n", 3) != 3 || fsync(fd) != 0) {
    const int e = errno;
    result = Status(e == ENOSPC || e == EDQUOT ? StatusCode::kResourceExhausted : StatusCode::kUnavailable,
                    "cannot write to the data dir: " + std::string(std::strerror(e)));
  }
  close(fd);
  unlink(path.c_str());
  return result;
}

}  // namespace

ReadinessCheck StoreCheck(Store& store, std::string data_dir) {
  return ReadinessCheck{"store", [&store, data_dir = std::move(data_dir)]() -> Status {
                          // The APIs refuse ids with control characters: no instance has this one.
                          const std::string probe = "\x01" "baton.readyz";
                          auto read = store.GetInstance(probe, false);
                          if (read.ok()) return Status::Ok();  // someone's after all: not ours to purge
                          if (read.status().code() != StatusCode::kNotFound) return read.status();
                          auto write = store.PurgeInstance(probe);  // a writer round trip that changes nothing
                          if (!write.ok() && write.status().code() != StatusCode::kNotFound) return write.status();
                          return WriteProbeFile(data_dir);
                        }};
}

ReadinessCheck DiskCheck(std::string dir, uint64_t min_free_bytes) {
  return ReadinessCheck{"disk", [dir = std::move(dir), min_free_bytes]() -> Status {
                          struct statvfs fs {};
                          if (statvfs(dir.c_str(), &fs) != 0) {
                            return UnavailableError("statvfs of the data dir: " + std::string(std::strerror(errno)));
                          }
                          const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
                          if (free_bytes < min_free_bytes) {
                            return Status(StatusCode::kResourceExhausted,
                                          std::to_string(free_bytes >> 20) + " MiB free in the data dir, below the " +
                                              std::to_string(min_free_bytes >> 20) + " MiB threshold");
                          }
                          return Status::Ok();
                        }};
}

ReadinessCheck RuntimeCheck(runtime::ContainerRuntime& runtime, std::chrono::milliseconds timeout) {
  return ReadinessCheck{"dockerd", [&runtime, timeout] { return runtime.Ping(timeout); }};
}

ReadinessCheck RegistryCheck(runtime::ContainerRuntime& runtime, const runtime::RegistryCredentials& credentials,
                             std::chrono::milliseconds timeout) {
  return ReadinessCheck{"registry",
                        [&runtime, credentials, timeout] { return runtime.CheckRegistry(credentials, timeout); }};
}

void AddReadinessRoute(Router& router, ReadinessProbe& probe, tenancy::TenantDirectory& directory) {
  router.Add(http::verb::get, "/readyz", [&probe, &directory](const HttpRequest& req, const RouteMatch&) {
    bool details = false;
    if (req.find(http::field::authorization) != req.end()) {
      auto principal = AuthenticateBearer(req, directory);
      if (auto* refused = std::get_if<HttpResponse>(&principal)) return std::move(*refused);
      if (!std::get<tenancy::Principal>(principal).admin) {
        return ErrorResponse(403, "PermissionDenied", "the details of /readyz need an admin key (no key: the summary)",
                             "Authorization");
      }
      details = true;
    }
    ReadinessReport report = probe.Check();
    HttpResponse res = JsonResponse(report.ready ? 200 : 503, ReadinessProbe::ToJson(report, details));
    res.set(http::field::cache_control, "no-store");
    return res;
  });
}

}  // namespace baton::api
