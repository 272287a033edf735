// Deploy preflight (baton/preflight.h) over a real task hub: instances made by
// a real worker running v1 of an orchestrator, replayed against v2 (two
// activities swapped: flagged) and v3 (changed only after the point where the
// instances wait: passes), through the read-only readers of
// baton/store_reader.h while the store that owns the data stays open. On
// SQLite and (the Postgres/ copy, testing/test_store.h) on PostgreSQL.
#include <gtest/gtest.h>

#include <stdexcept>

#include <fstream>

#include "baton/client.h"
#include "baton/preflight.h"
#include "baton/registry.h"
#include "baton/store_reader.h"
#include "baton/worker.h"
#include "engine/preflight_versions.h"
#include "testing/test_store.h"
#include "testing/test_util.h"

namespace baton {
namespace {

using namespace std::chrono_literals;
namespace versions = testing::preflight;

class PreflightTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = testing::OpenTestStore(dir_.path(), nullptr);
    if (!store.ok()) {  // ends the test, not only this helper (its next line would use a null store)
      ADD_FAILURE() << store.status().ToString();
      throw std::runtime_error("no store: " + store.status().ToString());
    }
    store_ = std::move(*store);
    versions::RegisterV1(v1_);
    worker_ = std::make_unique<Worker>(*store_, v1_, WorkerOptions{});
    BATON_ASSERT_OK(worker_->Start());
    client_ = std::make_unique<Client>(*store_);
  }
  void TearDown() override {
    if (worker_) worker_->Stop();
  }

  // Starts a v1 instance and waits until it waits for "Approve".
  std::string StartWaiting(const std::string& id) {
    ScheduleOptions o;
    o.instance_id = id;
    auto started = client_->ScheduleNewOrchestration("Release", nullptr, o);
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    EXPECT_TRUE(testing::Eventually([&] {
      auto s = client_->GetState(id);
      return s.ok() && FromPayload(s->custom_status) == Json("awaiting approval");
    }));
    return id;
  }

  // A read-only reader of the same data, opened beside the live store.
  std::unique_ptr<StoreReader> OpenReader() {
#ifdef BATON_TEST_ON_POSTGRES
    std::string url;
    std::ifstream in(dir_.path() + "/postgres-url");
    std::getline(in, url);
    auto r = OpenPostgresStoreReader(url);
#else
    auto r = OpenSqliteStoreReader(dir_.path() + "/baton.db");
#endif
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }

  static const PreflightFinding* Find(const PreflightReport& r, const std::string& id) {
    for (const PreflightFinding& f : r.findings) {
      if (f.instance_id == id) return &f;
    }
    return nullptr;
  }

  testing::TempDir dir_;
  Registry v1_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Client> client_;
};

TEST_F(PreflightTest, FlagsSwappedActivitiesAndPassesChangesAfterTheCurrentPosition) {
  std::string waiting = StartWaiting("release-1");
  // A finished instance is not live: never checked.
  std::string done = StartWaiting("release-0");
  BATON_ASSERT_OK(client_->RaiseEvent(done, "Approve", true));
  auto finished = client_->WaitForCompletion(done, 60s);
  ASSERT_TRUE(finished.ok());
  ASSERT_EQ(finished->status, OrchestrationStatus::kCompleted);
  auto history_before = client_->GetHistory(waiting);
  ASSERT_TRUE(history_before.ok());

  std::unique_ptr<StoreReader> reader = OpenReader();
  ASSERT_NE(reader, nullptr);

  Registry v2;
  versions::RegisterV2(v2);
  auto broken = Preflight(*reader, v2);
  ASSERT_TRUE(broken.ok()) << broken.status().ToString();
  EXPECT_FALSE(broken->Safe());
  ASSERT_EQ(broken->findings.size(), 1u);
  EXPECT_EQ(broken->non_deterministic, 1);
  const PreflightFinding* f = Find(*broken, waiting);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->outcome, PreflightOutcome::kNonDeterministic);
  EXPECT_EQ(f->name, "Release");
  EXPECT_EQ(f->status, OrchestrationStatus::kRunning);
  ASSERT_TRUE(f->divergence.has_value());
  EXPECT_EQ(f->divergence->event_kind, "TaskScheduled");
  EXPECT_EQ(f->divergence->expected, "ScheduleTask 'Build'");
  EXPECT_EQ(f->divergence->actual, "ScheduleTask 'Test'");
  // The event it names is the one in history.
  ASSERT_LT(f->divergence->event_index, static_cast<int64_t>(history_before->size()));
  const HistoryEvent& at = (*history_before)[static_cast<size_t>(f->divergence->event_index)];
  ASSERT_TRUE(std::holds_alternative<events::TaskScheduled>(at.body));
  EXPECT_EQ(std::get<events::TaskScheduled>(at.body).name, "Build");
  EXPECT_EQ(at.event_id, f->divergence->event_id);

  Registry v3;
  versions::RegisterV3(v3);
  auto safe = Preflight(*reader, v3);
  ASSERT_TRUE(safe.ok()) << safe.status().ToString();
  EXPECT_TRUE(safe->Safe());
  ASSERT_EQ(safe->findings.size(), 1u);
  EXPECT_EQ(safe->passes, 1);
  EXPECT_EQ(safe->findings[0].outcome, PreflightOutcome::kPasses);
  EXPECT_EQ(safe->findings[0].events, static_cast<int64_t>(history_before->size()));

  // Nothing was written: same history, and the instance still runs v1 to the end.
  auto history_after = client_->GetHistory(waiting);
  ASSERT_TRUE(history_after.ok());
  EXPECT_EQ(history_after->size(), history_before->size());
  BATON_ASSERT_OK(client_->RaiseEvent(waiting, "Approve", true));
  auto end = client_->WaitForCompletion(waiting, 60s);
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(FromPayload(end->output), Json("shipped"));
}

TEST_F(PreflightTest, SuspendedInstancesAreCheckedAndUnknownOrchestratorsReported) {
  std::string id = StartWaiting("release-s");
  BATON_ASSERT_OK(client_->Suspend(id, "deploy window"));
  ASSERT_TRUE(testing::Eventually([&] {
    auto s = client_->GetState(id);
    return s.ok() && s->status == OrchestrationStatus::kSuspended;
  }));
  std::unique_ptr<StoreReader> reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  Registry v2;
  versions::RegisterV2(v2);
  auto report = Preflight(*reader, v2);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->findings.size(), 1u);
  EXPECT_EQ(report->findings[0].status, OrchestrationStatus::kSuspended);
  EXPECT_EQ(report->findings[0].outcome, PreflightOutcome::kNonDeterministic);

  Registry empty;
  (void)empty.AddOrchestrator("SomethingElse", [](OrchestrationContext&) -> Task<Json> { co_return nullptr; });
  auto unknown = Preflight(*reader, empty);
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->not_registered, 1);
  EXPECT_TRUE(unknown->Safe());  // not checked is not a failure; the CLI's --strict makes it one

  PreflightOptions bad;
  bad.max_instances = 0;
  EXPECT_EQ(Preflight(*reader, v2, bad).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PreflightTest, NewCodeThatThrowsOrEndsEarlyFails) {
  std::string id = StartWaiting("release-t");
  std::unique_ptr<StoreReader> reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  Registry throws;
  (void)throws.AddOrchestrator("Release", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CallActivity("Build", "v1");
    throw std::runtime_error("config key 'region' missing");
  });
  auto r1 = Preflight(*reader, throws);
  ASSERT_TRUE(r1.ok());
  ASSERT_EQ(r1->findings.size(), 1u);
  EXPECT_EQ(r1->findings[0].outcome, PreflightOutcome::kFails);
  EXPECT_NE(r1->findings[0].error.find("config key 'region' missing"), std::string::npos);

  Registry ends;
  (void)ends.AddOrchestrator("Release", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CallActivity("Build", "v1");
    co_return "early";
  });
  auto r2 = Preflight(*reader, ends);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->fails, 1);
  EXPECT_FALSE(r2->Safe());
}

#ifndef BATON_TEST_ON_POSTGRES
TEST(PreflightReaderTest, SqliteReaderRefusesAMissingOrForeignFile) {
  testing::TempDir dir;
  EXPECT_EQ(OpenSqliteStoreReader(dir.path() + "/none.db").status().code(), StatusCode::kNotFound);
  std::ofstream(dir.path() + "/junk.db") << "not a database";
  EXPECT_FALSE(OpenSqliteStoreReader(dir.path() + "/junk.db").ok());
}
#endif

}  // namespace
}  // namespace baton
