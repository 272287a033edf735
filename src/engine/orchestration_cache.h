// The orchestration cache: live executors (coroutine frames) kept between
// episodes so that the next episode of a hot instance costs O(new events).
//
// An entry is valid only for the exact committed history it was built from
// (execution id, history generation and number of events: a rewind on
// another node keeps the execution id and may leave the same number of
// events); the worker checks that before use and falls back to replay
// otherwise. Entries are taken out while an episode runs
// (the instance is leased, so nobody else needs them) and put back once the
// episode's commit succeeded. Least recently used entries are evicted beyond
// the byte or count budget.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/executor.h"

namespace baton::engine {

struct CachedOrchestration {
  std::unique_ptr<core::Executor> executor;
  std::string execution_id;
  int64_t history_generation = 0;
  int64_t history_size = 0;
};

class OrchestrationCache {
 public:
  OrchestrationCache(size_t max_bytes, size_t max_entries);

  // Removes and returns the entry for `instance_id`, or null.
  std::shared_ptr<CachedOrchestration> Take(const std::string& instance_id);

  // Inserts (or replaces) the entry and evicts LRU entries over budget.
  // Returns how many were evicted.
  size_t Put(const std::string& instance_id, std::shared_ptr<CachedOrchestration> entry);

  size_t size() const;
  size_t bytes() const;

 private:
  struct Slot {
    std::string instance_id;
    std::shared_ptr<CachedOrchestration> entry;
    size_t bytes;
  };
  const size_t max_bytes_;
  const size_t max_entries_;
  mutable std::mutex mu_;
  std::list<Slot> lru_;  // front = most recently used
  std::unordered_map<std::string, std::list<Slot>::iterator> index_;
  size_t bytes_ = 0;
};

}  // namespace baton::engine
