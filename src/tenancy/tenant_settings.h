// TenantSettings: what an admin grants a tenant beyond the sandbox, and the
// admission limits that keep one tenant from crowding out the others.
//
// Grants (all off by default, docs/SECURITY.md):
//   - hostNetwork: the tenant's jobs may ask for network "host";
//   - capabilities: Linux capabilities its jobs may add back (every job
//     container starts with none);
//   - imagePrefixes: image references its jobs may run besides its own
//     namespace on the platform registry ("<registry>/<tenant>/").
// Limits (defaults below, each admin-editable per tenant):
//   - requestsPerSecond / burst: a token bucket over the tenant's API calls
//     (HTTP and gRPC client calls) on each node; over it: 429 / RESOURCE_EXHAUSTED;
//   - maxQueuedJobs: jobs submitted and not yet ended;
//   - maxInstances: orchestration instances stored in the tenant's task hub
//     (finished ones count until purged).
//
// Retention (docs/cli.md#retention): how long the tenant's finished
// instances and jobs (with their kept logs and secrets) stay before the
// background purge deletes them: a duration ("30d", "12h", 1m to 100 years),
// "forever", or null for the server's --retention.
//
// The JSON form is what the admin API reads and writes:
//   {"grants": {"hostNetwork": false, "capabilities": [], "imagePrefixes": []},
//    "limits": {"requestsPerSecond": 100, "burst": 200, "maxQueuedJobs": 500,
//               "maxInstances": 100000},
//    "retention": null}
//
// Thread-safety: values; the functions are pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "baton/json.h"
#include "baton/status.h"

namespace baton::tenancy {

struct TenantGrants {
  bool host_network = false;
  std::vector<std::string> capabilities;    // "NET_BIND_SERVICE", … (no "CAP_" prefix), sorted, unique
  std::vector<std::string> image_prefixes;  // e.g. "127.0.0.1:5000/samples/"
};

struct TenantLimits {
  static constexpr double kDefaultRequestsPerSecond = 100;
  static constexpr int64_t kDefaultBurst = 200;
  static constexpr int64_t kDefaultMaxQueuedJobs = 500;
  static constexpr int64_t kDefaultMaxInstances = 100000;

  double requests_per_second = kDefaultRequestsPerSecond;  // > 0
  int64_t burst = kDefaultBurst;                            // >= 1
  int64_t max_queued_jobs = kDefaultMaxQueuedJobs;          // >= 0
  int64_t max_instances = kDefaultMaxInstances;             // >= 0
};

struct TenantSettings {
  // The value meaning "never purged by age".
  static constexpr std::chrono::seconds kKeepForever{0};

  TenantGrants grants;
  TenantLimits limits;
  // nullopt: the server's --retention; kKeepForever; else the age (>= 1 min).
  std::optional<std::chrono::seconds> retention;
};

// The capabilities a grant may name (Linux capabilities without "CAP_").
bool IsKnownCapability(const std::string& name);

Json SettingsToJson(const TenantSettings& settings);

// Applies the members present in `patch` (the JSON form above, any subset)
// to `settings`. InvalidArgument naming the field ("limits.burst: must be an
// integer from 1 to 1000000") on an unknown member, a wrong type or a value
// out of range; `settings` is then unchanged.
Status ApplySettingsPatch(const Json& patch, TenantSettings* settings);

}  // namespace baton::tenancy
