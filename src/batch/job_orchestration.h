// The job orchestration: runs one batch job, durably, from its image to its
// result. It is an ordinary Baton orchestration, written with the public SDK.
//
//   0. Resolve every image to a digest: all attempts run exactly that image.
//      A digest the node holds is used without a pull; anything else is
//      pulled with the platform's registry credentials, except that a tag
//      the node holds is used as the node has it while the registry cannot
//      be reached (docs/job-spec.md#images).
//   1. Ask the capacity scheduler (scheduler.h) for the job's resources; wait
//      for "QuotaGranted" when queued.
//   2. For each attempt: create the container group (deterministic name
//      "<job>-a<attempt>", labels baton.job/tenant/attempt/instance/completion:
//      creating it again after a crash finds the same group), start it unless
//      it was started already (a container is never started twice), call
//      POST /start on a job URL, then wait for the first of: the external
//      event "Completed" or "Failed" (from Docker's die event through the
//      JobMonitor, or from the job's own callback), "ContainerLost" (the
//      reconciler found no container), the job's timeout (a durable timer)
//      or "Cancel". "Progress" events update the custom status on the way.
//      Events carry {"attempt": n}; those of another attempt are ignored.
//      An attempt OOM-killed under "onOomKilled" is retried at once with its
//      main container's memory multiplied (up to maxMemoryMb), after the
//      scheduler granted the larger size ("resize"); such a retry does not
//      use the restart policy's attempts (docs/job-spec.md#oom-retries).
//   3. Keep the attempt's logs (JobLogs), exit code / OOM kill and resource
//      figures (CPU time, peak memory: ResourceSampler), then
//      delete the group (two activities, each safe to repeat after a crash), and apply the restart policy (OnFailure / Always, with backoff
//      on a durable timer) or finish.
//   4. Release the resources and complete with {status, exitCode, oomKilled,
//      attempts, attemptResults, durations, progress, logsTail, error,
//      memoryMb (under onOomKilled: the last size)}.
//
// Runtime and registry calls wait out transient faults (dockerd or the
// registry unreachable, or no cluster node free to place the attempt on:
// retried 1 s, 2 s, … up to 30 s apart on durable timers, bounded by the
// job's timeoutSeconds and by a Cancel); answers that
// will not change (NotFound, RegistryUnauthorized, InvalidArgument) fail at
// once (docs/job-spec.md#transient-faults).
//
// The custom status always says where the job is:
//   {"phase": "pulling" | "queued" | "starting" | "running" | "finishing" |
//    "backoff" | "done",
//    "attempt", "position" (queued), "retryAt" (backoff), "progress",
//    "waitingOn" (while a call waits out a fault: {"reason": "runtime" |
//    "registry" | "placement", "lastError", "retryAt", "since", "failures"})}.
//
// Secrets (env and files) never enter the orchestration's input or history:
// they are kept in a SecretVault (secret_vault.h), read by the activity that
// creates the group, and deleted by the last step, whatever the outcome.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "baton/client.h"
#include "baton/registry.h"
#include "batch/job_policy.h"
#include "batch/job_spec.h"
#include "batch/secret_vault.h"
#include "runtime/container_runtime.h"
#include "util/receipt.h"

namespace baton::batch {

inline constexpr char kJobOrchestrator[] = "baton.Job";
inline constexpr char kCancelEvent[] = "Cancel";
inline constexpr char kCompletedEvent[] = "Completed";
inline constexpr char kFailedEvent[] = "Failed";
inline constexpr char kProgressEvent[] = "Progress";
inline constexpr char kContainerLostEvent[] = "ContainerLost";
// Job orchestration instance ids: "job.<tenant>.<job id>".
inline constexpr char kJobInstancePrefix[] = "job.";

// ---- Jobs started from a tenant's orchestration ----
//
// A tenant's orchestration (C++, or any Durable Task SDK over the sidecar)
// starts a job as the sub-orchestration "baton.Job" with a job spec as its
// input. In the tenant's hub that name is a tenant entry point
// (Registry::AddTenantOrchestrator), not the job orchestration itself: a
// small "bridge" orchestration that
//   1. picks the job's id (deterministic: from its own clock and GUID),
//   2. calls the tenant activity kStartJobActivity, which runs every check
//      of POST /api/v1/jobs for the hub's tenant (the tenant comes from the
//      calling instance's hub, never from the input) and starts the job
//      orchestration "job.<tenant>.<id>" in the platform's hub with
//      {"parent": {"instance", "bridge"}} in its input; a refused spec fails
//      the bridge (and so the tenant's call) with the submit's error, and
//      nothing runs; "not now" answers (the tenant's cap on unfinished jobs)
//      are retried on a durable timer,
//   3. waits for kJobEndedEvent, which the job orchestration sends it when
//      the job ends, and completes with the job's result object (whatever
//      the job's status: Completed, Failed or Canceled).
// Terminating or suspending the tenant's orchestration (or the bridge)
// reaches the job through the JobMonitor's reconciler (job_monitor.h):
// a terminated parent cancels the job, a suspended one suspends it (holds it:
// nothing the job waits for is acted on until the parent resumes).
inline constexpr char kStartJobActivity[] = "baton.StartJob";
inline constexpr char kJobEndedEvent[] = "JobEnded";

// The container group of a job's attempt ("job-acme-0a1b…-a2").
std::string JobGroupName(const std::string& job_instance, int attempt);

// The input of a job orchestration: the job's identity (`job`: the instance
// id, unique on the node; `id`: the id its tenant sees) and its spec with
// secret values redacted (RedactedJson).
Json JobInput(const std::string& job, const std::string& tenant, const JobSpec& spec, const std::string& id = "");

class JobLogs;
class JobTokens;
class ResourceSampler;

// What the job activities use. Everything pointed to must outlive the
// workers that run them.
struct JobServices {
  runtime::ContainerRuntime* runtime = nullptr;
  SecretVault* vault = nullptr;
  JobLogs* logs = nullptr;        // null: logs are not kept beyond logsTail
  const JobTokens* tokens = nullptr;  // null: no callback completion
  // BATON_CALLBACK_URL is callback_base + "/api/v1/jobs/<id>/callback",
  // served on the unix socket <callback_dir>/callback.sock; callback-mode
  // containers get the directory mounted (container_runtime.h) and
  // BATON_CALLBACK_SOCKET, so a job reaches Baton with no network at all.
  std::string callback_base = "http://localhost";
  std::string callback_dir;
  // Credentials by registry host ("127.0.0.1:5000"); images of other
  // registries are pulled without credentials.
  std::vector<runtime::RegistryCredentials> registries;
  std::chrono::seconds pull_timeout{600};
  std::chrono::seconds stop_grace{10};
  // Labels every group "baton.deployment=<deployment_id>" (what the
  // JobMonitors of the deployment's nodes watch: deployments sharing a
  // dockerd leave each other's containers alone) and "baton.node=<node_id>"
  // (which node created it). "" = no such label.
  std::string deployment_id;
  std::string node_id;
  // The tenant's grants now (tenant settings): each attempt is checked
  // against them before its containers are made (CheckJobPolicy), so a
  // grant revoked after submit is not used by a job that waited or retried.
  // PermissionDenied (a disabled tenant) fails the attempt for good.
  // Null: not checked (no tenancy).
  std::function<Result<JobGrants>(const std::string& tenant)> grants_of;
  std::string platform_registry;  // as CheckJobPolicy takes it
  // Reads the jobs a job depends on (dependsOn). Null: a job with
  // dependencies fails (Unimplemented).
  Client* client = nullptr;
  // Signs each attempt's run receipt (receipts.h); null = no receipts.
  const util::ReceiptSigner* receipts = nullptr;
  // Samples each attempt's CPU time and peak memory (resource_sampler.h);
  // null = not measured (the attempts' figures are null).
  ResourceSampler* sampler = nullptr;
};

// Registers the job orchestration and its activities.
Status RegisterJobFunctions(Registry& registry, const JobServices& services);
// Registers the tenant entry point "baton.Job" (the bridge above) and, as
// kStartJobActivity, `start_job`: an activity that, for the tenant of the
// calling instance's hub, checks input {"id", "spec"} as a submit would and
// starts the job (JobInput with "parent"). It answers {"started": true} (also
// when that job was started already by the same bridge), {"started": false,
// "retryAfterSeconds", "reason"} for "not now", and fails non-retriably with
// the submit's error type ("InvalidArgument", "PermissionDenied", "NeverFits",
// "NotSupported") for a spec that can never run.
Status RegisterTenantJobEntryPoint(Registry& registry, ActivityFn start_job);
// The same with only a runtime and a vault (no logs kept, no callbacks).
Status RegisterJobFunctions(Registry& registry, runtime::ContainerRuntime& runtime, SecretVault& vault);

}  // namespace baton::batch
