// The capacity scheduler entity driven by real job-like orchestrations:
// quotas hold, and a tenant with a backlog does not starve a small one.
#include "batch/scheduler.h"

#include <gtest/gtest.h>

#include "baton/client.h"
#include "baton/sqlite_store.h"
#include "baton/worker.h"
#include "testing/test_util.h"

namespace baton::batch {
namespace {

using testing::Eventually;

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BATON_ASSERT_OK(registry_.AddEntity(kSchedulerEntity, SchedulerEntity));
    // A stand-in for the job orchestration: waits for its grant, runs until
    // told to finish, then releases.
    BATON_ASSERT_OK(registry_.AddOrchestrator("FakeJob", [](OrchestrationContext& ctx) -> Task<Json> {
      Json in = ctx.GetInput();
      EntityId scheduler(kSchedulerEntity, kSchedulerKey);
      Json request = in;
      request["instance"] = ctx.InstanceId();
      Json answer = co_await ctx.CallEntity(scheduler, "request", request);
      if (!answer["granted"].get<bool>()) {
        ctx.SetCustomStatus(Json{{"waiting", "quota"}, {"position", answer["position"]}});
        co_await ctx.WaitForExternalEvent(kQuotaGrantedEvent);
      }
      ctx.SetCustomStatus("running");
      co_await ctx.WaitForExternalEvent("finish");
      ctx.SignalEntity(scheduler, "release", Json{{"job", in["job"]}});
      co_return in["job"];
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
  void TearDown() override {
    worker_->Stop();
  }

  void Configure(const Json& op_input, const std::string& op) {
    BATON_ASSERT_OK(client_->SignalEntity(EntityId(kSchedulerEntity, kSchedulerKey), op, op_input));
  }
  void Submit(const std::string& job, const std::string& tenant, double cpu) {
    ScheduleOptions o;
    o.instance_id = job;
    ASSERT_TRUE(client_->ScheduleNewOrchestration(
                            "FakeJob", Json{{"job", job}, {"tenant", tenant}, {"cpu", cpu}, {"memoryMb", 64}}, o)
                    .ok());
  }
  bool Running(const std::string& job) {
    auto s = client_->GetState(job);
    return s.ok() && s->status == OrchestrationStatus::kRunning && FromPayload(s->custom_status) == "running";
  }
  bool Waiting(const std::string& job) {
    auto s = client_->GetState(job);
    return s.ok() && s->status == OrchestrationStatus::kRunning && FromPayload(s->custom_status).is_object();
  }
  void Finish(const std::string& job) {
    BATON_ASSERT_OK(client_->RaiseEvent(job, "finish"));
    ASSERT_EQ(client_->WaitForCompletion(job, std::chrono::seconds(60))->status, OrchestrationStatus::kCompleted);
  }

  std::string Dump() {
    std::string out;
    for (const char* j : {"big-1", "big-2", "big-3", "small-1"}) {
      auto s = client_->GetState(j);
      out += std::string(j) + "=" + (s.ok() ? std::string(OrchestrationStatusName(s->status)) + " " + s->custom_status + " " + s->output : s.status().ToString()) + "\n";
    }
    auto e = client_->GetEntity(EntityId(kSchedulerEntity, kSchedulerKey));
    out += e.ok() ? e->state : e.status().ToString();
    return out;
  }

  testing::TempDir dir_;
  Registry registry_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Client> client_;
};

TEST_F(SchedulerTest, WeightedFairShareDoesNotStarveTheSmallTenant) {
  // Requests reach the scheduler in whatever order the orchestrations run:
  // the test follows which jobs got in, not which were submitted first.
  auto running_of = [&](const std::string& tenant, int n) {
    std::vector<std::string> out;
    for (int i = 1; i <= n; ++i) {
      std::string job = tenant + "-" + std::to_string(i);
      if (Running(job)) out.push_back(job);
    }
    return out;
  };
  Configure(Json{{"cpu", 2}, {"memoryMb", 4096}}, "setCapacity");
  for (int i = 1; i <= 6; ++i) Submit("big-" + std::to_string(i), "big", 1);
  ASSERT_TRUE(Eventually([&] {
    int waiting = 0;
    for (int i = 1; i <= 6; ++i) waiting += Waiting("big-" + std::to_string(i)) ? 1 : 0;
    return running_of("big", 6).size() == 2 && waiting == 4;
  })) << Dump();
  Submit("small-1", "small", 1);
  Submit("small-2", "small", 1);
  ASSERT_TRUE(Eventually([&] { return Waiting("small-1") && Waiting("small-2"); })) << Dump();
  // The position says how much of the queue is ahead: 4 big jobs, then us.
  int p1 = FromPayload(client_->GetState("small-1")->custom_status)["position"];
  int p2 = FromPayload(client_->GetState("small-2")->custom_status)["position"];
  EXPECT_EQ(std::min(p1, p2), 5);

  std::vector<std::string> big = running_of("big", 6);
  Finish(big[0]);  // big holds 1 of 2 cores, small none: small goes next
  ASSERT_TRUE(Eventually([&] { return running_of("small", 2).size() == 1; })) << Dump();
  EXPECT_EQ(running_of("big", 6).size(), 1u);
  Finish(big[1]);  // big holds 0, small 1: big's turn
  ASSERT_TRUE(Eventually([&] { return running_of("big", 6).size() == 1; })) << Dump();
  EXPECT_EQ(running_of("small", 2).size(), 1u);
  Finish(running_of("small", 2)[0]);  // small 0, big 1: small again, ahead of big's backlog
  ASSERT_TRUE(Eventually([&] { return running_of("small", 2).size() == 1; })) << Dump();
  EXPECT_EQ(running_of("big", 6).size(), 1u);
  // Drain everything; the scheduler ends empty.
  auto all_done = [&] {
    for (const char* tenant : {"small", "big"}) {
      for (int i = 1; i <= (tenant[0] == 's' ? 2 : 6); ++i) {
        auto s = client_->GetState(std::string(tenant) + "-" + std::to_string(i));
        if (!s.ok() || s->status != OrchestrationStatus::kCompleted) return false;
      }
    }
    return true;
  };
  for (int round = 0; round < 10 && !all_done(); ++round) {
    // Each finish frees a core, and the next grant follows asynchronously.
    ASSERT_TRUE(Eventually([&] { return !running_of("small", 2).empty() || !running_of("big", 6).empty(); }))
        << Dump();
    for (const std::string& job : running_of("small", 2)) Finish(job);
    for (const std::string& job : running_of("big", 6)) Finish(job);
  }
  ASSERT_TRUE(all_done()) << Dump();
  // The last release was signalled as the last job completed.
  EXPECT_TRUE(Eventually([&] {
    auto state = client_->GetEntity(EntityId(kSchedulerEntity, kSchedulerKey));
    if (!state.ok()) return false;
    Json s = FromPayload(state->state);
    return s["running"].empty() && s["queue"].empty();
  })) << Dump();
}

TEST_F(SchedulerTest, TenantQuotaHoldsEvenWithFreeCapacity) {
  Configure(Json{{"cpu", 8}, {"memoryMb", 8192}}, "setCapacity");
  Configure(Json{{"tenant", "capped"}, {"jobs", 1}, {"cpu", 0}, {"memoryMb", 0}, {"weight", 1}}, "setTenant");
  Submit("c-1", "capped", 1);
  Submit("c-2", "capped", 1);
  // Whichever request arrived first runs; the other waits for the quota.
  ASSERT_TRUE(Eventually([&] {
    return (Running("c-1") && Waiting("c-2")) || (Running("c-2") && Waiting("c-1"));
  })) << Dump();
  const std::string first = Running("c-1") ? "c-1" : "c-2";
  const std::string second = first == "c-1" ? "c-2" : "c-1";
  Finish(first);
  ASSERT_TRUE(Eventually([&] { return Running(second); })) << Dump();
  Finish(second);
}

// An admin who raises a tenant's quota (or a restart with more capacity)
// starts the jobs it queued, without waiting for one of its running jobs to
// end (which may take hours, or never come when none runs).
TEST_F(SchedulerTest, RaisingAQuotaOrTheCapacityStartsWhatFitsNow) {
  Configure(Json{{"cpu", 8}, {"memoryMb", 8192}}, "setCapacity");
  Configure(Json{{"tenant", "grows"}, {"jobs", 1}, {"cpu", 0}, {"memoryMb", 0}, {"weight", 1}}, "setTenant");
  Submit("g-1", "grows", 1);
  Submit("g-2", "grows", 1);
  ASSERT_TRUE(Eventually([&] {
    return (Running("g-1") && Waiting("g-2")) || (Running("g-2") && Waiting("g-1"));
  })) << Dump();
  Configure(Json{{"tenant", "grows"}, {"jobs", 2}, {"cpu", 0}, {"memoryMb", 0}, {"weight", 1}}, "setTenant");
  EXPECT_TRUE(Eventually([&] { return Running("g-1") && Running("g-2"); })) << Dump();

  // The node's capacity: a job too big for it waits, then starts when it grows.
  Submit("g-3", "other", 16);
  ASSERT_TRUE(Eventually([&] { return Waiting("g-3"); })) << Dump();
  Configure(Json{{"cpu", 32}, {"memoryMb", 8192}}, "setCapacity");
  EXPECT_TRUE(Eventually([&] { return Running("g-3"); })) << Dump();
  for (const char* job : {"g-1", "g-2", "g-3"}) {
    if (Running(job)) Finish(job);
  }
}

}  // namespace
}  // namespace baton::batch
