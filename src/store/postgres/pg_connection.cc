#include "store/postgres/pg_connection.h"

#include <charconv>
#include <cstring>

#include "util/log.h"

namespace baton::pg {
namespace {

// The canonical code closest to a SQLSTATE.
StatusCode CodeOf(std::string_view sqlstate) {
  if (sqlstate.size() != 5) return StatusCode::kUnavailable;  // no server answer at all
  std::string_view cls = sqlstate.substr(0, 2);
  if (cls == "08" || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
    return StatusCode::kUnavailable;
  }
  if (sqlstate == "40001" || sqlstate == "40P01") return StatusCode::kAborted;
  if (sqlstate == "57014") return StatusCode::kDeadlineExceeded;
  if (cls == "22") return StatusCode::kInvalidArgument;
  if (cls == "53") return StatusCode::kResourceExhausted;
  if (cls == "28") return StatusCode::kPermissionDenied;
  return StatusCode::kInternal;
}

// libpq's messages span lines ("...\n\tThis probably means..."): one line
// reads better in a log.
std::string OneLine(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// Server notices (a WARNING that the server shuts down, ...) go to the log,
// not to stderr as libpq's default does.
void LogNotice(void*, const char* message) { util::Log().debug("postgres: {}", OneLine(message)); }

void AppendQuotedArrayElement(std::string& out, std::string_view v) {
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace

int64_t PgResult::Int(int row, int col) const {
  if (IsNull(row, col)) return 0;
  std::string_view v = View(row, col);
  int64_t n = 0;
  std::from_chars(v.data(), v.data() + v.size(), n);
  return n;
}

std::vector<std::string> PgResult::TextArray(int row, int col) const {
  // The text form of a one-dimensional text[]: {a,"b \"c\"",NULL}.
  std::vector<std::string> out;
  if (IsNull(row, col)) return out;
  std::string_view v = View(row, col);
  if (v.size() < 2 || v.front() != '{' || v.back() != '}') return out;
  v = v.substr(1, v.size() - 2);
  size_t i = 0;
  while (i < v.size()) {
    std::string element;
    if (v[i] == '"') {
      ++i;
      while (i < v.size() && v[i] != '"') {
        if (v[i] == '\\' && i + 1 < v.size()) ++i;
        element += v[i++];
      }
      ++i;  // closing quote
    } else {
      size_t end = v.find(',', i);
      if (end == std::string_view::npos) end = v.size();
      element = std::string(v.substr(i, end - i));
      if (element == "NULL") element.clear();
      i = end;
    }
    out.push_back(std::move(element));
    if (i < v.size() && v[i] == ',') ++i;
  }
  return out;
}

Params& Params::Null() {
  values_.emplace_back(std::nullopt);
  return *this;
}

Params& Params::Text(std::string_view v) {
  if (v.find('\0') != std::string_view::npos && status_.ok()) {
    status_ = InvalidArgumentError("parameter $" + std::to_string(values_.size() + 1) +
                                   " holds a NUL byte, which PostgreSQL text cannot store");
  }
  values_.emplace_back(std::string(v));
  return *this;
}

Params& Params::Int(int64_t v) {
  values_.emplace_back(std::to_string(v));
  return *this;
}

Params& Params::IntArray(const std::vector<int64_t>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(v[i]);
  }
  s += '}';
  values_.emplace_back(std::move(s));
  return *this;
}

Params& Params::TextArray(const std::vector<std::string>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i].find('\0') != std::string::npos && status_.ok()) {
      status_ = InvalidArgumentError("an array element holds a NUL byte");
    }
    if (i) s += ',';
    AppendQuotedArrayElement(s, v[i]);
  }
  s += '}';
  values_.emplace_back(std::move(s));
  return *this;
}

std::vector<const char*> Params::Pointers() const {
  std::vector<const char*> out;
  out.reserve(values_.size());
  for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
  return out;
}

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& conninfo,
                                                            const std::string& setup) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return UnavailableError("postgres: out of memory connecting");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = OneLine(PQerrorMessage(conn));
    PQfinish(conn);
    return UnavailableError("postgres: connect: " + message);
  }
  PQsetNoticeProcessor(conn, &LogNotice, nullptr);
  std::unique_ptr<PgConnection> c(new PgConnection(conn));
  c->backend_pid_ = PQbackendPID(conn);
  std::string sql = setup;
  if (!sql.empty() && sql.back() != ';') sql += ';';
  sql += "SELECT backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()";
  Result<PgResult> r = c->Exec(sql, "configure session");
  if (!r.ok()) return r.status();
  if (r->rows() == 1) c->backend_start_ = r->Text(0, 0);
  return c;
}

PgConnection::~PgConnection() { PQfinish(conn_); }

Result<PgResult> PgConnection::Check(PGresult* raw, std::string_view what) {
  PgResult r(raw);
  ExecStatusType st = raw == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(raw);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    last_sqlstate_.clear();
    return r;
  }
  const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
  last_sqlstate_ = state ? state : "";
  std::string message = raw ? PQresultErrorMessage(raw) : "";
  if (message.empty()) message = PQerrorMessage(conn_);
  message = OneLine(message);
  StatusCode code = CodeOf(last_sqlstate_);
  if (raw == nullptr || PQstatus(conn_) != CONNECTION_OK || code == StatusCode::kUnavailable) {
    broken_ = true;
    code = StatusCode::kUnavailable;
  }
  return Status(code, "postgres: " + std::string(what) + ": " + message +
                          (last_sqlstate_.empty() ? "" : " (SQLSTATE " + last_sqlstate_ + ")"));
}

Result<PgResult> PgConnection::Exec(const std::string& sql, std::string_view what) {
  CountRoundTrip();
  return Check(PQexec(conn_, sql.c_str()), what);
}

Result<PgResult> PgConnection::ExecParams(const std::string& sql, const Params& params,
                                          std::string_view what) {
  if (!params.status().ok()) return params.status();
  std::vector<const char*> values = params.Pointers();
  CountRoundTrip();
  return Check(
      PQexecParams(conn_, sql.c_str(), params.size(), nullptr, values.data(), nullptr, nullptr, 0),
      what);
}

Result<PgResult> PgConnection::ExecPrepared(const Statement& statement, const Params& params,
                                            std::string_view what) {
  if (!params.status().ok()) return params.status();
  if (!prepared_.contains(statement.name)) {
    CountRoundTrip();
    BATON_ASSIGN_OR_RETURN(PgResult ignored,
                           Check(PQprepare(conn_, statement.name, statement.sql, 0, nullptr),
                                 std::string("prepare ") + statement.name));
    (void)ignored;
    prepared_.insert(statement.name);
  }
  std::vector<const char*> values = params.Pointers();
  CountRoundTrip();
  return Check(
      PQexecPrepared(conn_, statement.name, params.size(), values.data(), nullptr, nullptr, 0),
      what);
}

Result<std::vector<PgResult>> PgConnection::ExecPipeline(
    const std::vector<std::pair<const Statement*, const Params*>>& calls,
    const std::string& trailing_sql, std::string_view what) {
  for (const auto& [statement, params] : calls) {
    if (!params->status().ok()) return params->status();
    if (prepared_.contains(statement->name)) continue;
    CountRoundTrip();
    BATON_ASSIGN_OR_RETURN(PgResult ignored,
                           Check(PQprepare(conn_, statement->name, statement->sql, 0, nullptr),
                                 std::string("prepare ") + statement->name));
    (void)ignored;
    prepared_.insert(statement->name);
  }
  CountRoundTrip();
  if (PQenterPipelineMode(conn_) != 1) return Check(nullptr, what).status();
  const size_t n = calls.size() + (trailing_sql.empty() ? 0 : 1);
  bool sent = true;
  for (const auto& [statement, params] : calls) {
    std::vector<const char*> values = params->Pointers();
    if (PQsendQueryPrepared(conn_, statement->name, params->size(), values.data(), nullptr,
                            nullptr, 0) != 1) {
      sent = false;
      break;
    }
  }
  if (sent && !trailing_sql.empty()) {
    sent = PQsendQueryParams(conn_, trailing_sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr,
                             0) == 1;
  }
  if (!sent || PQpipelineSync(conn_) != 1) {
    // Not all was sent and the Sync was not: the session is in an unknown
    // state. It is closed (broken), and the outcome read back.
    broken_ = true;
    return UnavailableError("postgres: " + std::string(what) + ": " +
                            OneLine(PQerrorMessage(conn_)));
  }
  std::vector<PgResult> results;
  results.reserve(n);
  Status first_error = Status::Ok();
  for (size_t i = 0; i < n; ++i) {
    PGresult* raw = PQgetResult(conn_);
    if (raw == nullptr) {
      broken_ = true;
      return UnavailableError("postgres: " + std::string(what) + ": " +
                              OneLine(PQerrorMessage(conn_)));
    }
    if (PQresultStatus(raw) == PGRES_PIPELINE_ABORTED) {
      PQclear(raw);
    } else {
      Result<PgResult> r = Check(raw, what);
      if (!r.ok()) {
        if (broken()) return r.status();
        if (first_error.ok()) first_error = r.status();
      } else {
        results.push_back(std::move(r).value());
      }
    }
    // Each query's results end with a null.
    PGresult* end = PQgetResult(conn_);
    if (end != nullptr) {
      PQclear(end);
      broken_ = true;
      return UnavailableError("postgres: " + std::string(what) + ": unexpected result");
    }
  }
  PGresult* sync = PQgetResult(conn_);
  const bool synced = sync != nullptr && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  if (sync != nullptr) PQclear(sync);
  if (!synced || PQexitPipelineMode(conn_) != 1) {
    broken_ = true;
    return UnavailableError("postgres: " + std::string(what) + ": pipeline did not end" +
                            (first_error.ok() ? "" : " (" + first_error.ToString() + ")"));
  }
  if (!first_error.ok()) return first_error;
  if (results.size() != n) return InternalError("postgres: " + std::string(what) + ": results lost");
  return results;
}

Result<std::string> WithDatabase(const std::string& conninfo, const std::string& dbname) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options == nullptr) {
    std::string message = error ? error : "cannot parse";
    PQfreemem(error);
    return InvalidArgumentError("postgres connection string: " + message);
  }
  auto quote = [](std::string_view v) {
    std::string out = "'";
    for (char c : v) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out + "'";
  };
  std::string out;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (std::strcmp(o->keyword, "dbname") == 0 || o->val == nullptr) continue;
    out += std::string(o->keyword) + "=" + quote(o->val) + " ";
  }
  PQconninfoFree(options);
  return out + "dbname=" + quote(dbname);
}

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace baton::pg
