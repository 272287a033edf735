// Transient faults in the job orchestration and the job monitor, with real
// containers on the shared dockerd and outages injected through a
// FaultyRuntime (tests/testing/faulty_runtime.h) at exact moments: a job
// waits while the runtime or the registry is away (saying so in its custom
// status), then completes with its container started once; errors that will
// not change fail at once; a Cancel and the job's timeout end the wait; an
// image already on the node needs no registry; the monitor never takes an
// unreachable runtime for a vanished container. The real outages (a private
// dockerd and a private registry stopped for 30 s) are in
// tests/e2e/transient_fault_e2e_test.cc.
#include <gtest/gtest.h>

#include "baton/client.h"
#include "baton/sqlite_store.h"
#include "baton/worker.h"
#include "batch/job_logs.h"
#include "batch/job_monitor.h"
#include "batch/job_orchestration.h"
#include "batch/job_view.h"
#include "batch/scheduler.h"
#include "runtime/docker/docker_client.h"
#include "testing/faulty_runtime.h"
#include "testing/test_image.h"
#include "testing/platform_stores.h"
#include "testing/test_util.h"

namespace baton::batch {
namespace {

using namespace std::chrono_literals;
using testing::Eventually;
using testing::FaultyRuntime;
using Fault = FaultyRuntime::Fault;

std::string Unique(const std::string& what) { return "t" + std::to_string(getpid()) + "-" + what; }

class TransientFaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { suite_.Prepare(BATON_TESTJOB, BATON_RUN_DIR); }
  static void TearDownTestSuite() { suite_.Release(); }

  // The platform's registry credentials for this fixture.
  virtual runtime::RegistryCredentials Credentials() { return testing::LocalRegistryCredentials(BATON_RUN_DIR); }

  void SetUp() override {
    ASSERT_TRUE(suite_.setup->ok()) << suite_.setup->ToString();
    faulty_ = std::make_unique<FaultyRuntime>(*suite_.docker);
    BATON_ASSERT_OK(platform_.Open(dir_.path()));
    vault_ = platform_.vault.get();
    BATON_ASSERT_OK(registry_.AddEntity(kSchedulerEntity, SchedulerEntity));
    logs_ = platform_.logs.get();
    JobServices services;
    services.runtime = faulty_.get();
    services.vault = vault_;
    services.logs = logs_;
    services.node_id = node_;
    services.registries = {Credentials()};
    BATON_ASSERT_OK(RegisterJobFunctions(registry_, services));
    SqliteStoreOptions options;
    options.path = dir_.File("hub.db");
    auto store = OpenSqliteStore(options);
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    worker_ = std::make_unique<Worker>(*store_, registry_, WorkerOptions());
    BATON_ASSERT_OK(worker_->Start());
    client_ = std::make_unique<Client>(*store_);
    JobMonitorOptions monitor_options;
    monitor_options.node_id = node_;
    monitor_options.reconcile_interval = 1s;
    monitor_ = std::make_unique<JobMonitor>(*faulty_, *client_, monitor_options);
    monitor_->Start();
    BATON_ASSERT_OK(client_->SignalEntity(EntityId(kSchedulerEntity, kSchedulerKey), "setCapacity",
                                          Json{{"cpu", 2}, {"memoryMb", 4096}}));
  }
  void TearDown() override {
    faulty_->Set(Fault::kNone);
    if (monitor_) monitor_->Stop();
    if (worker_) worker_->Stop();
    runtime::RemoveOrphanGroups(*suite_.docker, {{"baton.node", node_}}, [](const std::string&) { return false; })
        .status()
        .IgnoreError();
  }

  std::string Submit(const std::string& job, const std::string& image, std::vector<std::string> args,
                     Json extra = Json::object()) {
    Json j = {{"name", job}, {"image", image}, {"args", args}, {"cpu", 0.5}, {"memoryMb", 64}};
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
  Json Custom(const std::string& instance) {
    auto s = client_->GetState(instance);
    Json status = s.ok() ? FromPayload(s->custom_status) : Json();
    return status.is_object() ? status : Json::object();
  }
  // Waits until the job says it waits on `reason` after at least `failures` failed tries.
  Json AwaitWaitingOn(const std::string& instance, const std::string& reason, int failures = 2) {
    Json status;
    Eventually(
        [&] {
          status = Custom(instance);
          return status.contains("waitingOn") && status["waitingOn"].value("reason", "") == reason &&
                 status["waitingOn"].value("failures", 0) >= failures;
        },
        60s);
    return status;
  }
  Json Timeline(const std::string& instance) {
    auto history = client_->GetHistory(instance);
    return history.ok() ? JobTimeline(*history) : Json::array();
  }
  int Count(const Json& timeline, const std::string& type) {
    int n = 0;
    for (const Json& e : timeline) n += e.value("type", "") == type;
    return n;
  }
  // Docker's "start" events of the job's containers since `since`, by container.
  std::map<std::string, int> Starts(const std::string& instance, TimePoint since) {
    std::map<std::string, int> starts;
    suite_.docker
        ->WatchEvents(
            {{"baton.job", instance}},
            [&](const runtime::ContainerEvent& e) {
              if (e.action == "start") ++starts[e.container_id];
              return true;
            },
            1500ms, since)
        .IgnoreError();
    return starts;
  }
  size_t ContainersOf(const std::string& instance) {
    auto list = suite_.docker->ListByLabels({{"baton.job", instance}});
    return list.ok() ? list->size() : 999;
  }

  static testing::SuiteImage suite_;
  testing::TempDir dir_;
  const std::string node_ = "tf-" + std::to_string(getpid());
  std::unique_ptr<FaultyRuntime> faulty_;
  testing::SqlitePlatform platform_;
  SecretVault* vault_ = nullptr;
  JobLogs* logs_ = nullptr;
  std::unique_ptr<JobMonitor> monitor_;
  Registry registry_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Client> client_;
};

testing::SuiteImage TransientFaultTest::suite_;

TEST_F(TransientFaultTest, ARuntimeOutageAtSubmitIsWaitedOutAndTheJobCompletes) {
  const TimePoint since = std::chrono::system_clock::now() - 1s;
  faulty_->Set(Fault::kRuntimeDown);
  std::string instance = Submit(Unique("outage"), suite_.image->digest, {"exit", "0"});
  Json waiting = AwaitWaitingOn(instance, "runtime");
  ASSERT_TRUE(waiting.contains("waitingOn")) << waiting.dump();
  EXPECT_EQ(waiting.value("phase", ""), "pulling") << waiting.dump();
  EXPECT_NE(waiting["waitingOn"].value("lastError", "").find("RuntimeUnavailable"), std::string::npos) << waiting.dump();
  TimePoint retry_at;
  EXPECT_TRUE(ParseIso8601(waiting["waitingOn"].value("retryAt", ""), &retry_at)) << waiting.dump();
  auto state = client_->GetState(instance);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->status, OrchestrationStatus::kRunning);
  EXPECT_EQ(JobView(*state, Json())["waitingOn"]["reason"], "runtime");

  faulty_->Set(Fault::kNone);
  Json r = Result(instance);
  EXPECT_EQ(r["status"], "Completed") << r.dump();
  EXPECT_EQ(r["exitCode"], 0);
  EXPECT_EQ(r["attempts"], 1);
  Json timeline = Timeline(instance);
  ASSERT_EQ(Count(timeline, "Waiting"), 1) << timeline.dump(1);
  for (const Json& e : timeline) {
    if (e["type"] == "Waiting") {
      EXPECT_GE(e.value("failures", 0), 2) << e.dump();
    }
  }
  auto starts = Starts(instance, since);
  EXPECT_EQ(starts.size(), 1u);
  for (const auto& [id, n] : starts) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(ContainersOf(instance), 0u);
  EXPECT_FALSE(Custom(instance).contains("waitingOn"));
}

TEST_F(TransientFaultTest, AStartWhoseAnswerWasLostIsNotRepeated) {
  const TimePoint since = std::chrono::system_clock::now() - 1s;
  faulty_->FailAfterNextStart();  // the container starts; the activity hears "unreachable"
  std::string instance = Submit(Unique("lost-answer"), suite_.image->digest, {"sleep", "2"});
  Json waiting = AwaitWaitingOn(instance, "runtime", 1);
  EXPECT_EQ(waiting.value("phase", ""), "starting") << waiting.dump();
  faulty_->Set(Fault::kNone);
  Json r = Result(instance);
  EXPECT_EQ(r["status"], "Completed") << r.dump();
  auto starts = Starts(instance, since);
  EXPECT_EQ(starts.size(), 1u);
  for (const auto& [id, n] : starts) EXPECT_EQ(n, 1) << "container " << id << " started " << n << " times";
  EXPECT_EQ(ContainersOf(instance), 0u);
}

TEST_F(TransientFaultTest, AnOutageWhileTheJobRunsNeitherLosesItsContainerNorItsExit) {
  std::string instance = Submit(Unique("running"), suite_.image->digest, {"sleep", "3"});
  ASSERT_TRUE(Eventually([&] { return Custom(instance).value("phase", "") == "running"; }, 60s));
  faulty_->Set(Fault::kRuntimeDown);
  // The container exits while the runtime is "away"; the monitor keeps
  // failing to list, inspect and watch, and must conclude nothing from it.
  std::this_thread::sleep_for(6s);
  auto pass = monitor_->ReconcileOnce();
  EXPECT_FALSE(pass.ok());
  EXPECT_EQ(Custom(instance).value("phase", ""), "running");
  EXPECT_GT(faulty_->failed_calls(), 0);
  faulty_->Set(Fault::kNone);
  Json r = Result(instance);
  EXPECT_EQ(r["status"], "Completed") << r.dump();
  EXPECT_EQ(r["exitCode"], 0) << r.dump();
  EXPECT_FALSE(r.contains("error")) << r.dump();
  Json timeline = Timeline(instance);
  EXPECT_EQ(Count(timeline, "ContainerLost"), 0) << timeline.dump(1);
  EXPECT_EQ(ContainersOf(instance), 0u);
}

TEST_F(TransientFaultTest, ErrorsThatWillNotChangeFailTheJobAtOnce) {
  // A digest no registry has: NotFound, one try, no wait.
  const std::string missing = "127.0.0.1:5000/baton-test/testjob@sha256:" + std::string(64, '0');
  std::string instance = Submit(Unique("missing"), missing, {"exit", "0"});
  Json r = Result(instance);
  EXPECT_EQ(r["status"], "Failed") << r.dump();
  EXPECT_EQ(r.value("error", "").rfind("NotFound", 0), 0u) << r.dump();
  Json timeline = Timeline(instance);
  EXPECT_EQ(Count(timeline, "Waiting"), 0) << timeline.dump(1);
  EXPECT_EQ(Count(timeline, "Error"), 1) << timeline.dump(1);
}

TEST_F(TransientFaultTest, ACancelEndsTheWaitAndLeavesNothing) {
  faulty_->Set(Fault::kRuntimeDown);
  std::string instance = Submit(Unique("cancel"), suite_.image->digest, {"exit", "0"});
  AwaitWaitingOn(instance, "runtime");
  BATON_ASSERT_OK(client_->RaiseEvent(instance, kCancelEvent));
  Json r = Result(instance);
  EXPECT_EQ(r["status"], "Canceled") << r.dump();
  faulty_->Set(Fault::kNone);
  EXPECT_EQ(ContainersOf(instance), 0u);
}

TEST_F(TransientFaultTest, TheWaitIsBoundedByTheJobsTimeout) {
  faulty_->Set(Fault::kRuntimeDown);
  std::string instance = Submit(Unique("bounded"), suite_.image->digest, {"exit", "0"}, Json{{"timeoutSeconds", 3}});
  Json r = Result(instance);
  EXPECT_EQ(r["status"], "Failed") << r.dump();
  EXPECT_EQ(r.value("error", "").rfind("RuntimeUnavailable", 0), 0u) << r.dump();
  EXPECT_NE(r.value("error", "").find("timeoutSeconds"), std::string::npos) << r.dump();
}

TEST_F(TransientFaultTest, AnImageOnTheNodeNeedsNoRegistry) {
  faulty_->Set(Fault::kRegistryDown);
  // Pinned by digest and on the node: not even a pull is tried.
  std::string by_digest = Submit(Unique("digest"), suite_.image->digest, {"exit", "0"});
  Json r = Result(by_digest);
  EXPECT_EQ(r["status"], "Completed") << r.dump();
  EXPECT_EQ(faulty_->pulls(), 0);
  Json timeline = Timeline(by_digest);
  ASSERT_GE(timeline.size(), 2u);
  EXPECT_EQ(timeline[1].value("source", ""), "node") << timeline.dump(1);

  // A tag: the registry is asked first; while it is away, the tag as the node has it.
  std::string by_tag = Submit(Unique("tag"), suite_.image->tag, {"exit", "0"});
  r = Result(by_tag);
  EXPECT_EQ(r["status"], "Completed") << r.dump();
  EXPECT_EQ(faulty_->pulls(), 1);
  timeline = Timeline(by_tag);
  EXPECT_EQ(timeline[1].value("image", ""), suite_.image->digest) << timeline.dump(1);
  EXPECT_EQ(timeline[1].value("source", ""), "node") << timeline.dump(1);

  // With the registry back, a tag is pulled.
  faulty_->Set(Fault::kNone);
  std::string pulled = Submit(Unique("pulled"), suite_.image->tag, {"exit", "0"});
  r = Result(pulled);
  EXPECT_EQ(r["status"], "Completed") << r.dump();
  EXPECT_EQ(Timeline(pulled)[1].value("source", ""), "registry");
}

TEST_F(TransientFaultTest, ARegistryOutageIsWaitedOutForAnImageTheNodeLacks) {
  // A tag the registry has and this node does not: pushed, then untagged here.
  const std::string tag = "127.0.0.1:5000/baton-test/testjob:later-" + std::to_string(getpid());
  runtime::docker::DockerClient docker;
  auto tagged = docker.Request("POST", "/images/" + suite_.image->digest + "/tag?repo=" +
                                           runtime::docker::QueryEscape("127.0.0.1:5000/baton-test/testjob") +
                                           "&tag=later-" + std::to_string(getpid()));
  ASSERT_TRUE(tagged.ok() && tagged->status == 201) << (tagged.ok() ? tagged->body : tagged.status().ToString());
  BATON_ASSERT_OK(suite_.docker->PushImage(tag, Credentials()));
  BATON_ASSERT_OK(suite_.docker->RemoveImage(tag));
  ASSERT_EQ(suite_.docker->LocalImageDigest(tag).status().code(), StatusCode::kNotFound);

  faulty_->Set(Fault::kRegistryDown);
  std::string instance = Submit(Unique("later"), tag, {"exit", "0"});
  Json waiting = AwaitWaitingOn(instance, "registry");
  EXPECT_EQ(waiting.value("phase", ""), "pulling") << waiting.dump();
  EXPECT_NE(waiting["waitingOn"].value("lastError", "").find("RegistryUnavailable"), std::string::npos)
      << waiting.dump();
  faulty_->Set(Fault::kNone);
  Json r = Result(instance);
  EXPECT_EQ(r["status"], "Completed") << r.dump();
  Json timeline = Timeline(instance);
  EXPECT_EQ(Count(timeline, "Waiting"), 1) << timeline.dump(1);
  suite_.docker->RemoveImage(tag).IgnoreError();
}

// The platform's credentials are wrong: the registry's refusal will not
// change by waiting.
class TransientFaultBadCredentialsTest : public TransientFaultTest {
 protected:
  runtime::RegistryCredentials Credentials() override {
    runtime::RegistryCredentials c = TransientFaultTest::Credentials();
    c.password += "-wrong";
    return c;
  }
};

TEST_F(TransientFaultBadCredentialsTest, ARefusedLoginFailsTheJobAtOnce) {
  std::string instance = Submit(Unique("unauthorized"), suite_.image->tag, {"exit", "0"});
  Json r = Result(instance);
  EXPECT_EQ(r["status"], "Failed") << r.dump();
  EXPECT_EQ(r.value("error", "").rfind("RegistryUnauthorized", 0), 0u) << r.dump();
  Json timeline = Timeline(instance);
  EXPECT_EQ(Count(timeline, "Waiting"), 0) << timeline.dump(1);
  EXPECT_EQ(faulty_->pulls(), 1);
}

}  // namespace
}  // namespace baton::batch
