// Tenant settings and admission (tenancy/tenant_settings.h, admission.h):
// the validation of what an admin sets, the token bucket against a clock the
// test moves, and the object caps.
#include <gtest/gtest.h>

#include "store/sqlite/sqlite_platform_stores.h"
#include "tenancy/admission.h"
#include "tenancy/tenant_directory.h"
#include "testing/test_util.h"

namespace baton::tenancy {
namespace {

using namespace std::chrono_literals;

TEST(AdmissionSettingsTest, DefaultsUntilAnAdminChangesThemAndPatchesMerge) {
  testing::TempDir dir;
  auto tenant_store = store::OpenSqliteTenantStore(dir.File("tenants.db"));
  ASSERT_TRUE(tenant_store.ok());
  auto directory = std::make_unique<TenantDirectory>(**tenant_store);
  ASSERT_TRUE(directory->CreateTenant("acme", "").ok());
  auto s = directory->GetSettings("acme");
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->grants.host_network);
  EXPECT_TRUE(s->grants.capabilities.empty());
  EXPECT_EQ(s->limits.burst, TenantLimits::kDefaultBurst);
  auto changed = directory->UpdateSettings(
      "acme", Json::parse(R"({"grants":{"hostNetwork":true,"capabilities":["CAP_NET_RAW","NET_RAW","CHOWN"]},
                              "limits":{"burst":7}})"));
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  EXPECT_TRUE(changed->grants.host_network);
  EXPECT_EQ(changed->grants.capabilities, (std::vector<std::string>{"CHOWN", "NET_RAW"}));
  EXPECT_EQ(changed->limits.burst, 7);
  EXPECT_EQ(changed->limits.max_queued_jobs, TenantLimits::kDefaultMaxQueuedJobs);
  // A second patch keeps what it does not name; a reopened directory reads it back.
  ASSERT_TRUE(directory->UpdateSettings("acme", Json::parse(R"({"limits":{"maxInstances":9}})")).ok());
  directory.reset();
  tenant_store->reset();
  auto reopened_store = store::OpenSqliteTenantStore(dir.File("tenants.db"));
  ASSERT_TRUE(reopened_store.ok());
  TenantDirectory reopened(**reopened_store);
  auto read = reopened.GetSettings("acme");
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(read->grants.host_network);
  EXPECT_EQ(read->limits.burst, 7);
  EXPECT_EQ(read->limits.max_instances, 9);
  EXPECT_EQ(reopened.GetSettings("nobody").status().code(), StatusCode::kNotFound);
}

TEST(AdmissionSettingsTest, HostileSettingsAreRefusedNamingTheFieldAndChangeNothing) {
  testing::TempDir dir;
  auto tenant_store = store::OpenSqliteTenantStore(dir.File("tenants.db"));
  ASSERT_TRUE(tenant_store.ok());
  auto directory = std::make_unique<TenantDirectory>(**tenant_store);
  ASSERT_TRUE(directory->CreateTenant("acme", "").ok());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"([1,2])", "body"},
      {R"({"grant":{}})", "grant"},
      {R"({"grants":{"hostNetwork":"yes"}})", "grants.hostNetwork"},
      {R"({"grants":{"capabilities":["NET_RAW","ROOT"]}})", "grants.capabilities[1]"},
      {R"({"grants":{"imagePrefixes":["ok/","bad prefix"]}})", "grants.imagePrefixes[1]"},
      {R"({"limits":{"burst":0}})", "limits.burst"},
      {R"({"limits":{"burst":4294967297}})", "limits.burst"},
      {R"({"limits":{"burst":18446744073709551615}})", "limits.burst"},
      {R"({"limits":{"burst":1.5}})", "limits.burst"},
      {R"({"limits":{"requestsPerSecond":-1}})", "limits.requestsPerSecond"},
      {R"({"limits":{"maxQueuedJobs":-5}})", "limits.maxQueuedJobs"},
      {R"({"limits":{"maxInstances":"many"}})", "limits.maxInstances"},
  };
  for (const auto& [body, field] : cases) {
    auto r = directory->UpdateSettings("acme", Json::parse(body));
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_EQ(r.status().message().substr(0, field.size() + 1), field + ":") << r.status().message();
  }
  auto s = directory->GetSettings("acme");
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->grants.host_network);
  EXPECT_EQ(s->limits.burst, TenantLimits::kDefaultBurst);
}

TEST(AdmissionRateTest, ABurstIsAdmittedThenTheRateAndOtherTenantsKeepTheirOwnBuckets) {
  testing::TempDir dir;
  auto tenant_store = store::OpenSqliteTenantStore(dir.File("tenants.db"));
  ASSERT_TRUE(tenant_store.ok());
  auto directory = std::make_unique<TenantDirectory>(**tenant_store);
  for (const char* t : {"big", "small"}) ASSERT_TRUE(directory->CreateTenant(t, "").ok());
  ASSERT_TRUE(directory->UpdateSettings("big", Json::parse(R"({"limits":{"requestsPerSecond":10,"burst":5}})")).ok());
  auto now = std::chrono::steady_clock::time_point(1h);
  Admission admission(*directory, [&] { return now; });
  int admitted = 0;
  std::chrono::milliseconds retry_after{0};
  Status last;
  for (int i = 0; i < 20; ++i) {
    last = admission.AdmitRequest("big", &retry_after);
    if (last.ok()) ++admitted;
  }
  EXPECT_EQ(admitted, 5);  // the burst, at one instant
  EXPECT_EQ(last.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(last.message().find("10 requests/s"), std::string::npos) << last.message();
  EXPECT_EQ(retry_after, 100ms);  // one token at 10/s
  // Another tenant is untouched by the first one's burst.
  EXPECT_TRUE(admission.AdmitRequest("small").ok());
  // Half a second later: five more tokens, no more.
  now += 500ms;
  admitted = 0;
  for (int i = 0; i < 20; ++i) admitted += admission.AdmitRequest("big").ok() ? 1 : 0;
  EXPECT_EQ(admitted, 5);
  // A long pause refills only up to the burst.
  now += 1h;
  admitted = 0;
  for (int i = 0; i < 20; ++i) admitted += admission.AdmitRequest("big").ok() ? 1 : 0;
  EXPECT_EQ(admitted, 5);
}

TEST(AdmissionWaitTest, ATenantHoldsAFewWaitSlotsAndEveryoneTogetherAFixedNumber) {
  testing::TempDir dir;
  auto tenant_store = store::OpenSqliteTenantStore(dir.File("tenants.db"));
  ASSERT_TRUE(tenant_store.ok());
  auto directory = std::make_unique<TenantDirectory>(**tenant_store);
  Admission admission(*directory);
  admission.SetTotalWaits(6);
  std::vector<std::unique_ptr<Admission::WaitSlot>> held;
  for (int i = 0; i < 10; ++i) {
    if (auto slot = admission.TryWait("greedy")) held.push_back(std::move(slot));
  }
  EXPECT_EQ(held.size(), static_cast<size_t>(Admission::kWaitsPerTenant));
  // Others still get slots, up to the total; admins count in the total only.
  auto other = admission.TryWait("other");
  auto admin = admission.TryWait("");
  EXPECT_TRUE(other && admin);
  EXPECT_EQ(admission.TryWait("third"), nullptr);
  // A slot given back is free again.
  held.pop_back();
  EXPECT_NE(admission.TryWait("third"), nullptr);
}

TEST(AdmissionCapTest, ObjectsAreCountedOnceThenReservedUntilTheRecount) {
  testing::TempDir dir;
  auto tenant_store = store::OpenSqliteTenantStore(dir.File("tenants.db"));
  ASSERT_TRUE(tenant_store.ok());
  auto directory = std::make_unique<TenantDirectory>(**tenant_store);
  auto now = std::chrono::steady_clock::time_point(1h);
  Admission admission(*directory, [&] { return now; });
  int counts = 0;
  int64_t stored = 2;
  auto count = [&]() -> Result<int64_t> {
    ++counts;
    return stored;
  };
  EXPECT_TRUE(admission.AdmitObject("acme", "jobs", 4, count).ok());  // 2 + 1
  EXPECT_TRUE(admission.AdmitObject("acme", "jobs", 4, count).ok());  // 2 + 2
  Status over = admission.AdmitObject("acme", "jobs", 4, count);
  EXPECT_EQ(over.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(over.message().find("limit of 4 jobs"), std::string::npos) << over.message();
  EXPECT_EQ(counts, 1);  // one scan for the burst
  // After the refresh the store's count holds again (two ended meanwhile).
  stored = 1;
  now += Admission::kCountRefresh;
  EXPECT_TRUE(admission.AdmitObject("acme", "jobs", 4, count).ok());
  EXPECT_EQ(counts, 2);
  // A limit of 0 admits nothing; a failing count is returned as it is.
  EXPECT_EQ(admission.AdmitObject("acme", "other", 0, count).code(), StatusCode::kResourceExhausted);
  now += Admission::kCountRefresh;
  EXPECT_EQ(admission.AdmitObject("acme", "jobs", 4, [] { return Result<int64_t>(UnavailableError("down")); }).code(),
            StatusCode::kUnavailable);
}

}  // namespace
}  // namespace baton::tenancy
