// Admission: the per-tenant limits every API applies before doing work
// (tenant_settings.h), so that no tenant can take the server or its
// neighbours down.
//
//   - AdmitRequest: a token bucket per tenant (requestsPerSecond, burst),
//     in this process. HTTP answers 429 with Retry-After, gRPC
//     RESOURCE_EXHAUSTED. Admin keys are never limited.
//   - AdmitObject: a cap on how many objects of a kind a tenant keeps
//     (unfinished jobs, stored instances). The count comes from `count`,
//     which scans the store; it is cached for kCountRefresh and what was
//     admitted since is added to it, so a burst cannot slip past the cap and
//     the store is not scanned per request.
//   - TryWait: a long wait (a followed log, a start that waits for the
//     end) holds one of the HTTP server's handler threads for as long as it
//     lasts. A tenant may hold kWaitsPerTenant of them at once and all
//     callers together `total_waits`; a caller refused a slot answers at
//     once instead of waiting (which the API allows: a long poll may always
//     return early). So no tenant can take every handler thread.
//
// Limits are per node: with N nodes a tenant gets up to N times the request
// rate. The object caps are read from the shared store, so they hold for the
// whole deployment, within what the nodes admit during one refresh.
//
// Thread-safety: every method is thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "baton/status.h"
#include "tenancy/tenant_directory.h"

namespace baton::tenancy {

class Admission {
 public:
  static constexpr std::chrono::seconds kCountRefresh{5};

  using SteadyNow = std::function<std::chrono::steady_clock::time_point()>;
  // `now` is injectable so that tests move time without sleeping.
  explicit Admission(TenantDirectory& directory, SteadyNow now = std::chrono::steady_clock::now)
      : directory_(directory), now_(std::move(now)) {}

  static constexpr int kWaitsPerTenant = 4;
  // A held wait slot; destroying it gives the slot back.
  class WaitSlot {
   public:
    WaitSlot(Admission* admission, std::string tenant) : admission_(admission), tenant_(std::move(tenant)) {}
    WaitSlot(const WaitSlot&) = delete;
    WaitSlot& operator=(const WaitSlot&) = delete;
    ~WaitSlot() { admission_->ReleaseWait(tenant_); }

   private:
    Admission* admission_;
    std::string tenant_;
  };
  // How many waits all callers may hold at once (default 16: a quarter of
  // the HTTP server's 64 handler threads). Set before serving.
  void SetTotalWaits(int total) { total_waits_ = total; }
  // A slot for one long wait of `tenant` ("" = an admin, limited by the
  // total only); null when the tenant or everyone holds all they may.
  std::unique_ptr<WaitSlot> TryWait(const std::string& tenant);

  // OK, or ResourceExhausted whose message says the limit; `*retry_after`
  // (when not null) is then set to when one request will be admitted again.
  // A tenant that does not exist is admitted (its key already failed or
  // will fail authentication).
  Status AdmitRequest(const std::string& tenant, std::chrono::milliseconds* retry_after = nullptr);

  // OK when the tenant keeps fewer than `limit` objects of `kind` (counted
  // by `count`, which may return at most limit + 1), and reserves one.
  // ResourceExhausted naming the kind and the limit otherwise; errors of
  // `count` are returned as they are.
  Status AdmitObject(const std::string& tenant, const std::string& kind, int64_t limit,
                     const std::function<Result<int64_t>()>& count);

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled;
  };
  struct Count {
    int64_t value = 0;
    std::chrono::steady_clock::time_point counted;
  };

  void ReleaseWait(const std::string& tenant);

  TenantDirectory& directory_;
  SteadyNow now_;
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
  std::map<std::pair<std::string, std::string>, Count> counts_;
  std::mutex count_mu_;  // serializes recounts, so a burst scans the store once
  std::mutex wait_mu_;
  int total_waits_ = 16;
  int waits_ = 0;
  std::map<std::string, int> tenant_waits_;
};

}  // namespace baton::tenancy
