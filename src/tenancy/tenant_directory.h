// Tenants and API keys: who may call Baton's APIs, and on whose task hub.
//
// A tenant owns one task hub: its instances have ids "<tenant>::<id>"
// (instance.h). API keys are bearer tokens "bk_<key id>_<secret>"; only the
// SHA-256 of the secret is stored, so a key is shown once, at creation, and
// can never be read back. A key belongs to one tenant, or to no tenant: then
// it is an admin key, which manages tenants and keys and may act on any hub.
//
// Storage is its own small SQLite file (writes are rare; reads are cached).
//
// Thread-safety: every method is thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "baton/clock.h"
#include "baton/status.h"
#include "tenancy/tenant_settings.h"

struct sqlite3;

namespace baton::tenancy {

struct Tenant {
  std::string id;            // [a-z0-9][a-z0-9-]{0,62}
  std::string display_name;
  bool disabled = false;
  TimePoint created_at;
};

struct ApiKey {
  std::string key_id;     // 12 hex characters; public, names the key
  std::string tenant_id;  // "" for an admin key
  std::string name;       // a label chosen at creation
  TimePoint created_at;
  bool revoked = false;
};

// The identity a request was authenticated as.
struct Principal {
  bool admin = false;
  std::string tenant_id;  // "" for admin
  std::string key_id;
};

class TenantDirectory {
 public:
  // Opens (creating if needed) the directory at `path`.
  static Result<std::unique_ptr<TenantDirectory>> Open(const std::string& path);
  ~TenantDirectory();

  // InvalidArgument: the id does not match [a-z0-9][a-z0-9-]{0,62}.
  // AlreadyExists: the id is taken.
  Result<Tenant> CreateTenant(const std::string& id, const std::string& display_name);
  Result<std::vector<Tenant>> ListTenants();
  // NotFound.
  Result<Tenant> GetTenant(const std::string& id);
  // Disabled tenants' keys stop authenticating; their instances are kept.
  // NotFound.
  Status DisableTenant(const std::string& id);

  // Creates a key for `tenant_id` ("" = admin key). Returns its metadata and
  // the secret token, which is never stored and cannot be read back.
  // NotFound: no such tenant. FailedPrecondition: the tenant is disabled.
  Result<std::pair<ApiKey, std::string>> CreateKey(const std::string& tenant_id,
                                                   const std::string& name);
  // Keys of one tenant ("" = admin keys), revoked ones included.
  Result<std::vector<ApiKey>> ListKeys(const std::string& tenant_id);
  // NotFound: no such key.
  Status RevokeKey(const std::string& key_id);
  // True when at least one unrevoked admin key exists.
  Result<bool> HasAdminKey();

  // The tenant's grants and limits (defaults until an admin changes them).
  // Read from a cache that is at most kSettingsCacheTtl old, so a change
  // made through another node's directory is seen within that time.
  // NotFound: no such tenant.
  Result<TenantSettings> GetSettings(const std::string& tenant_id);
  // Applies `patch` (tenant_settings.h: any subset of the JSON form) and
  // returns the settings now in force. NotFound; InvalidArgument naming the
  // field (nothing changed).
  Result<TenantSettings> UpdateSettings(const std::string& tenant_id, const Json& patch);
  static constexpr std::chrono::seconds kSettingsCacheTtl{2};

  // Who `token` ("bk_…") is. Unauthenticated: malformed, unknown, revoked, or
  // of a disabled tenant (all answer the same, so a caller learns nothing).
  Result<Principal> Authenticate(std::string_view token);

 private:
  explicit TenantDirectory(sqlite3* db);
  Status Exec(const std::string& sql);

  std::mutex mu_;
  sqlite3* db_;
  // key id -> (secret hash, principal) of valid keys; rebuilt on any change.
  std::unordered_map<std::string, std::pair<std::string, Principal>> valid_keys_;
  bool cache_loaded_ = false;
  Status LoadCacheLocked();
  Result<TenantSettings> ReadSettingsLocked(const std::string& tenant_id);
  // tenant -> (settings, when read)
  std::unordered_map<std::string, std::pair<TenantSettings, std::chrono::steady_clock::time_point>> settings_;
};

// Whether `id` is a valid tenant id.
bool IsValidTenantId(std::string_view id);

}  // namespace baton::tenancy
