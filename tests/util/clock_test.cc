#include "baton/clock.h"

#include <gtest/gtest.h>

#include <atomic>

namespace baton {
namespace {

TEST(ClockTest, Iso8601RoundTripsMicroseconds) {
  TimePoint t = FromUnixMicros(1'763'935'500'123'456);
  std::string s = FormatIso8601(t);
  EXPECT_EQ(s, "2025-11-23T22:05:00.123456Z");
  TimePoint back;
  ASSERT_TRUE(ParseIso8601(s, &back));
  EXPECT_EQ(back, t);
  ASSERT_TRUE(ParseIso8601("2025-11-23T22:05:00Z", &back));
  EXPECT_EQ(ToUnixMicros(back), 1'763'935'500'000'000);
  EXPECT_FALSE(ParseIso8601("yesterday", &back));
  EXPECT_FALSE(ParseIso8601("2025-13-01T00:00:00Z", &back));
}

TEST(ClockTest, ManualClockMovesOnlyWhenToldAndNotifies) {
  ManualClock clock(FromUnixMicros(0));
  std::atomic<int> calls{0};
  int id = clock.Subscribe([&] { ++calls; });
  EXPECT_EQ(ToUnixMicros(clock.Now()), 0);
  clock.Advance(std::chrono::seconds(2));
  EXPECT_EQ(ToUnixMicros(clock.Now()), 2'000'000);
  EXPECT_EQ(calls.load(), 1);
  clock.Unsubscribe(id);
  clock.Advance(std::chrono::seconds(1));
  EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace baton
