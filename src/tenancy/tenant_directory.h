// Tenants and API keys: who may call Baton's APIs, and on whose task hub.
//
// A tenant owns one task hub: its instances have ids "<tenant>::<id>"
// (instance.h). API keys are bearer tokens "bk_<key id>_<secret>"; only the
// SHA-256 of the secret is stored, so a key is shown once, at creation, and
// can never be read back. A key belongs to one tenant, or to no tenant: then
// it is an admin key, which manages tenants and keys and may act on any hub.
//
// Rows live in a store::TenantStore (SQLite for one node, PostgreSQL shared
// by many); reads are cached for at most kCacheTtl, so a key revoked, a
// tenant disabled or settings changed through another node take effect
// here within that time (at once through this directory).
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
#include "store/tenant_store.h"
#include "tenancy/tenant_settings.h"

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
  std::optional<TimePoint> expires_at;  // none = never
};

// The identity a request was authenticated as.
struct Principal {
  bool admin = false;
  std::string tenant_id;  // "" for admin
  std::string key_id;
};

class TenantDirectory {
 public:
  static constexpr std::chrono::seconds kCacheTtl{2};

  // `store` must outlive the directory.
  explicit TenantDirectory(store::TenantStore& store) : store_(store) {}
  ~TenantDirectory() = default;

  // InvalidArgument: the id does not match [a-z0-9][a-z0-9-]{0,62}.
  // AlreadyExists: the id is taken.
  Result<Tenant> CreateTenant(const std::string& id, const std::string& display_name);
  Result<std::vector<Tenant>> ListTenants();
  // NotFound.
  Result<Tenant> GetTenant(const std::string& id);
  // Disabled tenants' keys stop authenticating; their instances are kept.
  // NotFound.
  Status DisableTenant(const std::string& id);
  // Undoes DisableTenant: its keys authenticate again. NotFound.
  Status EnableTenant(const std::string& id);

  // Creates a key for `tenant_id` ("" = admin key), valid until `expires_at`
  // (none: until revoked). Returns its metadata and the secret token, which
  // is never stored and cannot be read back. NotFound: no such tenant.
  // FailedPrecondition: the tenant is disabled. InvalidArgument: expires_at
  // is not in the future.
  Result<std::pair<ApiKey, std::string>> CreateKey(const std::string& tenant_id, const std::string& name,
                                                   std::optional<TimePoint> expires_at = std::nullopt);
  // Keys of one tenant ("" = admin keys), revoked ones included.
  Result<std::vector<ApiKey>> ListKeys(const std::string& tenant_id);
  // NotFound: no such key.
  Status RevokeKey(const std::string& key_id);
  // True when at least one unrevoked admin key exists.
  Result<bool> HasAdminKey();

  // The tenant's grants and limits (defaults until an admin changes them),
  // from the cache (kCacheTtl). NotFound: no such tenant.
  Result<TenantSettings> GetSettings(const std::string& tenant_id);
  // Applies `patch` (tenant_settings.h: any subset of the JSON form) and
  // returns the settings now in force. NotFound; InvalidArgument naming the
  // field (nothing changed).
  Result<TenantSettings> UpdateSettings(const std::string& tenant_id, const Json& patch);

  // Who `token` ("bk_…") is. Unauthenticated: malformed, unknown, revoked, or
  // of a disabled tenant (all answer the same, so a caller learns nothing);
  // also expired (said so, once the secret matched). An admin key counts for
  // HasAdminKey until revoked, expired or not.
  Result<Principal> Authenticate(std::string_view token);

 private:
  using Clock = std::chrono::steady_clock;
  void ForgetKeys();

  store::TenantStore& store_;
  std::mutex mu_;
  // key id -> (the key if valid, when read); a missing key is cached too.
  std::unordered_map<std::string, std::pair<std::optional<store::KeyRecord>, Clock::time_point>> keys_;
  // tenant -> (settings, when read)
  std::unordered_map<std::string, std::pair<TenantSettings, Clock::time_point>> settings_;
};

// Whether `id` is a valid tenant id.
bool IsValidTenantId(std::string_view id);

}  // namespace baton::tenancy
