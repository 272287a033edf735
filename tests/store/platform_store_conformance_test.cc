// The conformance suites of the platform's stores (store/tenant_store.h,
// job_log_store.h, secret_store.h, key_store.h). Every backend runs the same
// TEST_P cases: a backend joins with one PlatformBackend whose factory opens
// its four stores for a fresh test (a temp dir, or a fresh database).
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite/sqlite_platform_stores.h"
#include "testing/platform_backends.h"
#include "testing/test_util.h"

namespace baton::testing {
namespace {

using namespace std::chrono_literals;

class PlatformStoreTest : public ::testing::TestWithParam<PlatformBackend> {
 protected:
  void SetUp() override {
    auto opened = GetParam().open(dir_.path());
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    stores_ = std::move(*opened);
  }
  store::TenantStore& tenants() { return *stores_.tenants; }
  store::JobLogStore& logs() { return *stores_.logs; }
  store::SecretStore& secrets() { return *stores_.secrets; }
  store::KeyStore& keys() { return *stores_.keys; }
  store::LeaseStore& leases() { return *stores_.leases; }

  TempDir dir_;
  PlatformStoreSet stores_;
};

TimePoint At(int64_t micros) { return FromUnixMicros(micros); }

// ---- Tenants and keys ----

TEST_P(PlatformStoreTest, TenantsAreInsertedOnceListedInOrderAndUpdated) {
  ASSERT_TRUE(tenants().InsertTenant({"zeta", "Zeta", false, At(1'000'000), "{}"}).ok());
  ASSERT_TRUE(tenants().InsertTenant({"acme", "ACME", false, At(2'000'000), R"({"limits":{"burst":5}})"}).ok());
  EXPECT_EQ(tenants().InsertTenant({"acme", "again", false, At(3), "{}"}).code(), StatusCode::kAlreadyExists);
  auto list = tenants().ListTenants();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, "acme");
  EXPECT_EQ((*list)[0].display_name, "ACME");
  EXPECT_EQ((*list)[0].created_at, At(2'000'000));
  EXPECT_EQ((*list)[0].settings_json, R"({"limits":{"burst":5}})");
  EXPECT_EQ(tenants().GetTenant("nobody").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(tenants().SetSettings("acme", R"({"grants":{}})").ok());
  EXPECT_EQ(tenants().GetTenant("acme")->settings_json, R"({"grants":{}})");
  EXPECT_EQ(tenants().SetSettings("nobody", "{}").code(), StatusCode::kNotFound);
  EXPECT_EQ(tenants().SetDisabled("nobody", true).code(), StatusCode::kNotFound);
  ASSERT_TRUE(tenants().SetDisabled("zeta", true).ok());
  EXPECT_TRUE(tenants().GetTenant("zeta")->disabled);
}

TEST_P(PlatformStoreTest, OnlyUnrevokedKeysOfEnabledTenantsAreValid) {
  ASSERT_TRUE(tenants().InsertTenant({"acme", "ACME", false, At(1), "{}"}).ok());
  EXPECT_FALSE(*tenants().HasAdminKey());
  ASSERT_TRUE(tenants().InsertKey({"aaaaaaaaaaaa", "", "root", "hash-admin", At(10), false}).ok());
  ASSERT_TRUE(tenants().InsertKey({"bbbbbbbbbbbb", "acme", "ci", "hash-b", At(20), false}).ok());
  ASSERT_TRUE(tenants().InsertKey({"cccccccccccc", "acme", "old", "hash-c", At(15), false}).ok());
  EXPECT_EQ(tenants().InsertKey({"bbbbbbbbbbbb", "acme", "dup", "x", At(30), false}).code(),
            StatusCode::kAlreadyExists);
  EXPECT_TRUE(*tenants().HasAdminKey());
  auto acme_keys = tenants().ListKeys("acme");
  ASSERT_TRUE(acme_keys.ok());
  ASSERT_EQ(acme_keys->size(), 2u);
  EXPECT_EQ((*acme_keys)[0].key_id, "cccccccccccc");  // oldest first
  auto valid = tenants().GetValidKey("bbbbbbbbbbbb");
  ASSERT_TRUE(valid.ok());
  EXPECT_EQ(valid->secret_hash, "hash-b");
  EXPECT_EQ(valid->tenant_id, "acme");
  ASSERT_TRUE(tenants().RevokeKey("cccccccccccc").ok());
  EXPECT_EQ(tenants().RevokeKey("zzzzzzzzzzzz").code(), StatusCode::kNotFound);
  EXPECT_EQ(tenants().GetValidKey("cccccccccccc").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(tenants().ListKeys("acme")->at(0).revoked);
  // A disabled tenant's keys stop; admin keys do not depend on any tenant.
  ASSERT_TRUE(tenants().SetDisabled("acme", true).ok());
  EXPECT_EQ(tenants().GetValidKey("bbbbbbbbbbbb").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(tenants().GetValidKey("aaaaaaaaaaaa").ok());
  ASSERT_TRUE(tenants().RevokeKey("aaaaaaaaaaaa").ok());
  EXPECT_FALSE(*tenants().HasAdminKey());
}

TEST_P(PlatformStoreTest, AKeysExpiryIsKeptToTheMicrosecond) {
  ASSERT_TRUE(tenants().InsertTenant({"acme", "ACME", false, At(1), "{}"}).ok());
  store::KeyRecord expiring{"dddddddddddd", "acme", "short", "hash-d", At(10), false};
  expiring.expires_at = FromUnixMicros(1'900'000'000'123'456);
  ASSERT_TRUE(tenants().InsertKey(expiring).ok());
  ASSERT_TRUE(tenants().InsertKey({"eeeeeeeeeeee", "acme", "forever", "hash-e", At(11), false}).ok());
  // The store keeps the expiry; the tenancy layer decides (so an expired key is still returned).
  auto valid = tenants().GetValidKey("dddddddddddd");
  ASSERT_TRUE(valid.ok());
  ASSERT_TRUE(valid->expires_at.has_value());
  EXPECT_EQ(*valid->expires_at, *expiring.expires_at);
  EXPECT_FALSE(tenants().GetValidKey("eeeeeeeeeeee")->expires_at.has_value());
  auto keys = tenants().ListKeys("acme");
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].expires_at, expiring.expires_at);
  EXPECT_FALSE((*keys)[1].expires_at.has_value());
}

// ---- Job logs ----

std::vector<store::LogRecord> Lines(int n, const std::string& prefix) {
  std::vector<store::LogRecord> out;
  for (int i = 0; i < n; ++i) {
    out.push_back({i % 2 == 1, FromUnixMicros(1'700'000'000'000'000 + i * 1000), prefix + std::to_string(i)});
  }
  return out;
}

TEST_P(PlatformStoreTest, LogsAreReplacedPerAttemptReadInPagesAndDeletedPerJob) {
  EXPECT_EQ(logs().Read("job.a.1", 1, 0, 10).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(logs().Replace("job.a.1", 1, Lines(5, "first ")).ok());
  ASSERT_TRUE(logs().Replace("job.a.1", 1, Lines(3, "again ")).ok());  // a repeated save: one copy
  ASSERT_TRUE(logs().Replace("job.a.1", 2, Lines(2, "second ")).ok());
  ASSERT_TRUE(logs().Replace("job.b.1", 1, Lines(1, "other ")).ok());
  auto all = logs().Read("job.a.1", 1, 0, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].text, "again 0");
  EXPECT_FALSE((*all)[0].is_stderr);
  EXPECT_TRUE((*all)[1].is_stderr);
  EXPECT_EQ((*all)[2].time, FromUnixMicros(1'700'000'000'002'000));
  auto page = logs().Read("job.a.1", 1, 1, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].text, "again 1");
  EXPECT_TRUE(logs().Read("job.a.1", 1, 10, 10)->empty());
  // Text is kept as it was, empty lines and UTF-8 included.
  ASSERT_TRUE(logs().Replace("job.a.1", 3, {{false, FromUnixMicros(0), ""}, {true, FromUnixMicros(0), "Zürich ✓"}}).ok());
  EXPECT_EQ(logs().Read("job.a.1", 3, 0, 10)->at(1).text, "Zürich ✓");
  ASSERT_TRUE(logs().Delete("job.a.1").ok());
  EXPECT_EQ(logs().Read("job.a.1", 2, 0, 10).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(logs().Read("job.b.1", 1, 0, 10).ok());
  EXPECT_TRUE(logs().Delete("job.none").ok());
}

// ---- Secrets ----

TEST_P(PlatformStoreTest, SealedSecretsAreReplacedWholeKeptAsBytesAndDeleted) {
  const std::string binary("\x00\x01\xff\xfe sealed \x00", 12);
  ASSERT_TRUE(secrets().Replace("job.a.1", {{"main", "env", "A", binary}, {"main", "file", "f.txt", "x"}}).ok());
  ASSERT_TRUE(secrets().Replace("job.a.2", {{"side", "env", "B", "y"}}).ok());
  auto got = secrets().Get("job.a.1");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 2u);
  const store::SealedSecret& a = (*got)[0].kind == "env" ? (*got)[0] : (*got)[1];
  EXPECT_EQ(a.sealed, binary);
  EXPECT_EQ(a.container, "main");
  // Replace is whole: what is not given is gone.
  ASSERT_TRUE(secrets().Replace("job.a.1", {{"main", "env", "C", "z"}}).ok());
  got = secrets().Get("job.a.1");
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].name, "C");
  EXPECT_TRUE(secrets().Get("job.none")->empty());
  auto jobs = secrets().Jobs("", 10);
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(*jobs, (std::vector<std::string>{"job.a.1", "job.a.2"}));
  EXPECT_EQ(*secrets().Jobs("job.a.1", 10), std::vector<std::string>{"job.a.2"});
  EXPECT_EQ(secrets().Jobs("", 1)->size(), 1u);
  ASSERT_TRUE(secrets().Delete("job.a.1").ok());
  EXPECT_TRUE(secrets().Get("job.a.1")->empty());
  EXPECT_EQ(*secrets().Jobs("", 10), std::vector<std::string>{"job.a.2"});
  EXPECT_TRUE(secrets().Delete("job.none").ok());
  EXPECT_TRUE(secrets().ReadLegacyPlaintext()->empty());
}

// ---- Keys ----

TEST_P(PlatformStoreTest, AKeyIsMadeOnceEvenByRacingCallersAndCanBeReplaced) {
  std::atomic<int> made{0};
  const std::string first("\x00key\xff bytes", 11);
  std::vector<std::string> seen(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto key = keys().GetOrCreate("job-token", [&]() -> Result<std::string> {
        int n = made.fetch_add(1);
        return n == 0 ? first : "another-" + std::to_string(n);
      });
      seen[i] = key.ok() ? *key : "error: " + key.status().ToString();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 1u) << "every caller gets the stored key";
  const std::string stored = seen[0];
  EXPECT_EQ(*keys().GetOrCreate("job-token", [] { return Result<std::string>(std::string("never")); }), stored);
  ASSERT_TRUE(keys().Put("job-token", "rotated").ok());
  EXPECT_EQ(*keys().GetOrCreate("job-token", [] { return Result<std::string>(std::string("never")); }), "rotated");
  EXPECT_EQ(*keys().GetOrCreate("secrets", [] { return Result<std::string>(std::string("s")); }), "s");
  EXPECT_EQ(keys().GetOrCreate("../etc", [] { return Result<std::string>(std::string("x")); }).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(keys().Describe("secrets").empty());
}

// ---- Leases ----

TEST_P(PlatformStoreTest, ALeaseHasOneHolderUntilReleasedOrLapsed) {
  EXPECT_TRUE(*leases().TryAcquire("job-monitor/d1", "node-a", 60s));
  EXPECT_FALSE(*leases().TryAcquire("job-monitor/d1", "node-b", 60s));
  EXPECT_TRUE(*leases().TryAcquire("job-monitor/d1", "node-a", 60s));  // a renewal
  EXPECT_TRUE(*leases().TryAcquire("job-monitor/d2", "node-b", 60s));  // another name
  ASSERT_TRUE(leases().Release("job-monitor/d1", "node-b").ok());      // not its own: nothing
  EXPECT_FALSE(*leases().TryAcquire("job-monitor/d1", "node-b", 60s));
  ASSERT_TRUE(leases().Release("job-monitor/d1", "node-a").ok());
  EXPECT_TRUE(*leases().TryAcquire("job-monitor/d1", "node-b", 1ms));
  // A holder that stops renewing loses it once it lapsed.
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(*leases().TryAcquire("job-monitor/d1", "node-a", 60s));
}

INSTANTIATE_TEST_SUITE_P(Platform, PlatformStoreTest, ::testing::ValuesIn(PlatformBackends()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace baton::testing
