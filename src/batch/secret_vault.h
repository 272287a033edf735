// SecretVault: the secret env values and secret files of jobs, from submit
// until the job ends, encrypted at rest.
//
// Secrets never enter a job orchestration's input or history (which tenants
// and operators can read): the job API puts them here at submit, the
// activity that creates an attempt's container group reads them, and the
// job orchestration deletes them when the job ends (the JobMonitor sweeps
// those of jobs that ended without it: terminated or purged).
//
// Each value is sealed with AES-256-GCM (util/secret_box.h) under the key in
// the vault's key file, bound to its job, container, kind and name. The
// SQLite file runs with secure_delete, and a Delete checkpoints the WAL, so
// a deleted secret's ciphertext does not linger in free pages either.
//
// Thread-safety: every method is thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "baton/status.h"
#include "batch/job_spec.h"
#include "util/secret_box.h"

struct sqlite3;

namespace baton::batch {

class SecretVault {
 public:
  // Opens (creating, mode 0600) the vault at `path` with the key file
  // `key_path` (created with a fresh key when missing). Secrets an older
  // version kept in plain text are sealed on the way.
  static Result<std::unique_ptr<SecretVault>> Open(const std::string& path, const std::string& key_path);
  ~SecretVault();

  // Stores the spec's secret env and files (per container); replaces what
  // the job had.
  Status Put(const std::string& job_id, const JobSpec& spec);
  // Fills the secret env and files of `spec`'s containers. DataLoss when a
  // value cannot be opened (another key file, or tampering).
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
  SecretVault(sqlite3* db, util::SecretBox box) : db_(db), box_(std::move(box)) {}
  Status DeleteLocked(const std::string& job_id);
  Status MigratePlainText();

  std::mutex mu_;
  sqlite3* db_;
  util::SecretBox box_;
};

}  // namespace baton::batch
