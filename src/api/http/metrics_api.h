// GET /metrics: the process's metrics (util/metrics.h) in the Prometheus
// text format 0.0.4 (docs/metrics.md lists them).
//
// Who may read them: an admin key only ("Authorization: Bearer <key>"; in
// Prometheus, `authorization: {credentials_file: …}`). The figures are every
// tenant's (jobs, quotas and queues by tenant), so a tenant key gets 403 and
// no key (or a bad one) 401. When metrics are off (`--metrics off`), 404.
#pragma once

#include "api/http/http_server.h"
#include "tenancy/tenant_directory.h"
#include "util/metrics.h"

namespace baton::api {

// The registry and the directory must outlive the router's use.
void AddMetricsRoute(Router& router, util::metrics::Registry& registry, tenancy::TenantDirectory& directory);

}  // namespace baton::api
