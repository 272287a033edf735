// JobLogs: the output of finished job attempts, kept after their containers
// are deleted, in a store::JobLogStore (beside the task hub: its own SQLite
// file on one node, the shared PostgreSQL database on many).
//
// Each attempt keeps its last kMaxLines lines and at most kMaxBytes of text;
// when the output was longer, the first kept line is kTruncatedMarker (on
// stderr) in place of what was dropped. Saving an attempt again replaces it,
// so the activity that saves it can run twice after a crash. Thread-safe.
#pragma once

#include <string>
#include <vector>

#include "baton/status.h"
#include "runtime/container_runtime.h"
#include "store/job_log_store.h"

namespace baton::batch {

class JobLogs {
 public:
  static constexpr size_t kMaxLines = 10000;
  static constexpr size_t kMaxBytes = 4 << 20;
  static constexpr char kTruncatedMarker[] =
      "[baton] earlier output of this attempt was not kept (each attempt keeps its last 10000 lines, at most 4 MiB)";

  // `store` must outlive this.
  explicit JobLogs(store::JobLogStore& store) : store_(store) {}

  // `lines` is the end of the output; pass more than kMaxLines (the
  // runtime's LogsTail(kMaxLines + 1)) so that a cut shows as the marker.
  Status Save(const std::string& job, int attempt, const std::vector<runtime::LogLine>& lines);
  // Lines after the first `after`, at most `limit`. NotFound: nothing saved
  // for that attempt.
  Result<std::vector<runtime::LogLine>> Read(const std::string& job, int attempt, size_t after, size_t limit);
  Status Delete(const std::string& job);

 private:
  store::JobLogStore& store_;
};

}  // namespace baton::batch
