#include "util/uuid.h"

#include <gtest/gtest.h>

#include <set>

namespace baton::util {
namespace {

TEST(UuidTest, RandomUuidsAreVersion4AndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string u = NewRandomUuid();
    ASSERT_EQ(u.size(), 36u);
    EXPECT_EQ(u[14], '4');
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

// Guid.ToString("N"), as the Durable Task Scheduler mints execution ids.
TEST(UuidTest, DurableTaskConformanceExecutionIdsAre32LowercaseHex) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewExecutionId();
    ASSERT_EQ(id.size(), 32u) << id;
    for (char c : id) ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
    EXPECT_EQ(id[12], '4');  // still a version 4 UUID, without the dashes
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(UuidTest, NameBasedUuidMatchesRfc4122Vector) {
  // RFC 4122 / Python uuid.uuid5(uuid.NAMESPACE_DNS, "python.org").
  EXPECT_EQ(NameBasedUuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org"),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d");
}

}  // namespace
}  // namespace baton::util
