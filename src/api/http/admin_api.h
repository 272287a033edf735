// The deployment as an operator sees it: its nodes and the SDK workers
// connected to them (docs/http-api.md#nodes-and-sdk-workers). Admin key only;
// a tenant key gets 403 and learns nothing.
//
//   GET /api/v1/admin/nodes    every node of the store (Store::ListNodes):
//                              id, state, version, what it does (details),
//                              started and last heartbeat, the leases it holds.
//                              ?state=up|stopped|gone|unknown filters.
//   GET /api/v1/admin/workers  connected SDK workers (gRPC GetWorkItems
//                              streams) per task hub: counts per node from
//                              the nodes' heartbeats (each node knows only
//                              its own streams), and this node's streams in
//                              detail. ?hub=<tenant> filters (?hub= with no
//                              value: the default hub).
//
// Any other query parameter, or a bad value, is a 400 naming it.
#pragma once

#include <functional>
#include <string>

#include "api/http/http_server.h"
#include "baton/json.h"
#include "baton/store.h"
#include "tenancy/admission.h"
#include "tenancy/tenant_directory.h"

namespace baton::api {

struct AdminApiServices {
  Store* store = nullptr;
  tenancy::TenantDirectory* directory = nullptr;
  tenancy::Admission* admission = nullptr;  // null = no rate limit (admin keys are never limited)
  std::string node_id;                      // this node's id in ListNodes
  // This node's SDK worker streams now, a JSON array of objects with at
  // least "hub" (tenant id, "" = the default hub); empty = no sidecar.
  std::function<Json()> worker_streams;
};

// The per-hub counts a node publishes in its heartbeat details
// ("sdkWorkers": {"<tenant or empty>": n}), from `worker_streams`' array.
Json SdkWorkerCounts(const Json& streams);

// Registers the routes. Everything in `services` must outlive the router.
void AddAdminApi(Router& router, const AdminApiServices& services);

}  // namespace baton::api
