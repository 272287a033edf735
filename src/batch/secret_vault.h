// SecretVault: the secret env values and secret files of jobs, from submit
// until the job ends, encrypted at rest.
//
// Secrets never enter a job orchestration's input or history (which tenants
// and operators can read): the job API puts them here at submit, the
// activity that creates an attempt's container group reads them, and the
// job orchestration deletes them when the job ends (the JobMonitor sweeps
// those of jobs that ended without it: terminated or purged).
//
// Each value is sealed with AES-256-GCM (util/secret_box.h) under the key
// "secrets" of the store::KeyStore, bound to its job, container, kind and
// name, and kept in a store::SecretStore, which never sees it in the clear.
//
// Thread-safety: every method is thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "baton/status.h"
#include "batch/job_spec.h"
#include "store/key_store.h"
#include "store/secret_store.h"
#include "util/secret_box.h"

namespace baton::batch {

class SecretVault {
 public:
  // The name of the sealing keys in the KeyStore.
  static constexpr char kKeyName[] = "secrets";

  // A vault over `store` with the keys of `keys` (a fresh key is made when
  // there is none). Secrets an older version kept in plain text are sealed
  // on the way. Both stores must outlive the vault.
  static Result<std::unique_ptr<SecretVault>> Open(store::SecretStore& store, store::KeyStore& keys);

  // Stores the spec's secret env and files (per container); replaces what
  // the job had.
  Status Put(const std::string& job_id, const JobSpec& spec);
  // Fills the secret env and files of `spec`'s containers. DataLoss when a
  // value cannot be opened (another key file, or tampering).
  // Every secret name of `spec` must be in the vault: a missing one (swept,
  // deleted, a data dir restored without it) is DataLoss naming it, never a
  // job started with the redacted "***" in its place.
  Status Fill(const std::string& job_id, JobSpec* spec);
  // Deletes the job's secrets (OK when it has none).
  Status Delete(const std::string& job_id);
  // The jobs that have secrets stored, at most `limit`, in id order after
  // `after` (for sweeps).
  Result<std::vector<std::string>> Jobs(const std::string& after, int limit);
  // How many values the job has stored.
  Result<int> Count(const std::string& job_id);
  // Seals every value again with the active key (after SecretBox::Rotate);
  // returns how many were resealed.
  Result<int> ResealAll();

 private:
  SecretVault(store::SecretStore& store, util::SecretBox box) : store_(store), box_(std::move(box)) {}
  Status MigratePlainText();

  store::SecretStore& store_;
  util::SecretBox box_;
};

}  // namespace baton::batch
