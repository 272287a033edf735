// Jobs as durable building blocks, end to end: a tenant's own orchestration
// (the C++ sample "FanOutJobs", include/baton/job.h; and durabletask-js over
// the gRPC sidecar, samples/jobs-fanout-js) starts jobs as the
// sub-orchestration "baton.Job", under the tenant's quota, against a real
// `baton serve`, the real dockerd and the local registry.
//
// What the tests claim about containers they read from Docker itself (by the
// "baton.node" label of the test's server); concurrency is measured from the
// containers' own start and finish times (dockerd's), never by timing.
#include <cstdio>
#include <cstdlib>

#include <sys/wait.h>

#include "e2e/job_fixture.h"
#include "runtime/docker/engine_api.h"
#include "util/url.h"

namespace baton {
namespace {

using namespace std::chrono_literals;
using namespace e2e;
using testing::HttpResult;

constexpr char kDf[] = "/runtime/webhooks/durabletask";

class JobsFromOrchestrationsTest : public JobServerTest {
 protected:
  // Starts orchestration `name` for the tenant of `key`; its instance id.
  std::string StartOrchestration(const std::string& key, const std::string& name, const Json& input) {
    HttpResult r = Call(key, "POST", std::string(kDf) + "/orchestrators/" + name, input.dump());
    EXPECT_EQ(r.status, 202) << r.body;
    Json j = ParseOrNull(r.body);
    return j.is_object() ? j.value("id", "") : "";
  }

  Json Instance(const std::string& key, const std::string& id) {
    HttpResult r = Call(key, "GET", std::string(kDf) + "/instances/" + util::PercentEncode(id));
    return r.status == 200 ? ParseOrNull(r.body) : Json();
  }

  Json AwaitInstance(const std::string& key, const std::string& id, std::chrono::milliseconds timeout) {
    Json state;
    PollUntil(
        [&] {
          state = Instance(key, id);
          const std::string s = state.is_object() ? state.value("runtimeStatus", "") : "";
          return s == "Completed" || s == "Failed" || s == "Terminated";
        },
        timeout, 500ms);
    return state;
  }

  // The tenant's jobs, as the job API lists them.
  Json Jobs(const std::string& key, const std::string& query = "") {
    HttpResult r = Call(key, "GET", "/api/v1/jobs?pageSize=500" + query);
    Json j = ParseOrNull(r.body);
    return r.status == 200 && j.is_object() ? j["jobs"] : Json::array();
  }

  // The most attempts whose containers ran at the same time, from each
  // attempt's startedAt / finishedAt (dockerd's times) in the job results.
  static int MaxOverlap(const Json& results) {
    std::vector<std::pair<TimePoint, int>> edges;
    for (const Json& r : results) {
      for (const Json& a : r.value("attemptResults", Json::array())) {
        TimePoint start, end;
        if (!a.value("startedAt", Json()).is_string() || !a.value("finishedAt", Json()).is_string()) continue;
        if (!ParseIso8601(a["startedAt"].get<std::string>(), &start) ||
            !ParseIso8601(a["finishedAt"].get<std::string>(), &end)) {
          continue;
        }
        edges.push_back({start, +1});
        edges.push_back({end, -1});
      }
    }
    std::sort(edges.begin(), edges.end());  // an end before a start at the same instant
    int now = 0, most = 0;
    for (const auto& [t, d] : edges) most = std::max(most, now += d);
    return most;
  }

  // Waits until no container of this test's server is left.
  bool NoContainerLeft() { return PollUntil([&] { return NodeContainers() == 0; }, 60s, 500ms); }
};

// ---- C++: include/baton/job.h, the sample "FanOutJobs" ----

TEST_F(JobsFromOrchestrationsTest, CppFanOutOfTwentyJobsUnderAQuotaOfFour) {
  StartServer(4, 2048);
  const std::string key = CreateTenant("fan", Json{{"jobs", 4}});
  const Json input = {{"count", 20}, {"spec", Spec("fan", {"sleep", "1"})}};
  const auto t0 = SteadyClock::now();
  const std::string id = StartOrchestration(key, "FanOutJobs", input);
  ASSERT_FALSE(id.empty());
  Json state = AwaitInstance(key, id, 300s);
  ASSERT_EQ(state.value("runtimeStatus", ""), "Completed") << state.dump();
  const Json out = state["output"];
  EXPECT_EQ(out.value("count", 0), 20);
  EXPECT_EQ(out.value("completed", 0), 20) << out.dump();
  ASSERT_EQ(out["results"].size(), 20u);
  std::set<std::string> ids;
  for (const Json& r : out["results"]) {
    EXPECT_EQ(r.value("status", ""), "Completed") << r.dump();
    EXPECT_EQ(r.value("exitCode", -1), 0);
    ids.insert(r.value("id", ""));
  }
  EXPECT_EQ(ids.size(), 20u);  // 20 jobs, each its own
  const int overlap = MaxOverlap(out["results"]);
  std::printf("fan-out of 20 jobs (sleep 1) under a quota of 4: %.1f s, at most %d containers at once\n",
              SecondsSince(t0), overlap);
  EXPECT_LE(overlap, 4);
  EXPECT_GE(overlap, 2);  // they did run side by side

  // Each shows in the job API, linked to the orchestration that started it.
  Json jobs = Jobs(key);
  ASSERT_EQ(jobs.size(), 20u) << jobs.dump();
  for (const Json& j : jobs) {
    EXPECT_TRUE(ids.count(j.value("id", ""))) << j.dump();
    EXPECT_EQ(j.value("status", ""), "Completed");
    ASSERT_TRUE(j.contains("parent")) << j.dump();
    EXPECT_EQ(j["parent"].value("instanceId", ""), id);
  }
  Json one = GetJob(key, *ids.begin());
  EXPECT_EQ(one["parent"].value("url", ""), std::string(kDf) + "/instances/" + util::PercentEncode(id));
  EXPECT_TRUE(NoContainerLeft());
}

TEST_F(JobsFromOrchestrationsTest, TerminatingTheParentCancelsItsJobsAndLeavesNoContainer) {
  StartServer(4, 2048);
  const std::string key = CreateTenant("fan", Json{{"jobs", 4}});
  const Json input = {{"count", 20}, {"spec", Spec("long", {"sleep", "300"})}};
  const std::string id = StartOrchestration(key, "FanOutJobs", input);
  ASSERT_FALSE(id.empty());
  // Midway: four running, the rest queued behind the quota.
  ASSERT_TRUE(PollUntil([&] { return Jobs(key, "&status=Running").size() == 4; }, 120s, 500ms))
      << Jobs(key).dump();
  EXPECT_TRUE(PollUntil([&] { return Jobs(key).size() == 20; }, 60s, 500ms));
  HttpResult t = Call(key, "POST", std::string(kDf) + "/instances/" + util::PercentEncode(id) + "/terminate");
  ASSERT_EQ(t.status, 202) << t.body;
  const auto t0 = SteadyClock::now();
  ASSERT_TRUE(PollUntil(
      [&] {
        Json jobs = Jobs(key);
        for (const Json& j : jobs) {
          if (!IsEnded(j.value("status", ""))) return false;
        }
        return !jobs.empty();
      },
      120s, 500ms));
  std::printf("20 jobs canceled %.1f s after their parent was terminated\n", SecondsSince(t0));
  Json jobs = Jobs(key);
  EXPECT_EQ(jobs.size(), 20u);
  for (const Json& j : jobs) EXPECT_EQ(j.value("status", ""), "Canceled") << j.dump();
  EXPECT_EQ(Instance(key, id).value("runtimeStatus", ""), "Terminated");
  EXPECT_TRUE(NoContainerLeft());
  // The quota is whole again: nothing of the tenant runs or waits.
  HttpResult q = Call(admin_, "GET", "/api/v1/admin/tenants/fan/quota");
  Json quota = ParseOrNull(q.body);
  EXPECT_EQ(quota["running"].value("jobs", -1.0), 0) << q.body;
  EXPECT_EQ(quota.value("queued", -1), 0) << q.body;
}

// An admin terminates the job orchestrations themselves ("job.<tenant>.<id>",
// not the tenant's orchestration): they never send the bridge its news nor
// release their quota. The job monitor does both, so the tenant's
// orchestration completes with Canceled results and the quota is whole again.
TEST_F(JobsFromOrchestrationsTest, AnAdminTerminatingTheJobsThemselvesEndsTheParentsWaitAndFreesTheQuota) {
  StartServer(4, 2048);
  const std::string key = CreateTenant("fan", Json{{"jobs", 1}});
  const Json input = {{"count", 2}, {"spec", Spec("long", {"sleep", "300"})}};
  const std::string id = StartOrchestration(key, "FanOutJobs", input);
  ASSERT_FALSE(id.empty());
  // One runs, the other waits behind the quota of one.
  ASSERT_TRUE(PollUntil([&] { return Jobs(key, "&status=Running").size() == 1 && Jobs(key).size() == 2; }, 120s,
                        500ms))
      << Jobs(key).dump();
  for (const Json& j : Jobs(key)) {
    const std::string job = "job.fan." + j.value("id", "");
    HttpResult t = Call(admin_, "POST", std::string(kDf) + "/instances/" + util::PercentEncode(job) + "/terminate?reason=" +
                                            util::PercentEncode("by hand"));
    ASSERT_EQ(t.status, 202) << job << ": " << t.body;
  }
  Json state = AwaitInstance(key, id, 120s);
  ASSERT_EQ(state.value("runtimeStatus", ""), "Completed") << state.dump();
  const Json out = state["output"];
  ASSERT_EQ(out["results"].size(), 2u) << out.dump();
  for (const Json& r : out["results"]) {
    EXPECT_EQ(r.value("status", ""), "Canceled") << r.dump();
    EXPECT_EQ(r.value("reason", ""), "Canceled") << r.dump();
    EXPECT_NE(r.value("summary", "").find("terminated"), std::string::npos) << r.dump();
    EXPECT_FALSE(r.value("id", "").empty()) << r.dump();
  }
  EXPECT_EQ(out.value("completed", -1), 0);
  EXPECT_TRUE(NoContainerLeft());
  // The scheduler let go of both: nothing of the tenant runs or waits.
  Json quota;
  EXPECT_TRUE(PollUntil(
      [&] {
        quota = ParseOrNull(Call(admin_, "GET", "/api/v1/admin/tenants/fan/quota").body);
        return quota.is_object() && quota["running"].value("jobs", -1.0) == 0 && quota.value("queued", -1) == 0;
      },
      60s, 500ms))
      << quota.dump();
  // And a new job of the tenant runs at once.
  const std::string next = Submit(key, Spec("after", {"exit", "0"}));
  ASSERT_FALSE(next.empty());
  EXPECT_EQ(AwaitEnd(key, next).value("status", ""), "Completed");
}

// With a reconcile pass only every 10 minutes, a suspend, resume and
// terminate of the tenant's orchestration still reach its job at once: the
// API nudges the job monitor (JobMonitor::Nudge).
TEST_F(JobsFromOrchestrationsTest, SuspendResumeAndTerminateReachTheJobWithoutWaitingForAReconcilePass) {
  StartServer(4, 2048, {"--reconcile-interval", "600"});
  const std::string key = CreateTenant("fan", Json{{"jobs", 4}});
  const Json input = {{"count", 1}, {"spec", Spec("long", {"sleep", "300"})}};
  const std::string id = StartOrchestration(key, "FanOutJobs", input);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(PollUntil([&] { return Jobs(key, "&status=Running").size() == 1; }, 120s, 250ms)) << Jobs(key).dump();
  const std::string job = "job.fan." + Jobs(key)[0].value("id", "");
  const std::string df = std::string(kDf) + "/instances/";
  auto job_status = [&] {
    Json j = ParseOrNull(Call(admin_, "GET", df + util::PercentEncode(job)).body);
    return j.is_object() ? j.value("runtimeStatus", "") : "";
  };
  // Every wait below is far shorter than the reconcile interval.
  ASSERT_EQ(Call(key, "POST", df + util::PercentEncode(id) + "/suspend").status, 202);
  EXPECT_TRUE(PollUntil([&] { return job_status() == "Suspended"; }, 60s, 250ms)) << job_status();
  ASSERT_EQ(Call(key, "POST", df + util::PercentEncode(id) + "/resume").status, 202);
  EXPECT_TRUE(PollUntil([&] { return job_status() == "Running"; }, 60s, 250ms)) << job_status();
  ASSERT_EQ(Call(key, "POST", df + util::PercentEncode(id) + "/terminate").status, 202);
  EXPECT_TRUE(PollUntil([&] { return Jobs(key)[0].value("status", "") == "Canceled"; }, 60s, 250ms))
      << Jobs(key).dump();
  EXPECT_TRUE(PollUntil([&] { return NodeContainers() == 0; }, 60s, 500ms));
}

TEST_F(JobsFromOrchestrationsTest, ASigkilledServerFinishesTheFanOutWithEachAttemptStartedOnce) {
  const TimePoint since = std::chrono::system_clock::now() - 1s;
  StartServer(4, 2048);
  const std::string key = CreateTenant("fan", Json{{"jobs", 4}});
  // Docker's own "start" events of this node's containers, by container id
  // (reconnected every second from the last one seen; replays told apart by
  // their exact time).
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, int> starts;
  std::set<std::string> seen;
  std::thread watcher([&] {
    const auto deadline = SteadyClock::now() + 500s;
    TimePoint from = since;
    while (!stop && SteadyClock::now() < deadline) {
      Status s = suite_.docker->WatchEvents(
          {{"baton.node", node_}},
          [&](const runtime::ContainerEvent& e) {
            std::lock_guard lock(mu);
            const std::string k = e.container_id + "/" + e.action + "/" + std::to_string(ToUnixMicros(e.time));
            if (seen.insert(k).second && e.action == "start") ++starts[e.container_id];
            from = std::max(from, e.time);
            return true;
          },
          1s, from);
      if (!s.ok()) std::this_thread::sleep_for(100ms);
    }
  });
  const std::string id = StartOrchestration(key, "FanOutJobs", Json{{"count", 20}, {"spec", Spec("kill", {"sleep", "2"})}});
  ASSERT_FALSE(id.empty());
  // Midway: some done, some running, the rest queued.
  ASSERT_TRUE(PollUntil([&] { return Jobs(key, "&status=Completed").size() >= 6; }, 180s, 500ms));
  KillAndRestart();
  Json state = AwaitInstance(key, id, 300s);
  const bool no_leftovers = NoContainerLeft();
  stop = true;
  watcher.join();
  ASSERT_EQ(state.value("runtimeStatus", ""), "Completed") << state.dump();
  EXPECT_EQ(state["output"].value("completed", 0), 20) << state.dump();
  ASSERT_EQ(state["output"]["results"].size(), 20u);
  for (const Json& r : state["output"]["results"]) EXPECT_EQ(r.value("attempts", 0), 1) << r.dump();
  std::lock_guard lock(mu);
  int container_starts = 0;
  for (const auto& [container, n] : starts) {
    container_starts += n;
    EXPECT_EQ(n, 1) << "container " << container << " was started " << n << " times";
  }
  std::printf("SIGKILL during a fan-out of 20: %zu containers, started %d times\n", starts.size(), container_starts);
  EXPECT_EQ(starts.size(), 20u);
  EXPECT_LE(MaxOverlap(state["output"]["results"]), 4);
  EXPECT_TRUE(no_leftovers);
}

TEST_F(JobsFromOrchestrationsTest, SuspendingTheParentHoldsItsJobUntilResumed) {
  StartServer(4, 2048);
  const std::string key = CreateTenant("fan", Json{{"jobs", 1}});
  // Two jobs, one at a time: the second waits in the queue while the first runs.
  const std::string id = StartOrchestration(key, "FanOutJobs", Json{{"count", 2}, {"spec", Spec("held", {"sleep", "15"})}});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(PollUntil([&] { return Jobs(key, "&status=Running").size() == 1; }, 120s, 500ms));
  const std::string path = std::string(kDf) + "/instances/" + util::PercentEncode(id);
  ASSERT_EQ(Call(key, "POST", path + "/suspend").status, 202);
  // Both jobs are held: suspended with their parent.
  ASSERT_TRUE(PollUntil(
      [&] {
        Json jobs = Jobs(key);
        int held = 0;
        for (const Json& j : jobs) held += j["waitingOn"].is_object() && j["waitingOn"].value("reason", "") == "suspended";
        return held == 2;
      },
      60s, 500ms))
      << Jobs(key).dump();
  // The first one's container exits meanwhile (Docker says so); the job
  // does not move on, and the second does not start.
  ASSERT_TRUE(PollUntil(
      [&] {
        auto list = suite_.docker->ListByLabels({{"baton.node", node_}});
        if (!list.ok()) return false;
        for (const runtime::ContainerState& c : *list) {
          if (Label(c, "baton.index") == kMainIndex && c.status == "exited") return true;
        }
        return false;
      },
      60s, 500ms));
  Json held = Jobs(key);
  ASSERT_EQ(held.size(), 2u);
  for (const Json& j : held) {
    EXPECT_FALSE(IsEnded(j.value("status", ""))) << j.dump();
    EXPECT_EQ(j["waitingOn"].value("reason", ""), "suspended") << j.dump();
  }
  EXPECT_EQ(Jobs(key, "&status=Queued").size() + Jobs(key, "&status=Running").size(), 2u);
  ASSERT_EQ(Call(key, "POST", path + "/resume").status, 202);
  Json state = AwaitInstance(key, id, 120s);
  ASSERT_EQ(state.value("runtimeStatus", ""), "Completed") << state.dump();
  EXPECT_EQ(state["output"].value("completed", 0), 2) << state.dump();
  EXPECT_TRUE(NoContainerLeft());
}

// A spec a submit would refuse fails the child with the submit's error, and
// nothing runs; "baton.Job" cannot be started on its own, nor its activity
// called by a tenant's orchestration.
TEST_F(JobsFromOrchestrationsTest, AHostileSpecFailsTheChildAndRunsNothing) {
  StartServer(4, 2048);
  const std::string key = CreateTenant("fan", Json{{"jobs", 4}});
  CreateTenant("other", Json{{"jobs", 4}});
  struct Case {
    Json spec;
    std::string error;  // in the failure's message
  };
  const std::vector<Case> cases = {
      {Spec("img", {"exit", "0"}, Json{{"image", "127.0.0.1:5000/other/secret:1"}}), "PermissionDenied"},
      {Spec("net", {"exit", "0"}, Json{{"network", "host"}}), "network"},
      {Spec("cap", {"exit", "0"}, Json{{"capabilities", {"SYS_ADMIN"}}}), "capabilities"},
      {Spec("sec", {"exit", "0"}, Json{{"secretEnv", {{"TOKEN", "x"}}}}), "secretEnv"},
      {Spec("big", {"exit", "0"}, Json{{"cpu", 64}}), "NeverFits"},
      {Spec("env", {"exit", "0"}, Json{{"env", {{"BATON_JOB_ID", "job.other.0000000000000000"}}}}), "BATON_"},
      {Json{{"name", "Bad Name"}, {"image", "x"}}, "name"},
  };
  for (const Case& c : cases) {
    const std::string id = StartOrchestration(key, "FanOutJobs", Json{{"count", 1}, {"spec", c.spec}});
    Json state = AwaitInstance(key, id, 60s);
    EXPECT_EQ(state.value("runtimeStatus", ""), "Failed") << c.spec.dump() << " " << state.dump();
    EXPECT_NE(state.dump().find(c.error), std::string::npos) << c.error << " in " << state.dump();
  }
  EXPECT_EQ(Jobs(key).size(), 0u) << Jobs(key).dump();  // not one was submitted
  EXPECT_EQ(NodeContainers(), 0u);
  // Not on its own: platform functions are not started by tenants.
  HttpResult direct = Call(key, "POST", std::string(kDf) + "/orchestrators/baton.Job", Spec("d", {"exit", "0"}).dump());
  EXPECT_EQ(direct.status, 400) << direct.body;
  HttpResult activity = Call(key, "POST", std::string(kDf) + "/orchestrators/baton.StartJob", "{}");
  EXPECT_EQ(activity.status, 400) << activity.body;
  EXPECT_EQ(Jobs(key).size(), 0u);
}

// ---- durabletask-js over the gRPC sidecar: samples/jobs-fanout-js ----

// A node script run in the background; its output read as it comes.
class JsSample {
 public:
  // Starts `node <script> args…` (script relative to the source tree) with `env`.
  JsSample(const std::string& script, const std::vector<std::string>& args,
           const std::map<std::string, std::string>& env) {
    std::string cmd;
    for (const auto& [k, v] : env) cmd += k + "='" + v + "' ";
    cmd += "node " + std::string(BATON_SOURCE_DIR) + "/" + script;
    for (const std::string& a : args) cmd += " '" + a + "'";
    cmd += " 2>&1";
    pipe_ = ::popen(cmd.c_str(), "r");
    reader_ = std::thread([this] {
      char buf[65536];
      while (pipe_ != nullptr && std::fgets(buf, sizeof buf, pipe_) != nullptr) {
        std::lock_guard lock(mu_);
        std::string l(buf);
        while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
        lines_.push_back(l);
      }
    });
  }
  ~JsSample() { Wait(); }

  // The value of the first line "<prefix> <value>", or "" while none came.
  std::string Line(const std::string& prefix) {
    std::lock_guard lock(mu_);
    for (const std::string& l : lines_) {
      if (l.rfind(prefix + " ", 0) == 0) return l.substr(prefix.size() + 1);
    }
    return "";
  }
  std::string All() {
    std::lock_guard lock(mu_);
    std::string all;
    for (const std::string& l : lines_) all += l + "\n";
    return all;
  }
  int Wait() {
    if (reader_.joinable()) reader_.join();
    if (pipe_ != nullptr) {
      int status = ::pclose(pipe_);
      pipe_ = nullptr;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    return exit_code_;
  }

 private:
  FILE* pipe_ = nullptr;
  std::thread reader_;
  std::mutex mu_;
  std::vector<std::string> lines_;
  int exit_code_ = -1;
};

constexpr char kFanout[] = "samples/jobs-fanout-js/fanout.js";

class JobsFromOrchestrationsJsTest : public JobsFromOrchestrationsTest {
 protected:
  void SetUp() override {
    JobsFromOrchestrationsTest::SetUp();
    // The SDK, as the durabletask-js suite installs it (package-lock.json).
    const std::string sdk = std::string(BATON_SOURCE_DIR) + "/tests/e2e/durabletask-js";
    if (std::system(("test -d " + sdk + "/node_modules/@microsoft/durabletask-js || (cd " + sdk +
                     " && npm ci --no-audit --no-fund --loglevel=error >/dev/null)")
                        .c_str()) != 0) {
      FAIL() << "npm could not install the durabletask-js SDK (tests/e2e/durabletask-js/package-lock.json)";
    }
    node_path_ = sdk + "/node_modules";
  }
  std::map<std::string, std::string> Env(const std::string& key) {
    return {{"NODE_PATH", node_path_},
            {"BATON_GRPC", "127.0.0.1:" + std::to_string(server_->grpc_port())},
            {"BATON_KEY", key}};
  }
  std::string node_path_;
};

TEST_F(JobsFromOrchestrationsJsTest, DurableTaskJsFanOutOfTwentyJobsUnderAQuotaOfFour) {
  StartServer(4, 2048);
  const std::string key = CreateTenant("jsfan", Json{{"jobs", 4}});
  JsSample run(kFanout, {"--count", "20", "--image", suite_.image->digest, "--args", "sleep 1"}, Env(key));
  ASSERT_EQ(run.Wait(), 0) << run.All();
  const std::string id = run.Line("instance");
  Json out = ParseOrNull(run.Line("result"));
  ASSERT_TRUE(out.is_object()) << run.All();
  ASSERT_EQ(out["results"].size(), 20u) << run.All();
  int completed = 0;
  for (const Json& r : out["results"]) completed += r.value("status", "") == "Completed";
  EXPECT_EQ(completed, 20) << out.dump();
  const int overlap = MaxOverlap(out["results"]);
  std::printf("durabletask-js fan-out of 20 jobs under a quota of 4: at most %d containers at once\n", overlap);
  EXPECT_LE(overlap, 4);
  EXPECT_GE(overlap, 2);
  Json jobs = Jobs(key);
  ASSERT_EQ(jobs.size(), 20u);
  for (const Json& j : jobs) EXPECT_EQ(j["parent"].value("instanceId", ""), id) << j.dump();
  EXPECT_TRUE(NoContainerLeft());
}

TEST_F(JobsFromOrchestrationsJsTest, DurableTaskJsTerminatingTheParentCancelsItsJobs) {
  StartServer(4, 2048);
  const std::string key = CreateTenant("jsfan", Json{{"jobs", 4}});
  JsSample run(kFanout, {"--count", "20", "--image", suite_.image->digest, "--args", "sleep 300"}, Env(key));
  ASSERT_TRUE(PollUntil([&] { return !run.Line("instance").empty(); }, 60s, 200ms)) << run.All();
  const std::string id = run.Line("instance");
  ASSERT_TRUE(PollUntil([&] { return Jobs(key, "&status=Running").size() == 4; }, 120s, 500ms)) << Jobs(key).dump();
  HttpResult t = Call(key, "POST", std::string(kDf) + "/instances/" + util::PercentEncode(id) + "/terminate");
  ASSERT_EQ(t.status, 202) << t.body;
  ASSERT_EQ(run.Wait(), 0) << run.All();
  EXPECT_EQ(run.Line("status"), "TERMINATED") << run.All();
  ASSERT_TRUE(PollUntil(
      [&] {
        Json jobs = Jobs(key);
        for (const Json& j : jobs) {
          if (!IsEnded(j.value("status", ""))) return false;
        }
        return !jobs.empty();
      },
      120s, 500ms));
  Json jobs = Jobs(key);
  EXPECT_EQ(jobs.size(), 20u);
  for (const Json& j : jobs) EXPECT_EQ(j.value("status", ""), "Canceled") << j.dump();
  EXPECT_TRUE(NoContainerLeft());
  // A tenant's orchestration cannot call the platform's activity itself.
  JsSample direct("tests/e2e/durabletask-js/jobs-hostile.js", {}, Env(key));
  EXPECT_EQ(direct.Wait(), 0) << direct.All();
  EXPECT_NE(direct.Line("status").find("FAILED"), std::string::npos) << direct.All();
  EXPECT_NE(direct.All().find("baton.Job only"), std::string::npos) << direct.All();
}

// ---- Array jobs: "array": {"size": N} ----

class ArrayJobsTest : public JobServerTest {};

TEST_F(ArrayJobsTest, TenIndexesOneFailingOnceUnderOnFailure) {
  StartServer(4, 2048);
  const std::string key = CreateTenant("arr", Json{{"jobs", 4}});
  const std::string id = Submit(
      key, Spec("arr", {"fail-first-attempt", "3"},
                Json{{"array", {{"size", 10}}},
                     {"restartPolicy", {{"policy", "OnFailure"}, {"maxAttempts", 3}, {"backoffSeconds", 0}}}}));
  ASSERT_FALSE(id.empty());
  const Json done = AwaitEnd(key, id, 300s);
  ASSERT_EQ(done.value("status", ""), "Completed") << done.dump();
  EXPECT_EQ(done["array"]["counts"], (Json{{"Completed", 10}})) << done.dump();
  EXPECT_EQ(done["result"]["array"]["counts"], (Json{{"Completed", 10}}));
  const Json& children = done["result"]["children"];
  ASSERT_EQ(children.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(children[i].value("id", ""), id + ":" + std::to_string(i));
    EXPECT_EQ(children[i].value("attempts", 0), i == 3 ? 2 : 1) << children[i].dump();
  }
  // Each index is a job of its own: its view, its attempts, its logs.
  const Json three = GetJob(key, id + ":3");
  ASSERT_TRUE(three.is_object());
  EXPECT_EQ(three.value("status", ""), "Completed");
  EXPECT_EQ(three["array"], (Json{{"index", 3}, {"parentId", id}}));
  EXPECT_EQ(three["result"]["attemptResults"][0].value("reason", ""), "ExitCode") << three.dump();
  HttpResult first = Call(key, "GET", "/api/v1/jobs/" + id + ":3/logs?attempt=1");
  EXPECT_NE(first.body.find("index 3 attempt 1: failing"), std::string::npos) << first.body;
  HttpResult second = Call(key, "GET", "/api/v1/jobs/" + id + ":3/logs?attempt=2");
  EXPECT_NE(second.body.find("index 3 attempt 2: ok"), std::string::npos) << second.body;
  HttpResult seven = Call(key, "GET", "/api/v1/jobs/" + id + ":7/logs?attempt=1");
  EXPECT_NE(seven.body.find("index 7 attempt 1: ok"), std::string::npos) << seven.body;
  EXPECT_EQ(Call(key, "GET", "/api/v1/jobs/" + id + ":10").status, 404);
  EXPECT_EQ(Call(key, "GET", "/api/v1/jobs/" + id + ":03").status, 400);
  EXPECT_TRUE(PollUntil([&] { return NodeContainers() == 0; }, 60s, 500ms));
}

TEST_F(ArrayJobsTest, CancelingTheArrayCancelsEveryIndex) {
  StartServer(4, 2048);
  const std::string key = CreateTenant("arr", Json{{"jobs", 2}});
  const std::string id = Submit(key, Spec("arr", {"sleep", "300"}, Json{{"array", {{"size", 5}}}}));
  ASSERT_FALSE(id.empty());
  Json running = AwaitJob(key, id, [](const Json& v) {
    return v.contains("array") && v["array"].contains("counts") && v["array"]["counts"].value("Running", 0) == 2;
  }, 120s);
  ASSERT_EQ(running["array"]["counts"].value("Running", 0), 2) << running.dump();
  EXPECT_EQ(running.value("status", ""), "Running");
  ASSERT_EQ(Call(key, "POST", "/api/v1/jobs/" + id + "/cancel").status, 202);
  const Json done = AwaitEnd(key, id, 120s);
  EXPECT_EQ(done.value("status", ""), "Canceled") << done.dump();
  EXPECT_EQ(done["result"]["array"]["counts"], (Json{{"Canceled", 5}})) << done.dump();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(GetJob(key, id + ":" + std::to_string(i)).value("status", ""), "Canceled");
  EXPECT_TRUE(PollUntil([&] { return NodeContainers() == 0; }, 60s, 500ms));
  HttpResult q = Call(admin_, "GET", "/api/v1/admin/tenants/arr/quota");
  EXPECT_EQ(ParseOrNull(q.body)["running"].value("jobs", -1.0), 0) << q.body;
}

// The indexes follow their array job: held while an admin has it suspended,
// running again when it is resumed, ended with it when it is terminated
// (a terminate is recursive), their containers removed and quota released.
TEST_F(ArrayJobsTest, SuspendingTheArrayHoldsItsIndexesAndTerminatingItEndsThem) {
  StartServer(4, 2048);
  const std::string key = CreateTenant("arr", Json{{"jobs", 2}});
  const std::string id = Submit(key, Spec("arr", {"sleep", "300"}, Json{{"array", {{"size", 2}}}}));
  ASSERT_FALSE(id.empty());
  Json running = AwaitJob(key, id, [](const Json& v) {
    return v.contains("array") && v["array"].contains("counts") && v["array"]["counts"].value("Running", 0) == 2;
  }, 120s);
  ASSERT_EQ(running["array"]["counts"].value("Running", 0), 2) << running.dump();
  const std::string df = std::string(kDf) + "/instances/";
  const std::string array = "job.arr." + id;
  auto status_of = [&](const std::string& instance) {
    Json j = ParseOrNull(Call(admin_, "GET", df + util::PercentEncode(instance)).body);
    return j.is_object() ? j.value("runtimeStatus", "") : "";
  };
  auto both = [&](const std::string& status) {
    return status_of(array + ":0") == status && status_of(array + ":1") == status;
  };
  ASSERT_EQ(Call(admin_, "POST", df + util::PercentEncode(array) + "/suspend").status, 202);
  EXPECT_TRUE(PollUntil([&] { return both("Suspended"); }, 60s, 250ms))
      << status_of(array + ":0") << " " << status_of(array + ":1");
  ASSERT_EQ(Call(admin_, "POST", df + util::PercentEncode(array) + "/resume").status, 202);
  EXPECT_TRUE(PollUntil([&] { return both("Running"); }, 60s, 250ms))
      << status_of(array + ":0") << " " << status_of(array + ":1");
  ASSERT_EQ(Call(admin_, "POST", df + util::PercentEncode(array) + "/terminate").status, 202);
  EXPECT_TRUE(PollUntil(
      [&] {
        return GetJob(key, id + ":0").value("status", "") == "Canceled" &&
               GetJob(key, id + ":1").value("status", "") == "Canceled";
      },
      120s, 500ms))
      << GetJob(key, id + ":0").dump() << GetJob(key, id + ":1").dump();
  EXPECT_TRUE(PollUntil([&] { return NodeContainers() == 0; }, 60s, 500ms));
  Json quota;
  EXPECT_TRUE(PollUntil(
      [&] {
        quota = ParseOrNull(Call(admin_, "GET", "/api/v1/admin/tenants/arr/quota").body);
        return quota.is_object() && quota["running"].value("jobs", -1.0) == 0;
      },
      60s, 500ms))
      << quota.dump();
}

TEST_F(ArrayJobsTest, NToNDependenciesPairIndexes) {
  StartServer(4, 2048);
  const std::string key = CreateTenant("arr", Json{{"jobs", 4}});
  const std::string a = Submit(key, Spec("a", {"sleep", "1"}, Json{{"array", {{"size", 3}}}}));
  const std::string b = Submit(key, Spec("b", {"exit", "0"},
                                         Json{{"array", {{"size", 3}}},
                                              {"dependsOn", {Json{{"jobId", a}, {"type", "N_TO_N"}}}}}));
  ASSERT_FALSE(a.empty() || b.empty());
  const Json vb = AwaitEnd(key, b, 180s);
  ASSERT_EQ(vb.value("status", ""), "Completed") << vb.dump();
  for (int i = 0; i < 3; ++i) {
    const Json ai = GetJob(key, a + ":" + std::to_string(i)), bi = GetJob(key, b + ":" + std::to_string(i));
    TimePoint a_end, b_start;
    ASSERT_TRUE(ParseIso8601(ai["result"]["attemptResults"][0].value("finishedAt", ""), &a_end)) << ai.dump();
    ASSERT_TRUE(ParseIso8601(bi["result"]["attemptResults"][0].value("startedAt", ""), &b_start)) << bi.dump();
    EXPECT_LE(a_end, b_start) << i;
    EXPECT_EQ(bi["spec"]["dependsOn"][0].value("jobId", ""), a + ":" + std::to_string(i));
  }
  // N_TO_N needs two arrays of equal size.
  HttpResult unequal = Call(key, "POST", "/api/v1/jobs",
                            Spec("c", {"exit", "0"}, Json{{"array", {{"size", 4}}},
                                                          {"dependsOn", {Json{{"jobId", a}, {"type", "N_TO_N"}}}}})
                                .dump());
  EXPECT_EQ(unequal.status, 400) << unequal.body;
  EXPECT_EQ(ErrorField(unequal), "dependsOn[0].type");
  HttpResult bad = Call(key, "POST", "/api/v1/jobs", Spec("d", {"exit", "0"}, Json{{"array", {{"size", 1}}}}).dump());
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(ErrorField(bad), "array.size");
}

// ---- Dependencies: "dependsOn" ----

class JobDependenciesTest : public JobServerTest {
 protected:
  // When the job's (only) attempt started and finished, by dockerd's clock.
  static std::pair<TimePoint, TimePoint> Ran(const Json& view) {
    TimePoint start{}, end{};
    const Json& attempts = view["result"]["attemptResults"];
    if (attempts.is_array() && !attempts.empty()) {
      ParseIso8601(attempts.back().value("startedAt", ""), &start);
      ParseIso8601(attempts.back().value("finishedAt", ""), &end);
    }
    return {start, end};
  }
};

TEST_F(JobDependenciesTest, AChainOfThreeRunsInOrder) {
  StartServer(4, 2048);
  const std::string key = CreateTenant("chain", Json{{"jobs", 4}});
  const std::string a = Submit(key, Spec("a", {"sleep", "3"}));
  const std::string b = Submit(key, Spec("b", {"sleep", "1"}, Json{{"dependsOn", {a}}}));
  const std::string c = Submit(key, Spec("c", {"exit", "0"}, Json{{"dependsOn", {Json{{"jobId", b}, {"type", "SEQUENTIAL"}}}}}));
  ASSERT_FALSE(a.empty() || b.empty() || c.empty());
  // While a runs, c waits on b.
  Json waiting = AwaitJob(key, c, [](const Json& v) {
    return v["waitingOn"].is_object() && v["waitingOn"].value("reason", "") == "dependencies";
  }, 60s);
  EXPECT_EQ(waiting["waitingOn"]["jobs"], Json::array({b})) << waiting.dump();
  EXPECT_EQ(waiting.value("status", ""), "Pending");
  const Json va = AwaitEnd(key, a), vb = AwaitEnd(key, b), vc = AwaitEnd(key, c);
  for (const Json* v : {&va, &vb, &vc}) ASSERT_EQ(v->value("status", ""), "Completed") << v->dump();
  // Each started after the one before it finished (dockerd's times).
  EXPECT_LE(Ran(va).second, Ran(vb).first);
  EXPECT_LE(Ran(vb).second, Ran(vc).first);
  EXPECT_EQ(vc["spec"]["dependsOn"][0].value("jobId", ""), b);
  EXPECT_TRUE(PollUntil([&] { return NodeContainers() == 0; }, 60s, 500ms));
}

TEST_F(JobDependenciesTest, AFailedDependencyFailsTheDependantWithItsReason) {
  StartServer(4, 2048);
  const std::string key = CreateTenant("chain", Json{{"jobs", 4}});
  const std::string a = Submit(key, Spec("a", {"exit", "3"}));
  const std::string b = Submit(key, Spec("b", {"exit", "0"}, Json{{"dependsOn", {a}}}));
  const std::string c = Submit(key, Spec("c", {"exit", "0"}, Json{{"dependsOn", {a}}, {"runOnFailure", true}}));
  const Json va = AwaitEnd(key, a), vb = AwaitEnd(key, b), vc = AwaitEnd(key, c);
  EXPECT_EQ(va.value("status", ""), "Failed");
  EXPECT_EQ(va["result"].value("reason", ""), "ExitCode") << va.dump();
  EXPECT_EQ(va["result"].value("summary", ""), "exit code 3");
  ASSERT_EQ(vb.value("status", ""), "Failed") << vb.dump();
  EXPECT_EQ(vb["result"].value("reason", ""), "DependencyFailed") << vb.dump();
  const std::string error = vb["result"].value("error", "");
  EXPECT_NE(error.find(a), std::string::npos) << error;
  EXPECT_NE(error.find("exit code 3"), std::string::npos) << error;
  EXPECT_EQ(vb["result"].value("attempts", -1), 0) << vb.dump();  // never ran
  EXPECT_EQ(vc.value("status", ""), "Completed") << vc.dump();   // runOnFailure
  // The timeline says the same as the result.
  HttpResult events = Call(key, "GET", "/api/v1/jobs/" + b + "/events");
  Json last = ParseOrNull(events.body)["events"].back();
  EXPECT_EQ(last.value("type", ""), "Failed");
  EXPECT_EQ(last.value("reason", ""), "DependencyFailed") << last.dump();
  // Why a ended, said the same way by its result, its AttemptEnded event,
  // its final event and the CLI's last line.
  Json a_events = ParseOrNull(Call(key, "GET", "/api/v1/jobs/" + a + "/events").body)["events"];
  int attempt_ended = 0;
  for (const Json& e : a_events) {
    if (e.value("type", "") != "AttemptEnded") continue;
    ++attempt_ended;
    EXPECT_EQ(e.value("reason", ""), "ExitCode") << e.dump();
    EXPECT_EQ(e.value("summary", ""), "exit code 3") << e.dump();
  }
  EXPECT_EQ(attempt_ended, 1) << a_events.dump();
  EXPECT_EQ(a_events.back().value("summary", ""), "exit code 3") << a_events.dump();
  const std::string cmd = "BATON_SERVER=http://127.0.0.1:" + std::to_string(server_->port()) + " BATON_KEY='" + key +
                          "' " + BATON_BINARY + " job wait " + a + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (p != nullptr && std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  if (p != nullptr) ::pclose(p);
  EXPECT_NE(out.find("job " + a + " ended Failed (ExitCode: exit code 3)"), std::string::npos) << out;
  std::string got = "BATON_SERVER=http://127.0.0.1:" + std::to_string(server_->port()) + " BATON_KEY='" + key + "' " +
                    BATON_BINARY + " job get " + a + " 2>&1";
  p = ::popen(got.c_str(), "r");
  out.clear();
  while (p != nullptr && std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  if (p != nullptr) ::pclose(p);
  EXPECT_NE(out.find("ExitCode: exit code 3"), std::string::npos) << out;
}

TEST_F(JobDependenciesTest, HostileDependenciesAreRefusedAndChangeNothing) {
  StartServer(4, 2048);
  const std::string key = CreateTenant("chain", Json{{"jobs", 4}});
  const std::string other = CreateTenant("other", Json{{"jobs", 4}});
  const std::string theirs = Submit(other, Spec("theirs", {"exit", "0"}));
  struct Case {
    Json deps;
    std::string field;
  };
  const std::vector<Case> cases = {
      {Json::array({theirs}), "dependsOn[0]"},             // another tenant's job: not found for this one
      {Json::array({"0123456789abcdef"}), "dependsOn[0]"},  // no such job
      {Json::array({"NOT-AN-ID"}), "dependsOn[0]"},
      {Json::array({theirs, theirs}), "dependsOn[1]"},
      {Json("x"), "dependsOn"},
      {Json::array({Json{{"jobId", theirs}, {"type", "ALL"}}}), "dependsOn[0].type"},
      {Json(std::vector<std::string>(21, theirs)), "dependsOn"},
  };
  for (const Case& c : cases) {
    HttpResult r = Call(key, "POST", "/api/v1/jobs", Spec("d", {"exit", "0"}, Json{{"dependsOn", c.deps}}).dump());
    EXPECT_EQ(r.status, 400) << c.deps.dump() << " " << r.body;
    EXPECT_EQ(ErrorField(r), c.field) << r.body;
  }
  HttpResult bad = Call(key, "POST", "/api/v1/jobs", Spec("d", {"exit", "0"}, Json{{"runOnFailure", "yes"}}).dump());
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(ErrorField(bad), "runOnFailure");
  HttpResult list = Call(key, "GET", "/api/v1/jobs");
  EXPECT_EQ(ParseOrNull(list.body)["jobs"].size(), 0u) << list.body;  // nothing was stored
  EXPECT_EQ(AwaitEnd(other, theirs).value("status", ""), "Completed");
}

// ---- Bring your own image: POST /api/v1/images, `baton image push` ----

class ImagePushTest : public JobServerTest {
 protected:
  void TearDown() override {
    for (const std::string& image : made_) suite_.docker->RemoveImage(image).IgnoreError();
    JobServerTest::TearDown();
  }
  // Builds a FROM-scratch image of the test program on the node, as a tenant
  // would with `docker build`: never pushed, no registry name.
  std::string BuildLocal(const std::string& tag) {
    const std::string pid = std::to_string(getpid());
    std::string tar = runtime::docker::MakeTar(
        {{"Dockerfile", "FROM scratch\nLABEL baton.test.owner=" + pid +
                            "\nCOPY owner /owner\nCOPY testjob /testjob\nENTRYPOINT [\"/testjob\"]\n"},
         {"owner", pid + "-push\n"},
         {"testjob", testing::ReadWholeFile(BATON_TESTJOB)}},
        {"testjob"});
    Status built = suite_.docker->BuildImage(tag, tar);
    EXPECT_TRUE(built.ok()) << built.ToString();
    made_.push_back(tag);
    return tag;
  }
  // `baton ARGS…` as a tenant; its stdout (and the exit code in *code).
  std::string Cli(const std::string& key, const std::string& args, int* code) {
    const std::string cmd = "BATON_SERVER=http://127.0.0.1:" + std::to_string(server_->port()) + " BATON_KEY='" + key +
                            "' " + BATON_BINARY + " " + args + " 2>/dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    while (p != nullptr && std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
    const int status = p != nullptr ? ::pclose(p) : -1;
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return out;
  }
  std::vector<std::string> made_;
};

TEST_F(ImagePushTest, ALocallyBuiltImageIsPushedAndRunsForItsTenantOnly) {
  StartServer(2, 2048);
  const std::string key = CreateTenant("pusher", Json{{"jobs", 2}});
  const std::string other = CreateTenant("other", Json{{"jobs", 2}});
  const std::string local = BuildLocal("baton-e2e-local/hello:" + std::to_string(getpid()));
  // The CLI: the digest alone on stdout.
  int code = -1;
  std::string digest = Cli(key, "image push " + local + " hello:1", &code);
  while (!digest.empty() && digest.back() == '\n') digest.pop_back();
  ASSERT_EQ(code, 0) << digest;
  made_.push_back("127.0.0.1:5000/pusher/hello:1");
  made_.push_back(digest);
  ASSERT_EQ(digest.rfind("127.0.0.1:5000/pusher/hello@sha256:", 0), 0u) << "[" << digest << "]";
  // A job from it completes, run from the node's copy (no pull).
  const std::string id = Submit(key, Json{{"name", "hello"}, {"image", digest}, {"args", {"exit", "0"}}, {"cpu", 0.5},
                                          {"memoryMb", 32}});
  ASSERT_FALSE(id.empty());
  const Json done = AwaitEnd(key, id);
  EXPECT_EQ(done.value("status", ""), "Completed") << done.dump();
  Json events = ParseOrNull(Call(key, "GET", "/api/v1/jobs/" + id + "/events").body)["events"];
  bool from_node = false;
  for (const Json& e : events) from_node |= e.value("type", "") == "ImageResolved" && e.value("source", "") == "node";
  EXPECT_TRUE(from_node) << events.dump();
  // Listed for its tenant, not for another.
  std::string listed = Cli(key, "image list -o json", &code);
  Json list = ParseOrNull(listed);
  ASSERT_TRUE(list.is_object()) << listed;
  ASSERT_EQ(list["images"].size(), 1u) << listed;
  EXPECT_EQ(list["images"][0].value("repository", ""), "127.0.0.1:5000/pusher/hello");
  EXPECT_EQ(list["images"][0]["tags"], Json::array({"1"}));
  EXPECT_EQ(ParseOrNull(Call(other, "GET", "/api/v1/images").body)["images"].size(), 0u);

  // Another tenant can neither run it nor push it into its own namespace.
  HttpResult run = Call(other, "POST", "/api/v1/jobs",
                        Json{{"name", "steal"}, {"image", digest}, {"cpu", 0.5}, {"memoryMb", 32}}.dump());
  EXPECT_EQ(run.status, 403) << run.body;
  EXPECT_EQ(ErrorField(run), "image");
  for (const std::string& source : {digest, local}) {
    HttpResult steal = Call(other, "POST", "/api/v1/images", Json{{"image", source}, {"name", "stolen:1"}}.dump());
    EXPECT_EQ(steal.status, 403) << source << " " << steal.body;
    EXPECT_EQ(ErrorField(steal), "image");
  }
  EXPECT_EQ(ParseOrNull(Call(other, "GET", "/api/v1/images").body)["images"].size(), 0u);
  // Nor the suite's image, pulled from a namespace that is not its own.
  HttpResult suite = Call(other, "POST", "/api/v1/images", Json{{"image", suite_.image->digest}, {"name", "x:1"}}.dump());
  EXPECT_EQ(suite.status, 403) << suite.body;
}

TEST_F(ImagePushTest, HostileRequestsAreRefusedAndPushNothing) {
  StartServer(2, 2048);
  const std::string key = CreateTenant("pusher", Json{{"jobs", 2}});
  struct Case {
    std::string body;
    int status;
    std::string field;
  };
  const std::vector<Case> cases = {
      {R"({"image": "../../containers/json", "name": "x:1"})", 400, "image"},
      {R"({"image": "x?all=1", "name": "x:1"})", 400, "image"},
      {R"({"image": "busybox", "name": "../other/x:1"})", 400, "name"},
      {R"({"image": "busybox", "name": "Upper:1"})", 400, "name"},
      {R"({"image": "busybox", "name": "x:-bad"})", 400, "name"},
      {R"({"image": "busybox", "name": "x:1", "registry": "evil"})", 400, "registry"},
      {R"({"name": "x:1"})", 400, "image"},
      {R"("busybox")", 400, "body"},
      {R"({"image": "baton-e2e-no-such-image:1", "name": "x:1"})", 404, "image"},
  };
  for (const Case& c : cases) {
    HttpResult r = Call(key, "POST", "/api/v1/images", c.body);
    EXPECT_EQ(r.status, c.status) << c.body << " " << r.body;
    EXPECT_EQ(ErrorField(r), c.field) << c.body << " " << r.body;
  }
  EXPECT_EQ(Call(admin_, "POST", "/api/v1/images", R"({"image": "x", "name": "x:1"})").status, 403);
  EXPECT_EQ(Call("", "POST", "/api/v1/images", R"({"image": "x", "name": "x:1"})").status, 401);
  EXPECT_EQ(ParseOrNull(Call(key, "GET", "/api/v1/images").body)["images"].size(), 0u);  // nothing was pushed
}

}  // namespace
}  // namespace baton
