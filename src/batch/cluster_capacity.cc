#include "batch/cluster_capacity.h"

#include "batch/scheduler.h"
#include "util/log.h"

namespace baton::batch {

ClusterCapacityRefresher::ClusterCapacityRefresher(runtime::ContainerRuntime& runtime, Client& client,
                                                   std::chrono::milliseconds interval)
    : runtime_(runtime), client_(client), interval_(interval) {}

ClusterCapacityRefresher::~ClusterCapacityRefresher() { Stop(); }

Result<runtime::ClusterCapacity> ClusterCapacityRefresher::RefreshOnce() {
  auto capacity = runtime_.Capacity();
  {
    std::lock_guard lock(mu_);
    if (!capacity.ok() && !failing_) {
      util::Log().warn("cluster capacity: {} (the scheduler keeps the last capacity)", capacity.status().ToString());
    } else if (capacity.ok() && failing_) {
      util::Log().info("cluster capacity: the cluster's nodes can be read again");
    }
    failing_ = !capacity.ok();
  }
  if (!capacity.ok()) return capacity.status();
  const Json update = {{"cpu", capacity->cpus},
                       {"memoryMb", capacity->memory_bytes >> 20},
                       {"largestNode", {{"cpu", capacity->largest_node_cpus},
                                        {"memoryMb", capacity->largest_node_memory_bytes >> 20}}},
                       {"nodes", capacity->nodes}};
  {
    std::lock_guard lock(mu_);
    if (sent_ && *sent_ == update) return capacity;
  }
  BATON_RETURN_IF_ERROR(client_.SignalEntity(EntityId(kSchedulerEntity, kSchedulerKey), "setCapacity", update));
  util::Log().info("cluster capacity: {} ready nodes, {:.2f} cores and {} MiB in all (largest node {:.2f} cores, "
                   "{} MiB)",
                   capacity->nodes, capacity->cpus, capacity->memory_bytes >> 20, capacity->largest_node_cpus,
                   capacity->largest_node_memory_bytes >> 20);
  std::lock_guard lock(mu_);
  sent_ = update;
  return capacity;
}

void ClusterCapacityRefresher::Start() {
  RefreshOnce().status().IgnoreError();  // logged
  std::lock_guard lock(mu_);
  stopping_ = false;
  thread_ = std::thread([this] {
    for (;;) {
      {
        std::unique_lock lock(mu_);
        if (cv_.wait_for(lock, interval_, [this] { return stopping_; })) return;
      }
      RefreshOnce().status().IgnoreError();
    }
  });
}

void ClusterCapacityRefresher::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace baton::batch
