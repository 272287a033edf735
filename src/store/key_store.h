// KeyStore: the deployment's own keys, by name ("job-token": the HMAC key of
// job tokens; "secrets": the keys that seal job secrets), the same on every
// node that shares the store.
//
// Implementations: SqliteKeyStore keeps each key in a file
// <data-dir>/<name>.key (mode 0600); PostgresKeyStore in a table of the
// task hub's database. Each passes tests/store/platform_store_conformance_test.cc.
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <functional>
#include <string>

#include "baton/status.h"

namespace baton::store {

class KeyStore {
 public:
  virtual ~KeyStore() = default;
  // The key `name`; when none is stored, `make()` makes one and it is stored,
  // unless another caller stored one first: every caller gets the bytes that
  // were stored. `name` is [a-z0-9-]+.
  virtual Result<std::string> GetOrCreate(const std::string& name, const std::function<Result<std::string>()>& make) = 0;
  // Replaces the key `name` (rotation).
  virtual Status Put(const std::string& name, const std::string& key) = 0;
  // Where an operator finds the key, for messages ("/data/secrets.key",
  // "the table platform_keys").
  virtual std::string Describe(const std::string& name) const = 0;
};

}  // namespace baton::store
