// Right-sizing from a synthetic history (batch/rightsize.h) with known
// numbers, the figures a receipt carries, and the "onOomKilled" spec field's
// validation (batch/job_spec.h).
#include "batch/rightsize.h"

#include <gtest/gtest.h>

#include "batch/job_spec.h"
#include "batch/receipts.h"
#include "batch/scheduler.h"
#include "baton/client.h"
#include "baton/sqlite_store.h"
#include "baton/worker.h"
#include "testing/test_util.h"

namespace baton::batch {
namespace {

constexpr int64_t kMiB = 1 << 20;

// A job result as the job orchestration writes it, one attempt per entry of
// {peak MiB (<0: not measured), avg cores, oomKilled, memory limit MiB}.
struct Fig {
  double peak_mb;
  double cores;
  bool oom = false;
  int64_t limit_mb = 1024;
};
Json Result(const std::vector<Fig>& attempts) {
  Json list = Json::array();
  int n = 0;
  for (const Fig& f : attempts) {
    Json a = {{"attempt", ++n},
              {"exitCode", f.oom ? 137 : 0},
              {"oomKilled", f.oom},
              {"cpuLimit", 2.0},
              {"memoryLimitBytes", f.limit_mb * kMiB},
              {"peakMemoryBytes", f.peak_mb < 0 ? Json() : Json(static_cast<int64_t>(f.peak_mb * kMiB))},
              {"cpuSeconds", f.peak_mb < 0 ? Json() : Json(f.cores * 10)},
              {"avgCores", f.peak_mb < 0 ? Json() : Json(f.cores)}};
    list.push_back(a);
  }
  return Json{{"status", "Completed"}, {"attemptResults", list}};
}

TEST(RightsizeTest, NearestRankPercentile) {
  std::vector<double> v;
  for (int i = 1; i <= 20; ++i) v.push_back(i);
  EXPECT_EQ(NearestRankPercentile(v, 95), 19);  // ceil(0.95 * 20) = 19th
  EXPECT_EQ(NearestRankPercentile(v, 100), 20);
  EXPECT_EQ(NearestRankPercentile({7}, 95), 7);
  EXPECT_EQ(NearestRankPercentile({3, 1, 2}, 50), 2);  // sorted first
}

TEST(RightsizeTest, RecommendsP95PlusHeadroomAndShowsTheSaving) {
  // 20 runs: peaks 101..120 MiB, average cores 0.21..0.40; asked 2 cores, 1024 MiB.
  std::vector<MeasuredAttempt> attempts;
  for (int i = 1; i <= 20; ++i) {
    auto m = MeasuredAttempts("job" + std::to_string(i), Result({{100.0 + i, 0.2 + 0.01 * i}}));
    ASSERT_EQ(m.size(), 1u);
    attempts.push_back(m[0]);
  }
  Json r = Rightsize("crunch", 20, attempts, 2.0, 1024);
  ASSERT_TRUE(r.value("enough", false)) << r.dump();
  // p95 peak = the 19th of 20 = 119 MiB; + 20 % = 142.8 -> 143 MiB.
  EXPECT_DOUBLE_EQ(r["observed"]["peakMemoryMbP95"].get<double>(), 119.0);
  EXPECT_DOUBLE_EQ(r["observed"]["peakMemoryMbMax"].get<double>(), 120.0);
  EXPECT_EQ(r["recommended"]["memoryMb"].get<int64_t>(), 143);
  // p95 cores = 0.39; + 20 % = 0.468 -> 0.47.
  EXPECT_NEAR(r["observed"]["avgCoresP95"].get<double>(), 0.39, 1e-9);
  EXPECT_NEAR(r["recommended"]["cpu"].get<double>(), 0.47, 1e-9);
  EXPECT_EQ(r["saving"]["memoryMb"].get<int64_t>(), 1024 - 143);
  EXPECT_NEAR(r["saving"]["cpu"].get<double>(), 1.53, 1e-9);
  EXPECT_NEAR(r["saving"]["memoryPercent"].get<double>(), 86.0, 1e-9);  // 881 / 1024 = 86.03 %
  EXPECT_NEAR(r["saving"]["cpuPercent"].get<double>(), 76.5, 1e-9);
  EXPECT_EQ(r["requested"]["memoryMb"].get<int64_t>(), 1024);
  EXPECT_EQ(r["runs"].get<int>(), 20);
}

TEST(RightsizeTest, AnOomKillSetsAFloorAndAJobAskingTooLittleShowsANegativeSaving) {
  // Attempt 1 killed at 64 MiB, attempt 2 (128 MiB) peaked at 70; two more runs at 60 and 66.
  std::vector<MeasuredAttempt> attempts = MeasuredAttempts(
      "a", Result({{64, 0.5, /*oom=*/true, 64}, {70, 0.5, false, 128}}));
  for (double peak : {60.0, 66.0}) {
    auto m = MeasuredAttempts("b", Result({{peak, 0.5, false, 64}}));
    attempts.insert(attempts.end(), m.begin(), m.end());
  }
  ASSERT_EQ(attempts.size(), 4u);
  Json r = Rightsize("grow", 3, attempts, 0.25, 64);
  ASSERT_TRUE(r.value("enough", false)) << r.dump();
  EXPECT_EQ(r["observed"]["oomKilled"].get<int>(), 1);
  // p95 of {60, 66, 70} = 70 -> 84 MiB; the kill at 64 MiB floors it at 76.8 -> 77: 84 wins.
  EXPECT_EQ(r["recommended"]["memoryMb"].get<int64_t>(), 84);
  EXPECT_EQ(r["saving"]["memoryMb"].get<int64_t>(), 64 - 84);  // asks for too little
  EXPECT_NEAR(r["recommended"]["cpu"].get<double>(), 0.6, 1e-9);
  EXPECT_NEAR(r["saving"]["cpu"].get<double>(), -0.35, 1e-9);

  // The floor wins when the measured peaks are small: killed at 100 MiB, others at 20.
  attempts = MeasuredAttempts("c", Result({{100, 0.1, true, 100}, {20, 0.1}, {20, 0.1}, {20, 0.1}}));
  r = Rightsize("floor", 1, attempts, 1, 1024);
  EXPECT_EQ(r["recommended"]["memoryMb"].get<int64_t>(), 120);
}

TEST(RightsizeTest, TooLittleHistoryGivesNoRecommendationAndSaysWhy) {
  // Three runs, but one was never measured (too short) and one was OOM-killed.
  std::vector<MeasuredAttempt> attempts = MeasuredAttempts("a", Result({{-1, 0}, {40, 0.2, true, 40}, {50, 0.3}}));
  EXPECT_EQ(attempts.size(), 2u);  // the unmeasured one is left out
  Json r = Rightsize("short", 3, attempts, 1, 256);
  EXPECT_FALSE(r.value("enough", true));
  EXPECT_TRUE(r["recommended"].is_null());
  EXPECT_TRUE(r["saving"].is_null());
  EXPECT_NE(r.value("message", "").find("too little history: 1 measured attempt"), std::string::npos) << r.dump();
  EXPECT_NE(r.value("message", "").find("at least 3"), std::string::npos) << r.dump();
  // No history at all.
  r = Rightsize("none", 0, {}, 1, 256);
  EXPECT_FALSE(r.value("enough", true));
  // A result without attempts (failed before any) or not an object.
  EXPECT_TRUE(MeasuredAttempts("x", Json{{"status", "Failed"}}).empty());
  EXPECT_TRUE(MeasuredAttempts("x", Json("garbage")).empty());
}

TEST(RightsizeTest, AReceiptCarriesThePeaks) {
  AttemptFacts f;
  f.job_id = "0123456789abcdef";
  f.tenant = "acme";
  f.attempt = 1;
  f.images = Json::array();
  f.memory_limit_bytes = 64 * kMiB;
  f.peak_memory_bytes = 50 * kMiB;
  f.cpu_time_ms = 1234;
  Json r = ReceiptStatement(f);
  EXPECT_EQ(r["resources"]["peakMemoryBytes"].get<int64_t>(), 50 * kMiB);
  EXPECT_EQ(r["resources"]["cpuTimeMs"].get<int64_t>(), 1234);
  f.peak_memory_bytes.reset();
  f.cpu_time_ms.reset();
  r = ReceiptStatement(f);
  EXPECT_TRUE(r["resources"]["peakMemoryBytes"].is_null());
  EXPECT_TRUE(r["resources"]["cpuTimeMs"].is_null());
}

Json Spec(const Json& oom) {
  Json j = {{"name", "x"}, {"image", "127.0.0.1:5000/a/b:1"}, {"memoryMb", 64}};
  j["onOomKilled"] = oom;
  return j;
}

TEST(RightsizeTest, OnOomKilledIsValidated) {
  auto ok = ParseJobSpec(Spec(Json{{"increaseMemory", 2.0}, {"maxMemoryMb", 256}}));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_TRUE(ok->on_oom_killed.has_value());
  EXPECT_DOUBLE_EQ(ok->on_oom_killed->increase_memory, 2.0);
  EXPECT_EQ(ok->on_oom_killed->max_memory_bytes, 256 * kMiB);
  // It survives the redacted form the orchestration keeps.
  auto again = ParseJobSpec(RedactedJson(*ok));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->on_oom_killed->max_memory_bytes, 256 * kMiB);
  EXPECT_TRUE(ParseJobSpec(Spec(Json{{"increaseMemory", 2.0}, {"maxMemoryMb", 64}})).ok());  // max = memory

  const std::vector<std::pair<Json, std::string>> hostile = {
      {Json{{"increaseMemory", 1.0}, {"maxMemoryMb", 256}}, "onOomKilled.increaseMemory"},
      {Json{{"increaseMemory", 0.5}, {"maxMemoryMb", 256}}, "onOomKilled.increaseMemory"},
      {Json{{"increaseMemory", 16.5}, {"maxMemoryMb", 256}}, "onOomKilled.increaseMemory"},
      {Json{{"increaseMemory", -2}, {"maxMemoryMb", 256}}, "onOomKilled.increaseMemory"},
      {Json{{"increaseMemory", "2"}, {"maxMemoryMb", 256}}, "onOomKilled.increaseMemory"},
      {Json{{"maxMemoryMb", 256}}, "onOomKilled.increaseMemory"},
      {Json{{"increaseMemory", 2.0}}, "onOomKilled.maxMemoryMb"},
      {Json{{"increaseMemory", 2.0}, {"maxMemoryMb", 32}}, "onOomKilled.maxMemoryMb"},  // below memoryMb
      {Json{{"increaseMemory", 2.0}, {"maxMemoryMb", int64_t{1} << 40}}, "onOomKilled.maxMemoryMb"},
      {Json{{"increaseMemory", 2.0}, {"maxMemoryMb", 100.5}}, "onOomKilled.maxMemoryMb"},
      {Json{{"increaseMemory", 2.0}, {"maxMemoryMb", 256}, {"extra", 1}}, "onOomKilled.extra"},
      {Json(true), "onOomKilled"},
      {Json::array(), "onOomKilled"},
  };
  for (const auto& [value, field] : hostile) {
    auto r = ParseJobSpec(Spec(value));
    ASSERT_FALSE(r.ok()) << value.dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << value.dump();
    EXPECT_EQ(FieldOf(r.status()), field) << value.dump() << ": " << r.status().message();
  }
  // NaN and infinity cannot be written in JSON; the largest double is refused as any other.
  auto huge = ParseJobSpec(Spec(Json{{"increaseMemory", 1e308}, {"maxMemoryMb", 256}}));
  EXPECT_FALSE(huge.ok());
}

// The scheduler's "resize" (the larger size of a retry after an OOM kill),
// driven by a real orchestration through a real worker on SQLite.
class RightsizeSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BATON_ASSERT_OK(registry_.AddEntity(kSchedulerEntity, SchedulerEntity));
    // Granted, then grows when told ("grow" {"memoryMb"}), shows the answer,
    // waits for the grant if queued, and releases on "finish".
    BATON_ASSERT_OK(registry_.AddOrchestrator("GrowingJob", [](OrchestrationContext& ctx) -> Task<Json> {
      Json request = ctx.GetInput();
      request["instance"] = ctx.InstanceId();
      const EntityId scheduler(kSchedulerEntity, kSchedulerKey);
      Json answer = co_await ctx.CallEntity(scheduler, "request", request);
      if (!answer.value("granted", false)) co_await ctx.WaitForExternalEvent(kQuotaGrantedEvent);
      ctx.SetCustomStatus(Json("running"));
      Json grow = co_await ctx.WaitForExternalEvent("grow");
      request["memoryMb"] = grow["memoryMb"];
      Json resized = co_await ctx.CallEntity(scheduler, "resize", request);
      ctx.SetCustomStatus(resized);
      if (!resized.value("granted", false) && !resized.value("neverFits", false)) {
        co_await ctx.WaitForExternalEvent(kQuotaGrantedEvent);
        ctx.SetCustomStatus(Json("regranted"));
      }
      co_await ctx.WaitForExternalEvent("finish");
      ctx.SignalEntity(scheduler, "release", Json{{"job", request["job"]}});
      co_return resized;
    }));
    SqliteStoreOptions options;
    options.path = dir_.File("hub.db");
    auto store = OpenSqliteStore(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    worker_ = std::make_unique<Worker>(*store_, registry_);
    BATON_ASSERT_OK(worker_->Start());
    client_ = std::make_unique<Client>(*store_);
  }
  void TearDown() override { worker_->Stop(); }

  void Signal(const std::string& op, const Json& input) {
    BATON_ASSERT_OK(client_->SignalEntity(EntityId(kSchedulerEntity, kSchedulerKey), op, input));
  }
  void Start(const std::string& job, int64_t memory_mb) {
    ScheduleOptions o;
    o.instance_id = job;
    ASSERT_TRUE(client_->ScheduleNewOrchestration(
                            "GrowingJob", Json{{"job", job}, {"tenant", "acme"}, {"cpu", 0.5}, {"memoryMb", memory_mb}}, o)
                    .ok());
  }
  Json Status(const std::string& job) {
    auto s = client_->GetState(job);
    return s.ok() ? FromPayload(s->custom_status) : Json();
  }
  Json State() {
    auto e = client_->GetEntity(EntityId(kSchedulerEntity, kSchedulerKey));
    return e.ok() && e->has_state ? FromPayload(e->state) : Json();
  }
  double Used() { return State()["tenants"]["acme"]["used"].value("memoryMb", -1.0); }

  testing::TempDir dir_;
  Registry registry_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Client> client_;
};

TEST_F(RightsizeSchedulerTest, ASizeThatCanNeverFitIsRefusedAndKeepsTheOldClaim) {
  Signal("setCapacity", Json{{"cpu", 4}, {"memoryMb", 4096}});
  Signal("setTenant", Json{{"tenant", "acme"}, {"cpu", 4}, {"memoryMb", 100}});
  Start("a", 64);
  ASSERT_TRUE(testing::Eventually([&] { return Status("a") == Json("running"); })) << State().dump();
  BATON_ASSERT_OK(client_->RaiseEvent("a", "grow", Json{{"memoryMb", 128}}));
  ASSERT_TRUE(testing::Eventually([&] { return Status("a").is_object(); })) << State().dump();
  const Json answer = Status("a");
  EXPECT_TRUE(answer.value("neverFits", false)) << answer.dump();
  EXPECT_NE(answer.value("reason", "").find("memory quota is 100 MiB"), std::string::npos) << answer.dump();
  EXPECT_EQ(Used(), 64) << State().dump();  // the old claim stays until the job releases it
  BATON_ASSERT_OK(client_->RaiseEvent("a", "finish"));
  ASSERT_TRUE(testing::Eventually([&] { return Used() == 0; })) << State().dump();
}

TEST_F(RightsizeSchedulerTest, ALargerSizeIsGrantedInPlaceOrQueuedUntilItFits) {
  Signal("setCapacity", Json{{"cpu", 4}, {"memoryMb", 4096}});
  Signal("setTenant", Json{{"tenant", "acme"}, {"cpu", 4}, {"memoryMb", 200}});
  Start("a", 64);
  Start("b", 64);
  ASSERT_TRUE(testing::Eventually([&] { return Status("a") == Json("running") && Status("b") == Json("running"); }))
      << State().dump();
  // 128 + 64 = 192 <= 200: granted at once, in place of the old claim.
  BATON_ASSERT_OK(client_->RaiseEvent("a", "grow", Json{{"memoryMb", 128}}));
  ASSERT_TRUE(testing::Eventually([&] { return Status("a").is_object(); })) << State().dump();
  EXPECT_TRUE(Status("a").value("granted", false)) << Status("a").dump();
  EXPECT_EQ(Used(), 192) << State().dump();
  EXPECT_EQ(State()["running"]["a"].value("memoryMb", 0.0), 128);
  // b grows to 160: 128 + 160 > 200, so it waits, first in the queue, holding nothing...
  BATON_ASSERT_OK(client_->RaiseEvent("b", "grow", Json{{"memoryMb", 160}}));
  ASSERT_TRUE(testing::Eventually([&] { return Status("b").is_object(); })) << State().dump();
  EXPECT_FALSE(Status("b").value("granted", true)) << Status("b").dump();
  EXPECT_EQ(Status("b").value("position", 0), 1);
  EXPECT_EQ(Used(), 128) << State().dump();
  // ...until a finishes: then it is granted (QuotaGranted).
  BATON_ASSERT_OK(client_->RaiseEvent("a", "finish"));
  ASSERT_TRUE(testing::Eventually([&] { return Status("b") == Json("regranted"); })) << State().dump();
  EXPECT_EQ(Used(), 160) << State().dump();
  BATON_ASSERT_OK(client_->RaiseEvent("b", "finish"));
  ASSERT_TRUE(testing::Eventually([&] { return Used() == 0; })) << State().dump();
}

}  // namespace
}  // namespace baton::batch
