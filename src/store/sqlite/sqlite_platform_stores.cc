#include "store/sqlite/sqlite_platform_stores.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "store/sqlite/sqlite_connection.h"

namespace baton::store {
namespace {

using sqlite::Connection;

// One connection, serialized: these stores see few writes.
class SqliteFile {
 public:
  static Result<std::unique_ptr<SqliteFile>> Open(const std::string& path, const char* schema, bool secure_delete) {
    BATON_ASSIGN_OR_RETURN(std::unique_ptr<Connection> c, Connection::Open(path, /*create=*/true));
    ::chmod(path.c_str(), 0600);
    BATON_RETURN_IF_ERROR(c->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", "configure " + path));
    if (secure_delete) BATON_RETURN_IF_ERROR(c->Exec("PRAGMA secure_delete=ON;", "configure " + path));
    BATON_RETURN_IF_ERROR(c->Exec(schema, "schema of " + path));
    return std::unique_ptr<SqliteFile>(new SqliteFile(std::move(c)));
  }
  std::mutex mu;
  Connection& db() { return *c_; }

  // Runs `body` in a write transaction; rolls back when it fails.
  template <typename F>
  Status InTransaction(std::string_view what, F&& body) {
    BATON_RETURN_IF_ERROR(c_->Exec("BEGIN IMMEDIATE", what));
    Status s = body();
    if (!s.ok()) {
      (void)c_->Exec("ROLLBACK", what);
      return s;
    }
    return c_->Exec("COMMIT", what);
  }

 private:
  explicit SqliteFile(std::unique_ptr<Connection> c) : c_(std::move(c)) {}
  std::unique_ptr<Connection> c_;
};

// A UNIQUE or PRIMARY KEY violation (SqliteError keeps SQLite's message).
bool IsConstraint(const Status& s) { return s.message().find("constraint failed") != std::string::npos; }

// ---- Tenants and keys ----

constexpr char kTenantSchema[] = R"SQL(
CREATE TABLE IF NOT EXISTS tenants (
  id           TEXT PRIMARY KEY,
  display_name TEXT NOT NULL,
  disabled     INTEGER NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL,            -- unix micros
  settings     TEXT NOT NULL DEFAULT '{}'   -- grants and limits (tenant_settings.h)
);
CREATE TABLE IF NOT EXISTS api_keys (
  key_id      TEXT PRIMARY KEY,
  tenant_id   TEXT NOT NULL,                -- '' = admin key
  name        TEXT NOT NULL,
  secret_hash TEXT NOT NULL,                -- hex SHA-256 of the secret part
  created_at  INTEGER NOT NULL,
  revoked     INTEGER NOT NULL DEFAULT 0,
  expires_at  INTEGER NOT NULL DEFAULT 0    -- unix micros; 0 = never
);
)SQL";

class SqliteTenantStore final : public TenantStore {
 public:
  explicit SqliteTenantStore(std::unique_ptr<SqliteFile> f) : f_(std::move(f)) {}

  Status InsertTenant(const TenantRecord& t) override {
    std::lock_guard lock(f_->mu);
    BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare(
                                        "INSERT INTO tenants(id, display_name, disabled, created_at, settings) "
                                        "VALUES(?1, ?2, ?3, ?4, ?5)"));
    st.Bind(1, t.id).Bind(2, t.display_name).Bind(3, int64_t{t.disabled}).Bind(4, ToUnixMicros(t.created_at));
    st.Bind(5, t.settings_json);
    Status s = st.Run("insert tenant");
    if (!s.ok() && IsConstraint(s)) return AlreadyExistsError("tenant '" + t.id + "' already exists");
    return s;
  }
  Result<std::vector<TenantRecord>> ListTenants() override {
    std::lock_guard lock(f_->mu);
    BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare("SELECT id, display_name, disabled, created_at, settings "
                                                     "FROM tenants ORDER BY id"));
    std::vector<TenantRecord> out;
    for (;;) {
      BATON_ASSIGN_OR_RETURN(bool row, st.Step("list tenants"));
      if (!row) break;
      out.push_back(Tenant(st));
    }
    return out;
  }
  Result<TenantRecord> GetTenant(const std::string& id) override {
    std::lock_guard lock(f_->mu);
    BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare("SELECT id, display_name, disabled, created_at, settings "
                                                     "FROM tenants WHERE id = ?1"));
    st.Bind(1, id);
    BATON_ASSIGN_OR_RETURN(bool row, st.Step("get tenant"));
    if (!row) return NotFoundError("tenant '" + id + "' does not exist");
    return Tenant(st);
  }
  Status SetDisabled(const std::string& id, bool disabled) override {
    std::lock_guard lock(f_->mu);
    BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare("UPDATE tenants SET disabled = ?2 WHERE id = ?1"));
    st.Bind(1, id).Bind(2, int64_t{disabled});
    BATON_RETURN_IF_ERROR(st.Run("disable tenant"));
    if (sqlite3_changes(f_->db().db()) == 0) return NotFoundError("tenant '" + id + "' does not exist");
    return Status::Ok();
  }
  Status SetSettings(const std::string& id, const std::string& settings_json) override {
    return Update("UPDATE tenants SET settings = ?2 WHERE id = ?1", id, settings_json,
                  "tenant '" + id + "' does not exist");
  }
  Status InsertKey(const KeyRecord& k) override {
    std::lock_guard lock(f_->mu);
    BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare("INSERT INTO api_keys(key_id, tenant_id, name, secret_hash, "
                                                     "created_at, revoked, expires_at) "
                                                     "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    st.Bind(1, k.key_id).Bind(2, k.tenant_id).Bind(3, k.name).Bind(4, k.secret_hash);
    st.Bind(5, ToUnixMicros(k.created_at)).Bind(6, int64_t{k.revoked});
    st.Bind(7, k.expires_at ? ToUnixMicros(*k.expires_at) : int64_t{0});
    Status s = st.Run("insert key");
    if (!s.ok() && IsConstraint(s)) return AlreadyExistsError("key '" + k.key_id + "' already exists");
    return s;
  }
  Result<std::vector<KeyRecord>> ListKeys(const std::string& tenant_id) override {
    std::lock_guard lock(f_->mu);
    BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare("SELECT key_id, tenant_id, name, secret_hash, created_at, "
                                                     "revoked, expires_at FROM api_keys WHERE tenant_id = ?1 "
                                                     "ORDER BY created_at, key_id"));
    st.Bind(1, tenant_id);
    std::vector<KeyRecord> out;
    for (;;) {
      BATON_ASSIGN_OR_RETURN(bool row, st.Step("list keys"));
      if (!row) break;
      out.push_back(Key(st));
    }
    return out;
  }
  Status RevokeKey(const std::string& key_id) override {
    std::lock_guard lock(f_->mu);
    BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare("UPDATE api_keys SET revoked = 1 WHERE key_id = ?1"));
    st.Bind(1, key_id);
    BATON_RETURN_IF_ERROR(st.Run("revoke key"));
    if (sqlite3_changes(f_->db().db()) == 0) return NotFoundError("key '" + key_id + "' does not exist");
    return Status::Ok();
  }
  Result<KeyRecord> GetValidKey(const std::string& key_id) override {
    std::lock_guard lock(f_->mu);
    BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare(
                                        "SELECT k.key_id, k.tenant_id, k.name, k.secret_hash, k.created_at, k.revoked, "
                                        "k.expires_at FROM api_keys k LEFT JOIN tenants t ON t.id = k.tenant_id "
                                        "WHERE k.key_id = ?1 AND k.revoked = 0 AND (k.tenant_id = '' OR t.disabled = 0)"));
    st.Bind(1, key_id);
    BATON_ASSIGN_OR_RETURN(bool row, st.Step("get key"));
    if (!row) return NotFoundError("no valid key '" + key_id + "'");
    return Key(st);
  }
  Result<bool> HasAdminKey() override {
    std::lock_guard lock(f_->mu);
    BATON_ASSIGN_OR_RETURN(auto st,
                           f_->db().Prepare("SELECT 1 FROM api_keys WHERE tenant_id = '' AND revoked = 0 LIMIT 1"));
    return st.Step("look up admin keys");
  }

 private:
  static TenantRecord Tenant(const sqlite::Statement& st) {
    return TenantRecord{st.Text(0), st.Text(1), st.Int(2) != 0, FromUnixMicros(st.Int(3)), st.Text(4)};
  }
  static KeyRecord Key(const sqlite::Statement& st) {
    KeyRecord k{st.Text(0), st.Text(1), st.Text(2), st.Text(3), FromUnixMicros(st.Int(4)), st.Int(5) != 0};
    if (st.Int(6) != 0) k.expires_at = FromUnixMicros(st.Int(6));
    return k;
  }
  Status Update(const char* sql, const std::string& id, const std::string& value, const std::string& missing) {
    std::lock_guard lock(f_->mu);
    BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare(sql));
    st.Bind(1, id).Bind(2, value);
    BATON_RETURN_IF_ERROR(st.Run("update"));
    if (sqlite3_changes(f_->db().db()) == 0) return NotFoundError(missing);
    return Status::Ok();
  }
  std::unique_ptr<SqliteFile> f_;
};

// ---- Job logs ----

constexpr char kJobLogSchema[] = R"SQL(
CREATE TABLE IF NOT EXISTS job_logs (
  job     TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  seq     INTEGER NOT NULL,
  stream  INTEGER NOT NULL,   -- 1 stdout, 2 stderr
  time_ms INTEGER NOT NULL,   -- unix milliseconds
  text    TEXT NOT NULL,
  PRIMARY KEY(job, attempt, seq)
);
)SQL";

class SqliteJobLogStore final : public JobLogStore {
 public:
  explicit SqliteJobLogStore(std::unique_ptr<SqliteFile> f) : f_(std::move(f)) {}

  Status Replace(const std::string& job, int attempt, const std::vector<LogRecord>& lines) override {
    std::lock_guard lock(f_->mu);
    return f_->InTransaction("save job logs", [&]() -> Status {
      BATON_ASSIGN_OR_RETURN(auto del, f_->db().Prepare("DELETE FROM job_logs WHERE job = ?1 AND attempt = ?2"));
      del.Bind(1, job).Bind(2, int64_t{attempt});
      BATON_RETURN_IF_ERROR(del.Run("delete job logs"));
      for (size_t i = 0; i < lines.size(); ++i) {
        BATON_ASSIGN_OR_RETURN(auto ins, f_->db().Prepare("INSERT INTO job_logs(job, attempt, seq, stream, time_ms, "
                                                          "text) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"));
        ins.Bind(1, job).Bind(2, int64_t{attempt}).Bind(3, static_cast<int64_t>(i));
        ins.Bind(4, int64_t{lines[i].is_stderr ? 2 : 1});
        ins.Bind(5, std::chrono::duration_cast<std::chrono::milliseconds>(lines[i].time.time_since_epoch()).count());
        ins.Bind(6, lines[i].text);
        BATON_RETURN_IF_ERROR(ins.Run("insert job log line"));
      }
      return Status::Ok();
    });
  }
  Result<std::vector<LogRecord>> Read(const std::string& job, int attempt, size_t after, size_t limit) override {
    std::lock_guard lock(f_->mu);
    {
      BATON_ASSIGN_OR_RETURN(auto any, f_->db().Prepare("SELECT 1 FROM job_logs WHERE job = ?1 AND attempt = ?2 "
                                                        "LIMIT 1"));
      any.Bind(1, job).Bind(2, int64_t{attempt});
      BATON_ASSIGN_OR_RETURN(bool row, any.Step("find job logs"));
      if (!row) return NotFoundError("no logs were kept for attempt " + std::to_string(attempt));
    }
    BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare("SELECT stream, time_ms, text FROM job_logs WHERE job = ?1 "
                                                     "AND attempt = ?2 AND seq >= ?3 ORDER BY seq LIMIT ?4"));
    st.Bind(1, job).Bind(2, int64_t{attempt}).Bind(3, static_cast<int64_t>(after)).Bind(4, static_cast<int64_t>(limit));
    std::vector<LogRecord> out;
    for (;;) {
      BATON_ASSIGN_OR_RETURN(bool row, st.Step("read job logs"));
      if (!row) break;
      out.push_back(LogRecord{st.Int(0) == 2, TimePoint(std::chrono::milliseconds(st.Int(1))), st.Text(2)});
    }
    return out;
  }
  Status Delete(const std::string& job) override {
    std::lock_guard lock(f_->mu);
    BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare("DELETE FROM job_logs WHERE job = ?1"));
    st.Bind(1, job);
    return st.Run("delete job logs");
  }

 private:
  std::unique_ptr<SqliteFile> f_;
};

// ---- Secrets ----

constexpr char kSecretSchema[] = R"SQL(
CREATE TABLE IF NOT EXISTS job_secrets_v2 (
  job_id    TEXT NOT NULL,
  container TEXT NOT NULL,
  kind      TEXT NOT NULL,     -- env | file
  name      TEXT NOT NULL,
  sealed    BLOB NOT NULL,     -- util/secret_box.h
  PRIMARY KEY(job_id, container, kind, name)
);
)SQL";

class SqliteSecretStore final : public SecretStore {
 public:
  explicit SqliteSecretStore(std::unique_ptr<SqliteFile> f) : f_(std::move(f)) {}

  Status Replace(const std::string& job_id, const std::vector<SealedSecret>& secrets) override {
    std::lock_guard lock(f_->mu);
    return f_->InTransaction("store secrets", [&]() -> Status {
      BATON_RETURN_IF_ERROR(DeleteLocked(job_id));
      for (const SealedSecret& s : secrets) {
        BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare("INSERT INTO job_secrets_v2(job_id, container, kind, name, "
                                                         "sealed) VALUES(?1, ?2, ?3, ?4, ?5)"));
        st.Bind(1, job_id).Bind(2, s.container).Bind(3, s.kind).Bind(4, s.name).BindBlob(5, s.sealed);
        BATON_RETURN_IF_ERROR(st.Run("insert secret"));
      }
      return Status::Ok();
    });
  }
  Result<std::vector<SealedSecret>> Get(const std::string& job_id) override {
    std::lock_guard lock(f_->mu);
    BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare("SELECT container, kind, name, sealed FROM job_secrets_v2 "
                                                     "WHERE job_id = ?1 ORDER BY container, kind, name"));
    st.Bind(1, job_id);
    std::vector<SealedSecret> out;
    for (;;) {
      BATON_ASSIGN_OR_RETURN(bool row, st.Step("read secrets"));
      if (!row) break;
      out.push_back(SealedSecret{st.Text(0), st.Text(1), st.Text(2), st.Blob(3)});
    }
    return out;
  }
  Status Delete(const std::string& job_id) override {
    std::lock_guard lock(f_->mu);
    BATON_RETURN_IF_ERROR(DeleteLocked(job_id));
    // secure_delete zeroes the freed space in the new page images; the
    // checkpoint moves them into the file and empties the WAL, so the old
    // images are gone from disk too.
    return f_->db().Exec("PRAGMA wal_checkpoint(TRUNCATE)", "checkpoint secrets");
  }
  Result<std::vector<std::string>> Jobs(const std::string& after, int limit) override {
    std::lock_guard lock(f_->mu);
    BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare("SELECT DISTINCT job_id FROM job_secrets_v2 WHERE job_id > ?1 "
                                                     "ORDER BY job_id LIMIT ?2"));
    st.Bind(1, after).Bind(2, int64_t{limit});
    std::vector<std::string> out;
    for (;;) {
      BATON_ASSIGN_OR_RETURN(bool row, st.Step("list jobs with secrets"));
      if (!row) break;
      out.push_back(st.Text(0));
    }
    return out;
  }
  Result<std::vector<LegacySecret>> ReadLegacyPlaintext() override {
    std::lock_guard lock(f_->mu);
    std::vector<LegacySecret> out;
    {
      BATON_ASSIGN_OR_RETURN(auto exists, f_->db().Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                                           "name = 'job_secrets'"));
      BATON_ASSIGN_OR_RETURN(bool row, exists.Step("look for old secrets"));
      if (!row) return out;
    }
    {
      BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare("SELECT job_id, container, name, value FROM job_secrets"));
      for (;;) {
        BATON_ASSIGN_OR_RETURN(bool row, st.Step("read old secrets"));
        if (!row) break;
        out.push_back(LegacySecret{st.Text(0), st.Text(1), st.Text(2), st.Text(3)});
      }
    }
    return out;
  }
  Status DropLegacyPlaintext() override {
    std::lock_guard lock(f_->mu);
    BATON_RETURN_IF_ERROR(f_->db().Exec("DROP TABLE IF EXISTS job_secrets", "drop old secrets"));
    return f_->db().Exec("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;", "scrub old secrets");
  }

 private:
  Status DeleteLocked(const std::string& job_id) {
    BATON_ASSIGN_OR_RETURN(auto st, f_->db().Prepare("DELETE FROM job_secrets_v2 WHERE job_id = ?1"));
    st.Bind(1, job_id);
    return st.Run("delete secrets");
  }
  std::unique_ptr<SqliteFile> f_;
};

// ---- Keys ----

class FileKeyStore final : public KeyStore {
 public:
  explicit FileKeyStore(std::string dir) : dir_(std::move(dir)) {}

  Result<std::string> GetOrCreate(const std::string& name, const std::function<Result<std::string>()>& make) override {
    BATON_RETURN_IF_ERROR(CheckName(name));
    std::lock_guard lock(mu_);
    const std::string path = Path(name);
    if (auto existing = ReadKey(path); existing.ok() || existing.status().code() != StatusCode::kNotFound) {
      return existing;
    }
    BATON_ASSIGN_OR_RETURN(std::string key, make());
    // O_EXCL: another process that made one first wins; we read it back.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) return ReadKey(path);
    if (fd < 0) return UnavailableError("cannot create the key file '" + path + "': " + std::strerror(errno));
    bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
    ok = ::close(fd) == 0 && ok;
    if (!ok) return UnavailableError("cannot write the key file '" + path + "'");
    return key;
  }
  Status Put(const std::string& name, const std::string& key) override {
    BATON_RETURN_IF_ERROR(CheckName(name));
    std::lock_guard lock(mu_);
    const std::string path = Path(name), tmp = path + ".tmp";
    ::unlink(tmp.c_str());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return UnavailableError("cannot create '" + tmp + "': " + std::strerror(errno));
    bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
    ok = ::close(fd) == 0 && ok;
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
      ::unlink(tmp.c_str());
      return UnavailableError("cannot write the key file '" + path + "'");
    }
    return Status::Ok();
  }
  std::string Describe(const std::string& name) const override { return Path(name); }

 private:
  static Status CheckName(const std::string& name) {
    bool ok = !name.empty() && name.size() <= 64;
    for (char c : name) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
    return ok ? Status::Ok() : InvalidArgumentError("a key name is 1-64 characters of a-z, 0-9 and '-'");
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name + ".key"; }
  static Result<std::string> ReadKey(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return NotFoundError("no key file '" + path + "'");
    std::stringstream s;
    s << in.rdbuf();
    ::chmod(path.c_str(), 0600);  // an older install, or a careless copy
    return s.str();
  }
  std::string dir_;
  std::mutex mu_;
};

}  // namespace

Result<std::unique_ptr<TenantStore>> OpenSqliteTenantStore(const std::string& path) {
  BATON_ASSIGN_OR_RETURN(auto f, SqliteFile::Open(path, kTenantSchema, false));
  {
    // A tenants table of an earlier version has no settings column.
    BATON_ASSIGN_OR_RETURN(auto st, f->db().Prepare("SELECT 1 FROM pragma_table_info('tenants') WHERE name = 'settings'"));
    BATON_ASSIGN_OR_RETURN(bool has, st.Step("read the tenants table"));
    if (!has) {
      BATON_RETURN_IF_ERROR(
          f->db().Exec("ALTER TABLE tenants ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'", "add tenant settings"));
    }
  }
  {
    // Nor do its keys expire.
    BATON_ASSIGN_OR_RETURN(auto st,
                           f->db().Prepare("SELECT 1 FROM pragma_table_info('api_keys') WHERE name = 'expires_at'"));
    BATON_ASSIGN_OR_RETURN(bool has, st.Step("read the api_keys table"));
    if (!has) {
      BATON_RETURN_IF_ERROR(f->db().Exec("ALTER TABLE api_keys ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0",
                                         "add key expiry"));
    }
  }
  return std::unique_ptr<TenantStore>(new SqliteTenantStore(std::move(f)));
}

Result<std::unique_ptr<JobLogStore>> OpenSqliteJobLogStore(const std::string& path) {
  BATON_ASSIGN_OR_RETURN(auto f, SqliteFile::Open(path, kJobLogSchema, false));
  return std::unique_ptr<JobLogStore>(new SqliteJobLogStore(std::move(f)));
}

Result<std::unique_ptr<SecretStore>> OpenSqliteSecretStore(const std::string& path) {
  BATON_ASSIGN_OR_RETURN(auto f, SqliteFile::Open(path, kSecretSchema, true));
  return std::unique_ptr<SecretStore>(new SqliteSecretStore(std::move(f)));
}

std::unique_ptr<KeyStore> OpenFileKeyStore(const std::string& dir) { return std::make_unique<FileKeyStore>(dir); }

}  // namespace baton::store
