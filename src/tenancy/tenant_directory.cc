#include "tenancy/tenant_directory.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util/hex.h"

namespace baton::tenancy {
namespace {

Result<std::string> RandomHex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1) {
    return InternalError("the system random generator failed");
  }
  return util::HexEncode(std::string_view(reinterpret_cast<const char*>(buf.data()), bytes));
}

std::string Sha256Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  return util::HexEncode(std::string_view(reinterpret_cast<const char*>(digest), len));
}

Tenant FromRecord(const store::TenantRecord& r) { return Tenant{r.id, r.display_name, r.disabled, r.created_at}; }

ApiKey FromRecord(const store::KeyRecord& r) {
  return ApiKey{r.key_id, r.tenant_id, r.name, r.created_at, r.revoked, r.expires_at};
}

// Settings as stored; a stored form that no longer parses reads as the
// defaults (it passed validation when it was written).
TenantSettings ParseSettings(const std::string& json) {
  TenantSettings settings;
  Json stored = FromPayload(json);
  (void)ApplySettingsPatch(stored.is_object() ? stored : Json::object(), &settings);
  return settings;
}

}  // namespace

bool IsValidTenantId(std::string_view id) {
  if (id.empty() || id.size() > 63) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
    if (!ok) return false;
  }
  return true;
}

Result<Tenant> TenantDirectory::CreateTenant(const std::string& id, const std::string& display_name) {
  if (!IsValidTenantId(id)) {
    return InvalidArgumentError("tenant id '" + id +
                                "' must be 1-63 characters of a-z, 0-9 and '-', not starting with '-'");
  }
  store::TenantRecord r{id, display_name.empty() ? id : display_name, false, SystemClock()->Now(),
                        SettingsToJson(TenantSettings{}).dump()};
  BATON_RETURN_IF_ERROR(store_.InsertTenant(r));
  return FromRecord(r);
}

Result<std::vector<Tenant>> TenantDirectory::ListTenants() {
  BATON_ASSIGN_OR_RETURN(std::vector<store::TenantRecord> rows, store_.ListTenants());
  std::vector<Tenant> out;
  for (const auto& r : rows) out.push_back(FromRecord(r));
  return out;
}

Result<Tenant> TenantDirectory::GetTenant(const std::string& id) {
  BATON_ASSIGN_OR_RETURN(store::TenantRecord r, store_.GetTenant(id));
  return FromRecord(r);
}

Status TenantDirectory::DisableTenant(const std::string& id) {
  BATON_RETURN_IF_ERROR(store_.SetDisabled(id, true));
  ForgetKeys();
  return Status::Ok();
}

Status TenantDirectory::EnableTenant(const std::string& id) {
  BATON_RETURN_IF_ERROR(store_.SetDisabled(id, false));
  ForgetKeys();
  return Status::Ok();
}

Result<std::pair<ApiKey, std::string>> TenantDirectory::CreateKey(const std::string& tenant_id,
                                                                  const std::string& name,
                                                                  std::optional<TimePoint> expires_at) {
  if (expires_at && *expires_at <= SystemClock()->Now()) {
    return InvalidArgumentError("the key would expire before it is created");
  }
  if (!tenant_id.empty()) {
    BATON_ASSIGN_OR_RETURN(Tenant t, GetTenant(tenant_id));
    if (t.disabled) return FailedPreconditionError("tenant '" + tenant_id + "' is disabled");
  }
  BATON_ASSIGN_OR_RETURN(std::string key_id, RandomHex(6));
  BATON_ASSIGN_OR_RETURN(std::string secret, RandomHex(24));
  store::KeyRecord r{key_id, tenant_id, name, Sha256Hex(secret), SystemClock()->Now(), false, expires_at};
  BATON_RETURN_IF_ERROR(store_.InsertKey(r));
  {
    std::lock_guard lock(mu_);
    keys_.erase(key_id);
  }
  return std::make_pair(FromRecord(r), "bk_" + key_id + "_" + secret);
}

Result<std::vector<ApiKey>> TenantDirectory::ListKeys(const std::string& tenant_id) {
  BATON_ASSIGN_OR_RETURN(std::vector<store::KeyRecord> rows, store_.ListKeys(tenant_id));
  std::vector<ApiKey> out;
  for (const auto& r : rows) out.push_back(FromRecord(r));
  return out;
}

Status TenantDirectory::RevokeKey(const std::string& key_id) {
  BATON_RETURN_IF_ERROR(store_.RevokeKey(key_id));
  std::lock_guard lock(mu_);
  keys_.erase(key_id);
  return Status::Ok();
}

Result<bool> TenantDirectory::HasAdminKey() { return store_.HasAdminKey(); }

void TenantDirectory::ForgetKeys() {
  std::lock_guard lock(mu_);
  keys_.clear();
}

Result<TenantSettings> TenantDirectory::GetSettings(const std::string& tenant_id) {
  const auto now = Clock::now();
  {
    std::lock_guard lock(mu_);
    auto it = settings_.find(tenant_id);
    if (it != settings_.end() && now - it->second.second < kCacheTtl) return it->second.first;
  }
  BATON_ASSIGN_OR_RETURN(store::TenantRecord r, store_.GetTenant(tenant_id));
  TenantSettings settings = ParseSettings(r.settings_json);
  std::lock_guard lock(mu_);
  if (settings_.size() > 100000) settings_.clear();  // bounded: tenants are far fewer
  settings_[tenant_id] = {settings, now};
  return settings;
}

Result<TenantSettings> TenantDirectory::UpdateSettings(const std::string& tenant_id, const Json& patch) {
  BATON_ASSIGN_OR_RETURN(store::TenantRecord r, store_.GetTenant(tenant_id));
  TenantSettings settings = ParseSettings(r.settings_json);
  BATON_RETURN_IF_ERROR(ApplySettingsPatch(patch, &settings));
  BATON_RETURN_IF_ERROR(store_.SetSettings(tenant_id, SettingsToJson(settings).dump()));
  std::lock_guard lock(mu_);
  settings_[tenant_id] = {settings, Clock::now()};
  return settings;
}

Result<Principal> TenantDirectory::Authenticate(std::string_view token) {
  const Status denied(StatusCode::kUnauthenticated, "missing, unknown or revoked API key");
  // bk_<12 hex>_<48 hex>
  if (token.size() != 3 + 12 + 1 + 48 || token.substr(0, 3) != "bk_" || token[15] != '_') return denied;
  const std::string key_id(token.substr(3, 12));
  const std::string hash = Sha256Hex(token.substr(16));
  const auto now = Clock::now();
  std::optional<store::KeyRecord> key;
  bool cached = false;
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(key_id);
    if (it != keys_.end() && now - it->second.second < kCacheTtl) {
      key = it->second.first;
      cached = true;
    }
  }
  if (!cached) {
    auto found = store_.GetValidKey(key_id);
    if (!found.ok() && found.status().code() != StatusCode::kNotFound) return found.status();
    if (found.ok()) key = *found;
    std::lock_guard lock(mu_);
    // Bounded: unknown key ids are cached too (so guessing costs no store
    // reads), and the cache starts over when it grows past any real need.
    if (keys_.size() > 100000) keys_.clear();
    keys_[key_id] = {key, now};
  }
  if (!key) return denied;
  if (key->secret_hash.size() != hash.size() ||
      CRYPTO_memcmp(key->secret_hash.data(), hash.data(), hash.size()) != 0) {
    return denied;
  }
  // Expiry is told apart only to the key's holder (the secret matched).
  if (key->expires_at && *key->expires_at <= SystemClock()->Now()) {
    return Status(StatusCode::kUnauthenticated,
                  "API key " + key->key_id + " expired at " + FormatIso8601(*key->expires_at));
  }
  return Principal{key->tenant_id.empty(), key->tenant_id, key->key_id};
}

}  // namespace baton::tenancy
