// RetentionPurger: deletes finished orchestration instances and batch jobs
// (with their kept logs and secrets) once they have been finished for longer
// than their retention age, in the background, in small batches.
//
// Ages: every instance follows the server's --retention (`global_age`),
// unless its tenant sets its own (tenant settings "retention", a duration or
// "forever"). An instance belongs to tenant T when its id is "T::…" (T's
// task hub) or "job.T.…" (T's batch jobs); any other instance follows the
// global age. No age at all (no --retention, no override) keeps everything.
//
// "Finished for longer than the age" is measured from the instance's
// completion time (InstanceState::completed_at, else last_updated_at) to the
// purger's clock: an instance that finished at exactly now - age is kept.
// Only terminal instances are purged (Store::PurgeInstance refuses others),
// so running work is never touched.
//
// Batches: each pass reads at most `batch_size` candidates per store query
// and deletes them one instance per transaction, then pauses at least as long
// as the batch took, so the purge takes at most about half of the store's
// writer time and a work item never waits behind more than one small delete.
// A job's logs and secrets are deleted before its instance: a pass cut short
// leaves the instance, and the next pass deletes again (every delete is
// idempotent).
//
// Thread-safety: RunOnce may be called from any one thread at a time; Start
// runs it on a thread of its own until Stop.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "baton/client.h"
#include "baton/clock.h"
#include "batch/job_logs.h"
#include "batch/secret_vault.h"

namespace baton::batch {

// A tenant's own age; kKeepForever (0) = never purged by age.
inline constexpr std::chrono::seconds kKeepForever{0};

struct RetentionOptions {
  // The server's --retention; nullopt = keep instances of tenants without an
  // override forever.
  std::optional<std::chrono::seconds> global_age;
  // The tenants that set their own age (tenant id -> age or kKeepForever).
  // Called once per pass; an error skips the pass (nothing is deleted).
  std::function<Result<std::map<std::string, std::chrono::seconds>>()> tenant_ages;
  int batch_size = 100;                              // 1..1000
  std::chrono::milliseconds interval{std::chrono::minutes(1)};  // between passes (Start)
  std::chrono::milliseconds min_pause{20};           // at least this between batches
  std::shared_ptr<Clock> clock;                      // null = the system clock
};

struct RetentionReport {
  int64_t instances_purged = 0;  // every instance, jobs included
  int64_t jobs_purged = 0;       // of which batch jobs
};

// The tenant an instance id belongs to ("" for none): "T::x" and "job.T.id".
std::string TenantOfInstance(const std::string& instance_id);

class RetentionPurger {
 public:
  // `client` must outlive the purger; `vault` and `logs` may be null (no
  // batch jobs), else they must outlive it too.
  RetentionPurger(Client& client, SecretVault* vault, JobLogs* logs, RetentionOptions options);
  ~RetentionPurger();

  // One pass over every age. Errors of single deletes are skipped (the next
  // pass retries them); a store error while listing ends the pass with it.
  Result<RetentionReport> RunOnce();

  // A pass now and then every `interval` on a thread of its own. Idempotent.
  void Start();
  // Ends the current batch and joins the thread. Idempotent.
  void Stop();

  // Totals since construction (for logs and tests). Thread-safe.
  RetentionReport Totals() const;

 private:
  // Purges what `prefix` selects that finished before `cutoff`, skipping ids
  // whose tenant is in `skip`.
  Status PurgePrefix(const std::string& prefix, TimePoint cutoff,
                     const std::map<std::string, std::chrono::seconds>* skip, RetentionReport* report);
  bool Stopping();

  Client& client_;
  SecretVault* vault_;
  JobLogs* logs_;
  RetentionOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  RetentionReport totals_;
  std::thread thread_;
};

}  // namespace baton::batch
