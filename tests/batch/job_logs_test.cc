// JobLogs: what an attempt keeps of its output, on the real SQLite store.
#include "batch/job_logs.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "testing/platform_stores.h"
#include "testing/test_util.h"

namespace baton::batch {
namespace {

std::vector<runtime::LogLine> Lines(size_t n, size_t bytes_each) {
  std::vector<runtime::LogLine> out(n);
  for (size_t i = 0; i < n; ++i) {
    out[i].text = std::to_string(i);
    out[i].text.resize(bytes_each, 'x');
  }
  return out;
}

TEST(JobLogsTest, OutputThatFitsIsKeptWholeWithoutAMarker) {
  testing::TempDir dir;
  testing::SqlitePlatform platform;
  ASSERT_TRUE(platform.Open(dir.path()).ok());
  ASSERT_TRUE(platform.logs->Save("job", 1, Lines(JobLogs::kMaxLines, 8)).ok());
  auto kept = platform.logs->Read("job", 1, 0, 2 * JobLogs::kMaxLines);
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), JobLogs::kMaxLines);
  EXPECT_EQ(kept->front().text.substr(0, 1), "0");
  EXPECT_EQ(kept->back().text.substr(0, 4), "9999");
}

TEST(JobLogsTest, ALongerOutputKeepsItsEndBehindAMarker) {
  testing::TempDir dir;
  testing::SqlitePlatform platform;
  ASSERT_TRUE(platform.Open(dir.path()).ok());
  // One line too many: the first kept line says that output was dropped.
  ASSERT_TRUE(platform.logs->Save("job", 1, Lines(JobLogs::kMaxLines + 1, 8)).ok());
  auto kept = platform.logs->Read("job", 1, 0, 2 * JobLogs::kMaxLines);
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), JobLogs::kMaxLines);
  EXPECT_EQ(kept->front().text, JobLogs::kTruncatedMarker);
  EXPECT_EQ(kept->front().stream, runtime::LogLine::Stream::kStderr);
  EXPECT_EQ(kept->back().text.substr(0, 5), "10000");
  // Too many bytes: at most kMaxBytes, the marker first.
  ASSERT_TRUE(platform.logs->Save("job", 2, Lines(100, 64 * 1024)).ok());
  kept = platform.logs->Read("job", 2, 0, 2 * JobLogs::kMaxLines);
  ASSERT_TRUE(kept.ok());
  ASSERT_GT(kept->size(), 1u);
  EXPECT_EQ(kept->front().text, JobLogs::kTruncatedMarker);
  size_t bytes = 0;
  for (const auto& l : *kept) bytes += l.text.size() + 1;
  EXPECT_LE(bytes, JobLogs::kMaxBytes);
  EXPECT_EQ(kept->back().text.substr(0, 2), "99");
}

}  // namespace
}  // namespace baton::batch
