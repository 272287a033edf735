#include "engine/orchestration_cache.h"

#include <vector>

namespace baton::engine {

OrchestrationCache::OrchestrationCache(size_t max_bytes, size_t max_entries)
    : max_bytes_(max_bytes), max_entries_(max_entries) {}

std::shared_ptr<CachedOrchestration> OrchestrationCache::Take(const std::string& instance_id) {
  std::lock_guard lock(mu_);
  auto it = index_.find(instance_id);
  if (it == index_.end()) return nullptr;
  auto slot = it->second;
  std::shared_ptr<CachedOrchestration> entry = std::move(slot->entry);
  bytes_ -= slot->bytes;
  lru_.erase(slot);
  index_.erase(it);
  return entry;
}

size_t OrchestrationCache::Put(const std::string& instance_id,
                               std::shared_ptr<CachedOrchestration> entry) {
  // Evicted executors are destroyed outside the lock: that runs coroutine
  // frame destructors.
  std::vector<std::shared_ptr<CachedOrchestration>> evicted;
  {
    std::lock_guard lock(mu_);
    if (auto it = index_.find(instance_id); it != index_.end()) {
      bytes_ -= it->second->bytes;
      evicted.push_back(std::move(it->second->entry));
      lru_.erase(it->second);
      index_.erase(it);
    }
    size_t bytes = entry->executor->ApproximateBytes();
    if (max_entries_ == 0 || bytes > max_bytes_) {
      evicted.push_back(std::move(entry));
      return evicted.size();
    }
    lru_.push_front(Slot{instance_id, std::move(entry), bytes});
    index_[instance_id] = lru_.begin();
    bytes_ += bytes;
    while (!lru_.empty() && (bytes_ > max_bytes_ || lru_.size() > max_entries_)) {
      Slot& victim = lru_.back();
      bytes_ -= victim.bytes;
      index_.erase(victim.instance_id);
      evicted.push_back(std::move(victim.entry));
      lru_.pop_back();
    }
  }
  return evicted.size();
}

size_t OrchestrationCache::size() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

size_t OrchestrationCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace baton::engine
