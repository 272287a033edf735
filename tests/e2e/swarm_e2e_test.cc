// Batch jobs end to end on Docker Swarm: a real `baton serve --runtime swarm`
// child process against the private swarm of scripts/swarm-up (a manager and
// a worker dockerd and a registry in a network namespace of their own; ctest's
// fixture "Swarm" starts it). What the tests claim about services, tasks and
// containers they read from the manager's and the nodes' Engine APIs, never
// from Baton. Every test has its own server and data dir; its objects carry
// its server's "baton.node" label, so tests running at once on the one swarm
// tell theirs apart.
//
// No assertion is about timing: every wait is a liveness bound, and the
// figures a test measures are printed for the ctest log.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <random>

#include "batch/job_orchestration.h"
#include "e2e/job_fixture.h"
#include "runtime/docker/docker_client.h"
#include "runtime/swarm/swarm_runtime.h"
#include "testing/private_swarm.h"
#include "testing/tcp_forward.h"

namespace baton {
namespace {

using namespace std::chrono_literals;
using namespace e2e;
using runtime::docker::DockerClient;
using runtime::docker::QueryEscape;
using testing::HttpResult;
using SteadyClock = std::chrono::steady_clock;

class SwarmE2eTest : public ::testing::Test, protected JobApi {
 protected:
  int ApiPort() const override { return server_->port(); }
  static void SetUpTestSuite() { suite_.Prepare(BATON_RUN_DIR, BATON_TESTJOB); }
  static void TearDownTestSuite() { suite_.Release(); }

  void SetUp() override { ASSERT_TRUE(active_->setup->ok()) << active_->setup->ToString(); }

  void TearDown() override {
    server_.reset();  // SIGKILL
    if (node_.empty()) return;
    // Whatever a test left goes, on the swarm and on both nodes.
    for (const Json& s : Manager("/services?filters=" + LabelFilter())) {
      ManagerRequest("DELETE", "/services/" + s.value("ID", "")).status().IgnoreError();
    }
    for (const std::string& socket : {state().manager_socket, state().worker_socket}) {
      if (socket.empty()) continue;
      auto list = DockerClient(socket).Request("GET", "/containers/json?all=1&filters=" + LabelFilter());
      if (!list.ok() || list->status != 200) continue;
      for (const Json& c : Json::parse(list->body, nullptr, false)) {
        DockerClient(socket).Request("DELETE", "/containers/" + c.value("Id", "") + "?force=1").status().IgnoreError();
      }
    }
    for (const Json& s : Manager("/secrets?filters=" + LabelFilter())) {
      ManagerRequest("DELETE", "/secrets/" + s.value("ID", "")).status().IgnoreError();
    }
  }

  static const testing::SwarmState& state() { return *active_->state; }
  std::string DataDir() const { return dir_.File("data"); }
  std::string LabelFilter() const { return QueryEscape(Json{{"label", {"baton.node=" + node_}}}.dump()); }

  // `baton serve --runtime swarm` on the private swarm, able to ask both
  // nodes (--swarm-node for the worker; the manager's own node always).
  // `manager`: another endpoint of the manager's API (a TcpToUnix);
  // `await_capacity`: wait until the scheduler has the cluster's capacity.
  void StartServer(const std::vector<std::string>& extra_args = {}, const std::string& manager = "",
                   bool await_capacity = true) {
    args_ = {"--runtime",
             "swarm",
             "--swarm-manager",
             manager.empty() ? state().manager_socket : manager,
             "--registry",
             state().registry,
             "--registry-user",
             "baton",
             "--registry-password-file",
             state().registry_password_file,
             "--reconcile-interval",
             "2",
             "--capacity-refresh",
             "2"};
    if (!state().worker_node.empty()) {
      args_.insert(args_.end(), {"--swarm-node", state().worker_node + "=" + state().worker_socket});
    }
    args_.insert(args_.end(), extra_args.begin(), extra_args.end());
    server_ = std::make_unique<testing::ServerProcess>(BATON_BINARY, DataDir(), args_);
    admin_ = server_->admin_key();
    ASSERT_FALSE(admin_.empty());
    std::ifstream in(DataDir() + "/node-id");
    in >> node_;
    ASSERT_FALSE(node_.empty());
    // The scheduler has the cluster's capacity (the first refresh runs at start).
    if (await_capacity) ASSERT_TRUE(PollUntil([&] { return SchedulerCapacity().contains("largestNode"); }, 30s));
  }

  void KillAndRestart() {
    server_->Kill();
    server_.reset();
    server_ = std::make_unique<testing::ServerProcess>(BATON_BINARY, DataDir(), args_);
  }


  Json SchedulerCapacity() {
    Json s = ParseOrNull(Call(admin_, "GET", "/api/v1/admin/scheduler").body);
    return s.is_object() && s.contains("capacity") ? s["capacity"] : Json::object();
  }

  std::string CreateTenant(const std::string& id, const Json& quota) {
    EXPECT_EQ(Call(admin_, "POST", "/api/v1/admin/tenants", Json{{"id", id}}.dump()).status, 201);
    EXPECT_EQ(Call(admin_, "PUT", "/api/v1/admin/tenants/" + id + "/quota", quota.dump()).status, 200);
    Json grant = {{"grants", {{"imagePrefixes", {state().registry + "/baton-test/"}}}}};
    EXPECT_EQ(Call(admin_, "PATCH", "/api/v1/admin/tenants/" + id + "/settings", grant.dump()).status, 200);
    HttpResult k = Call(admin_, "POST", "/api/v1/admin/tenants/" + id + "/keys", R"({"name":"e2e"})");
    EXPECT_EQ(k.status, 201) << k.body;
    Json j = ParseOrNull(k.body);
    return j.is_object() ? j.value("key", "") : "";
  }

  static Json Spec(const std::string& name, const std::vector<std::string>& args, const Json& extra = Json::object()) {
    Json j = {{"name", name}, {"image", active_->image->digest}, {"args", args}, {"cpu", 0.25}, {"memoryMb", 32}};
    for (const auto& [k, v] : extra.items()) j[k] = v;
    return j;
  }


  // ---- The swarm, read directly ----

  Result<runtime::docker::DockerResponse> ManagerRequest(const std::string& method, const std::string& path) {
    return DockerClient(state().manager_socket).Request(method, path);
  }
  Json Manager(const std::string& path) {
    auto r = ManagerRequest("GET", path);
    if (!r.ok() || r->status != 200) return Json::array();
    return ParseOrNull(r->body);
  }
  // This server's services (999 when the manager cannot answer).
  size_t Services(const std::string& job_instance = "") {
    std::vector<std::string> labels = {"baton.node=" + node_};
    if (!job_instance.empty()) labels.push_back("baton.job=" + job_instance);
    auto r = ManagerRequest("GET", "/services?filters=" + QueryEscape(Json{{"label", labels}}.dump()));
    if (!r.ok() || r->status != 200) return 999;
    return ParseOrNull(r->body).size();
  }
  // This server's containers on both nodes.
  size_t NodeContainers() {
    size_t n = 0;
    for (const std::string& socket : {state().manager_socket, state().worker_socket}) {
      if (socket.empty()) continue;
      auto list = DockerClient(socket).Request("GET", "/containers/json?all=1&filters=" + LabelFilter());
      if (!list.ok() || list->status != 200) return 999;
      n += ParseOrNull(list->body).size();
    }
    return n;
  }
  // Service "create" events on the manager, by service name, gathered every
  // second from its construction to Stop(): dockerd answers `since` from
  // its last 256 events of every kind only, which a long test on a swarm
  // shared with other tests outlasts.
  class ServiceCreates {
   public:
    explicit ServiceCreates(std::string socket) : socket_(std::move(socket)) {
      since_ = ToUnixMicros(std::chrono::system_clock::now()) / 1000000 - 1;
      thread_ = std::thread([this] {
        while (!stop_) {
          Poll();
          for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(100ms);
        }
      });
    }
    ~ServiceCreates() { Stop(); }
    std::map<std::string, int> Stop() {
      stop_ = true;
      if (thread_.joinable()) thread_.join();
      Poll();
      return counts_;
    }

   private:
    void Poll() {
      const int64_t until = ToUnixMicros(std::chrono::system_clock::now()) / 1000000 + 1;
      auto r = DockerClient(socket_).Request(
          "GET", "/events?since=" + std::to_string(since_) + "&until=" + std::to_string(until) + "&filters=" +
                     QueryEscape(Json{{"type", {"service"}}, {"event", {"create"}}}.dump()));
      if (!r.ok() || r->status != 200) return;
      std::istringstream lines(r->body);
      for (std::string line; std::getline(lines, line);) {
        Json e = ParseOrNull(line);
        if (!e.is_object()) continue;
        const std::string name = e["Actor"]["Attributes"].value("name", "");
        // The windows overlap by two seconds: an event is counted once.
        if (seen_.insert(e["Actor"].value("ID", "") + "@" + std::to_string(e.value("timeNano", int64_t{0}))).second) {
          ++counts_[name];
        }
      }
      since_ = until - 2;
    }

    std::string socket_;
    int64_t since_ = 0;
    std::set<std::string> seen_;
    std::map<std::string, int> counts_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
  };

  struct Submitted {
    std::string tenant;
    std::string id;
  };

  static testing::SwarmSuite suite_;    // the shared private swarm (scripts/swarm-up)
  static testing::SwarmSuite* active_;  // the swarm this suite's tests use: suite_ unless a subclass has its own
  testing::TempDir dir_;
  std::vector<std::string> args_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::string admin_;
  std::string node_;
};

testing::SwarmSuite SwarmE2eTest::suite_;
testing::SwarmSuite* SwarmE2eTest::active_ = &SwarmE2eTest::suite_;

// Must show: exit 0 -> Completed; exit 3 with OnFailure x3 -> exactly three
// services, then Failed with exit code 3; logs kept after the services are gone.
TEST_F(SwarmE2eTest, ExitZeroCompletesAndExitThreeWithOnFailureRunsExactlyThreeServicesThenFails) {
  ServiceCreates watch(state().manager_socket);
  StartServer();
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  const auto start = SteadyClock::now();
  const std::string ok = Submit(key, Spec("ok", {"print", "3"}));
  const std::string three = Submit(
      key, Spec("three", {"exit", "3"},
                Json{{"restartPolicy", {{"policy", "OnFailure"}, {"maxAttempts", 3}, {"backoffSeconds", 1}}}}));
  ASSERT_FALSE(ok.empty());
  ASSERT_FALSE(three.empty());

  Json o = AwaitEnd(key, ok);
  const double ok_s = SecondsSince(start);
  EXPECT_EQ(o.value("status", ""), "Completed") << o.dump();
  EXPECT_EQ(o["result"].value("exitCode", Json()), 0) << o.dump();
  EXPECT_EQ(o["result"].value("attempts", 0), 1);
  EXPECT_FALSE(o["result"]["attemptResults"][0].value("node", "").empty()) << o.dump();

  Json t = AwaitEnd(key, three);
  const double three_s = SecondsSince(start);
  EXPECT_EQ(t.value("status", ""), "Failed") << t.dump();
  EXPECT_EQ(t["result"].value("exitCode", Json()), 3) << t.dump();
  EXPECT_EQ(t["result"].value("attempts", 0), 3) << t.dump();
  EXPECT_EQ(t["result"]["attemptResults"].size(), 3u);

  // Exactly three services for the failing job, each created once; none left.
  EXPECT_TRUE(PollUntil([&] { return Services() == 0 && NodeContainers() == 0; }, 60s));
  const std::map<std::string, int> creates = watch.Stop();
  const std::string instance = batch::JobInstanceId("acme", three);
  int three_services = 0;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const std::string name = runtime::swarm::SwarmRuntime::ServiceName(batch::JobGroupName(instance, attempt));
    auto it = creates.find(name);
    EXPECT_TRUE(it != creates.end() && it->second == 1) << name << " created " << (it == creates.end() ? 0 : it->second);
    three_services += it != creates.end();
  }
  const std::string fourth = runtime::swarm::SwarmRuntime::ServiceName(batch::JobGroupName(instance, 4));
  EXPECT_EQ(creates.count(fourth), 0u);
  EXPECT_EQ(three_services, 3);

  // Logs, stdout and stderr apart, kept after the service is gone.
  Json logs = ParseOrNull(Call(key, "GET", "/api/v1/jobs/" + ok + "/logs?attempt=1").body);
  ASSERT_TRUE(logs.is_object()) << logs.dump();
  std::vector<std::string> out, err;
  for (const Json& l : logs["lines"]) (l["stream"] == "stdout" ? out : err).push_back(l.value("text", ""));
  EXPECT_EQ(out, (std::vector<std::string>{"progress 1/3", "progress 2/3", "progress 3/3"}));
  EXPECT_EQ(err, (std::vector<std::string>{"warning 1/3", "warning 2/3", "warning 3/3"}));
  Json three_logs = ParseOrNull(Call(key, "GET", "/api/v1/jobs/" + three + "/logs?attempt=3").body);
  EXPECT_EQ(three_logs["lines"].size(), 1u) << three_logs.dump();
  std::printf("swarm: exit 0 Completed %.1f s after submit; exit 3 Failed after 3 attempts (3 services) at %.1f s\n",
              ok_s, three_s);
}

// Must show: Always runs until canceled; a cancel removes the service.
TEST_F(SwarmE2eTest, AlwaysRunsUntilCanceledAndCancelRemovesTheService) {
  StartServer();
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  const std::string always = Submit(
      key, Spec("always", {"exit", "0"},
                Json{{"restartPolicy", {{"policy", "Always"}, {"maxAttempts", 100}, {"backoffSeconds", 0}}}}));
  ASSERT_FALSE(always.empty());
  Json running = AwaitJob(key, always, [](const Json& v) { return v.value("attempt", 0) >= 3; });
  ASSERT_GE(running.value("attempt", 0), 3) << running.dump();
  const auto start = SteadyClock::now();
  EXPECT_EQ(Call(key, "POST", "/api/v1/jobs/" + always + "/cancel").status, 202);
  Json a = AwaitEnd(key, always);
  const double canceled_s = SecondsSince(start);
  EXPECT_EQ(a.value("status", ""), "Canceled") << a.dump();
  EXPECT_GE(a["result"].value("attempts", 0), 3) << a.dump();
  for (const Json& r : a["result"]["attemptResults"]) {
    if (!r.value("timedOut", false) && r.contains("exitCode") && r["exitCode"] != -1) {
      EXPECT_EQ(r["exitCode"], 0) << r.dump();
    }
  }
  EXPECT_TRUE(PollUntil([&] { return Services(batch::JobInstanceId("acme", always)) == 0; }, 60s, 100ms));
  const double gone_s = SecondsSince(start);
  EXPECT_TRUE(PollUntil([&] { return NodeContainers() == 0; }, 60s));
  std::printf("swarm: Always canceled after %d attempts: Canceled %.1f s after the request, no service at %.1f s\n",
              a["result"].value("attempts", 0), canceled_s, gone_s);
}

// Must show: timeout and cancel stop the job and remove its service within seconds.
TEST_F(SwarmE2eTest, TimeoutAndCancelStopTheJobAndRemoveItsService) {
  StartServer();
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  auto start = SteadyClock::now();
  const std::string timed = Submit(key, Spec("timeout", {"serve", "18080"}, Json{{"timeoutSeconds", 3}}));
  ASSERT_FALSE(timed.empty());
  Json t = AwaitEnd(key, timed, 90s);
  const double timeout_s = SecondsSince(start);
  EXPECT_EQ(t.value("status", ""), "Failed") << t.dump();
  ASSERT_GE(t["result"]["attemptResults"].size(), 1u) << t.dump();
  EXPECT_EQ(t["result"]["attemptResults"][0].value("timedOut", false), true) << t.dump();
  EXPECT_TRUE(PollUntil([&] { return Services(batch::JobInstanceId("acme", timed)) == 0; }, 30s, 100ms));
  const double timeout_gone_s = SecondsSince(start);
  // What it printed before the stop is kept.
  Json logs = ParseOrNull(Call(key, "GET", "/api/v1/jobs/" + timed + "/logs?attempt=1").body);
  EXPECT_NE(logs.dump().find("listening on 0.0.0.0:18080"), std::string::npos) << logs.dump();

  // Submitted by tag: the service runs the digest the tag named at submit.
  const std::string canceled = Submit(key, Spec("cancel", {"sleep", "300"}, Json{{"image", active_->image->tag}}));
  ASSERT_FALSE(canceled.empty());
  Json r = AwaitJob(key, canceled, [](const Json& v) { return v.value("status", "") == "Running"; }, 90s);
  ASSERT_EQ(r.value("status", ""), "Running") << r.dump();
  EXPECT_EQ(Services(batch::JobInstanceId("acme", canceled)), 1u);
  const std::string digest = active_->image->digest.substr(active_->image->digest.find("@sha256:"));
  Json service = Manager("/services/" + runtime::swarm::SwarmRuntime::ServiceName(
                                             batch::JobGroupName(batch::JobInstanceId("acme", canceled), 1)));
  const std::string pinned = service["Spec"]["TaskTemplate"]["ContainerSpec"].value("Image", "");
  EXPECT_NE(pinned.find(digest), std::string::npos) << pinned << " is not pinned to " << digest;
  start = SteadyClock::now();
  EXPECT_EQ(Call(key, "POST", "/api/v1/jobs/" + canceled + "/cancel").status, 202);
  Json c = AwaitEnd(key, canceled, 90s);
  const double cancel_s = SecondsSince(start);
  EXPECT_EQ(c.value("status", ""), "Canceled") << c.dump();
  EXPECT_TRUE(PollUntil([&] { return Services(batch::JobInstanceId("acme", canceled)) == 0; }, 30s, 100ms));
  const double cancel_gone_s = SecondsSince(start);
  EXPECT_TRUE(PollUntil([&] { return NodeContainers() == 0; }, 60s));
  std::printf(
      "swarm: timeout 3 s: Failed %.1f s after submit, its service gone at %.1f s; cancel: Canceled %.1f s after "
      "the request, its service gone at %.1f s\n",
      timeout_s, timeout_gone_s, cancel_s, cancel_gone_s);
}

// Logs followed on the swarm: a running job's lines arrive while it runs
// (read from its task through the manager), and the follow ends ("done")
// once the job is over and its logs are kept.
TEST_F(SwarmE2eTest, FollowingARunningJobsLogsGivesItsLinesWhileItRunsAndEndsWithIt) {
  StartServer();
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  const std::string id = Submit(key, Spec("follow", {"serve", "18097"}));
  ASSERT_FALSE(id.empty());
  const std::string logs = "/api/v1/jobs/" + id + "/logs?follow=true&timeout=20";
  Json lines = Json::array();
  int64_t next = 0;
  PollUntil(
      [&] {
        Json f = ParseOrNull(Call(key, "GET", logs + "&after=" + std::to_string(next)).body);
        if (!f.is_object()) return false;
        for (const Json& l : f["lines"]) lines.push_back(l);
        next = f.value("next", next);
        return !lines.empty();
      },
      90s, 10ms);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.dump().find("listening on 0.0.0.0:18097"), std::string::npos) << lines.dump();
  // It serves until stopped: the line came while it ran (the job's view may
  // still say "Starting": Baton records the start when the manager reports
  // the task running, a moment after the process printed).
  EXPECT_EQ(AwaitJob(key, id, [](const Json& v) { return v.value("status", "") != "Starting"; }).value("status", ""),
            "Running");
  EXPECT_EQ(Call(key, "POST", "/api/v1/jobs/" + id + "/cancel").status, 202);
  bool done = false;
  PollUntil(
      [&] {
        Json f = ParseOrNull(Call(key, "GET", logs + "&after=" + std::to_string(next)).body);
        if (!f.is_object()) return false;
        next = f.value("next", next);
        done = f.value("done", false);
        return done;
      },
      90s, 10ms);
  EXPECT_TRUE(done);
  EXPECT_EQ(AwaitEnd(key, id).value("status", ""), "Canceled");
  EXPECT_TRUE(PollUntil([&] { return Services() == 0 && NodeContainers() == 0; }, 60s));
}

// Must show: a memory-limited job killed for memory reports it (confirmed
// through the task's node; the unconfirmed case is SwarmRuntimeTest's).
TEST_F(SwarmE2eTest, AJobKilledForMemoryReportsIt) {
  StartServer();
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  // After 300 ms: with cgroup v1 an OOM in the first milliseconds of a task
  // can escape dockerd's OOM watch (docs/http-api.md).
  const std::string id = Submit(key, Spec("oom", {"alloc", "200", "300"}, Json{{"memoryMb", 16}}));
  Json v = AwaitEnd(key, id);
  EXPECT_EQ(v.value("status", ""), "Failed") << v.dump();
  EXPECT_EQ(v["result"].value("oomKilled", false), true) << v.dump();
  EXPECT_EQ(v["result"].value("exitCode", Json()), 137) << v.dump();
}

// Memory-aware retries on a swarm: the OOM-killed task's job is retried as a
// new service with double the memory, and the task's container is measured
// on its node (docs/job-spec.md#resource-usage).
TEST_F(SwarmE2eTest, RightsizeOomRetryOnASwarmNodeGrowsAndIsMeasured) {
  StartServer();
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  const std::string id = Submit(key, Spec("grow", {"alloc", "24", "300", "3000"},
                                          Json{{"memoryMb", 16},
                                               {"onOomKilled", {{"increaseMemory", 2.0}, {"maxMemoryMb", 64}}}}));
  Json v = AwaitEnd(key, id);
  ASSERT_EQ(v.value("status", ""), "Completed") << v.dump(2);
  const Json& attempts = v["result"]["attemptResults"];
  ASSERT_EQ(attempts.size(), 2u) << v.dump(2);
  EXPECT_TRUE(attempts[0].value("oomKilled", false)) << attempts[0].dump();
  EXPECT_EQ(attempts[0]["oomRetry"].value("memoryMb", 0), 32) << attempts[0].dump();
  EXPECT_EQ(attempts[1].value("memoryMb", 0), 32) << attempts[1].dump();
  ASSERT_TRUE(attempts[1]["peakMemoryBytes"].is_number_integer()) << attempts[1].dump();
  EXPECT_GE(attempts[1]["peakMemoryBytes"].get<int64_t>(), int64_t{24} << 20) << attempts[1].dump();
  EXPECT_LE(attempts[1]["peakMemoryBytes"].get<int64_t>(), int64_t{32} << 20) << attempts[1].dump();
  EXPECT_TRUE(attempts[1]["cpuSeconds"].is_number()) << attempts[1].dump();
}

// What Swarm cannot run is refused at submit (422 naming the field), and so
// is a job larger than the largest node; nothing is stored or created.
TEST_F(SwarmE2eTest, WhatSwarmCannotRunAndWhatFitsNoNodeIsRefusedAtSubmitAndNothingIsCreated) {
  StartServer();
  const std::string key = CreateTenant("acme", Json::object());
  Json capacity = SchedulerCapacity();
  Json nodes = Manager("/nodes");
  double sum = 0, largest = 0;
  for (const Json& n : nodes) {
    const double c = static_cast<double>(n["Description"]["Resources"].value("NanoCPUs", int64_t{0})) / 1e9;
    sum += c;
    largest = std::max(largest, c);
  }
  EXPECT_DOUBLE_EQ(capacity.value("cpu", 0.0), sum) << capacity.dump();
  EXPECT_DOUBLE_EQ(capacity["largestNode"].value("cpu", 0.0), largest) << capacity.dump();
  EXPECT_EQ(capacity.value("nodes", 0), 2) << capacity.dump();

  struct Case {
    Json spec;
    int status;
    std::string code;
    std::string field;
  };
  const std::vector<Case> cases = {
      {Spec("side", {"exit", "0"}, Json{{"sidecars", {{{"name", "s"}, {"image", suite_.image->digest}}}}}), 422,
       "NotSupported", "sidecars"},
      {Spec("cb", {"exit", "0"}, Json{{"completion", "callback"}}), 422, "NotSupported", "completion"},
      {Spec("url", {"serve", "80"}, Json{{"network", "bridge"}, {"completion", {{"mode", "jobUrl"}, {"port", 80}}}}),
       422, "NotSupported", "completion"},
      {Spec("bridge", {"exit", "0"}, Json{{"network", "bridge"}}), 422, "NotSupported", "network"},
      {Spec("ports", {"exit", "0"}, Json{{"network", "bridge"}, {"ports", {80}}}), 422, "NotSupported", "network"},
      // Fits the cluster's sum, not one node.
      {Spec("wide", {"exit", "0"}, Json{{"cpu", largest + 0.5}}), 422, "NeverFits", "cpu"},
      {Spec("heavy", {"exit", "0"},
            Json{{"memoryMb", (capacity["largestNode"].value("memoryMb", int64_t{0})) + 1024}}),
       422, "NeverFits", "memoryMb"},
      {Spec("host", {"exit", "0"}, Json{{"network", "host"}}), 403, "PermissionDenied", "network"},
  };
  for (const Case& c : cases) {
    HttpResult r = Call(key, "POST", "/api/v1/jobs", c.spec.dump());
    EXPECT_EQ(r.status, c.status) << c.spec.dump() << " -> " << r.body;
    EXPECT_EQ(ErrorCode(r), c.code) << r.body;
    EXPECT_EQ(ErrorField(r), c.field) << r.body;
  }
  Json list = ParseOrNull(Call(key, "GET", "/api/v1/jobs").body);
  EXPECT_TRUE(list["jobs"].empty()) << list.dump();
  EXPECT_EQ(Services(), 0u);
}

// A job that fits a node, but no node right now: granted by the scheduler
// (the cluster has the capacity in all), it waits on Swarm's placement, its
// view saying why, and runs once a node frees up.
TEST_F(SwarmE2eTest, AJobThatFitsANodeButNoneNowWaitsOnPlacementSayingWhy) {
  StartServer();
  const std::string key = CreateTenant("acme", Json::object());
  const double per_node = SchedulerCapacity()["largestNode"].value("cpu", 0.0);
  ASSERT_GE(per_node, 1.0);
  // Two jobs take three quarters of each node (they cannot share one), and
  // hold them until canceled: no timing decides what is free when.
  std::vector<std::string> big;
  for (int i = 0; i < 2; ++i) {
    big.push_back(Submit(key, Spec("big" + std::to_string(i), {"sleep", "300"}, Json{{"cpu", per_node * 0.75}})));
  }
  for (const std::string& id : big) {
    Json v = AwaitJob(key, id, [](const Json& v) { return v.value("status", "") == "Running"; }, 90s);
    ASSERT_EQ(v.value("status", ""), "Running") << v.dump();
  }
  // Half a node: within the cluster's free half-and-half, on no single node.
  const std::string waits = Submit(key, Spec("waits", {"exit", "0"}, Json{{"cpu", per_node * 0.5}}));
  Json w = AwaitJob(
      key, waits,
      [](const Json& v) { return v["waitingOn"].is_object() && v["waitingOn"].value("reason", "") == "placement"; },
      60s);
  ASSERT_TRUE(w["waitingOn"].is_object()) << w.dump();
  EXPECT_EQ(w["waitingOn"].value("reason", ""), "placement") << w.dump();
  EXPECT_NE(w["waitingOn"].value("lastError", "").find("no suitable node"), std::string::npos) << w.dump();
  EXPECT_EQ(w.value("status", ""), "Starting") << w.dump();
  // A node frees up: it runs there.
  EXPECT_EQ(Call(key, "POST", "/api/v1/jobs/" + big[0] + "/cancel").status, 202);
  Json done = AwaitEnd(key, waits, 120s);
  EXPECT_EQ(done.value("status", ""), "Completed") << done.dump();
  EXPECT_EQ(Call(key, "POST", "/api/v1/jobs/" + big[1] + "/cancel").status, 202);
  for (const std::string& id : big) EXPECT_EQ(AwaitEnd(key, id).value("status", ""), "Canceled");
  Json timeline = ParseOrNull(Call(key, "GET", "/api/v1/jobs/" + waits + "/events").body);
  int waits_seen = 0;
  for (const Json& e : timeline.value("events", Json::array())) waits_seen += e.value("type", "") == "Waiting";
  EXPECT_GE(waits_seen, 1) << timeline.dump();
  EXPECT_TRUE(PollUntil([&] { return Services() == 0 && NodeContainers() == 0; }, 60s));
}

// Must show: 20 jobs from 2 tenants with quotas, sampled from /tasks while
// they run: no tenant ever exceeds its quota, and capacity from /nodes is
// respected — the quotas add up to more than the cluster has, so what Baton
// runs at once is bounded by the nodes' sum, and what runs on a node never
// exceeds what /nodes says it has. Slow (labelled).
TEST_F(SwarmE2eTest, TwentyJobsFromTwoTenantsNeverExceedTheirQuotasSampledFromTasks) {
  StartServer();
  std::map<std::string, double> node_cpus;
  double cluster_cpus = 0;
  for (const Json& n : Manager("/nodes")) {
    node_cpus[n.value("ID", "")] = static_cast<double>(n["Description"]["Resources"].value("NanoCPUs", int64_t{0})) / 1e9;
    cluster_cpus += node_cpus[n.value("ID", "")];
  }
  EXPECT_DOUBLE_EQ(SchedulerCapacity().value("cpu", 0.0), cluster_cpus);
  // Half-core jobs. beta may use a quarter of the cluster's cores (its
  // quota binds), acme four fifths: together more than the cluster has, so
  // acme is bound by the capacity (what beta leaves of it), not its quota.
  constexpr double kJobCpu = 0.5;
  const std::map<std::string, Json> quotas = {{"acme", Json{{"cpu", cluster_cpus * 0.8}, {"jobs", 10}}},
                                              {"beta", Json{{"cpu", cluster_cpus * 0.25}, {"jobs", 10}}}};
  std::map<std::string, std::string> keys;
  for (const auto& [t, q] : quotas) keys[t] = CreateTenant(t, q);

  // The sampler: the manager's /tasks and /services, every ~150 ms.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, int> max_jobs;
  std::map<std::string, double> max_cpu;
  std::map<std::string, double> max_node_cpu;  // any test's tasks on the node
  int samples = 0, max_total = 0;
  double max_total_cpu = 0;  // this test's, over both tenants
  std::thread sampler([&] {
    const auto deadline = SteadyClock::now() + 300s;
    while (!stop && SteadyClock::now() < deadline) {
      std::map<std::string, std::map<std::string, std::string>> labels;  // service id -> labels
      std::map<std::string, double> service_cpu;
      for (const Json& s : Manager("/services")) {
        for (const auto& [k, v] : s["Spec"]["Labels"].items()) labels[s.value("ID", "")][k] = v;
        service_cpu[s.value("ID", "")] =
            static_cast<double>(s["Spec"]["TaskTemplate"]["Resources"]["Reservations"].value("NanoCPUs", int64_t{0})) /
            1e9;
      }
      std::map<std::string, int> jobs;
      std::map<std::string, double> cpu, on_node;
      int total = 0;
      double total_cpu = 0;
      for (const Json& t : Manager("/tasks")) {
        const std::string state = t["Status"].value("State", "");
        // What holds resources: placed and not ended.
        if (!(state == "assigned" || state == "accepted" || state == "preparing" || state == "ready" ||
              state == "starting" || state == "running")) {
          continue;
        }
        const std::string sid = t.value("ServiceID", "");
        if (!service_cpu.count(sid)) continue;
        on_node[t.value("NodeID", "")] += service_cpu[sid];
        auto& l = labels[sid];
        if (l["baton.node"] != node_) continue;
        ++jobs[l["baton.tenant"]];
        cpu[l["baton.tenant"]] += service_cpu[sid];
        total_cpu += service_cpu[sid];
        ++total;
      }
      {
        std::lock_guard lock(mu);
        ++samples;
        max_total = std::max(max_total, total);
        max_total_cpu = std::max(max_total_cpu, total_cpu);
        for (const auto& [t, n] : jobs) max_jobs[t] = std::max(max_jobs[t], n);
        for (const auto& [t, c] : cpu) max_cpu[t] = std::max(max_cpu[t], c);
        for (const auto& [n, c] : on_node) max_node_cpu[n] = std::max(max_node_cpu[n], c);
      }
      std::this_thread::sleep_for(150ms);
    }
  });

  std::vector<Submitted> jobs;
  for (int i = 0; i < 10; ++i) {
    for (const auto& [t, q] : quotas) {
      std::string id = Submit(keys[t], Spec(t + "-" + std::to_string(i), {"sleep", "4"}, Json{{"cpu", kJobCpu}}));
      if (!id.empty()) jobs.push_back({t, id});
    }
  }
  ASSERT_EQ(jobs.size(), 20u);
  const auto start = SteadyClock::now();
  std::map<std::string, Json> ended;
  PollUntil(
      [&] {
        for (const Submitted& j : jobs) {
          if (ended.count(j.id)) continue;
          Json v = GetJob(keys[j.tenant], j.id);
          if (v.is_object() && IsEnded(v.value("status", ""))) ended[j.id] = v;
        }
        return ended.size() == jobs.size();
      },
      300s, 250ms);
  const double all_s = SecondsSince(start);
  stop = true;
  sampler.join();
  ASSERT_EQ(ended.size(), jobs.size());
  for (const auto& [id, v] : ended) EXPECT_EQ(v.value("status", ""), "Completed") << v.dump();
  std::lock_guard lock(mu);
  EXPECT_GT(samples, 10);
  for (const auto& [t, q] : quotas) {
    EXPECT_LE(max_jobs[t], q.value("jobs", 0)) << t;
    EXPECT_LE(max_cpu[t], q.value("cpu", 0.0) + 1e-9) << t;
    EXPECT_GE(max_jobs[t], 1) << t << " was never seen running";
  }
  EXPECT_LE(max_total_cpu, cluster_cpus + 1e-9) << "more than the cluster's nodes have";
  for (const auto& [n, c] : max_node_cpu) EXPECT_LE(c, node_cpus[n] + 1e-9) << "node " << n;
  std::printf(
      "swarm quotas: 20 jobs in %.1f s over %d samples of /tasks; most at once: acme %d jobs / %.2f cores (quota "
      "%.2f), beta %d / %.2f (quota %.2f), %d jobs / %.2f cores in all (the nodes have %.2f)\n",
      all_s, samples, max_jobs["acme"], max_cpu["acme"], quotas.at("acme").value("cpu", 0.0), max_jobs["beta"],
      max_cpu["beta"], quotas.at("beta").value("cpu", 0.0), max_total, max_total_cpu, cluster_cpus);
  EXPECT_TRUE(PollUntil([&] { return Services() == 0 && NodeContainers() == 0; }, 60s));
}

// Must show: Baton SIGKILLed 3 times during 20 swarm jobs: every job ends
// right, each attempt's service is created once, none is left. Slow (labelled).
TEST_F(SwarmE2eTest, ThreeSigkillsDuringTwentyJobsEachAttemptServiceCreatedOnceNoneLeft) {
  ServiceCreates watch(state().manager_socket);
  const auto test_start = SteadyClock::now();
  StartServer();
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> sleep_seconds(1, 3);
  struct Planned {
    std::string id;
    std::string want;  // Completed | Failed
    int attempts;
  };
  std::vector<Planned> jobs;
  for (int i = 0; i < 20; ++i) {
    if (i % 5 == 4) {  // four jobs fail twice: two attempts each
      jobs.push_back({Submit(key, Spec("fails-" + std::to_string(i), {"exit", "3"},
                                       Json{{"restartPolicy", {{"policy", "OnFailure"}, {"maxAttempts", 2},
                                                               {"backoffSeconds", 1}}}})),
                      "Failed", 2});
    } else {
      jobs.push_back({Submit(key, Spec("job-" + std::to_string(i), {"sleep", std::to_string(sleep_seconds(rng))})),
                      "Completed", 1});
    }
    ASSERT_FALSE(jobs.back().id.empty());
  }
  std::uniform_int_distribution<int> gap_ms(500, 3000);
  std::vector<double> kill_times;
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms(rng)));
    kill_times.push_back(SecondsSince(test_start));
    KillAndRestart();
  }
  std::map<std::string, Json> ended;
  PollUntil(
      [&] {
        for (const Planned& j : jobs) {
          if (ended.count(j.id)) continue;
          Json v = GetJob(key, j.id);
          if (v.is_object() && IsEnded(v.value("status", ""))) ended[j.id] = v;
        }
        return ended.size() == jobs.size();
      },
      300s, 250ms);
  const double all_s = SecondsSince(test_start);
  ASSERT_EQ(ended.size(), jobs.size()) << "not every job ended within the bound";
  int attempts = 0;
  for (const Planned& j : jobs) {
    const Json& v = ended[j.id];
    EXPECT_EQ(v.value("status", ""), j.want)
        << j.id << ": " << v.dump() << "\ntimeline: " << Call(key, "GET", "/api/v1/jobs/" + j.id + "/events").body;
    EXPECT_EQ(v["result"].value("attempts", 0), j.attempts) << v.dump();
    if (j.want == "Failed") {
      EXPECT_EQ(v["result"].value("exitCode", Json()), 3) << v.dump();
    }
    attempts += v["result"].value("attempts", 0);
  }
  const bool none_left = PollUntil([&] { return Services() == 0 && NodeContainers() == 0; }, 60s, 500ms);
  // Each attempt's service: created once (the manager's events), and no other.
  const std::map<std::string, int> creates = watch.Stop();
  int services = 0, twice = 0;
  for (const Planned& j : jobs) {
    const std::string instance = batch::JobInstanceId("acme", j.id);
    for (int a = 1; a <= ended[j.id]["result"].value("attempts", 0) + 1; ++a) {
      auto it = creates.find(runtime::swarm::SwarmRuntime::ServiceName(batch::JobGroupName(instance, a)));
      if (it == creates.end()) continue;
      services += 1;
      if (it->second != 1) {
        ++twice;
        ADD_FAILURE() << it->first << " created " << it->second << " times";
      }
    }
  }
  EXPECT_EQ(services, attempts);
  EXPECT_EQ(twice, 0);
  EXPECT_TRUE(none_left) << Services() << " services and " << NodeContainers() << " containers left";
  EXPECT_TRUE(Manager("/secrets?filters=" + LabelFilter()).empty());
  std::printf("swarm sigkill: 20 jobs, %d attempts, %d services each created once; kills at", attempts, services);
  for (double k : kill_times) std::printf(" %.1f s", k);
  std::printf("; all ended at %.1f s\n", all_s);
}


// ---- A careless operator ----

struct Exited {
  int code = -1;  // -1: still running when the bound passed (then killed)
  std::string output;  // stdout and stderr
};

// `baton serve` with `args`, until it exits (a bound of 60 s).
Exited RunServe(const std::string& data_dir, const std::vector<std::string>& args) {
  int out[2];
  if (::pipe(out) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    std::vector<std::string> all = {BATON_BINARY, "serve", "--data-dir", data_dir, "--port", "0", "--grpc-port", "0"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(BATON_BINARY, argv.data());
    _exit(127);
  }
  ::close(out[1]);
  Exited e;
  const auto deadline = SteadyClock::now() + 60s;
  char buf[4096];
  for (;;) {
    pollfd p{out[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, 200);
    if (ready > 0) {
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      e.output.append(buf, static_cast<size_t>(n));
    }
    if (SteadyClock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      break;
    }
  }
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && SteadyClock::now() < deadline) e.code = WEXITSTATUS(status);
  return e;
}

// A --swarm-manager that can never work stops `baton serve` at start, saying
// which flag and why; one that is merely away lets it start, and a
// deployment that never read the cluster's nodes answers a submit 503
// (nothing stored) rather than a NeverFits against a capacity of zero.
TEST_F(SwarmE2eTest, ABadSwarmManagerIsRefusedAtStartSayingWhyAndAnAbsentOneAnswersSubmits503) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--swarm-manager", "http://127.0.0.1:2375"}, "--swarm-manager 'http://127.0.0.1:2375': an endpoint is"},
      {{"--swarm-manager", "tcp://10.0.0.1:2375"}, "--swarm-manager 'tcp://10.0.0.1:2375': dockerd's plain TCP API "
                                                   "is taken on loopback only"},
      {{"--swarm-manager", "tcp://127.0.0.1:99999"}, "the port must be 1-65535"},
      // A node of the swarm, but not a manager.
      {{"--swarm-manager", state().worker_socket}, "--swarm-manager: the dockerd at " + state().worker_socket +
                                                       " is not a manager of an active swarm"},
      {{"--swarm-manager", state().manager_socket, "--swarm-node", "n1=tcp://192.0.2.1:2375"},
       "--swarm-node 'tcp://192.0.2.1:2375'"},
      {{"--swarm-manager", state().manager_socket, "--swarm-node", "tcp:///x.sock"}, "--swarm-node 'tcp:///x.sock': "
                                                                                     "expected <node id or hostname>"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<std::string> args = {"--runtime", "swarm"};
    args.insert(args.end(), cases[i].args.begin(), cases[i].args.end());
    const Exited e = RunServe(dir_.File("bad" + std::to_string(i)), args);
    EXPECT_EQ(e.code, 1) << e.output;
    EXPECT_NE(e.output.find(cases[i].says), std::string::npos) << e.output;
    EXPECT_EQ(e.output.find("listening on"), std::string::npos) << e.output;
  }

  // A socket where no manager is (yet): it starts, and says so on stderr.
  StartServer({}, dir_.File("no-manager-here.sock"), /*await_capacity=*/false);
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  HttpResult r = Call(key, "POST", "/api/v1/jobs", Spec("early", {"exit", "0"}).dump());
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(ErrorCode(r), "Unavailable") << r.body;
  EXPECT_NE(r.body.find("not known yet"), std::string::npos) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "5");
  EXPECT_TRUE(ParseOrNull(Call(key, "GET", "/api/v1/jobs").body)["jobs"].empty());
}

// The manager away (a partition between Baton and the manager: its API
// forwarded to a loopback port that the test cuts) from the deployment's
// first start, then again while a job runs and another is submitted: no job
// is lost, judged on what Baton could not see, or left waiting; no service
// is left.
TEST_F(SwarmE2eTest, TheManagerAwayAtStartAndMidJobLosesNoJobAndLeavesNoService) {
  testing::TcpToUnix manager(state().manager_socket);
  manager.SetReachable(false);
  StartServer({}, manager.endpoint(), /*await_capacity=*/false);
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  HttpResult early = Call(key, "POST", "/api/v1/jobs", Spec("early", {"exit", "0"}).dump());
  EXPECT_EQ(early.status, 503) << early.body;
  EXPECT_EQ(ErrorCode(early), "Unavailable") << early.body;
  EXPECT_TRUE(ParseOrNull(Call(key, "GET", "/api/v1/jobs").body)["jobs"].empty());

  // Back: the nodes are read (--capacity-refresh 2) and jobs run.
  manager.SetReachable(true);
  ASSERT_TRUE(PollUntil([&] { return SchedulerCapacity().contains("largestNode"); }, 60s));
  const std::string running = Submit(key, Spec("running", {"sleep", "8"}));
  ASSERT_FALSE(running.empty());
  Json r = AwaitJob(key, running, [](const Json& v) { return v.value("status", "") == "Running"; }, 90s);
  ASSERT_EQ(r.value("status", ""), "Running") << r.dump();

  // Away mid-job, longer than the job runs: its task ends unseen, and a job
  // submitted meanwhile is accepted (the capacity read before holds).
  manager.SetReachable(false);
  const auto cut = SteadyClock::now();
  const std::string queued = Submit(key, Spec("queued", {"print", "2"}));
  ASSERT_FALSE(queued.empty());
  std::this_thread::sleep_for(15s);  // the outage
  const Json running_mid = GetJob(key, running);
  const Json queued_mid = GetJob(key, queued);
  EXPECT_FALSE(IsEnded(running_mid.value("status", ""))) << "judged while the manager was away: " << running_mid.dump();
  EXPECT_FALSE(IsEnded(queued_mid.value("status", ""))) << queued_mid.dump();
  manager.SetReachable(true);
  const auto back = SteadyClock::now();

  Json a = AwaitEnd(key, running);
  const double running_s = SecondsSince(back);
  EXPECT_EQ(a.value("status", ""), "Completed") << a.dump();
  EXPECT_EQ(a["result"].value("exitCode", Json()), 0) << a.dump();
  EXPECT_EQ(a["result"].value("attempts", 0), 1) << a.dump();
  Json q = AwaitEnd(key, queued);
  const double queued_s = SecondsSince(back);
  EXPECT_EQ(q.value("status", ""), "Completed") << q.dump();
  EXPECT_EQ(q["result"].value("attempts", 0), 1) << q.dump();
  // What the job submitted during the outage printed is kept.
  Json logs = ParseOrNull(Call(key, "GET", "/api/v1/jobs/" + queued + "/logs?attempt=1").body);
  size_t out = 0;
  for (const Json& l : logs["lines"]) out += l.value("stream", "") == "stdout";
  EXPECT_EQ(out, 2u) << logs.dump();
  EXPECT_TRUE(PollUntil([&] { return Services() == 0 && NodeContainers() == 0; }, 60s));
  std::printf(
      "swarm manager away %.1f s mid-job: the running job Completed %.1f s after it was back, the job submitted "
      "meanwhile %.1f s after\n",
      std::chrono::duration<double>(back - cut).count(), running_s, queued_s);
}

// `docker service rm` of a running attempt's service: Swarm 20.10 leaves the
// job's task running. Baton sees the service gone (ContainerLost), removes
// the task's container on its node (no second copy runs beside the next
// attempt), and the restart policy decides.
TEST_F(SwarmE2eTest, AServiceRemovedBehindBatonsBackEndsItsAttemptStopsItsTaskAndTheRestartPolicyDecides) {
  StartServer();
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  const std::string id = Submit(
      key, Spec("removed", {"sleep", "300"},
                Json{{"restartPolicy", {{"policy", "OnFailure"}, {"maxAttempts", 2}, {"backoffSeconds", 1}}}}));
  ASSERT_FALSE(id.empty());
  Json r = AwaitJob(key, id, [](const Json& v) { return v.value("status", "") == "Running"; }, 90s);
  ASSERT_EQ(r.value("status", ""), "Running") << r.dump();
  const std::string service =
      runtime::swarm::SwarmRuntime::ServiceName(batch::JobGroupName(batch::JobInstanceId("acme", id), 1));
  Json tasks;
  ASSERT_TRUE(PollUntil(
      [&] {
        tasks = Manager("/tasks?filters=" + QueryEscape(Json{{"service", {service}}}.dump()));
        return tasks.size() == 1 && tasks[0]["Status"].value("State", "") == "running";
      },
      60s))
      << tasks.dump();
  const std::string container = tasks[0]["Status"]["ContainerStatus"].value("ContainerID", "");
  const std::string socket =
      tasks[0].value("NodeID", "") == state().manager_node ? state().manager_socket : state().worker_socket;
  ASSERT_FALSE(container.empty());
  auto removed = ManagerRequest("DELETE", "/services/" + service);
  ASSERT_TRUE(removed.ok() && removed->status == 200);

  const auto start = SteadyClock::now();
  Json second = AwaitJob(
      key, id, [](const Json& v) { return v.value("attempt", 0) >= 2 && v.value("status", "") == "Running"; }, 120s);
  const double second_s = SecondsSince(start);
  EXPECT_EQ(second.value("attempt", 0), 2) << second.dump();
  // The first attempt's container does not run on beside the second.
  const bool gone = PollUntil(
      [&] {
        auto c = DockerClient(socket).Request("GET", "/containers/" + container + "/json");
        return c.ok() && c->status == 404;
      },
      60s);
  EXPECT_TRUE(gone) << "the task of the removed service still has its container " << container;
  EXPECT_EQ(Call(key, "POST", "/api/v1/jobs/" + id + "/cancel").status, 202);
  Json c = AwaitEnd(key, id);
  EXPECT_EQ(c.value("status", ""), "Canceled") << c.dump();
  ASSERT_GE(c["result"]["attemptResults"].size(), 1u) << c.dump();
  EXPECT_NE(c["result"]["attemptResults"][0].value("error", "").find("ContainerLost"), std::string::npos) << c.dump();
  EXPECT_TRUE(PollUntil([&] { return Services() == 0 && NodeContainers() == 0; }, 60s));
  std::printf("swarm: a service removed outside Baton: attempt 2 running %.1f s later, attempt 1's container %s\n",
              second_s, gone ? "removed" : "LEFT RUNNING");
}

// Draining needs a swarm of the test's own: the shared one's nodes run the
// other tests' jobs. One node (a manager), started for this suite.
class SwarmDrainE2eTest : public SwarmE2eTest {
 protected:
  static void SetUpTestSuite() {
    swarm_ = new testing::PrivateSwarm();
    Status started = swarm_->Start(/*worker=*/false);
    if (started.ok()) {
      own_.state = new testing::SwarmState(swarm_->state());
      runtime::docker::DockerRuntime manager(own_.state->manager_socket);
      auto built = testing::BuildAndPushTestImage(
          manager, BATON_TESTJOB, own_.state->registry + "/baton-test/testjob:" + std::to_string(getpid()),
          own_.state->Credentials());
      if (built.ok()) {
        own_.image = new testing::TestImage(*built);
      } else {
        started = built.status();
      }
    }
    own_.setup = new Status(started);
    active_ = &own_;
  }
  static void TearDownTestSuite() {
    active_ = &suite_;
    delete swarm_;  // everything it started, by PID
    swarm_ = nullptr;
    delete own_.image;
    delete own_.state;
    delete own_.setup;
    own_ = {};
  }

  Status SetAvailability(const std::string& node, const std::string& availability) {
    auto n = ManagerRequest("GET", "/nodes/" + node);
    if (!n.ok()) return n.status();
    Json j = ParseOrNull(n->body);
    Json spec = j["Spec"];
    spec["Availability"] = availability;
    auto u = DockerClient(state().manager_socket)
                 .Request("POST", "/nodes/" + node + "/update?version=" + std::to_string(j["Version"].value("Index", 0)),
                          spec.dump());
    if (!u.ok()) return u.status();
    return u->status == 200 ? Status::Ok() : InternalError("node update: " + u->body);
  }

  static testing::PrivateSwarm* swarm_;
  static testing::SwarmSuite own_;
};

testing::PrivateSwarm* SwarmDrainE2eTest::swarm_ = nullptr;
testing::SwarmSuite SwarmDrainE2eTest::own_;

// Swarm 20.10 lets a job task run to its end on a node drained under it:
// the job ends right. The drained node leaves the capacity (GET /nodes);
// with no node left, a submit is answered 503 (nothing stored), and jobs run
// again once the node is active.
TEST_F(SwarmDrainE2eTest, ANodeDrainedWhileAJobRunsLetsItEndRightAndTakesNoNewJob) {
  StartServer();
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  const std::string runs = Submit(key, Spec("runs", {"sleep", "10"}));
  ASSERT_FALSE(runs.empty());
  Json r = AwaitJob(key, runs, [](const Json& v) { return v.value("status", "") == "Running"; }, 90s);
  ASSERT_EQ(r.value("status", ""), "Running") << r.dump();
  BATON_ASSERT_OK(SetAvailability(state().manager_node, "drain"));
  EXPECT_TRUE(PollUntil([&] { return SchedulerCapacity().value("nodes", -1) == 0; }, 30s)) << SchedulerCapacity().dump();
  HttpResult refused = Call(key, "POST", "/api/v1/jobs", Spec("refused", {"exit", "0"}).dump());
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("no ready and active node"), std::string::npos) << refused.body;

  Json done = AwaitEnd(key, runs);
  EXPECT_EQ(done.value("status", ""), "Completed") << done.dump();
  EXPECT_EQ(done["result"].value("exitCode", Json()), 0) << done.dump();
  EXPECT_EQ(done["result"].value("attempts", 0), 1) << done.dump();

  BATON_ASSERT_OK(SetAvailability(state().manager_node, "active"));
  ASSERT_TRUE(PollUntil([&] { return SchedulerCapacity().value("nodes", -1) == 1; }, 30s));
  const std::string after = Submit(key, Spec("after", {"exit", "0"}));
  EXPECT_EQ(AwaitEnd(key, after).value("status", ""), "Completed");
  Json list = ParseOrNull(Call(key, "GET", "/api/v1/jobs").body);
  EXPECT_EQ(list["jobs"].size(), 2u) << list.dump();
  EXPECT_TRUE(PollUntil([&] { return Services() == 0 && NodeContainers() == 0; }, 60s));
}

}  // namespace
}  // namespace baton
