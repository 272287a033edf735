#include "store/postgres/postgres_platform_stores.h"

#include <mutex>

#include "store/postgres/pg_connection.h"
#include "util/hex.h"

namespace baton::store {
namespace {

using pg::Params;
using pg::PgConnection;
using pg::PgResult;

constexpr char kSetup[] =
    "SET application_name = 'baton platform'; SET synchronous_commit = on; SET client_min_messages = warning; "
    "SET idle_in_transaction_session_timeout = 10000";

// bytea in text format: "\x" and hex digits, both ways.
std::string ByteaText(std::string_view bytes) { return "\\x" + util::HexEncode(bytes); }
std::string FromBytea(std::string_view text) {
  std::string out;
  if (text.substr(0, 2) == "\\x") util::HexDecode(text.substr(2), &out);
  return out;
}

bool IsUniqueViolation(const PgConnection& c) { return c.last_sqlstate() == "23505"; }

// One connection, reopened when it broke. Calls are serialized.
class Session {
 public:
  explicit Session(std::string url) : url_(std::move(url)) {}

  Status Connect() {
    std::lock_guard lock(mu_);
    return ConnectLocked();
  }

  // Runs `body` with the connection, under the lock.
  template <typename F>
  auto With(F&& body) -> decltype(body(std::declval<PgConnection&>())) {
    std::lock_guard lock(mu_);
    if (c_ == nullptr || c_->broken()) {
      if (Status s = ConnectLocked(); !s.ok()) return s;
    }
    return body(*c_);
  }

 private:
  Status ConnectLocked() {
    BATON_ASSIGN_OR_RETURN(c_, PgConnection::Connect(url_, kSetup));
    return Status::Ok();
  }
  std::string url_;
  std::mutex mu_;
  std::unique_ptr<PgConnection> c_;
};

// Runs statements in one transaction; rolls back when one fails.
Status InTransaction(PgConnection& c, const std::function<Status()>& body) {
  BATON_RETURN_IF_ERROR(c.Exec("BEGIN", "begin").status());
  Status s = body();
  if (!s.ok()) {
    if (!c.broken()) (void)c.Exec("ROLLBACK", "rollback");
    return s;
  }
  return c.Exec("COMMIT", "commit").status();
}

// ---- Tenants and keys ----

class PostgresTenantStore final : public TenantStore {
 public:
  explicit PostgresTenantStore(std::string url) : s_(std::move(url)) {}
  Status Connect() { return s_.Connect(); }

  Status InsertTenant(const TenantRecord& t) override {
    return s_.With([&](PgConnection& c) -> Status {
      Params p;
      p.Text(t.id).Text(t.display_name).Bool(t.disabled).Int(ToUnixMicros(t.created_at)).Text(t.settings_json);
      auto r = c.ExecPrepared({"tenant_insert",
                               "INSERT INTO tenants(id, display_name, disabled, created_at, settings) "
                               "VALUES($1, $2, $3, $4, $5)"},
                              p, "insert tenant");
      if (!r.ok() && IsUniqueViolation(c)) return AlreadyExistsError("tenant '" + t.id + "' already exists");
      return r.status();
    });
  }
  Result<std::vector<TenantRecord>> ListTenants() override {
    return s_.With([&](PgConnection& c) -> Result<std::vector<TenantRecord>> {
      BATON_ASSIGN_OR_RETURN(PgResult r, c.ExecPrepared({"tenant_list",
                                                         "SELECT id, display_name, disabled, created_at, settings "
                                                         "FROM tenants ORDER BY id"},
                                                        Params(), "list tenants"));
      std::vector<TenantRecord> out;
      for (int i = 0; i < r.rows(); ++i) out.push_back(Tenant(r, i));
      return out;
    });
  }
  Result<TenantRecord> GetTenant(const std::string& id) override {
    return s_.With([&](PgConnection& c) -> Result<TenantRecord> {
      Params p;
      p.Text(id);
      BATON_ASSIGN_OR_RETURN(PgResult r, c.ExecPrepared({"tenant_get",
                                                         "SELECT id, display_name, disabled, created_at, settings "
                                                         "FROM tenants WHERE id = $1"},
                                                        p, "get tenant"));
      if (r.rows() == 0) return NotFoundError("tenant '" + id + "' does not exist");
      return Tenant(r, 0);
    });
  }
  Status SetDisabled(const std::string& id, bool disabled) override {
    Params p;
    p.Text(id).Bool(disabled);
    return Update({"tenant_disable", "UPDATE tenants SET disabled = $2 WHERE id = $1 RETURNING 1"}, p,
                  "tenant '" + id + "' does not exist");
  }
  Status SetSettings(const std::string& id, const std::string& settings_json) override {
    Params p;
    p.Text(id).Text(settings_json);
    return Update({"tenant_settings", "UPDATE tenants SET settings = $2 WHERE id = $1 RETURNING 1"}, p,
                  "tenant '" + id + "' does not exist");
  }
  Status InsertKey(const KeyRecord& k) override {
    return s_.With([&](PgConnection& c) -> Status {
      Params p;
      p.Text(k.key_id).Text(k.tenant_id).Text(k.name).Text(k.secret_hash).Int(ToUnixMicros(k.created_at)).Bool(k.revoked);
      p.Int(k.expires_at ? ToUnixMicros(*k.expires_at) : 0);
      auto r = c.ExecPrepared({"key_insert",
                               "INSERT INTO api_keys(key_id, tenant_id, name, secret_hash, created_at, revoked, "
                               "expires_at) VALUES($1, $2, $3, $4, $5, $6, $7)"},
                              p, "insert key");
      if (!r.ok() && IsUniqueViolation(c)) return AlreadyExistsError("key '" + k.key_id + "' already exists");
      return r.status();
    });
  }
  Result<std::vector<KeyRecord>> ListKeys(const std::string& tenant_id) override {
    return s_.With([&](PgConnection& c) -> Result<std::vector<KeyRecord>> {
      Params p;
      p.Text(tenant_id);
      BATON_ASSIGN_OR_RETURN(PgResult r, c.ExecPrepared({"key_list",
                                                         "SELECT key_id, tenant_id, name, secret_hash, created_at, "
                                                         "revoked, expires_at FROM api_keys WHERE tenant_id = $1 "
                                                         "ORDER BY created_at, key_id"},
                                                        p, "list keys"));
      std::vector<KeyRecord> out;
      for (int i = 0; i < r.rows(); ++i) out.push_back(Key(r, i));
      return out;
    });
  }
  Status RevokeKey(const std::string& key_id) override {
    Params p;
    p.Text(key_id);
    return Update({"key_revoke", "UPDATE api_keys SET revoked = true WHERE key_id = $1 RETURNING 1"}, p,
                  "key '" + key_id + "' does not exist");
  }
  Result<KeyRecord> GetValidKey(const std::string& key_id) override {
    return s_.With([&](PgConnection& c) -> Result<KeyRecord> {
      Params p;
      p.Text(key_id);
      BATON_ASSIGN_OR_RETURN(PgResult r,
                             c.ExecPrepared({"key_valid",
                                             "SELECT k.key_id, k.tenant_id, k.name, k.secret_hash, k.created_at, "
                                             "k.revoked, k.expires_at "
                                             "FROM api_keys k LEFT JOIN tenants t ON t.id = k.tenant_id "
                                             "WHERE k.key_id = $1 AND NOT k.revoked "
                                             "AND (k.tenant_id = '' OR t.disabled = false)"},
                                            p, "get key"));
      if (r.rows() == 0) return NotFoundError("no valid key '" + key_id + "'");
      return Key(r, 0);
    });
  }
  Result<bool> HasAdminKey() override {
    return s_.With([&](PgConnection& c) -> Result<bool> {
      BATON_ASSIGN_OR_RETURN(PgResult r, c.ExecPrepared({"key_admin",
                                                         "SELECT 1 FROM api_keys WHERE tenant_id = '' AND NOT revoked "
                                                         "LIMIT 1"},
                                                        Params(), "look up admin keys"));
      return r.rows() > 0;
    });
  }

 private:
  static TenantRecord Tenant(const PgResult& r, int i) {
    return TenantRecord{r.Text(i, 0), r.Text(i, 1), r.Bool(i, 2), FromUnixMicros(r.Int(i, 3)), r.Text(i, 4)};
  }
  static KeyRecord Key(const PgResult& r, int i) {
    KeyRecord k{r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), r.Text(i, 3), FromUnixMicros(r.Int(i, 4)), r.Bool(i, 5)};
    if (r.Int(i, 6) != 0) k.expires_at = FromUnixMicros(r.Int(i, 6));
    return k;
  }
  // `st` ends with RETURNING 1: no row means nothing matched.
  Status Update(const pg::Statement& st, const Params& p, const std::string& missing) {
    return s_.With([&](PgConnection& c) -> Status {
      BATON_ASSIGN_OR_RETURN(PgResult r, c.ExecPrepared(st, p, st.name));
      return r.rows() > 0 ? Status::Ok() : NotFoundError(missing);
    });
  }
  Session s_;
};

// ---- Job logs ----

class PostgresJobLogStore final : public JobLogStore {
 public:
  explicit PostgresJobLogStore(std::string url) : s_(std::move(url)) {}
  Status Connect() { return s_.Connect(); }

  Status Replace(const std::string& job, int attempt, const std::vector<LogRecord>& lines) override {
    return s_.With([&](PgConnection& c) -> Status {
      return InTransaction(c, [&]() -> Status {
        Params del;
        del.Text(job).Int(attempt);
        BATON_RETURN_IF_ERROR(
            c.ExecPrepared({"logs_delete_attempt", "DELETE FROM job_logs WHERE job = $1 AND attempt = $2"}, del,
                           "delete job logs")
                .status());
        // In batches of rows through unnest: one round trip per 1,000 lines.
        constexpr size_t kBatch = 1000;
        for (size_t from = 0; from < lines.size(); from += kBatch) {
          std::vector<int64_t> seq, time_ms;
          std::vector<std::string> streams, texts;
          for (size_t i = from; i < std::min(lines.size(), from + kBatch); ++i) {
            seq.push_back(static_cast<int64_t>(i));
            streams.push_back(lines[i].is_stderr ? "t" : "f");
            time_ms.push_back(
                std::chrono::duration_cast<std::chrono::milliseconds>(lines[i].time.time_since_epoch()).count());
            texts.push_back(ByteaText(lines[i].text));
          }
          Params p;
          p.Text(job).Int(attempt).IntArray(seq).TextArray(streams).IntArray(time_ms).TextArray(texts);
          BATON_RETURN_IF_ERROR(
              c.ExecPrepared({"logs_insert",
                              "INSERT INTO job_logs(job, attempt, seq, stderr, time_ms, line) "
                              "SELECT $1, $2, s, e, t, l FROM unnest($3::bigint[], $4::boolean[], $5::bigint[], "
                              "$6::bytea[]) AS u(s, e, t, l)"},
                             p, "insert job logs")
                  .status());
        }
        return Status::Ok();
      });
    });
  }
  Result<std::vector<LogRecord>> Read(const std::string& job, int attempt, size_t after, size_t limit) override {
    return s_.With([&](PgConnection& c) -> Result<std::vector<LogRecord>> {
      Params any;
      any.Text(job).Int(attempt);
      BATON_ASSIGN_OR_RETURN(PgResult found, c.ExecPrepared({"logs_any",
                                                             "SELECT 1 FROM job_logs WHERE job = $1 AND attempt = $2 "
                                                             "LIMIT 1"},
                                                            any, "find job logs"));
      if (found.rows() == 0) return NotFoundError("no logs were kept for attempt " + std::to_string(attempt));
      Params p;
      p.Text(job).Int(attempt).Int(static_cast<int64_t>(after)).Int(static_cast<int64_t>(limit));
      BATON_ASSIGN_OR_RETURN(PgResult r, c.ExecPrepared({"logs_read",
                                                         "SELECT stderr, time_ms, line FROM job_logs WHERE job = $1 "
                                                         "AND attempt = $2 AND seq >= $3 ORDER BY seq LIMIT $4"},
                                                        p, "read job logs"));
      std::vector<LogRecord> out;
      for (int i = 0; i < r.rows(); ++i) {
        out.push_back(LogRecord{r.Bool(i, 0), TimePoint(std::chrono::milliseconds(r.Int(i, 1))), FromBytea(r.View(i, 2))});
      }
      return out;
    });
  }
  Status Delete(const std::string& job) override {
    return s_.With([&](PgConnection& c) -> Status {
      Params p;
      p.Text(job);
      return c.ExecPrepared({"logs_delete", "DELETE FROM job_logs WHERE job = $1"}, p, "delete job logs").status();
    });
  }

 private:
  Session s_;
};

// ---- Secrets ----

class PostgresSecretStore final : public SecretStore {
 public:
  explicit PostgresSecretStore(std::string url) : s_(std::move(url)) {}
  Status Connect() { return s_.Connect(); }

  Status Replace(const std::string& job_id, const std::vector<SealedSecret>& secrets) override {
    return s_.With([&](PgConnection& c) -> Status {
      return InTransaction(c, [&]() -> Status {
        Params del;
        del.Text(job_id);
        BATON_RETURN_IF_ERROR(
            c.ExecPrepared({"secrets_delete", "DELETE FROM job_secrets WHERE job_id = $1"}, del, "delete secrets")
                .status());
        for (const SealedSecret& s : secrets) {
          Params p;
          p.Text(job_id).Text(s.container).Text(s.kind).Text(s.name).Text(ByteaText(s.sealed));
          BATON_RETURN_IF_ERROR(c.ExecPrepared({"secrets_insert",
                                                "INSERT INTO job_secrets(job_id, container, kind, name, sealed) "
                                                "VALUES($1, $2, $3, $4, $5::bytea)"},
                                               p, "insert secret")
                                    .status());
        }
        return Status::Ok();
      });
    });
  }
  Result<std::vector<SealedSecret>> Get(const std::string& job_id) override {
    return s_.With([&](PgConnection& c) -> Result<std::vector<SealedSecret>> {
      Params p;
      p.Text(job_id);
      BATON_ASSIGN_OR_RETURN(PgResult r, c.ExecPrepared({"secrets_get",
                                                         "SELECT container, kind, name, sealed FROM job_secrets "
                                                         "WHERE job_id = $1 ORDER BY container, kind, name"},
                                                        p, "read secrets"));
      std::vector<SealedSecret> out;
      for (int i = 0; i < r.rows(); ++i) {
        out.push_back(SealedSecret{r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), FromBytea(r.View(i, 3))});
      }
      return out;
    });
  }
  Status Delete(const std::string& job_id) override {
    return s_.With([&](PgConnection& c) -> Status {
      Params p;
      p.Text(job_id);
      return c.ExecPrepared({"secrets_delete", "DELETE FROM job_secrets WHERE job_id = $1"}, p, "delete secrets")
          .status();
    });
  }
  Result<std::vector<std::string>> Jobs(const std::string& after, int limit) override {
    return s_.With([&](PgConnection& c) -> Result<std::vector<std::string>> {
      Params p;
      p.Text(after).Int(limit);
      BATON_ASSIGN_OR_RETURN(PgResult r, c.ExecPrepared({"secrets_jobs",
                                                         "SELECT DISTINCT job_id FROM job_secrets WHERE job_id > $1 "
                                                         "ORDER BY job_id LIMIT $2"},
                                                        p, "list jobs with secrets"));
      std::vector<std::string> out;
      for (int i = 0; i < r.rows(); ++i) out.push_back(r.Text(i, 0));
      return out;
    });
  }

 private:
  Session s_;
};

// ---- Keys ----

class PostgresKeyStore final : public KeyStore {
 public:
  explicit PostgresKeyStore(std::string url) : s_(std::move(url)) {}
  Status Connect() { return s_.Connect(); }

  Result<std::string> GetOrCreate(const std::string& name, const std::function<Result<std::string>()>& make) override {
    BATON_RETURN_IF_ERROR(CheckName(name));
    BATON_ASSIGN_OR_RETURN(std::optional<std::string> existing, Read(name));
    if (existing) return *existing;
    BATON_ASSIGN_OR_RETURN(std::string key, make());
    // The first insert wins; everyone reads what it stored.
    BATON_RETURN_IF_ERROR(s_.With([&](PgConnection& c) -> Status {
      Params p;
      p.Text(name).Text(ByteaText(key));
      return c.ExecPrepared({"keys_insert",
                             "INSERT INTO platform_keys(name, key) VALUES($1, $2::bytea) ON CONFLICT (name) DO NOTHING"},
                            p, "store a key")
          .status();
    }));
    BATON_ASSIGN_OR_RETURN(existing, Read(name));
    if (!existing) return InternalError("the key '" + name + "' vanished after it was stored");
    return *existing;
  }
  Status Put(const std::string& name, const std::string& key) override {
    BATON_RETURN_IF_ERROR(CheckName(name));
    return s_.With([&](PgConnection& c) -> Status {
      Params p;
      p.Text(name).Text(ByteaText(key));
      return c.ExecPrepared({"keys_put",
                             "INSERT INTO platform_keys(name, key) VALUES($1, $2::bytea) "
                             "ON CONFLICT (name) DO UPDATE SET key = EXCLUDED.key"},
                            p, "replace a key")
          .status();
    });
  }
  std::string Describe(const std::string& name) const override {
    return "the row '" + name + "' of the table platform_keys";
  }

 private:
  static Status CheckName(const std::string& name) {
    bool ok = !name.empty() && name.size() <= 64;
    for (char c : name) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
    return ok ? Status::Ok() : InvalidArgumentError("a key name is 1-64 characters of a-z, 0-9 and '-'");
  }
  Result<std::optional<std::string>> Read(const std::string& name) {
    return s_.With([&](PgConnection& c) -> Result<std::optional<std::string>> {
      Params p;
      p.Text(name);
      BATON_ASSIGN_OR_RETURN(PgResult r,
                             c.ExecPrepared({"keys_get", "SELECT key FROM platform_keys WHERE name = $1"}, p, "read a key"));
      if (r.rows() == 0) return std::optional<std::string>();
      return std::optional<std::string>(FromBytea(r.View(0, 0)));
    });
  }
  Session s_;
};

// ---- Leases ----

class PostgresLeaseStore final : public LeaseStore {
 public:
  explicit PostgresLeaseStore(std::string url) : s_(std::move(url)) {}
  Status Connect() { return s_.Connect(); }

  Result<bool> TryAcquire(const std::string& name, const std::string& holder, std::chrono::milliseconds ttl) override {
    return s_.With([&](PgConnection& c) -> Result<bool> {
      Params p;
      p.Text(name).Text(holder).Int(ttl.count());
      // Taken when free, lapsed or already the holder's; the database's
      // clock decides, so nodes' clocks need not agree.
      BATON_ASSIGN_OR_RETURN(
          PgResult r,
          c.ExecPrepared({"lease_acquire",
                          "INSERT INTO leases(name, holder, expires_at) "
                          "VALUES($1, $2, clock_timestamp() + $3 * interval '1 millisecond') "
                          "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at "
                          "WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < clock_timestamp() "
                          "RETURNING 1"},
                         p, "acquire a lease"));
      return r.rows() > 0;
    });
  }
  Status Release(const std::string& name, const std::string& holder) override {
    return s_.With([&](PgConnection& c) -> Status {
      Params p;
      p.Text(name).Text(holder);
      return c.ExecPrepared({"lease_release", "DELETE FROM leases WHERE name = $1 AND holder = $2"}, p, "release a lease")
          .status();
    });
  }

 private:
  Session s_;
};

template <typename T, typename Interface>
Result<std::unique_ptr<Interface>> OpenConnected(const std::string& url) {
  auto store = std::make_unique<T>(url);
  BATON_RETURN_IF_ERROR(store->Connect());
  return std::unique_ptr<Interface>(std::move(store));
}

}  // namespace

Result<std::unique_ptr<TenantStore>> OpenPostgresTenantStore(const std::string& url) {
  return OpenConnected<PostgresTenantStore, TenantStore>(url);
}
Result<std::unique_ptr<JobLogStore>> OpenPostgresJobLogStore(const std::string& url) {
  return OpenConnected<PostgresJobLogStore, JobLogStore>(url);
}
Result<std::unique_ptr<SecretStore>> OpenPostgresSecretStore(const std::string& url) {
  return OpenConnected<PostgresSecretStore, SecretStore>(url);
}
Result<std::unique_ptr<KeyStore>> OpenPostgresKeyStore(const std::string& url) {
  return OpenConnected<PostgresKeyStore, KeyStore>(url);
}
Result<std::unique_ptr<LeaseStore>> OpenPostgresLeaseStore(const std::string& url) {
  return OpenConnected<PostgresLeaseStore, LeaseStore>(url);
}

}  // namespace baton::store
