// JobLogStore: the output of finished job attempts, kept after their
// containers are deleted (batch/job_logs.h decides what is kept).
//
// Implementations: SqliteJobLogStore, PostgresJobLogStore; each passes
// tests/store/platform_store_conformance_test.cc.
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "baton/clock.h"
#include "baton/status.h"

namespace baton::store {

struct LogRecord {
  bool is_stderr = false;
  TimePoint time;  // kept with millisecond precision
  std::string text;
};

class JobLogStore {
 public:
  virtual ~JobLogStore() = default;
  // Replaces what is kept for (job, attempt) with `lines`, in one
  // transaction: a repeated save leaves one copy.
  virtual Status Replace(const std::string& job, int attempt, const std::vector<LogRecord>& lines) = 0;
  // Lines from index `after` on, at most `limit`. NotFound: nothing kept for
  // that attempt.
  virtual Result<std::vector<LogRecord>> Read(const std::string& job, int attempt, size_t after, size_t limit) = 0;
  // Every attempt's lines of the job (OK when there are none).
  virtual Status Delete(const std::string& job) = 0;
};

}  // namespace baton::store
