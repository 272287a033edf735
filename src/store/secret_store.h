// SecretStore: sealed secrets of jobs (batch/secret_vault.h seals and opens
// them; this store never sees a value in the clear).
//
// Implementations: SqliteSecretStore, PostgresSecretStore; each passes
// tests/store/platform_store_conformance_test.cc. A deleted secret's bytes
// do not linger in the store's files where the backend can prevent it
// (SQLite: secure_delete and a WAL checkpoint).
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <string>
#include <vector>

#include "baton/status.h"

namespace baton::store {

struct SealedSecret {
  std::string container;
  std::string kind;    // "env" or "file"
  std::string name;
  std::string sealed;  // opaque bytes
};

// A secret an older version stored unsealed (SQLite only).
struct LegacySecret {
  std::string job_id;
  std::string container;
  std::string name;
  std::string value;
};

class SecretStore {
 public:
  virtual ~SecretStore() = default;
  // Replaces the job's secrets with `secrets`, atomically.
  virtual Status Replace(const std::string& job_id, const std::vector<SealedSecret>& secrets) = 0;
  // The job's secrets (none: an empty list).
  virtual Result<std::vector<SealedSecret>> Get(const std::string& job_id) = 0;
  // Deletes the job's secrets (OK when it has none).
  virtual Status Delete(const std::string& job_id) = 0;
  // Ids of the jobs with secrets, ascending, after `after`, at most `limit`.
  virtual Result<std::vector<std::string>> Jobs(const std::string& after, int limit) = 0;
  // What an older version kept unsealed, so the caller can seal it
  // (Replace) and then drop it — empty for backends that never had any.
  virtual Result<std::vector<LegacySecret>> ReadLegacyPlaintext() { return std::vector<LegacySecret>{}; }
  // Removes what ReadLegacyPlaintext returned, and scrubs it from the files.
  virtual Status DropLegacyPlaintext() { return Status::Ok(); }
};

}  // namespace baton::store
