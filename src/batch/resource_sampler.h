// ResourceSampler: what each job attempt's main container used — CPU time
// and peak memory — sampled from the runtime while it runs (Engine API
// stats, docs/job-spec.md#resource-usage).
//
// A container's cgroup goes with it when it exits, so usage can only be read
// while it runs: a thread reads one stats sample ("one-shot") of every
// running main container of the deployment every `interval`, and keeps per
// container the largest memory figure seen (cgroup v1: the kernel's
// high-water mark, max_usage, which holds the true peak since the start even
// between samples; cgroup v2: the largest usage sample) and the CPU time
// (cumulative, so the last sample is the closest to the total). The collect
// activity of the attempt takes the figures (Take) and records them in its
// result: from there they are durable, in the job's history and result, on
// either store.
//
// What it cannot see: a container that ended before its first sample (the
// loop samples a followed one as soon as Watch is called) has no figures
// (Take returns nothing: the attempt shows null peaks); usage
// after the last sample is missed (CPU time is then a lower bound, and so is
// the memory peak on cgroup v2). Figures are held in memory: a collect that
// runs on a node that never sampled the container (another node, or this one
// after a restart mid-attempt) gets what that node sampled since it saw the
// container — every node samples every running container of its
// deployment, so on cgroup v1 the memory peak is still the true one.
//
// Bounds: at most kMaxContainers containers are held (an ended one nobody
// took makes room for a new one; beyond that, new ones are not sampled), a
// container that answers without figures (gone, after it had figures, or
// twice in a row) is not sampled again,
// and figures nobody took are forgotten kForgetAfter after the container's
// last sample.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/container_runtime.h"

namespace baton::batch {

struct AttemptUsage {
  int64_t peak_memory_bytes = 0;  // the largest memory figure seen
  double cpu_seconds = 0;         // CPU time used, as of the last sample
  int samples = 0;                // samples that had figures
};

struct ResourceSamplerOptions {
  // The labels of the deployment's containers (as JobMonitor watches them);
  // the main container's index label is added.
  std::map<std::string, std::string> selector;
  std::chrono::milliseconds interval{std::chrono::seconds(1)};
  // How often the running containers are listed again (containers started
  // by another node, or before a restart).
  std::chrono::milliseconds discover_interval{std::chrono::seconds(2)};
};

class ResourceSampler {
 public:
  static constexpr size_t kMaxContainers = 1024;
  static constexpr std::chrono::minutes kForgetAfter{10};

  ResourceSampler(runtime::ContainerRuntime& runtime, ResourceSamplerOptions options);
  ~ResourceSampler();
  ResourceSampler(const ResourceSampler&) = delete;
  ResourceSampler& operator=(const ResourceSampler&) = delete;

  void Start();
  void Stop();

  // Follows `container_id` from now on (the start activity calls it right
  // after the start) and wakes the loop, which samples it at once: the
  // start does not wait for a stats call. The wake samples only the
  // containers added since the last pass; all of them are sampled once per
  // interval (a burst of starts is not a burst of full passes).
  void Watch(const std::string& container_id);
  // Takes one more sample of the container (if it still runs), stops
  // following it and returns its figures; nothing when it never had a sample.
  std::optional<AttemptUsage> Take(const std::string& container_id);
  // One pass over the followed containers (the thread's step; for tests).
  void SampleAll();

 private:
  struct Entry {
    AttemptUsage usage;
    std::chrono::steady_clock::time_point last_seen;
    bool ended = false;  // answered without figures: not sampled again
    int zeros = 0;       // zero answers in a row before any figures
  };
  void Loop();
  void SampleOne(const std::string& container_id);
  // Samples the containers Watch added since the last pass.
  void SampleFresh();
  void Discover();
  // Makes room for one more entry; false when all are running. REQUIRES: mu_.
  bool Room();

  runtime::ContainerRuntime& runtime_;
  ResourceSamplerOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool wake_ = false;  // a container to follow was added: sample now
  std::vector<std::string> fresh_;  // added by Watch since the last pass; guarded by mu_
  std::map<std::string, Entry> entries_;  // by container id; guarded by mu_
  std::thread thread_;
};

}  // namespace baton::batch
