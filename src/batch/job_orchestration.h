// The job orchestration: runs one batch job, durably, from its quota to its
// result. It is an ordinary Baton orchestration, written with the public SDK.
//
//   1. Ask the capacity scheduler (scheduler.h) for the job's resources; wait
//      for "QuotaGranted" when queued. The custom status says what the job is
//      waiting on: {"phase":"queued","position":n}.
//   2. For each attempt: create the container group (deterministic name
//      "<job>-a<attempt>", labels baton.job/tenant/attempt/instance: creating
//      it again after a crash finds the same group), start it, and wait for
//      its main container to exit, for the job's timeout (a durable timer), or
//      for a "Cancel" event — whichever comes first.
//   3. Keep the logs' tail and the exit code / OOM kill, delete the group,
//      and apply the restart policy (OnFailure / Always, with backoff on a
//      durable timer) or finish.
//   4. Release the resources and complete with
//      {status, exitCode, oomKilled, attempts, durations, logsTail}.
//
// Secret env values never enter the orchestration's input or history: they
// are kept in a SecretVault and read by the activity that creates the group.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "baton/registry.h"
#include "batch/job_spec.h"
#include "runtime/container_runtime.h"

struct sqlite3;

namespace baton::batch {

inline constexpr char kJobOrchestrator[] = "baton.Job";
inline constexpr char kCancelEvent[] = "Cancel";

// Secret env values of jobs, by job id, in their own SQLite file.
// Thread-safe.
class SecretVault {
 public:
  static Result<std::unique_ptr<SecretVault>> Open(const std::string& path);
  ~SecretVault();
  // Stores the spec's secret env (per container); replaces earlier values.
  Status Put(const std::string& job_id, const JobSpec& spec);
  // Fills the secret env of `spec`'s containers from the vault.
  Status Fill(const std::string& job_id, JobSpec* spec);
  Status Delete(const std::string& job_id);

 private:
  explicit SecretVault(sqlite3* db) : db_(db) {}
  Status DeleteLocked(const std::string& job_id);
  std::mutex mu_;
  sqlite3* db_;
};

// The input of a job orchestration: the job's identity and its spec with
// secret values redacted (RedactedJson).
Json JobInput(const std::string& job_id, const std::string& tenant, const JobSpec& spec);

// Registers the job orchestration and its activities. `runtime` and `vault`
// must outlive the workers that run them.
Status RegisterJobFunctions(Registry& registry, runtime::ContainerRuntime& runtime, SecretVault& vault);

}  // namespace baton::batch
