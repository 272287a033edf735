#include "store/sqlite/sqlite_backup.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <memory>

#include "store/sqlite/sqlite_connection.h"

namespace baton::store {
namespace {

struct Closer {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, Closer>;

Result<Db> OpenDb(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return sqlite::SqliteError(raw, rc, "open " + path);
  // A writer holds the lock only for its commit: wait for it, never fail.
  sqlite3_busy_timeout(raw, 30000);
  return db;
}

Status Exec(sqlite3* db, const std::string& sql, const std::string& what) {
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? Status::Ok() : sqlite::SqliteError(db, rc, what);
}

}  // namespace

Status BackupSqliteDatabase(const std::string& source, const std::string& dest) {
  struct stat st {};
  if (::stat(source.c_str(), &st) != 0) return NotFoundError("no database at " + source);
  BATON_ASSIGN_OR_RETURN(Db from, OpenDb(source, SQLITE_OPEN_READONLY));
  BATON_ASSIGN_OR_RETURN(Db to, OpenDb(dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  sqlite3_backup* backup = sqlite3_backup_init(to.get(), "main", from.get(), "main");
  if (backup == nullptr) return sqlite::SqliteError(to.get(), sqlite3_errcode(to.get()), "back up " + source);
  // -1: every page in one step, so in one read transaction of the source.
  int rc;
  do {
    rc = sqlite3_backup_step(backup, -1);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(10);
  } while (rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
  const int finished = sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) return sqlite::SqliteError(to.get(), rc, "back up " + source);
  if (finished != SQLITE_OK) return sqlite::SqliteError(to.get(), finished, "back up " + source);
  // The copy inherits the source's WAL mode: one file is what a backup wants.
  return Exec(to.get(), "PRAGMA journal_mode=DELETE", "finish the copy of " + source);
}

Status CheckSqliteDatabase(const std::string& path) {
  BATON_ASSIGN_OR_RETURN(Db db, OpenDb(path, SQLITE_OPEN_READONLY));
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db.get(), "PRAGMA quick_check", -1, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    Status s = sqlite::SqliteError(db.get(), rc, "check " + path);
    return Status(StatusCode::kDataLoss, s.message());
  }
  std::string first;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    if (first.empty() && text != nullptr) first = reinterpret_cast<const char*>(text);
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) {
    return Status(StatusCode::kDataLoss, sqlite::SqliteError(db.get(), rc, "check " + path).message());
  }
  if (first != "ok") return Status(StatusCode::kDataLoss, path + " fails its integrity check: " + first);
  return Status::Ok();
}

Status UseWalMode(const std::string& path) {
  BATON_ASSIGN_OR_RETURN(Db db, OpenDb(path, SQLITE_OPEN_READWRITE));
  return Exec(db.get(), "PRAGMA journal_mode=WAL", "set WAL mode on " + path);
}

}  // namespace baton::store
