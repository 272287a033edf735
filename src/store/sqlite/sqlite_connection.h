// A thin RAII layer over one sqlite3 connection, private to SqliteStore.
//
// Connection owns a sqlite3* and a cache of prepared statements keyed by their
// SQL text, prepared with SQLITE_PREPARE_PERSISTENT because each is reused for
// the life of the connection. Statement borrows a cached sqlite3_stmt and
// resets it (and clears its bindings) when it goes out of scope, so a
// statement is never left holding a read snapshot or stale parameters.
//
// Errors become Status values that name the operation and carry SQLite's own
// message; nothing here throws.
//
// Thread-safety: a Connection and its Statements are used by one thread at a
// time (the store opens its connections with SQLITE_OPEN_NOMUTEX and hands
// each to one thread).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "baton/status.h"

namespace baton::sqlite {

// Maps a SQLite result code to the closest canonical code. `what` names the
// operation ("insert history", "open /var/lib/baton.db").
inline Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  StatusCode code = StatusCode::kInternal;
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
      code = StatusCode::kUnavailable;
      break;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      code = StatusCode::kResourceExhausted;
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      code = StatusCode::kDataLoss;
      break;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      code = StatusCode::kPermissionDenied;
      break;
    default:
      break;
  }
  std::string message = "sqlite: " + std::string(what) + ": ";
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  message += " (" + std::to_string(rc) + ")";
  return Status(code, std::move(message));
}

class Statement {
 public:
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  Statement(Statement&& other) noexcept
      : stmt_(std::exchange(other.stmt_, nullptr)), db_(other.db_), bind_rc_(other.bind_rc_) {}
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  // Parameters are 1-based, as in SQLite. A binding error is kept and
  // reported by the next Step/Run.
  Statement& Bind(int index, int64_t value) {
    Check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  // Binds the text; SQLITE_STATIC is safe because the caller's string
  // outlives the statement's use (reset clears it before the next use).
  Statement& Bind(int index, std::string_view value) {
    Check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                            SQLITE_STATIC));
    return *this;
  }
  Statement& Bind(int index, const char* value) { return Bind(index, std::string_view(value)); }
  // Binary data (sealed secrets); SQLITE_STATIC as above.
  Statement& BindBlob(int index, std::string_view value) {
    Check(sqlite3_bind_blob(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_STATIC));
    return *this;
  }
  Statement& BindNull(int index) {
    Check(sqlite3_bind_null(stmt_, index));
    return *this;
  }
  // Payload convention: "" is stored as NULL.
  Statement& BindPayload(int index, std::string_view value) {
    return value.empty() ? BindNull(index) : Bind(index, value);
  }

  // Advances to the next row: true when a row is available, false when done.
  Result<bool> Step(std::string_view what) {
    if (bind_rc_ != SQLITE_OK) return SqliteError(db_, bind_rc_, what);
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, what);
  }
  // Runs a statement that returns no rows.
  Status Run(std::string_view what) {
    Result<bool> r = Step(what);
    return r.ok() ? Status::Ok() : r.status();
  }

  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  // The column's text; NULL reads as "".
  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    if (p == nullptr) return std::string();
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  std::string Blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    if (p == nullptr) return std::string();
    return std::string(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  std::string_view TextView(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    if (p == nullptr) return std::string_view();
    return std::string_view(reinterpret_cast<const char*>(p),
                            static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3_stmt* stmt_;
  sqlite3* db_;
  int bind_rc_ = SQLITE_OK;
};

class Connection {
 public:
  // Opens `path` (creating it when `create`). Connections are used by one
  // thread at a time, so SQLite's own mutexes are turned off.
  static Result<std::unique_ptr<Connection>> Open(const std::string& path, bool create) {
    sqlite3* db = nullptr;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      Status s = SqliteError(db, rc, "open " + path);
      sqlite3_close_v2(db);
      return s;
    }
    sqlite3_extended_result_codes(db, 1);
    // Checkpoints and the odd schema read may briefly hold locks; waiting a
    // little is better than failing a commit.
    sqlite3_busy_timeout(db, 10000);
    return std::unique_ptr<Connection>(new Connection(db));
  }

  // Opens `path` with SQLITE_OPEN_READONLY: any write fails in SQLite
  // itself (baton/store_reader.h).
  static Result<std::unique_ptr<Connection>> OpenReadOnly(const std::string& path) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      Status s = SqliteError(db, rc, "open " + path + " read-only");
      sqlite3_close_v2(db);
      return s;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 10000);
    return std::unique_ptr<Connection>(new Connection(db));
  }

  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* db() const { return db_; }

  // A cached prepared statement for `sql`.
  Result<Statement> Prepare(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* stmt = nullptr;
      int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                  SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return SqliteError(db_, rc, "prepare \"" + sql + "\"");
      it = cache_.emplace(sql, stmt).first;
    }
    return Statement(it->second, db_);
  }

  // Runs one or more statements without results (pragmas, BEGIN, schema).
  Status Exec(const char* sql, std::string_view what) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, what);
    return Status::Ok();
  }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace baton::sqlite
