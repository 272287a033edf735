// A thin RAII layer over libpq, private to PostgresStore (and its tests).
//
// PgConnection owns one PGconn and the names of the statements it has
// prepared; PgResult owns one PGresult. Parameters travel in text format:
// Params renders integers, booleans, arrays and text, and refuses text that
// holds a NUL byte (PostgreSQL text cannot store one, and libpq would cut the
// value there silently).
//
// Errors are Status values that name the operation and carry the server's
// message and SQLSTATE. After a failed call, broken() says whether the
// connection itself is gone (the server closed it, the socket died): then the
// outcome of the statement that was running is unknown, and the connection
// must be thrown away. Nothing here throws.
//
// Thread-safety: a PgConnection is used by one thread at a time.
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "baton/status.h"

namespace baton::pg {

// One result set; empty for commands without rows.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : r_(r) {}
  int rows() const { return r_ ? PQntuples(r_.get()) : 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string_view View(int row, int col) const {
    return std::string_view(PQgetvalue(r_.get(), row, col),
                            static_cast<size_t>(PQgetlength(r_.get(), row, col)));
  }
  std::string Text(int row, int col) const { return std::string(View(row, col)); }
  int64_t Int(int row, int col) const;  // 0 when NULL
  std::optional<int64_t> OptionalInt(int row, int col) const {
    return IsNull(row, col) ? std::nullopt : std::optional<int64_t>(Int(row, col));
  }
  bool Bool(int row, int col) const { return View(row, col) == "t"; }
  // A text[] column ("{a,"b c"}") as strings; NULL elements become "".
  std::vector<std::string> TextArray(int row, int col) const;

 private:
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> r_;
};

// Positional parameters ($1, $2, ...) in text format.
class Params {
 public:
  Params& Null();
  Params& Text(std::string_view v);
  // "" becomes NULL: how the stores keep "no payload".
  Params& Payload(std::string_view v) { return v.empty() ? Null() : Text(v); }
  Params& Int(int64_t v);
  Params& OptionalInt(std::optional<int64_t> v) { return v ? Int(*v) : Null(); }
  Params& Bool(bool v) { return Text(v ? "t" : "f"); }
  Params& IntArray(const std::vector<int64_t>& v);
  Params& TextArray(const std::vector<std::string>& v);

  // The first value that cannot be sent (a NUL byte), as InvalidArgument.
  const Status& status() const { return status_; }
  int size() const { return static_cast<int>(values_.size()); }
  // The bytes of all values.
  size_t bytes() const {
    size_t n = 0;
    for (const auto& v : values_) n += v ? v->size() : 0;
    return n;
  }
  // Pointers into the values; valid while this Params lives unchanged.
  std::vector<const char*> Pointers() const;

 private:
  std::vector<std::optional<std::string>> values_;
  Status status_;
};

// A named statement: prepared on a connection the first time it runs there.
struct Statement {
  const char* name;
  const char* sql;
};

class PgConnection {
 public:
  // Connects with `conninfo` (a postgresql:// URI or key=value string) and
  // runs `setup` (SET commands) on the new session.
  // Unavailable when the server cannot be reached or refuses the login.
  static Result<std::unique_ptr<PgConnection>> Connect(const std::string& conninfo,
                                                       const std::string& setup);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Simple query protocol: one or more statements, no parameters.
  Result<PgResult> Exec(const std::string& sql, std::string_view what);
  Result<PgResult> ExecParams(const std::string& sql, const Params& params, std::string_view what);
  // Prepares `statement` on first use on this connection.
  Result<PgResult> ExecPrepared(const Statement& statement, const Params& params,
                                std::string_view what);

  // Runs `calls` (and then `trailing_sql`, when not empty) in ONE round trip
  // as ONE implicit transaction (libpq pipeline mode, a single Sync): either
  // every call commits or none does. The results come back in order. On a
  // failed call the whole transaction was rolled back, unless broken() is
  // true: then the outcome is unknown. Counts one round trip (plus prepares).
  // The connection blocks on writes: keep the calls' parameters well under a
  // socket buffer (PostgresStore sends at most 64 KB), so that sending all
  // of them never waits for the server, which may be waiting for us to read.
  Result<std::vector<PgResult>> ExecPipeline(
      const std::vector<std::pair<const Statement*, const Params*>>& calls,
      const std::string& trailing_sql, std::string_view what);

  // Adds one to `*counter` for every statement this connection sends (a
  // prepare counts too): the round trips of a store (PostgresStats).
  void CountRoundTrips(std::shared_ptr<std::atomic<uint64_t>> counter) {
    round_trips_ = std::move(counter);
  }

  // True once the connection is unusable (see the header comment).
  bool broken() const { return broken_ || PQstatus(conn_) != CONNECTION_OK; }
  // SQLSTATE of the last failed call ("" when none or unknown).
  const std::string& last_sqlstate() const { return last_sqlstate_; }
  // The server process of this session (pg_stat_activity.pid), and when it
  // started (pg_stat_activity.backend_start, text): together they name the
  // session even after the PID is reused.
  int backend_pid() const { return backend_pid_; }
  const std::string& backend_start() const { return backend_start_; }
  PGconn* raw() { return conn_; }

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  Result<PgResult> Check(PGresult* r, std::string_view what);
  void CountRoundTrip() {
    if (round_trips_) round_trips_->fetch_add(1, std::memory_order_relaxed);
  }

  PGconn* conn_;
  int backend_pid_ = 0;
  std::string backend_start_;
  bool broken_ = false;
  std::string last_sqlstate_;
  std::unordered_set<std::string> prepared_;
  std::shared_ptr<std::atomic<uint64_t>> round_trips_;
};

// `conninfo` with its database replaced by `dbname` (key=value form).
// InvalidArgument when libpq cannot parse `conninfo`.
Result<std::string> WithDatabase(const std::string& conninfo, const std::string& dbname);

// Quotes an identifier for SQL text ("my db" -> "\"my db\"").
std::string QuoteIdentifier(std::string_view name);

}  // namespace baton::pg
