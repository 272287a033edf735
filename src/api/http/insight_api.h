// What Baton tells about a job or an instance beyond its state: the signed
// run receipts of a job's attempts (docs/receipts.md) and the deployment's
// receipt public key; and why a job or an instance waits (docs/why.md).
//
//   GET /api/v1/jobs/{id}/receipts   tenant key: the job's receipts, oldest
//                                    attempt first; another tenant's job is 404
//   GET /api/v1/receipts/public-key  any valid key: the PEM public key that
//                                    verifies them
//   GET /api/v1/jobs/{id}/why        tenant key: why the job waits (engine/why.h)
//   GET /api/v1/rightsize?name=N     tenant key: CPU and memory for job name N
//                                    from its recent runs (batch/rightsize.h)
//   GET /api/v1/instances/{id}/why   tenant key: an instance of its hub (ids local
//                                    to the hub, as in the management API); admin
//                                    key: any instance id (?taskHub= as there)
//
// A tenant's chain never leaves its hub: a link whose next subject belongs to
// another hub ends the chain, and other tenants' jobs in the scheduler are
// shown as counts and totals only.
//
// Kept apart from job_api.cc so that the job API's route table stays as it is.
#pragma once

#include "api/http/http_server.h"
#include "baton/client.h"
#include "tenancy/admission.h"
#include "tenancy/tenant_directory.h"
#include "baton/registry.h"
#include "engine/why.h"
#include "runtime/container_runtime.h"
#include "util/receipt.h"

namespace baton::api {

struct InsightApiServices {
  Client* client = nullptr;
  tenancy::TenantDirectory* directory = nullptr;
  tenancy::Admission* admission = nullptr;        // null = no rate limit
  const util::ReceiptSigner* receipts = nullptr;  // null = receipts are off: 404
  const Registry* registry = nullptr;             // the worker's: tells C++ from SDK code
  runtime::ContainerRuntime* runtime = nullptr;   // job containers; null = not inspected
  engine::SdkWorkerCount sdk_workers;             // empty = no sidecar
};

// Registers the routes. Everything in `services` must outlive the router.
void AddInsightApi(Router& router, const InsightApiServices& services);

}  // namespace baton::api
