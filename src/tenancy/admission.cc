#include "tenancy/admission.h"

#include <algorithm>
#include <cmath>

namespace baton::tenancy {

Status Admission::AdmitRequest(const std::string& tenant, std::chrono::milliseconds* retry_after) {
  auto settings = directory_.GetSettings(tenant);
  if (!settings.ok()) return Status::Ok();
  const double rate = settings->limits.requests_per_second;
  const double burst = static_cast<double>(settings->limits.burst);
  const auto now = now_();
  std::lock_guard lock(mu_);
  auto [it, inserted] = buckets_.try_emplace(tenant, Bucket{burst, now});
  Bucket& b = it->second;
  if (!inserted) {
    const double elapsed = std::chrono::duration<double>(now - b.refilled).count();
    b.tokens = std::min(burst, b.tokens + elapsed * rate);
    b.refilled = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return Status::Ok();
  }
  const double wait_s = (1 - b.tokens) / rate;
  if (retry_after != nullptr) {
    *retry_after = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(wait_s * 1000)));
  }
  char rate_text[32];
  std::snprintf(rate_text, sizeof rate_text, "%g", rate);
  return Status(StatusCode::kResourceExhausted, "tenant '" + tenant + "' is over its request rate (" + rate_text +
                                                    " requests/s, burst " + std::to_string(settings->limits.burst) +
                                                    "); retry later");
}

Status Admission::AdmitObject(const std::string& tenant, const std::string& kind, int64_t limit,
                              const std::function<Result<int64_t>()>& count) {
  const auto key = std::make_pair(tenant, kind);
  const Status over(StatusCode::kResourceExhausted, "tenant '" + tenant + "' has reached its limit of " +
                                                        std::to_string(limit) + " " + kind);
  if (limit <= 0) return over;
  std::lock_guard recount(count_mu_);
  const auto now = now_();
  Count current;
  bool fresh = false;
  {
    std::lock_guard lock(mu_);
    auto it = counts_.find(key);
    if (it != counts_.end() && now - it->second.counted < kCountRefresh) {
      current = it->second;
      fresh = true;
    }
  }
  if (!fresh) {
    BATON_ASSIGN_OR_RETURN(int64_t n, count());
    current = Count{n, now};
  }
  if (current.value >= limit) {
    std::lock_guard lock(mu_);
    counts_[key] = current;
    return over;
  }
  ++current.value;
  std::lock_guard lock(mu_);
  counts_[key] = current;
  return Status::Ok();
}

std::unique_ptr<Admission::WaitSlot> Admission::TryWait(const std::string& tenant) {
  std::lock_guard lock(wait_mu_);
  if (waits_ >= total_waits_) return nullptr;
  if (!tenant.empty()) {
    int& mine = tenant_waits_[tenant];
    if (mine >= kWaitsPerTenant) return nullptr;
    ++mine;
  }
  ++waits_;
  return std::make_unique<WaitSlot>(this, tenant);
}

void Admission::ReleaseWait(const std::string& tenant) {
  std::lock_guard lock(wait_mu_);
  --waits_;
  if (!tenant.empty() && --tenant_waits_[tenant] <= 0) tenant_waits_.erase(tenant);
}

}  // namespace baton::tenancy
