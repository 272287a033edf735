// RuntimeSupport: whether the deployment's container runtime can run a job
// at all, decided at submit (422, naming the field) rather than found out by
// a job that fails later. DockerRuntime supports every job spec; SwarmRuntime
// lacks sidecars, the callback socket, the bridge network and job-URL
// completion (container_runtime.h RuntimeFeatures; docs/cluster.md says why).
//
// Thread-safety: values; pure functions.
#pragma once

#include "baton/status.h"
#include "batch/job_spec.h"
#include "runtime/container_runtime.h"

namespace baton::batch {

// OK, or FailedPrecondition whose message starts with the field FieldOf()
// reads ("sidecars: …", "completion: …", "network: …", "ports: …"), saying
// what the runtime lacks and what to do instead.
Status CheckRuntimeSupport(const JobSpec& spec, const runtime::RuntimeFeatures& features);

}  // namespace baton::batch
