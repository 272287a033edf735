#include "batch/job_logs.h"

namespace baton::batch {

Status JobLogs::Save(const std::string& job, int attempt, const std::vector<runtime::LogLine>& lines) {
  // The tail that fits both limits (the marker, when needed, among them).
  const bool cut_by_count = lines.size() > kMaxLines;
  size_t from = cut_by_count ? lines.size() - (kMaxLines - 1) : 0;
  size_t bytes = sizeof(kTruncatedMarker);
  for (size_t i = lines.size(); i > from; --i) {
    bytes += lines[i - 1].text.size() + 1;
    if (bytes > kMaxBytes) {
      from = i;
      break;
    }
  }
  std::vector<store::LogRecord> kept;
  kept.reserve(lines.size() - from + 1);
  if (from > 0) {
    const TimePoint first = from < lines.size() ? lines[from].time : lines.back().time;
    kept.push_back(store::LogRecord{true, first, kTruncatedMarker});
  }
  for (size_t i = from; i < lines.size(); ++i) {
    kept.push_back(store::LogRecord{lines[i].stream == runtime::LogLine::Stream::kStderr, lines[i].time, lines[i].text});
  }
  return store_.Replace(job, attempt, kept);
}

Result<std::vector<runtime::LogLine>> JobLogs::Read(const std::string& job, int attempt, size_t after, size_t limit) {
  BATON_ASSIGN_OR_RETURN(std::vector<store::LogRecord> records, store_.Read(job, attempt, after, limit));
  std::vector<runtime::LogLine> out;
  out.reserve(records.size());
  for (store::LogRecord& r : records) {
    runtime::LogLine l;
    l.stream = r.is_stderr ? runtime::LogLine::Stream::kStderr : runtime::LogLine::Stream::kStdout;
    l.time = r.time;
    l.text = std::move(r.text);
    out.push_back(std::move(l));
  }
  return out;
}

Status JobLogs::Delete(const std::string& job) { return store_.Delete(job); }

}  // namespace baton::batch
