// TenantStore: where tenants, their settings and their API keys are kept.
//
// Rows only: the tenancy layer (tenancy/tenant_directory.h) validates ids,
// makes and hashes keys, and caches what it reads. Implementations:
// SqliteTenantStore (its own file beside the task hub), PostgresTenantStore
// (tables in the task hub's database, shared by every node). Every
// implementation passes tests/store/tenant_store_conformance_test.cc.
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "baton/clock.h"
#include "baton/status.h"

namespace baton::store {

struct TenantRecord {
  std::string id;
  std::string display_name;
  bool disabled = false;
  TimePoint created_at;
  std::string settings_json = "{}";  // tenancy/tenant_settings.h's JSON form
};

struct KeyRecord {
  std::string key_id;       // public part of the key
  std::string tenant_id;    // "" = an admin key
  std::string name;
  std::string secret_hash;  // hex SHA-256 of the secret part
  TimePoint created_at;
  bool revoked = false;
  std::optional<TimePoint> expires_at;  // none = never (kept with microsecond precision)
};

class TenantStore {
 public:
  virtual ~TenantStore() = default;

  // AlreadyExists: the id is taken.
  virtual Status InsertTenant(const TenantRecord& tenant) = 0;
  // Ordered by id.
  virtual Result<std::vector<TenantRecord>> ListTenants() = 0;
  // NotFound.
  virtual Result<TenantRecord> GetTenant(const std::string& id) = 0;
  // NotFound.
  virtual Status SetDisabled(const std::string& id, bool disabled) = 0;
  // Replaces the settings JSON. NotFound.
  virtual Status SetSettings(const std::string& id, const std::string& settings_json) = 0;

  // AlreadyExists: the key id is taken.
  virtual Status InsertKey(const KeyRecord& key) = 0;
  // Keys of one tenant ("" = admin keys), revoked ones included, oldest first.
  virtual Result<std::vector<KeyRecord>> ListKeys(const std::string& tenant_id) = 0;
  // NotFound.
  virtual Status RevokeKey(const std::string& key_id) = 0;
  // The key if it may authenticate: not revoked, and an admin key or one of
  // an enabled tenant. NotFound otherwise (whatever the reason). Expiry is
  // the caller's to check (expires_at), against its clock.
  virtual Result<KeyRecord> GetValidKey(const std::string& key_id) = 0;
  // Whether an unrevoked admin key exists.
  virtual Result<bool> HasAdminKey() = 0;
};

}  // namespace baton::store
