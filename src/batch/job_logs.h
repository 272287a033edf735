// JobLogs: the output of finished job attempts, kept after their containers
// are deleted (in their own SQLite file, beside the task hub).
//
// Each attempt keeps its last kMaxLines lines and at most kMaxBytes of text;
// saving an attempt again replaces it, so the activity that saves it can run
// twice after a crash. Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "baton/status.h"
#include "runtime/container_runtime.h"

struct sqlite3;

namespace baton::batch {

class JobLogs {
 public:
  static constexpr size_t kMaxLines = 10000;
  static constexpr size_t kMaxBytes = 4 << 20;

  static Result<std::unique_ptr<JobLogs>> Open(const std::string& path);
  ~JobLogs();

  Status Save(const std::string& job, int attempt, const std::vector<runtime::LogLine>& lines);
  // Lines after the first `after`, at most `limit`. NotFound: nothing saved
  // for that attempt.
  Result<std::vector<runtime::LogLine>> Read(const std::string& job, int attempt, size_t after, size_t limit);
  Status Delete(const std::string& job);

 private:
  explicit JobLogs(sqlite3* db) : db_(db) {}
  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace baton::batch
