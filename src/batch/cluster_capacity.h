// ClusterCapacityRefresher: keeps the capacity scheduler's view of the
// machines equal to what a cluster runtime's ready nodes offer
// (ContainerRuntime::Capacity(), e.g. Swarm's GET /nodes). At Start and every
// `interval` it reads them and, when anything changed, signals the scheduler
// entity's "setCapacity" with
//   {cpu, memoryMb}               the sum over the ready, active nodes: what
//                                 the scheduler grants against (scheduler.h);
//   {largestNode: {cpu, memoryMb}, nodes}
//                                 what the job API checks a submitted job
//                                 against: a job larger than every node can
//                                 never be placed (422 NeverFits).
// A job that fits the sum but no node's free resources right now is granted
// and waits for Swarm's placement (its view says waitingOn "placement").
// A read that fails changes nothing (logged when it starts and stops failing).
//
// Thread-safety: Start/Stop from one thread; RefreshOnce from any.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "baton/client.h"
#include "runtime/container_runtime.h"

namespace baton::batch {

class ClusterCapacityRefresher {
 public:
  ClusterCapacityRefresher(runtime::ContainerRuntime& runtime, Client& client, std::chrono::milliseconds interval);
  ~ClusterCapacityRefresher();
  ClusterCapacityRefresher(const ClusterCapacityRefresher&) = delete;
  ClusterCapacityRefresher& operator=(const ClusterCapacityRefresher&) = delete;

  // Runs a first refresh, then one every interval on a thread of its own.
  void Start();
  void Stop();

  // Reads the nodes and signals the scheduler when the capacity changed
  // (or was never sent by this object). The capacity read, or why not.
  Result<runtime::ClusterCapacity> RefreshOnce();

 private:
  runtime::ContainerRuntime& runtime_;
  Client& client_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool failing_ = false;
  std::optional<Json> sent_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace baton::batch
