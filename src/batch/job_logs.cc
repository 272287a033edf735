#include "batch/job_logs.h"

#include <sqlite3.h>

namespace baton::batch {
namespace {

// Finalizes a statement when it goes out of scope.
struct Statement {
  sqlite3_stmt* st = nullptr;
  ~Statement() { sqlite3_finalize(st); }
};

}  // namespace

Result<std::unique_ptr<JobLogs>> JobLogs::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return UnavailableError("cannot open the job logs '" + path + "': " + m);
  }
  sqlite3_busy_timeout(db, 10000);
  char* err = nullptr;
  const char* schema =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
      "CREATE TABLE IF NOT EXISTS job_logs (job TEXT NOT NULL, attempt INTEGER NOT NULL, seq INTEGER NOT NULL,"
      " stream INTEGER NOT NULL, time_ms INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY(job, attempt, seq));";
  if (sqlite3_exec(db, schema, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "?";
    sqlite3_free(err);
    sqlite3_close(db);
    return InternalError("job logs schema: " + m);
  }
  return std::unique_ptr<JobLogs>(new JobLogs(db));
}

JobLogs::~JobLogs() { sqlite3_close(db_); }

Status JobLogs::Save(const std::string& job, int attempt, const std::vector<runtime::LogLine>& lines) {
  // The tail that fits both limits.
  size_t from = lines.size() > kMaxLines ? lines.size() - kMaxLines : 0;
  size_t bytes = 0;
  for (size_t i = lines.size(); i > from; --i) {
    bytes += lines[i - 1].text.size() + 1;
    if (bytes > kMaxBytes) {
      from = i;
      break;
    }
  }
  std::lock_guard lock(mu_);
  sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  bool ok = true;
  {
    Statement del;
    sqlite3_prepare_v2(db_, "DELETE FROM job_logs WHERE job = ?1 AND attempt = ?2", -1, &del.st, nullptr);
    sqlite3_bind_text(del.st, 1, job.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(del.st, 2, attempt);
    ok = sqlite3_step(del.st) == SQLITE_DONE;
    Statement ins;
    sqlite3_prepare_v2(db_, "INSERT INTO job_logs(job, attempt, seq, stream, time_ms, text) VALUES(?1,?2,?3,?4,?5,?6)",
                       -1, &ins.st, nullptr);
    for (size_t i = from; ok && i < lines.size(); ++i) {
      const runtime::LogLine& l = lines[i];
      sqlite3_bind_text(ins.st, 1, job.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int(ins.st, 2, attempt);
      sqlite3_bind_int64(ins.st, 3, static_cast<int64_t>(i - from));
      sqlite3_bind_int(ins.st, 4, l.stream == runtime::LogLine::Stream::kStderr ? 2 : 1);
      sqlite3_bind_int64(ins.st, 5,
                         std::chrono::duration_cast<std::chrono::milliseconds>(l.time.time_since_epoch()).count());
      sqlite3_bind_text(ins.st, 6, l.text.c_str(), static_cast<int>(l.text.size()), SQLITE_TRANSIENT);
      ok = sqlite3_step(ins.st) == SQLITE_DONE;
      sqlite3_reset(ins.st);
    }
  }
  sqlite3_exec(db_, ok ? "COMMIT" : "ROLLBACK", nullptr, nullptr, nullptr);
  return ok ? Status::Ok() : InternalError(std::string("job logs: cannot save: ") + sqlite3_errmsg(db_));
}

Result<std::vector<runtime::LogLine>> JobLogs::Read(const std::string& job, int attempt, size_t after, size_t limit) {
  std::lock_guard lock(mu_);
  Statement any;
  sqlite3_prepare_v2(db_, "SELECT 1 FROM job_logs WHERE job = ?1 AND attempt = ?2 LIMIT 1", -1, &any.st, nullptr);
  sqlite3_bind_text(any.st, 1, job.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(any.st, 2, attempt);
  if (sqlite3_step(any.st) != SQLITE_ROW) {
    return NotFoundError("no logs were kept for attempt " + std::to_string(attempt));
  }
  Statement st;
  sqlite3_prepare_v2(db_,
                     "SELECT stream, time_ms, text FROM job_logs WHERE job = ?1 AND attempt = ?2 AND seq >= ?3"
                     " ORDER BY seq LIMIT ?4",
                     -1, &st.st, nullptr);
  sqlite3_bind_text(st.st, 1, job.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(st.st, 2, attempt);
  sqlite3_bind_int64(st.st, 3, static_cast<int64_t>(after));
  sqlite3_bind_int64(st.st, 4, static_cast<int64_t>(limit));
  std::vector<runtime::LogLine> out;
  while (sqlite3_step(st.st) == SQLITE_ROW) {
    runtime::LogLine l;
    l.stream = sqlite3_column_int(st.st, 0) == 2 ? runtime::LogLine::Stream::kStderr : runtime::LogLine::Stream::kStdout;
    l.time = TimePoint(std::chrono::milliseconds(sqlite3_column_int64(st.st, 1)));
    l.text = std::string(reinterpret_cast<const char*>(sqlite3_column_text(st.st, 2)),
                         static_cast<size_t>(sqlite3_column_bytes(st.st, 2)));
    out.push_back(std::move(l));
  }
  return out;
}

Status JobLogs::Delete(const std::string& job) {
  std::lock_guard lock(mu_);
  Statement st;
  sqlite3_prepare_v2(db_, "DELETE FROM job_logs WHERE job = ?1", -1, &st.st, nullptr);
  sqlite3_bind_text(st.st, 1, job.c_str(), -1, SQLITE_TRANSIENT);
  return sqlite3_step(st.st) == SQLITE_DONE ? Status::Ok() : InternalError("job logs: cannot delete");
}

}  // namespace baton::batch
