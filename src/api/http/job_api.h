// The batch job API (/api/v1/jobs, docs/http-api.md#batch-jobs), the
// tenant's images (/api/v1/images: push an image of the node into the
// tenant's namespace of the platform registry, list them), and the
// admin endpoints for quotas and the scheduler, as routes on a Router.
//
// Jobs belong to the tenant whose key submitted them: their orchestrations
// run as "job.<tenant>.<id>" in the platform's own hub, which no tenant key
// reaches through the management API, and every job route looks only under
// the caller's prefix, so another tenant's job answers 404. The callback
// route is the exception: a job's container authenticates with its job token
// (job_token.h), which is good for its own attempt only.
#pragma once

#include <chrono>

#include "api/http/http_server.h"
#include "baton/client.h"
#include "batch/job_logs.h"
#include "batch/job_orchestration.h"
#include "batch/job_token.h"
#include "runtime/container_runtime.h"
#include "tenancy/admission.h"
#include "tenancy/tenant_directory.h"

namespace baton::api {

struct JobApiServices {
  Client* client = nullptr;
  tenancy::TenantDirectory* directory = nullptr;
  batch::SecretVault* vault = nullptr;
  batch::JobLogs* logs = nullptr;
  const batch::JobTokens* tokens = nullptr;
  runtime::ContainerRuntime* runtime = nullptr;  // live logs, and the job specs it can run (Features)
  std::chrono::seconds max_follow{60};           // upper bound of ?timeout= on logs
  tenancy::Admission* admission = nullptr;       // request rate, queued-job cap; null = none
  // The platform registry ("127.0.0.1:5000"): a tenant runs images under
  // "<registry>/<tenant>/" and what its grants add; "" = grants only.
  std::string platform_registry;
  // The platform's credentials by registry host (pushing a tenant's image,
  // POST /api/v1/images); a tenant never sees them.
  std::vector<runtime::RegistryCredentials> registries;
  std::chrono::seconds push_timeout{300};
};

// Registers the routes. Everything in `services` must outlive the router.
void AddJobApi(Router& router, const JobApiServices& services);
// The tenant activity batch::kStartJobActivity (batch/job_orchestration.h,
// RegisterTenantJobEntryPoint): starts a job for the tenant of the calling
// instance's hub with every check of POST /api/v1/jobs. Everything in
// `services` must outlive the workers that run it.
ActivityFn JobStartActivity(const JobApiServices& services);
// Registers only the callback route (POST /api/v1/jobs/{id}/callback): the
// router of the unix socket that job containers reach.
void AddJobCallbackRoute(Router& router, const JobApiServices& services);

}  // namespace baton::api
