// RetentionPurger (batch/retention.h) on SQLite and PostgreSQL: it deletes
// exactly the finished instances and jobs (with their kept logs and
// secrets) that finished longer ago than their age, and nothing else.
#include "batch/retention.h"

#include <gtest/gtest.h>

#include <thread>

#include "baton/postgres_store.h"
#include "baton/registry.h"
#include "baton/sqlite_store.h"
#include "baton/worker.h"
#include "store/postgres/postgres_platform_stores.h"
#include "store/sqlite/sqlite_platform_stores.h"
#include "testing/postgres_test_db.h"
#include "testing/test_util.h"

namespace baton::batch {
namespace {

using namespace std::chrono_literals;
constexpr auto kWeek = std::chrono::seconds(7 * 86400);

struct Backend {
  std::unique_ptr<Store> hub;
  std::unique_ptr<store::JobLogStore> logs;
  std::unique_ptr<store::SecretStore> secrets;
  std::unique_ptr<store::KeyStore> keys;
};

Result<Backend> OpenBackend(const std::string& kind, const std::string& dir) {
  Backend b;
  if (kind == "Sqlite") {
    SqliteStoreOptions options;
    options.path = dir + "/baton.db";
    BATON_ASSIGN_OR_RETURN(b.hub, OpenSqliteStore(options));
    BATON_ASSIGN_OR_RETURN(b.logs, store::OpenSqliteJobLogStore(dir + "/job-logs.db"));
    BATON_ASSIGN_OR_RETURN(b.secrets, store::OpenSqliteSecretStore(dir + "/secrets.db"));
    b.keys = store::OpenFileKeyStore(dir);
    return b;
  }
  const std::string url = testing::CreateTestDatabase();
  if (url.empty()) return UnavailableError("no test database (BATON_TEST_POSTGRES_URL)");
  PostgresStoreOptions options;
  options.url = url;
  BATON_ASSIGN_OR_RETURN(b.hub, OpenPostgresStore(options));
  BATON_ASSIGN_OR_RETURN(b.logs, store::OpenPostgresJobLogStore(url));
  BATON_ASSIGN_OR_RETURN(b.secrets, store::OpenPostgresSecretStore(url));
  BATON_ASSIGN_OR_RETURN(b.keys, store::OpenPostgresKeyStore(url));
  return b;
}

class RetentionTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto b = OpenBackend(GetParam(), dir_.path());
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    backend_ = std::move(*b);
    BATON_ASSERT_OK(registry_.AddOrchestrator("Done", [](OrchestrationContext& ctx) -> Task<Json> {
      co_return ctx.GetInput();
    }));
    BATON_ASSERT_OK(registry_.AddOrchestrator("Fail", [](OrchestrationContext&) -> Task<Json> {
      throw std::runtime_error("failed on purpose");
      co_return nullptr;
    }));
    BATON_ASSERT_OK(registry_.AddOrchestrator("Wait", [](OrchestrationContext& ctx) -> Task<Json> {
      co_return co_await ctx.WaitForExternalEvent<Json>("Go");
    }));
    worker_ = std::make_unique<Worker>(*backend_.hub, registry_);
    BATON_ASSERT_OK(worker_->Start());
    client_ = std::make_unique<Client>(*backend_.hub);
    auto vault = SecretVault::Open(*backend_.secrets, *backend_.keys);
    ASSERT_TRUE(vault.ok()) << vault.status().ToString();
    vault_ = std::move(*vault);
    logs_ = std::make_unique<JobLogs>(*backend_.logs);
  }
  void TearDown() override {
    if (worker_) worker_->Stop();
  }

  // Starts `name` as `id` and, unless it is "Wait", waits until it finished.
  void Run(const std::string& id, const std::string& name = "Done") {
    ScheduleOptions options;
    options.instance_id = id;
    auto started = client_->ScheduleNewOrchestration(name, Json{{"id", id}}, options);
    ASSERT_TRUE(started.ok()) << id << ": " << started.status().ToString();
    if (name == "Wait") return;
    auto state = client_->WaitForCompletion(id, 60s);
    ASSERT_TRUE(state.ok()) << id << ": " << state.status().ToString();
    ASSERT_TRUE(IsTerminal(state->status)) << id;
  }
  // A job instance with kept logs and a sealed secret, like the job API's.
  void RunJob(const std::string& id) {
    Run(id);
    runtime::LogLine line;
    line.time = SystemClock()->Now();
    line.text = "output of " + id;
    BATON_ASSERT_OK(logs_->Save(id, 1, {line}));
    BATON_ASSERT_OK(backend_.secrets->Replace(id, {store::SealedSecret{"main", "env", "TOKEN", "sealed-bytes"}}));
  }
  bool Exists(const std::string& id) { return client_->GetState(id).ok(); }
  bool HasLogs(const std::string& id) { return logs_->Read(id, 1, 0, 10).ok(); }
  bool HasSecrets(const std::string& id) {
    auto s = backend_.secrets->Get(id);
    return s.ok() && !s->empty();
  }
  // A time strictly between what finished before and what finishes after.
  static TimePoint Boundary() {
    std::this_thread::sleep_for(20ms);  // the stores keep milliseconds
    TimePoint t = SystemClock()->Now();
    std::this_thread::sleep_for(20ms);
    return t;
  }
  RetentionPurger Purger(std::optional<std::chrono::seconds> global,
                         std::map<std::string, std::chrono::seconds> tenants, TimePoint now) {
    RetentionOptions o;
    o.global_age = global;
    o.tenant_ages = [tenants]() -> Result<std::map<std::string, std::chrono::seconds>> { return tenants; };
    o.clock = std::make_shared<ManualClock>(now);
    o.batch_size = 2;  // several batches even in a small test
    o.min_pause = 1ms;
    return RetentionPurger(*client_, vault_.get(), logs_.get(), o);
  }

  testing::TempDir dir_;
  Backend backend_;
  Registry registry_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<SecretVault> vault_;
  std::unique_ptr<JobLogs> logs_;
};

const std::string kOldJob = "job.acme.00000000000000a1";
const std::string kNewJob = "job.acme.00000000000000b2";

TEST_P(RetentionTest, PurgesExactlyWhatFinishedLongerAgoThanTheAge) {
  // Old: finished before the boundary; new: after it.
  Run("acme::old-done");
  Run("acme::old-failed", "Fail");
  Run("plain-old");
  Run("keep::old");  // its tenant keeps everything
  RunJob(kOldJob);
  Run("acme::running", "Wait");  // started long ago, still running
  Run("plain-terminated", "Wait");
  BATON_ASSERT_OK(client_->Terminate("plain-terminated", "stopped"));
  ASSERT_TRUE(client_->WaitForCompletion("plain-terminated", 60s).ok());
  const TimePoint boundary = Boundary();
  Run("acme::new-done");
  Run("plain-new");
  RunJob(kNewJob);

  // A week after the boundary, with a week's retention.
  RetentionPurger purger = Purger(kWeek, {{"keep", kKeepForever}}, boundary + kWeek);
  auto report = purger.RunOnce();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->instances_purged, 5);
  EXPECT_EQ(report->jobs_purged, 1);
  for (const char* gone : {"acme::old-done", "acme::old-failed", "plain-old", "plain-terminated"}) {
    EXPECT_FALSE(Exists(gone)) << gone;
  }
  EXPECT_FALSE(Exists(kOldJob));
  EXPECT_FALSE(HasLogs(kOldJob));
  EXPECT_FALSE(HasSecrets(kOldJob));
  for (const char* kept : {"keep::old", "acme::running", "acme::new-done", "plain-new"}) {
    EXPECT_TRUE(Exists(kept)) << kept;
  }
  EXPECT_TRUE(Exists(kNewJob));
  EXPECT_TRUE(HasLogs(kNewJob));
  EXPECT_TRUE(HasSecrets(kNewJob));

  // A second pass finds nothing more.
  auto again = purger.RunOnce();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->instances_purged, 0);
}

TEST_P(RetentionTest, ATenantAgeOverridesTheGlobalOne) {
  Run("acme::old");
  RunJob(kOldJob);
  Run("other::old");
  Run("plain-old");
  const TimePoint boundary = Boundary();
  Run("acme::new");

  // One day after the boundary: acme keeps a day, the rest a week.
  RetentionPurger purger = Purger(kWeek, {{"acme", std::chrono::seconds(86400)}}, boundary + 24h);
  auto report = purger.RunOnce();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->instances_purged, 2);
  EXPECT_FALSE(Exists("acme::old"));
  EXPECT_FALSE(Exists(kOldJob));
  EXPECT_FALSE(HasLogs(kOldJob));
  EXPECT_TRUE(Exists("acme::new"));
  EXPECT_TRUE(Exists("other::old"));
  EXPECT_TRUE(Exists("plain-old"));

  // No global age: only tenants with their own are ever purged.
  RetentionPurger no_global = Purger(std::nullopt, {}, boundary + 3650 * 24h);
  auto none = no_global.RunOnce();
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->instances_purged, 0);
  EXPECT_TRUE(Exists("other::old"));
}

TEST_P(RetentionTest, TheBackgroundPassPurgesInBatchesAndStops) {
  for (int i = 0; i < 7; ++i) Run("bulk-" + std::to_string(i));
  const TimePoint boundary = Boundary();
  Run("bulk-new");
  RetentionOptions o;
  o.global_age = std::chrono::seconds(60);
  o.clock = std::make_shared<ManualClock>(boundary + 60s);
  o.batch_size = 3;
  o.min_pause = 1ms;
  o.interval = 50ms;
  RetentionPurger purger(*client_, vault_.get(), logs_.get(), o);
  purger.Start();
  ASSERT_TRUE(testing::Eventually([&] { return purger.Totals().instances_purged == 7; }));
  purger.Stop();
  EXPECT_EQ(purger.Totals().instances_purged, 7);
  EXPECT_TRUE(Exists("bulk-new"));
}

// The purge beside live work: 200 orchestrations run while 600 old ones are
// purged in batches of 100. Every new one completes and stays, every old
// one goes; the printed figures compare the run with one without a purge
// (same process, same store), and give the purge's rate.
TEST_P(RetentionTest, PurgesBesideLiveWorkWithoutTouchingIt) {
  constexpr int kOld = 600, kNew = 200;
  std::vector<std::string> old_ids;
  for (int i = 0; i < kOld; ++i) {
    ScheduleOptions options;
    options.instance_id = "old-" + std::to_string(i);
    ASSERT_TRUE(client_->ScheduleNewOrchestration("Done", Json(i), options).ok());
    old_ids.push_back(options.instance_id);
  }
  for (const std::string& id : old_ids) ASSERT_TRUE(client_->WaitForCompletion(id, 60s).ok()) << id;
  const TimePoint boundary = Boundary();
  // Starts kNew orchestrations named `prefix`-i and waits for all; seconds.
  auto run_batch = [&](const std::string& prefix) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kNew; ++i) {
      ScheduleOptions options;
      options.instance_id = prefix + std::to_string(i);
      EXPECT_TRUE(client_->ScheduleNewOrchestration("Done", Json(i), options).ok());
    }
    for (int i = 0; i < kNew; ++i) {
      auto done = client_->WaitForCompletion(prefix + std::to_string(i), 60s);
      EXPECT_TRUE(done.ok() && done->status == OrchestrationStatus::kCompleted) << prefix << i;
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const double alone = run_batch("alone-");
  RetentionOptions o;
  o.global_age = std::chrono::seconds(60);
  o.clock = std::make_shared<ManualClock>(boundary + 60s);  // only the old ones are due
  o.batch_size = 100;
  o.interval = std::chrono::hours(1);  // one pass
  RetentionPurger purger(*client_, vault_.get(), logs_.get(), o);
  const auto purge_start = std::chrono::steady_clock::now();
  purger.Start();
  const double beside = run_batch("beside-");
  ASSERT_TRUE(testing::Eventually([&] { return purger.Totals().instances_purged == kOld; }, 120s));
  const double purge_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - purge_start).count();
  purger.Stop();
  EXPECT_EQ(purger.Totals().instances_purged, kOld);
  for (int i = 0; i < kOld; i += 50) EXPECT_FALSE(Exists(old_ids[i])) << old_ids[i];
  for (int i = 0; i < kNew; ++i) {
    EXPECT_TRUE(Exists("alone-" + std::to_string(i)));
    EXPECT_TRUE(Exists("beside-" + std::to_string(i)));
  }
  std::printf("%s: %d orchestrations %.2f s alone, %.2f s beside the purge (x%.2f); purged %d in %.2f s (%.0f/s)\n",
              GetParam().c_str(), kNew, alone, beside, beside / alone, kOld, purge_s, kOld / purge_s);
}

TEST(RetentionTenantOf, NamesTheTenantOfHubAndJobIds) {
  EXPECT_EQ(TenantOfInstance("acme::x"), "acme");
  EXPECT_EQ(TenantOfInstance("job.acme.0123456789abcdef"), "acme");
  EXPECT_EQ(TenantOfInstance("plain"), "");
  EXPECT_EQ(TenantOfInstance("job.broken"), "");
  EXPECT_EQ(TenantOfInstance("@baton.scheduler@main"), "");
}

INSTANTIATE_TEST_SUITE_P(Backends, RetentionTest, ::testing::Values("Sqlite", "Postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace baton::batch
