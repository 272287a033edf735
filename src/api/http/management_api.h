// The Durable Functions–compatible management API and Baton's admin API
// (docs/http-api.md), as routes on a Router.
//
// Every request is authenticated against the TenantDirectory. A tenant key
// acts on its tenant's task hub only: instance ids in URLs are local to the
// hub ("order-17") and map to store ids "<tenant>::order-17". An instance of
// another hub is indistinguishable from a missing one (404).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "api/http/http_server.h"
#include "baton/client.h"
#include "tenancy/admission.h"
#include "tenancy/tenant_directory.h"

namespace baton::api {

struct ManagementApiOptions {
  // Whether an orchestrator name can be started (registered with a worker).
  std::function<bool(std::string_view)> is_known_orchestrator;
  // Upper bound on ?timeout= for start-and-wait and restart-and-wait.
  std::chrono::seconds max_wait{std::chrono::minutes(5)};
  // Per-tenant request rate and stored-instance cap; null = no limits.
  tenancy::Admission* admission = nullptr;
  // The job quota a new tenant starts with (the scheduler's "setTenant":
  // {"cpu", "memoryMb", "jobs", "weight"}); null = none (no limit).
  Json default_quota;
  // Called after a terminate, suspend or resume was accepted (the job
  // monitor's Nudge: jobs started from orchestrations follow at once).
  std::function<void()> on_instance_control;
};

// Registers every route on `router`. `client` and `directory` must outlive it.
void AddManagementApi(Router& router, Client& client, tenancy::TenantDirectory& directory,
                      ManagementApiOptions options);

}  // namespace baton::api
