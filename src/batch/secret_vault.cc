#include "batch/secret_vault.h"

#include <sqlite3.h>
#include <sys/stat.h>

namespace baton::batch {
namespace {

constexpr char kEnv[] = "env";
constexpr char kFile[] = "file";

// Binds the sealed value to its slot: moved to another row, it won't open.
std::string Aad(const std::string& job, const std::string& container, const std::string& kind,
                const std::string& name) {
  std::string aad = job;
  for (const std::string* part : {&container, &kind, &name}) {
    aad.push_back('\0');
    aad += *part;
  }
  return aad;
}

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &st_, nullptr); }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt& Text(int i, const std::string& v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Blob(int i, const std::string& v) {
    sqlite3_bind_blob(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Int(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  int Step() { return st_ == nullptr ? SQLITE_ERROR : sqlite3_step(st_); }
  void Reset() { sqlite3_reset(st_); }
  std::string ColumnText(int i) {
    const unsigned char* t = sqlite3_column_text(st_, i);
    return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(st_, i)) : std::string();
  }
  std::string ColumnBlob(int i) {
    const void* b = sqlite3_column_blob(st_, i);
    return b ? std::string(static_cast<const char*>(b), sqlite3_column_bytes(st_, i)) : std::string();
  }

 private:
  sqlite3_stmt* st_ = nullptr;
};

Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "?";
    sqlite3_free(err);
    return InternalError("secret vault: " + m);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<SecretVault>> SecretVault::Open(const std::string& path, const std::string& key_path) {
  BATON_ASSIGN_OR_RETURN(util::SecretBox box, util::SecretBox::OpenOrCreate(key_path));
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return UnavailableError("cannot open the secret vault '" + path + "': " + m);
  }
  ::chmod(path.c_str(), 0600);
  std::unique_ptr<SecretVault> vault(new SecretVault(db, std::move(box)));
  BATON_RETURN_IF_ERROR(Exec(db,
                             "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;"
                             // Version 2: sealed values, env and files.
                             "CREATE TABLE IF NOT EXISTS job_secrets_v2 ("
                             " job_id TEXT NOT NULL, container TEXT NOT NULL, kind TEXT NOT NULL,"
                             " name TEXT NOT NULL, sealed BLOB NOT NULL,"
                             " PRIMARY KEY(job_id, container, kind, name));"));
  BATON_RETURN_IF_ERROR(vault->MigratePlainText());
  return vault;
}

SecretVault::~SecretVault() { sqlite3_close(db_); }

Status SecretVault::MigratePlainText() {
  std::lock_guard lock(mu_);
  Stmt exists(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'job_secrets'");
  if (exists.Step() != SQLITE_ROW) return Status::Ok();
  BATON_RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
  Stmt read(db_, "SELECT job_id, container, name, value FROM job_secrets");
  Stmt write(db_, "INSERT OR REPLACE INTO job_secrets_v2(job_id, container, kind, name, sealed) VALUES(?1, ?2, ?3, ?4, ?5)");
  Status result;
  while (result.ok() && read.Step() == SQLITE_ROW) {
    const std::string job = read.ColumnText(0), container = read.ColumnText(1), name = read.ColumnText(2);
    auto sealed = box_.Seal(read.ColumnText(3), Aad(job, container, kEnv, name));
    if (!sealed.ok()) {
      result = sealed.status();
      break;
    }
    write.Text(1, job).Text(2, container).Text(3, kEnv).Text(4, name).Blob(5, *sealed);
    if (write.Step() != SQLITE_DONE) result = InternalError("secret vault: cannot seal an old secret");
    write.Reset();
  }
  if (result.ok()) result = Exec(db_, "DROP TABLE job_secrets");
  if (!result.ok()) {
    (void)Exec(db_, "ROLLBACK");
    return result;
  }
  BATON_RETURN_IF_ERROR(Exec(db_, "COMMIT"));
  return Exec(db_, "PRAGMA wal_checkpoint(TRUNCATE); VACUUM;");
}

Status SecretVault::Put(const std::string& job_id, const JobSpec& spec) {
  std::lock_guard lock(mu_);
  BATON_RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
  Status result = DeleteLocked(job_id);
  Stmt st(db_, "INSERT INTO job_secrets_v2(job_id, container, kind, name, sealed) VALUES(?1, ?2, ?3, ?4, ?5)");
  auto put = [&](const std::string& container, const char* kind, const std::string& name, const std::string& value) {
    if (!result.ok()) return;
    auto sealed = box_.Seal(value, Aad(job_id, container, kind, name));
    if (!sealed.ok()) {
      result = sealed.status();
      return;
    }
    st.Text(1, job_id).Text(2, container).Text(3, kind).Text(4, name).Blob(5, *sealed);
    if (st.Step() != SQLITE_DONE) result = InternalError("secret vault: cannot store a secret");
    st.Reset();
  };
  for (const JobContainer& c : spec.containers) {
    for (const auto& [name, value] : c.secret_env) put(c.name, kEnv, name, value);
    for (const auto& [name, value] : c.secret_files) put(c.name, kFile, name, value);
  }
  if (!result.ok()) {
    (void)Exec(db_, "ROLLBACK");
    return result;
  }
  return Exec(db_, "COMMIT");
}

Status SecretVault::Fill(const std::string& job_id, JobSpec* spec) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "SELECT container, kind, name, sealed FROM job_secrets_v2 WHERE job_id = ?1");
  st.Text(1, job_id);
  while (st.Step() == SQLITE_ROW) {
    const std::string container = st.ColumnText(0), kind = st.ColumnText(1), name = st.ColumnText(2);
    BATON_ASSIGN_OR_RETURN(std::string value, box_.Open(st.ColumnBlob(3), Aad(job_id, container, kind, name)));
    for (JobContainer& c : spec->containers) {
      if (c.name != container) continue;
      (kind == kFile ? c.secret_files : c.secret_env)[name] = value;
    }
  }
  return Status::Ok();
}

Status SecretVault::Delete(const std::string& job_id) {
  std::lock_guard lock(mu_);
  BATON_RETURN_IF_ERROR(DeleteLocked(job_id));
  // secure_delete zeroes the freed space in the new page images; the
  // checkpoint moves them into the database file and empties the WAL, so
  // the old images are gone from disk too.
  return Exec(db_, "PRAGMA wal_checkpoint(TRUNCATE)");
}

Status SecretVault::DeleteLocked(const std::string& job_id) {
  Stmt st(db_, "DELETE FROM job_secrets_v2 WHERE job_id = ?1");
  st.Text(1, job_id);
  return st.Step() == SQLITE_DONE ? Status::Ok() : InternalError("secret vault: cannot delete");
}

Result<std::vector<std::string>> SecretVault::Jobs(const std::string& after, int limit) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "SELECT DISTINCT job_id FROM job_secrets_v2 WHERE job_id > ?1 ORDER BY job_id LIMIT ?2");
  st.Text(1, after).Int(2, limit);
  std::vector<std::string> out;
  while (st.Step() == SQLITE_ROW) out.push_back(st.ColumnText(0));
  return out;
}

Result<int> SecretVault::Count(const std::string& job_id) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "SELECT COUNT(*) FROM job_secrets_v2 WHERE job_id = ?1");
  st.Text(1, job_id);
  if (st.Step() != SQLITE_ROW) return InternalError("secret vault: cannot count");
  return static_cast<int>(std::stoll(st.ColumnText(0)));
}

Result<int> SecretVault::ResealAll() {
  std::lock_guard lock(mu_);
  BATON_RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
  Stmt read(db_, "SELECT job_id, container, kind, name, sealed FROM job_secrets_v2");
  Stmt write(db_, "UPDATE job_secrets_v2 SET sealed = ?5 WHERE job_id = ?1 AND container = ?2 AND kind = ?3 AND name = ?4");
  int n = 0;
  Status result;
  while (result.ok() && read.Step() == SQLITE_ROW) {
    const std::string job = read.ColumnText(0), container = read.ColumnText(1), kind = read.ColumnText(2),
                      name = read.ColumnText(3), box = read.ColumnBlob(4);
    if (box_.SealedWithActiveKey(box)) continue;
    const std::string aad = Aad(job, container, kind, name);
    auto plain = box_.Open(box, aad);
    if (!plain.ok()) {
      result = plain.status();
      break;
    }
    auto sealed = box_.Seal(*plain, aad);
    if (!sealed.ok()) {
      result = sealed.status();
      break;
    }
    write.Text(1, job).Text(2, container).Text(3, kind).Text(4, name).Blob(5, *sealed);
    if (write.Step() != SQLITE_DONE) result = InternalError("secret vault: cannot reseal");
    write.Reset();
    ++n;
  }
  if (!result.ok()) {
    (void)Exec(db_, "ROLLBACK");
    return result;
  }
  BATON_RETURN_IF_ERROR(Exec(db_, "COMMIT"));
  BATON_RETURN_IF_ERROR(Exec(db_, "PRAGMA wal_checkpoint(TRUNCATE)"));
  return n;
}

}  // namespace baton::batch
