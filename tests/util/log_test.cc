// util/log.h: --log-format json writes one JSON object per line, plain
// messages as {"ts","level","msg"} (quotes, newlines and bytes that are not
// UTF-8 included) and LogEvent's fields as members of their own; text keeps
// spdlog's pattern and writes events as "event k=v"; bad formats and levels
// are refused and change nothing.
#include "util/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

namespace baton::util {
namespace {

class MetricsStructuredLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    Log().sinks().push_back(sink_);
  }
  void TearDown() override {
    auto& sinks = Log().sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    ConfigureLog("text", "info").IgnoreError();
  }
  std::vector<std::string> Lines() {
    Log().flush();
    std::vector<std::string> lines;
    std::istringstream in(out_.str());
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

TEST_F(MetricsStructuredLogTest, JsonLinesParseWithTheirFields) {
  ASSERT_TRUE(ConfigureLog("json", "debug").ok());
  EXPECT_EQ(CurrentLogFormat(), LogFormat::kJson);
  Log().info("plain \"quoted\" text\nwith a newline and \xff bytes");
  LogEvent(spdlog::level::info, "http_request",
           Json{{"method", "GET"}, {"route", "/a/{id}"}, {"status", 200}, {"ms", 1.5}, {"level", "forged"}});
  LogEvent(spdlog::level::trace, "hidden", Json{{"x", 1}});  // below the level: nothing
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 2u) << out_.str();
  Json plain = Json::parse(lines[0], nullptr, false);
  ASSERT_FALSE(plain.is_discarded()) << lines[0];
  EXPECT_EQ(plain["level"], "info");
  EXPECT_EQ(plain["ts"].get<std::string>().size(), 24u) << plain["ts"];  // 2026-12-03T16:31:18.123Z
  EXPECT_EQ(plain["ts"].get<std::string>().back(), 'Z');
  EXPECT_NE(plain["msg"].get<std::string>().find("\"quoted\" text\nwith"), std::string::npos);
  Json event = Json::parse(lines[1], nullptr, false);
  ASSERT_FALSE(event.is_discarded()) << lines[1];
  EXPECT_EQ(event["event"], "http_request");
  EXPECT_EQ(event["level"], "info") << "a field cannot override the line's own";
  EXPECT_EQ(event["route"], "/a/{id}");
  EXPECT_EQ(event["status"], 200);
  EXPECT_EQ(event["ms"], 1.5);
}

TEST_F(MetricsStructuredLogTest, TextKeepsThePatternAndWritesEventsAsKeyValues) {
  ASSERT_TRUE(ConfigureLog("text", "info").ok());
  LogEvent(spdlog::level::info, "job", Json{{"job", "abc"}, {"phase", "queued"}, {"note", "two words"}});
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("[info] job job=abc note=\"two words\" phase=queued"), std::string::npos) << lines[0];
}

TEST_F(MetricsStructuredLogTest, BadFormatsAndLevelsAreRefusedAndChangeNothing) {
  ASSERT_TRUE(ConfigureLog("json", "warn").ok());
  EXPECT_FALSE(ConfigureLog("xml", "").ok());
  EXPECT_FALSE(ConfigureLog("text", "chatty").ok());
  EXPECT_EQ(CurrentLogFormat(), LogFormat::kJson);
  EXPECT_EQ(Log().level(), spdlog::level::warn);
}

}  // namespace
}  // namespace baton::util
