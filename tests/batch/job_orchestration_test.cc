// The job orchestration against the real dockerd (scripts/docker-up): exit
// codes, restart policies, OOM, timeout, cancel, secrets kept out of history,
// and no container left behind.
#include "batch/job_orchestration.h"

#include <gtest/gtest.h>

#include "baton/client.h"
#include "baton/sqlite_store.h"
#include "baton/worker.h"
#include "batch/job_logs.h"
#include "batch/job_monitor.h"
#include "batch/scheduler.h"
#include "testing/test_image.h"
#include "testing/platform_stores.h"
#include "testing/test_util.h"

namespace baton::batch {
namespace {

using namespace std::chrono_literals;
using testing::Eventually;

class JobTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { suite_.Prepare(BATON_TESTJOB, BATON_RUN_DIR); }
  static void TearDownTestSuite() { suite_.Release(); }


  void SetUp() override {
    ASSERT_TRUE(suite_.setup->ok()) << suite_.setup->ToString();
    BATON_ASSERT_OK(platform_.Open(dir_.path()));
    vault_ = platform_.vault.get();
    BATON_ASSERT_OK(registry_.AddEntity(kSchedulerEntity, SchedulerEntity));
    logs_ = platform_.logs.get();
    JobServices services;
    services.runtime = suite_.docker;
    services.vault = vault_;
    services.logs = logs_;
    services.node_id = node_;
    services.registries = {testing::LocalRegistryCredentials(BATON_RUN_DIR)};
    BATON_ASSERT_OK(RegisterJobFunctions(registry_, services));
    SqliteStoreOptions options;
    options.path = dir_.File("hub.db");
    auto store = OpenSqliteStore(options);
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    WorkerOptions worker_options;
    worker_ = std::make_unique<Worker>(*store_, registry_, worker_options);
    BATON_ASSERT_OK(worker_->Start());
    client_ = std::make_unique<Client>(*store_);
    JobMonitorOptions monitor_options;
    monitor_options.node_id = node_;
    monitor_ = std::make_unique<JobMonitor>(*suite_.docker, *client_, monitor_options);
    monitor_->Start();
    BATON_ASSERT_OK(client_->SignalEntity(EntityId(kSchedulerEntity, kSchedulerKey), "setCapacity",
                                          Json{{"cpu", 2}, {"memoryMb", 4096}}));
  }
  void TearDown() override {
    if (monitor_) monitor_->Stop();
    if (worker_) worker_->Stop();
  }

  // Submits a job (the main container runs testjob with `args`).
  std::string Submit(const std::string& job, std::vector<std::string> args, Json extra = Json::object()) {
    Json j = {{"name", job}, {"image", suite_.image->digest}, {"args", args}, {"cpu", 0.5}, {"memoryMb", 64}};
    for (auto& [k, v] : extra.items()) j[k] = v;
    auto spec = ParseJobSpec(j);
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    ScheduleOptions o;
    o.instance_id = std::string(kJobInstancePrefix) + "acme." + job;
    EXPECT_TRUE(vault_->Put(o.instance_id, *spec).ok());
    auto id = client_->ScheduleNewOrchestration(kJobOrchestrator, JobInput(o.instance_id, "acme", *spec, job), o);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return o.instance_id;
  }
  Json Result(const std::string& instance) {
    auto s = client_->WaitForCompletion(instance, 120s);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return Json();
    EXPECT_EQ(s->status, OrchestrationStatus::kCompleted) << s->output << (s->failure ? s->failure->error_message : "");
    return FromPayload(s->output);
  }
  size_t ContainersOf(const std::string& job) {
    auto list = suite_.docker->ListByLabels({{"baton.job", std::string(kJobInstancePrefix) + "acme." + job}});
    return list.ok() ? list->size() : 999;
  }

  static testing::SuiteImage suite_;
  testing::TempDir dir_;
  const std::string node_ = "test-" + std::to_string(getpid());
  testing::SqlitePlatform platform_;
  SecretVault* vault_ = nullptr;
  JobLogs* logs_ = nullptr;
  std::unique_ptr<JobMonitor> monitor_;
  Registry registry_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Client> client_;
};

testing::SuiteImage JobTest::suite_;

std::string Unique(const std::string& what) { return "t" + std::to_string(getpid()) + "-" + what; }

TEST_F(JobTest, ACompletedJobReportsItsExitCodeAndLogsAndLeavesNoContainer) {
  const std::string job = Unique("ok");
  Json r = Result(Submit(job, {"print", "2"}));
  EXPECT_EQ(r["status"], "Completed");
  EXPECT_EQ(r["exitCode"], 0);
  EXPECT_EQ(r["attempts"], 1);
  EXPECT_EQ(r["oomKilled"], false);
  EXPECT_NE(r["logsTail"].dump().find("progress 2/2"), std::string::npos) << r.dump();
  EXPECT_NE(r["logsTail"].dump().find("stderr: warning 1/2"), std::string::npos) << r.dump();
  EXPECT_TRUE(r["durations"].contains("finished"));
  EXPECT_EQ(ContainersOf(job), 0u);
}

TEST_F(JobTest, TheImageIsPinnedToADigestAndTheLogsAreKept) {
  const std::string job = Unique("pinned");
  Json r = Result(Submit(job, {"print", "30"}));
  EXPECT_EQ(r["status"], "Completed");
  auto lines = logs_->Read(std::string(kJobInstancePrefix) + "acme." + job, 1, 0, 1000);
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  EXPECT_EQ(lines->size(), 60u);  // more than the tail
  size_t stderr_lines = 0;
  for (const runtime::LogLine& l : *lines) stderr_lines += l.stream == runtime::LogLine::Stream::kStderr;
  EXPECT_EQ(stderr_lines, 30u);
  auto history = client_->GetHistory(std::string(kJobInstancePrefix) + "acme." + job);
  ASSERT_TRUE(history.ok());
  bool pinned = false;
  for (const HistoryEvent& e : *history) {
    if (auto* t = std::get_if<events::TaskScheduled>(&e.body); t && t->name == "baton.CreateGroup") {
      pinned = t->input.find(suite_.image->digest) != std::string::npos;
    }
  }
  EXPECT_TRUE(pinned);
}

TEST_F(JobTest, AVanishedContainerIsReportedLostAndThePolicyRestartsTheJob) {
  const std::string job = Unique("lost");
  std::string instance = Submit(job, {"sleep", "120"},
                                Json{{"restartPolicy", {{"policy", "OnFailure"}, {"maxAttempts", 2}, {"backoffSeconds", 0}}},
                                     {"timeoutSeconds", 20}});
  auto phase = [&] {
    auto s = client_->GetState(instance);
    Json status = s.ok() ? FromPayload(s->custom_status) : Json();
    return status.is_object() ? status : Json::object();
  };
  ASSERT_TRUE(Eventually([&] { return phase().value("phase", "") == "running"; }));
  // Remove the attempt's container behind Baton's back, without a die event
  // reaching the orchestration first: stop the monitor's watcher by removing
  // the group while the monitor is stopped.
  monitor_->Stop();
  BATON_ASSERT_OK(suite_.docker->DeleteGroup(JobGroupName(instance, 1)));
  // The die event was missed; the reconciler finds the attempt without a container.
  ASSERT_TRUE(Eventually([&] {
    auto report = monitor_->ReconcileOnce();
    return report.ok() && report->containers_lost == 1;
  }));
  ASSERT_TRUE(Eventually([&] { return phase().value("attempt", 0) == 2 && phase().value("phase", "") == "running"; },
                         60s));
  BATON_ASSERT_OK(client_->RaiseEvent(instance, kCancelEvent));
  Json r = Result(instance);
  EXPECT_EQ(r["status"], "Canceled");
  EXPECT_EQ(r["attempts"], 2);
  EXPECT_NE(r["attemptResults"][0].value("error", "").find("ContainerLost"), std::string::npos) << r.dump();
  EXPECT_EQ(ContainersOf(job), 0u);
}

TEST_F(JobTest, TheReconcilerRemovesGroupsNoLiveAttemptOwns) {
  runtime::GroupSpec orphan;
  orphan.name = "t" + std::to_string(getpid()) + "-orphan-a1";
  orphan.labels = {{"baton.node", node_}, {"baton.instance", "job.acme.ghost"}, {"baton.attempt", "1"}};
  runtime::ContainerSpec c;
  c.name = "main";
  c.image = suite_.image->digest;
  c.args = {"sleep", "60"};
  orphan.containers.push_back(c);
  ASSERT_TRUE(suite_.docker->CreateGroup(orphan).ok());
  auto report = monitor_->ReconcileOnce();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->groups_removed, 1);
  EXPECT_EQ(suite_.docker->InspectGroup(orphan.name).status().code(), StatusCode::kNotFound);
}

TEST_F(JobTest, OnFailureRunsExactlyTheConfiguredAttempts) {
  const std::string job = Unique("fail");
  Json r = Result(Submit(job, {"exit", "3"},
                         Json{{"restartPolicy", {{"policy", "OnFailure"}, {"maxAttempts", 3}, {"backoffSeconds", 0}}}}));
  EXPECT_EQ(r["status"], "Failed");
  EXPECT_EQ(r["exitCode"], 3);
  EXPECT_EQ(r["attempts"], 3);
  EXPECT_EQ(r["attemptResults"].size(), 3u);
  EXPECT_EQ(ContainersOf(job), 0u);
}

TEST_F(JobTest, AnOomKilledJobSaysSo) {
  const std::string job = Unique("oom");
  // The delay: see DockerRuntimeTest.MemoryLimitIsEnforcedAndCpuLimitVisible.
  Json r = Result(Submit(job, {"alloc", "256", "300"}, Json{{"memoryMb", 32}}));
  EXPECT_EQ(r["status"], "Failed");
  EXPECT_EQ(r["oomKilled"], true) << r.dump();
}

TEST_F(JobTest, TimeoutAndCancelStopTheContainer) {
  const std::string slow = Unique("slow");
  Json timed_out = Result(Submit(slow, {"sleep", "120"}, Json{{"timeoutSeconds", 1}}));
  EXPECT_EQ(timed_out["status"], "Failed");
  EXPECT_EQ(timed_out["attemptResults"][0]["timedOut"], true);
  EXPECT_EQ(ContainersOf(slow), 0u);

  const std::string job = Unique("cancel");
  std::string instance = Submit(job, {"sleep", "120"});
  ASSERT_TRUE(Eventually([&] {
    auto s = client_->GetState(instance);
    Json status = s.ok() ? FromPayload(s->custom_status) : Json();
    return status.is_object() && status.value("phase", "") == "running";
  }));
  BATON_ASSERT_OK(client_->RaiseEvent(instance, kCancelEvent));
  Json r = Result(instance);
  EXPECT_EQ(r["status"], "Canceled");
  EXPECT_EQ(ContainersOf(job), 0u);
}

TEST_F(JobTest, SecretsReachTheJobButNeverItsHistory) {
  const std::string job = Unique("secret");
  const std::string secret = "pw-" + std::to_string(getpid()) + "-xyzzy";
  std::string instance = Submit(job, {"env", "TOKEN"}, Json{{"secretEnv", {{"TOKEN", secret}}}});
  Json r = Result(instance);
  EXPECT_EQ(r["status"], "Completed");
  EXPECT_NE(r["logsTail"].dump().find("TOKEN=" + secret), std::string::npos);  // the job saw it
  // The job's own output (its logs, in the result) is the job's business;
  // Baton's records of the job — its input and the scheduled work — never hold it.
  auto history = client_->GetHistory(instance);
  ASSERT_TRUE(history.ok());
  auto state = client_->GetState(instance);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->input.find(secret), std::string::npos);
  for (const HistoryEvent& e : *history) {
    if (std::holds_alternative<events::ExecutionStarted>(e.body) ||
        std::holds_alternative<events::TaskScheduled>(e.body)) {
      EXPECT_EQ(SerializeEvent(e).find(secret), std::string::npos) << SerializeEvent(e);
    }
  }
}

}  // namespace
}  // namespace baton::batch
