// LeaseStore: named leases with an expiry, so that one node of a deployment
// does a piece of housekeeping at a time and another takes it over when the
// holder dies (the job monitor's reconciler: one per deployment).
//
// A lease is held by `holder` until `ttl` after its last TryAcquire; the
// holder renews it by calling TryAcquire again before it expires. Expiry is
// judged by the store's clock (the database's on PostgreSQL).
//
// Implementations: LocalLeaseStore (one process: a node alone on its data
// dir), PostgresLeaseStore (a table shared by the nodes). Each passes
// tests/store/platform_store_conformance_test.cc.
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "baton/status.h"

namespace baton::store {

class LeaseStore {
 public:
  virtual ~LeaseStore() = default;
  // True when `holder` holds `name` now (it was free, expired, or already
  // its own: then it is renewed for `ttl`); false when another holds it.
  virtual Result<bool> TryAcquire(const std::string& name, const std::string& holder, std::chrono::milliseconds ttl) = 0;
  // Gives the lease up if `holder` holds it (OK otherwise too).
  virtual Status Release(const std::string& name, const std::string& holder) = 0;
};

// Leases in this process's memory (by the steady clock).
std::unique_ptr<LeaseStore> OpenLocalLeaseStore();

}  // namespace baton::store
