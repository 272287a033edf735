// util::ParseDuration / FormatDuration: the ages of --retention and the
// tenant override (docs/cli.md#retention).
#include "util/duration.h"

#include <gtest/gtest.h>

namespace baton::util {
namespace {

using namespace std::chrono_literals;

TEST(RetentionDurationTest, ReadsEveryUnitAndCombinations) {
  EXPECT_EQ(*ParseDuration("45s"), 45s);
  EXPECT_EQ(*ParseDuration("90m"), 90min);
  EXPECT_EQ(*ParseDuration("36h"), 36h);
  EXPECT_EQ(*ParseDuration("7d"), 7 * 24h);
  EXPECT_EQ(*ParseDuration("2w"), 14 * 24h);
  EXPECT_EQ(*ParseDuration("1d12h"), 36h);
  EXPECT_EQ(*ParseDuration("1w2d3h4m5s"), 9 * 24h + 3h + 4min + 5s);
}

TEST(RetentionDurationTest, RefusesMalformedTextSayingWhy) {
  for (const char* bad : {"", "7", "d", "7x", "-7d", "+7d", "7.5d", "1h1d", "1d1d", "7d ", " 7d", "7D",
                          "99999999999999999999d", "0s"}) {
    auto d = ParseDuration(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(d.status().message().empty());
  }
  EXPECT_NE(ParseDuration("7x").status().message().find("unknown unit 'x'"), std::string::npos);
  EXPECT_NE(ParseDuration("1h1d").status().message().find("largest first"), std::string::npos);
}

TEST(RetentionDurationTest, KeepsToTheRange) {
  EXPECT_FALSE(ParseDuration("30s", 1min, 24h).ok());
  EXPECT_TRUE(ParseDuration("1m", 1min, 24h).ok());
  EXPECT_TRUE(ParseDuration("1d", 1min, 24h).ok());
  EXPECT_FALSE(ParseDuration("1d1s", 1min, 24h).ok());
  EXPECT_NE(ParseDuration("2d", 1min, 24h).status().message().find("from 1m to 1d"), std::string::npos);
}

TEST(RetentionDurationTest, FormatReadsBack) {
  EXPECT_EQ(FormatDuration(7 * 24h), "1w");
  EXPECT_EQ(FormatDuration(10 * 24h), "10d");
  EXPECT_EQ(FormatDuration(36h), "1d12h");
  EXPECT_EQ(FormatDuration(0s), "0s");
  for (auto d : {1s, 59s, 61s, 3600s, 86399s, 86400s, 90061s, std::chrono::seconds(14 * 86400 + 1)}) {
    EXPECT_EQ(*ParseDuration(FormatDuration(d)), d) << FormatDuration(d);
  }
}

}  // namespace
}  // namespace baton::util
