// The platform's gauges for /metrics, read when it is scraped (never on the
// hot path): per task hub the queues (messages, activity tasks, the age of
// the oldest visible one), jobs in flight by tenant and status, and the
// scheduler's view of each tenant (quota, use, queued jobs) and of the node.
//
// Every figure is read from the store (the scheduler entity's state, the
// job orchestrations), so every node of a shared store reports the same
// numbers; sum(...) by (tenant) over nodes counts them once per node.
//
// Thread-safety: the collector may run while work goes on; the object must
// outlive nothing but itself (its destructor unregisters the collector and
// waits for a scrape in progress).
#pragma once

#include <cstdint>

#include "baton/client.h"
#include "baton/store.h"
#include "util/metrics.h"

namespace baton::batch {

struct PlatformMetricsOptions {
  // Jobs in flight read per scrape, at most (pages of 1000); beyond it the
  // job gauges undercount and baton_jobs_scan_truncated says so.
  int max_jobs_scanned = 20000;
};

class PlatformMetrics {
 public:
  // `store` and `client` must outlive this object.
  PlatformMetrics(util::metrics::Registry& registry, Store& store, Client& client,
                  PlatformMetricsOptions options = PlatformMetricsOptions());
  ~PlatformMetrics();
  PlatformMetrics(const PlatformMetrics&) = delete;
  PlatformMetrics& operator=(const PlatformMetrics&) = delete;

 private:
  void Collect(util::metrics::Sink& sink);

  util::metrics::Registry& registry_;
  Store& store_;
  Client& client_;
  PlatformMetricsOptions options_;
  uint64_t collector_ = 0;
};

}  // namespace baton::batch
