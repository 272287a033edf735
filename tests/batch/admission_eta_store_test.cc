// What the admission ETA reads from a real store (batch/job_eta.h): job
// instances shaped as the job orchestration leaves them (a spec name in the
// input, "durations" in the result, "grantedAt" in a running job's custom
// status), run by a real worker on SQLite. Holds come per tenant and name,
// canceled runs and other names left out; a running job's grant time is read;
// the estimate and what a tenant sees of it follow.
#include <gtest/gtest.h>

#include "batch/job_eta.h"
#include "batch/job_orchestration.h"
#include "batch/job_view.h"
#include "baton/client.h"
#include "baton/sqlite_store.h"
#include "baton/worker.h"
#include "testing/test_util.h"

namespace baton::batch {
namespace {

using std::chrono::seconds;
using testing::Eventually;

class AdmissionEtaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ParseIso8601("2026-12-03T12:00:00Z", &t0_));
    // A stand-in for the job orchestration with the same name: shows the
    // custom status it is given, waits when told to, and ends with the
    // result it is given.
    BATON_ASSERT_OK(registry_.AddOrchestrator(kJobOrchestrator, [](OrchestrationContext& ctx) -> Task<Json> {
      Json in = ctx.GetInput();
      if (in.contains("custom")) ctx.SetCustomStatus(in["custom"]);
      if (in.value("wait", false)) co_await ctx.WaitForExternalEvent("finish");
      co_return in["result"];
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

  std::string At(double s) const {
    return FormatIso8601(
        t0_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(s)));
  }
  std::string Key(const std::string& tenant, int n) {
    char id[17];
    std::snprintf(id, sizeof id, "%016x", n);
    return JobInstanceId(tenant, id);
  }
  // A finished run of `name` that held its capacity for `hold` seconds.
  void Finished(const std::string& tenant, int n, const std::string& name, double hold,
                const std::string& status = "Completed") {
    Start(Key(tenant, n),
          Json{{"spec", {{"name", name}}},
               {"result", {{"status", status}, {"durations", {{"granted", At(0)}, {"finished", At(hold)}}}}}});
    ASSERT_TRUE(Eventually([&] {
      auto s = client_->GetState(Key(tenant, n));
      return s.ok() && s->status == OrchestrationStatus::kCompleted;
    }));
  }
  void Live(const std::string& key, const std::string& name, const Json& custom) {
    Start(key, Json{{"spec", {{"name", name}}}, {"custom", custom}, {"wait", true}, {"result", nullptr}});
    ASSERT_TRUE(Eventually([&] {
      auto s = client_->GetState(key);
      return s.ok() && s->status == OrchestrationStatus::kRunning && !s->custom_status.empty();
    }));
  }
  void Start(const std::string& key, const Json& input) {
    ScheduleOptions o;
    o.instance_id = key;
    ASSERT_TRUE(client_->ScheduleNewOrchestration(kJobOrchestrator, input, o).ok());
  }
  static Json Entry(const std::string& tenant, const std::string& key, double cpu) {
    return {{"job", key},     {"tenant", tenant}, {"instance", key}, {"cpu", cpu},
            {"memoryMb", 32}, {"priority", 0},    {"seq", 0}};
  }

  TimePoint t0_;
  testing::TempDir dir_;
  Registry registry_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Client> client_;
};

TEST_F(AdmissionEtaStoreTest, ReadsHoldsByTenantAndNameAndRunningJobsGrantTimes) {
  // acme ran "etl" three times (10, 20, 30 s), once canceled after 1 s, and
  // another name; globex ran "etl" once, for 50 s.
  Finished("acme", 1, "etl", 10);
  Finished("acme", 2, "etl", 30);
  Finished("acme", 3, "etl", 20);
  Finished("acme", 4, "etl", 1, "Canceled");
  Finished("acme", 5, "other", 99);
  Finished("globex", 6, "etl", 50, "Failed");  // a failed run held its capacity too
  const std::string running = Key("acme", 10), old_running = Key("acme", 11), queued = Key("globex", 12);
  Live(running, "etl", Json{{"phase", "running"}, {"grantedAt", At(0)}});
  Live(old_running, "other", Json{{"phase", "running"}});  // no grantedAt, no grant in its history
  Live(queued, "etl", Json{{"phase", "queued"}});
  Json scheduler = {{"capacity", {{"cpu", 2}, {"memoryMb", 1024}}},
                    {"running", {{running, Entry("acme", running, 1)}, {old_running, Entry("acme", old_running, 1)}}},
                    {"queue", Json::array({Entry("globex", queued, 1)})},
                    {"tenants",
                     {{"acme",
                       {{"quota", {{"cpu", 0}, {"memoryMb", 0}, {"jobs", 0}}},
                        {"weight", 1.0},
                        {"used", {{"cpu", 2.0}, {"memoryMb", 64.0}, {"jobs", 2.0}}}}}}}};
  const TimePoint now = t0_ + seconds(5);
  auto snap = ReadEtaSnapshot(*client_, scheduler, now);
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  const EtaJobInfo& r = snap->jobs.at(running);
  EXPECT_EQ(r.name, "etl");
  ASSERT_TRUE(r.durations.has_value());
  EXPECT_EQ(r.durations->samples, 3);  // not the canceled run, not globex's
  EXPECT_DOUBLE_EQ(r.durations->p50.count(), 20);
  EXPECT_DOUBLE_EQ(r.durations->p90.count(), 30);
  ASSERT_TRUE(r.granted_at.has_value());
  EXPECT_EQ(*r.granted_at, t0_);
  const EtaJobInfo& o = snap->jobs.at(old_running);
  ASSERT_TRUE(o.durations.has_value());
  EXPECT_DOUBLE_EQ(o.durations->p50.count(), 99);
  EXPECT_FALSE(o.granted_at.has_value());
  const EtaJobInfo& q = snap->jobs.at(queued);
  ASSERT_TRUE(q.durations.has_value());
  EXPECT_EQ(q.durations->samples, 1);
  EXPECT_DOUBLE_EQ(q.durations->p50.count(), 50);

  // The queued job needs one of the two cores: the known job frees one at
  // +20 s, but the one of unknown start might end first: a lower bound.
  auto eta = JobEta(*client_, scheduler, queued, "globex", now);
  ASSERT_TRUE(eta.ok()) << eta.status().ToString();
  EXPECT_EQ((*eta)["basis"], "lowerBound") << eta->dump(2);
  EXPECT_EQ((*eta)["withoutHistory"]["otherTenantsJobs"], 1);
  EXPECT_EQ((*eta)["runTime"]["runs"], 1);
  EXPECT_EQ(eta->dump().find("acme"), std::string::npos) << eta->dump(2);
  // Once that job's grant is known too (the custom status of this version),
  // the estimate is exact: the "etl" job ends first, at +20 s.
  BATON_ASSERT_OK(client_->RaiseEvent(old_running, "finish"));
  ASSERT_TRUE(Eventually([&] { return client_->GetState(old_running)->status == OrchestrationStatus::kCompleted; }));
  const std::string newer = Key("acme", 13);
  Live(newer, "other", Json{{"phase", "running"}, {"grantedAt", At(0)}});
  scheduler["running"].erase(old_running);
  scheduler["running"][newer] = Entry("acme", newer, 1);
  eta = JobEta(*client_, scheduler, queued, "globex", now);
  ASSERT_TRUE(eta.ok()) << eta.status().ToString();
  EXPECT_EQ((*eta)["basis"], "history") << eta->dump(2);
  EXPECT_EQ((*eta)["startAt"], At(20)) << eta->dump(2);
  EXPECT_EQ((*eta)["startBy"], At(30)) << eta->dump(2);
  EXPECT_EQ((*eta)["inSeconds"], 15.0);
  // Not queued: no estimate.
  auto none = JobEta(*client_, scheduler, running, "acme", now);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->is_null());
  for (const std::string& key : {running, newer, queued}) BATON_ASSERT_OK(client_->RaiseEvent(key, "finish"));
}

}  // namespace
}  // namespace baton::batch
