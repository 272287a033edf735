#include "batch/resource_sampler.h"

#include <algorithm>
#include <vector>

#include "util/log.h"

namespace baton::batch {

ResourceSampler::ResourceSampler(runtime::ContainerRuntime& runtime, ResourceSamplerOptions options)
    : runtime_(runtime), options_(std::move(options)) {
  options_.selector["baton.index"] = "1000";  // the main container (DockerRuntime, SwarmRuntime)
}

ResourceSampler::~ResourceSampler() { Stop(); }

void ResourceSampler::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void ResourceSampler::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ResourceSampler::Watch(const std::string& container_id) {
  {
    std::lock_guard lock(mu_);
    if (entries_.contains(container_id) || !Room()) return;
    entries_[container_id].last_seen = std::chrono::steady_clock::now();
    fresh_.push_back(container_id);
    wake_ = true;
  }
  // No sample here: a stats call can take most of a second, and the start
  // activity (the attempt's "starting" phase) would wait for it. The
  // sampler's loop, woken now, takes the first one at once (a job shorter
  // than its interval is measured too).
  cv_.notify_all();
}

std::optional<AttemptUsage> ResourceSampler::Take(const std::string& container_id) {
  {
    // Never followed here (started by another node, or before a restart):
    // one sample is better than none while it still runs.
    std::lock_guard lock(mu_);
    if (!entries_.contains(container_id) && Room()) entries_[container_id].last_seen = std::chrono::steady_clock::now();
  }
  SampleOne(container_id);
  std::lock_guard lock(mu_);
  auto it = entries_.find(container_id);
  if (it == entries_.end()) return std::nullopt;
  AttemptUsage usage = it->second.usage;
  entries_.erase(it);
  if (usage.samples == 0) return std::nullopt;
  return usage;
}

// A sample of an exited container has no figures (its cgroup is gone):
// zeros never lower what was seen, since both figures only grow.
void ResourceSampler::SampleOne(const std::string& container_id) {
  {
    std::lock_guard lock(mu_);
    if (!entries_.contains(container_id)) return;
  }
  auto usage = runtime_.Stats(container_id);
  const bool gone = !usage.ok() && usage.status().code() == StatusCode::kNotFound;
  if (!usage.ok() && !gone) return;  // the runtime is away: sampled again later
  const int64_t memory = gone ? 0 : std::max(usage->memory_peak_bytes, usage->memory_bytes);
  const double cpu = gone ? 0 : usage->cpu_seconds;
  std::lock_guard lock(mu_);
  auto it = entries_.find(container_id);
  if (it == entries_.end()) return;  // taken meanwhile
  if (memory <= 0 && cpu <= 0) {
    // Zeros also come from a container that has only just started (the
    // loop samples a new one at once): it has ended if gone, once it had
    // figures, or at its second zero answer in a row.
    if (gone || it->second.usage.samples > 0 || ++it->second.zeros >= 2) it->second.ended = true;
    return;
  }
  it->second.zeros = 0;
  AttemptUsage& u = it->second.usage;
  u.peak_memory_bytes = std::max(u.peak_memory_bytes, memory);
  u.cpu_seconds = std::max(u.cpu_seconds, cpu);
  ++u.samples;
  it->second.last_seen = std::chrono::steady_clock::now();
}

void ResourceSampler::SampleAll() {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (now - it->second.last_seen > kForgetAfter) {
        it = entries_.erase(it);
      } else {
        if (!it->second.ended) ids.push_back(it->first);
        ++it;
      }
    }
  }
  for (const std::string& id : ids) SampleOne(id);
}

void ResourceSampler::SampleFresh() {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu_);
    ids.swap(fresh_);
  }
  for (const std::string& id : ids) SampleOne(id);
}

void ResourceSampler::Discover() {
  auto running = runtime_.ListByLabels(options_.selector);
  if (!running.ok()) return;  // the runtime is away: the next pass looks again
  std::lock_guard lock(mu_);
  for (const runtime::ContainerState& c : *running) {
    if (!c.running || entries_.contains(c.id) || !Room()) continue;
    entries_[c.id].last_seen = std::chrono::steady_clock::now();
    fresh_.push_back(c.id);  // sampled in this iteration, as a watched one
  }
}

bool ResourceSampler::Room() {
  if (entries_.size() < kMaxContainers) return true;
  auto oldest = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->second.ended && (oldest == entries_.end() || it->second.last_seen < oldest->second.last_seen)) oldest = it;
  }
  if (oldest == entries_.end()) return false;
  entries_.erase(oldest);
  return true;
}

void ResourceSampler::Loop() {
  auto next_discover = std::chrono::steady_clock::now();
  auto next_pass = next_discover;
  for (;;) {
    if (std::chrono::steady_clock::now() >= next_discover) {
      Discover();
      next_discover = std::chrono::steady_clock::now() + options_.discover_interval;
    }
    if (std::chrono::steady_clock::now() >= next_pass) {
      {
        std::lock_guard lock(mu_);
        fresh_.clear();  // the pass samples them
      }
      SampleAll();
      next_pass = std::chrono::steady_clock::now() + options_.interval;
    } else {
      SampleFresh();  // woken by Watch between passes
    }
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, std::min(next_pass, next_discover), [this] { return stopping_ || wake_; });
    if (stopping_) return;
    wake_ = false;
  }
}

}  // namespace baton::batch
