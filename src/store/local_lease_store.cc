#include <map>
#include <mutex>

#include "store/lease_store.h"

namespace baton::store {
namespace {

class LocalLeaseStore final : public LeaseStore {
 public:
  Result<bool> TryAcquire(const std::string& name, const std::string& holder, std::chrono::milliseconds ttl) override {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    auto it = leases_.find(name);
    if (it != leases_.end() && it->second.holder != holder && it->second.until > now) return false;
    leases_[name] = Lease{holder, now + ttl};
    return true;
  }
  Status Release(const std::string& name, const std::string& holder) override {
    std::lock_guard lock(mu_);
    auto it = leases_.find(name);
    if (it != leases_.end() && it->second.holder == holder) leases_.erase(it);
    return Status::Ok();
  }

 private:
  struct Lease {
    std::string holder;
    std::chrono::steady_clock::time_point until;
  };
  std::mutex mu_;
  std::map<std::string, Lease> leases_;
};

}  // namespace

std::unique_ptr<LeaseStore> OpenLocalLeaseStore() { return std::make_unique<LocalLeaseStore>(); }

}  // namespace baton::store
