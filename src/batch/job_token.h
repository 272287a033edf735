// Job tokens: what a job's container presents to report progress and
// completion through BATON_CALLBACK_URL (docs/job-protocol.md).
//
// A token names one attempt of one job and is signed with the server's secret
// key (HMAC-SHA256), so a container can forge none and use its own for nothing
// but its own attempt:
//
//   bjt_<job instance id, hex>_<attempt>_<HMAC of "<instance>|<attempt>", hex>
//
// The same key, instance and attempt always give the same token, so an
// activity that runs again after a crash hands the container the same token.
//
// Thread-safety: a JobTokens is immutable after construction.
#pragma once

#include <string>

#include "baton/status.h"
#include "store/key_store.h"

namespace baton::batch {

struct JobTokenClaims {
  std::string instance;  // the job orchestration's instance id
  int attempt = 0;
};

class JobTokens {
 public:
  static constexpr char kKeyName[] = "job-token";
  // The deployment's key "job-token" (32 random bytes, made at the first
  // start), the same on every node that shares `keys`.
  static Result<JobTokens> FromKeyStore(store::KeyStore& keys);
  // The key at `path` (read only; tests and tools that sign as a server).
  static Result<JobTokens> ReadKeyFile(const std::string& path);
  explicit JobTokens(std::string key) : key_(std::move(key)) {}

  std::string Sign(const std::string& instance, int attempt) const;
  // Unauthenticated when the token is malformed or its signature is wrong.
  Result<JobTokenClaims> Verify(const std::string& token) const;

 private:
  std::string key_;
};

}  // namespace baton::batch
