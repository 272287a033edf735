#include "tenancy/tenant_directory.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include <cstdio>

#include "util/hex.h"

namespace baton::tenancy {
namespace {

constexpr const char* kSchema = R"SQL(
-- Tenants: each owns the task hub "<id>::".
CREATE TABLE IF NOT EXISTS tenants (
  id           TEXT PRIMARY KEY,
  display_name TEXT NOT NULL,
  disabled     INTEGER NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL            -- unix micros
);
-- API keys: only the SHA-256 of the secret is kept.
CREATE TABLE IF NOT EXISTS api_keys (
  key_id      TEXT PRIMARY KEY,
  tenant_id   TEXT NOT NULL,               -- '' = admin key
  name        TEXT NOT NULL,
  secret_hash TEXT NOT NULL,               -- hex SHA-256 of the secret part
  created_at  INTEGER NOT NULL,
  revoked     INTEGER NOT NULL DEFAULT 0
);
)SQL";

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

// A prepared statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr); }
  ~Stmt() { sqlite3_finalize(st_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  int Step() { return sqlite3_step(st_); }
  std::string Text(int i) {
    const unsigned char* t = sqlite3_column_text(st_, i);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  int64_t Int(int i) { return sqlite3_column_int64(st_, i); }

 private:
  sqlite3_stmt* st_ = nullptr;
  int rc_;
};

Status SqliteError(sqlite3* db, const std::string& what) {
  return InternalError(what + ": " + sqlite3_errmsg(db));
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

Result<std::unique_ptr<TenantDirectory>> TenantDirectory::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return UnavailableError("cannot open tenant directory '" + path + "': " + message);
  }
  std::unique_ptr<TenantDirectory> dir(new TenantDirectory(db));
  BATON_RETURN_IF_ERROR(dir->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
  BATON_RETURN_IF_ERROR(dir->Exec(kSchema));
  // Version 2: per-tenant settings (grants and limits), JSON.
  bool has_settings = false;
  {
    Stmt st(db, "SELECT 1 FROM pragma_table_info('tenants') WHERE name = 'settings'");
    has_settings = st.Step() == SQLITE_ROW;
  }
  if (!has_settings) {
    BATON_RETURN_IF_ERROR(dir->Exec("ALTER TABLE tenants ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'"));
  }
  return dir;
}

TenantDirectory::TenantDirectory(sqlite3* db) : db_(db) {}
TenantDirectory::~TenantDirectory() { sqlite3_close(db_); }

Status TenantDirectory::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err ? err : "unknown error";
    sqlite3_free(err);
    return InternalError("tenant directory: " + message);
  }
  return Status::Ok();
}

Result<Tenant> TenantDirectory::CreateTenant(const std::string& id, const std::string& display_name) {
  if (!IsValidTenantId(id)) {
    return InvalidArgumentError("tenant id '" + id +
                                "' must be 1-63 characters of a-z, 0-9 and '-', not starting with '-'");
  }
  std::lock_guard lock(mu_);
  Tenant t{id, display_name.empty() ? id : display_name, false, SystemClock()->Now()};
  Stmt st(db_, "INSERT INTO tenants(id, display_name, created_at) VALUES(?1, ?2, ?3)");
  st.Bind(1, t.id).Bind(2, t.display_name).Bind(3, ToUnixMicros(t.created_at));
  int rc = st.Step();
  if (rc == SQLITE_CONSTRAINT) return AlreadyExistsError("tenant '" + id + "' already exists");
  if (rc != SQLITE_DONE) return SqliteError(db_, "create tenant");
  return t;
}

Result<std::vector<Tenant>> TenantDirectory::ListTenants() {
  std::lock_guard lock(mu_);
  Stmt st(db_, "SELECT id, display_name, disabled, created_at FROM tenants ORDER BY id");
  std::vector<Tenant> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    out.push_back(Tenant{st.Text(0), st.Text(1), st.Int(2) != 0, FromUnixMicros(st.Int(3))});
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "list tenants");
  return out;
}

Result<Tenant> TenantDirectory::GetTenant(const std::string& id) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "SELECT id, display_name, disabled, created_at FROM tenants WHERE id = ?1");
  st.Bind(1, id);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return Tenant{st.Text(0), st.Text(1), st.Int(2) != 0, FromUnixMicros(st.Int(3))};
  if (rc == SQLITE_DONE) return NotFoundError("tenant '" + id + "' does not exist");
  return SqliteError(db_, "get tenant");
}

Status TenantDirectory::DisableTenant(const std::string& id) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "UPDATE tenants SET disabled = 1 WHERE id = ?1");
  st.Bind(1, id);
  if (st.Step() != SQLITE_DONE) return SqliteError(db_, "disable tenant");
  if (sqlite3_changes(db_) == 0) return NotFoundError("tenant '" + id + "' does not exist");
  cache_loaded_ = false;
  return Status::Ok();
}

Result<std::pair<ApiKey, std::string>> TenantDirectory::CreateKey(const std::string& tenant_id,
                                                                  const std::string& name) {
  if (!tenant_id.empty()) {
    BATON_ASSIGN_OR_RETURN(Tenant t, GetTenant(tenant_id));
    if (t.disabled) return FailedPreconditionError("tenant '" + tenant_id + "' is disabled");
  }
  BATON_ASSIGN_OR_RETURN(std::string key_id, RandomHex(6));
  BATON_ASSIGN_OR_RETURN(std::string secret, RandomHex(24));
  std::lock_guard lock(mu_);
  ApiKey key{key_id, tenant_id, name, SystemClock()->Now(), false};
  Stmt st(db_,
          "INSERT INTO api_keys(key_id, tenant_id, name, secret_hash, created_at) VALUES(?1, ?2, ?3, ?4, ?5)");
  st.Bind(1, key.key_id).Bind(2, key.tenant_id).Bind(3, key.name).Bind(4, Sha256Hex(secret));
  st.Bind(5, ToUnixMicros(key.created_at));
  if (st.Step() != SQLITE_DONE) return SqliteError(db_, "create key");
  cache_loaded_ = false;
  return std::make_pair(key, "bk_" + key_id + "_" + secret);
}

Result<std::vector<ApiKey>> TenantDirectory::ListKeys(const std::string& tenant_id) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "SELECT key_id, tenant_id, name, created_at, revoked FROM api_keys WHERE tenant_id = ?1 "
          "ORDER BY created_at, key_id");
  st.Bind(1, tenant_id);
  std::vector<ApiKey> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    out.push_back(ApiKey{st.Text(0), st.Text(1), st.Text(2), FromUnixMicros(st.Int(3)), st.Int(4) != 0});
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "list keys");
  return out;
}

Status TenantDirectory::RevokeKey(const std::string& key_id) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "UPDATE api_keys SET revoked = 1 WHERE key_id = ?1");
  st.Bind(1, key_id);
  if (st.Step() != SQLITE_DONE) return SqliteError(db_, "revoke key");
  if (sqlite3_changes(db_) == 0) return NotFoundError("key '" + key_id + "' does not exist");
  cache_loaded_ = false;
  return Status::Ok();
}

Result<bool> TenantDirectory::HasAdminKey() {
  std::lock_guard lock(mu_);
  Stmt st(db_, "SELECT 1 FROM api_keys WHERE tenant_id = '' AND revoked = 0 LIMIT 1");
  int rc = st.Step();
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, "look up admin keys");
}

Result<TenantSettings> TenantDirectory::ReadSettingsLocked(const std::string& tenant_id) {
  Stmt st(db_, "SELECT settings FROM tenants WHERE id = ?1");
  st.Bind(1, tenant_id);
  int rc = st.Step();
  if (rc == SQLITE_DONE) return NotFoundError("tenant '" + tenant_id + "' does not exist");
  if (rc != SQLITE_ROW) return SqliteError(db_, "read tenant settings");
  TenantSettings settings;
  Json stored = FromPayload(st.Text(0));
  // What was stored passed validation when it was written; a patch of it
  // can only fail if the format changed, and then the defaults hold.
  (void)ApplySettingsPatch(stored.is_object() ? stored : Json::object(), &settings);
  return settings;
}

Result<TenantSettings> TenantDirectory::GetSettings(const std::string& tenant_id) {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  auto it = settings_.find(tenant_id);
  if (it != settings_.end() && now - it->second.second < kSettingsCacheTtl) return it->second.first;
  BATON_ASSIGN_OR_RETURN(TenantSettings settings, ReadSettingsLocked(tenant_id));
  if (settings_.size() > 100000) settings_.clear();  // bounded: tenants are far fewer
  settings_[tenant_id] = {settings, now};
  return settings;
}

Result<TenantSettings> TenantDirectory::UpdateSettings(const std::string& tenant_id, const Json& patch) {
  std::lock_guard lock(mu_);
  BATON_ASSIGN_OR_RETURN(TenantSettings settings, ReadSettingsLocked(tenant_id));
  BATON_RETURN_IF_ERROR(ApplySettingsPatch(patch, &settings));
  Stmt st(db_, "UPDATE tenants SET settings = ?2 WHERE id = ?1");
  st.Bind(1, tenant_id).Bind(2, SettingsToJson(settings).dump());
  if (st.Step() != SQLITE_DONE) return SqliteError(db_, "update tenant settings");
  settings_[tenant_id] = {settings, std::chrono::steady_clock::now()};
  return settings;
}

Status TenantDirectory::LoadCacheLocked() {
  valid_keys_.clear();
  Stmt st(db_,
          "SELECT k.key_id, k.tenant_id, k.secret_hash FROM api_keys k LEFT JOIN tenants t "
          "ON t.id = k.tenant_id WHERE k.revoked = 0 AND (k.tenant_id = '' OR t.disabled = 0)");
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    Principal p{st.Text(1).empty(), st.Text(1), st.Text(0)};
    valid_keys_[st.Text(0)] = {st.Text(2), std::move(p)};
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "load keys");
  cache_loaded_ = true;
  return Status::Ok();
}

Result<Principal> TenantDirectory::Authenticate(std::string_view token) {
  const Status denied(StatusCode::kUnauthenticated, "missing, unknown or revoked API key");
  // bk_<12 hex>_<48 hex>
  if (token.size() != 3 + 12 + 1 + 48 || token.substr(0, 3) != "bk_" || token[15] != '_') return denied;
  std::string key_id(token.substr(3, 12));
  std::string hash = Sha256Hex(token.substr(16));
  std::lock_guard lock(mu_);
  if (!cache_loaded_) BATON_RETURN_IF_ERROR(LoadCacheLocked());
  auto it = valid_keys_.find(key_id);
  if (it == valid_keys_.end()) return denied;
  const std::string& expected = it->second.first;
  if (expected.size() != hash.size() || CRYPTO_memcmp(expected.data(), hash.data(), hash.size()) != 0) {
    return denied;
  }
  return it->second.second;
}

}  // namespace baton::tenancy
