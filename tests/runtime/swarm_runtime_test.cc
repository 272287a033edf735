// SwarmRuntime against a real Docker Swarm: the private swarm of
// scripts/swarm-up (a manager and a worker dockerd in a network namespace of
// their own, with a registry; ctest's fixture "Swarm" starts it). Every
// assertion reads the manager's Engine API or the nodes' own, never a mock.
// Waits are liveness bounds only.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "baton/json.h"
#include "runtime/container_runtime.h"
#include "runtime/docker/docker_client.h"
#include "runtime/docker/docker_runtime.h"
#include "runtime/exec_shim/exec_shim.h"
#include "runtime/swarm/swarm_runtime.h"
#include "testing/private_swarm.h"
#include "testing/tcp_forward.h"
#include "testing/test_util.h"

namespace baton::runtime::swarm {
namespace {

using namespace std::chrono_literals;
using docker::DockerClient;

bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = 200ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(interval);
  }
  return condition();
}

std::string Joined(const std::vector<LogLine>& lines, LogLine::Stream stream) {
  std::string out;
  for (const LogLine& l : lines) {
    if (l.stream == stream) out += l.text + "\n";
  }
  return out;
}

class SwarmRuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { suite_.Prepare(BATON_RUN_DIR, BATON_TESTJOB); }
  static void TearDownTestSuite() { suite_.Release(); }

  void SetUp() override {
    ASSERT_TRUE(suite_.setup->ok()) << suite_.setup->ToString();
    // Only the manager's own node can be asked (as in a deployment that
    // names no --swarm-node), and one that can ask the worker too.
    runtime_ = std::make_unique<SwarmRuntime>(Options({}));
    both_ = std::make_unique<SwarmRuntime>(Options({{suite_.state->worker_node, suite_.state->worker_socket}}));
    prefix_ = "t" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : prefix_) c = std::isalnum(static_cast<unsigned char>(c)) ? std::tolower(c) : '-';
    prefix_ = prefix_.substr(0, 40);
  }

  void TearDown() override {
    // Whatever this test left goes.
    RemoveOrphanGroups(*both_, {{"baton.test", prefix_}}, [](const std::string&) { return false; })
        .status()
        .IgnoreError();
  }

  static SwarmOptions Options(std::map<std::string, std::string> nodes) {
    SwarmOptions o;
    o.manager = suite_.state->manager_socket;
    o.node_endpoints = std::move(nodes);
    o.registries = {suite_.state->Credentials()};
    o.poll_interval = 200ms;
    return o;
  }

  GroupSpec Group(const std::string& name, const std::vector<std::string>& args) {
    GroupSpec g;
    g.name = prefix_ + "-" + name;
    g.labels = {{"baton.test", prefix_}};
    ContainerSpec c;
    c.name = "main";
    c.image = suite_.image->digest;
    c.args = args;
    c.cpus = 0.1;
    c.memory_bytes = 32 << 20;
    g.containers.push_back(c);
    return g;
  }

  // Waits until the group's task ended; its last state.
  ContainerState AwaitExit(SwarmRuntime& rt, const std::string& group, std::chrono::seconds timeout = 90s) {
    ContainerState last;
    PollUntil(
        [&] {
          auto g = rt.InspectGroup(group);
          if (!g.ok()) return false;
          last = g->containers[0];
          return last.status == "exited";
        },
        timeout);
    return last;
  }

  Json Manager(const std::string& path) {
    auto r = DockerClient(suite_.state->manager_socket).Request("GET", path);
    if (!r.ok() || r->status != 200) return Json();
    return Json::parse(r->body, nullptr, false);
  }
  std::string ManagerText(const std::string& path) {
    auto r = DockerClient(suite_.state->manager_socket).Request("GET", path);
    return r.ok() ? r->body : "";
  }

  static testing::SwarmSuite suite_;
  std::unique_ptr<SwarmRuntime> runtime_;
  std::unique_ptr<SwarmRuntime> both_;
  std::string prefix_;
};

testing::SwarmSuite SwarmRuntimeTest::suite_;

TEST_F(SwarmRuntimeTest, AGroupIsOneReplicatedJobServiceCreatedOnceWithLimitsReservationsAndLabels) {
  GroupSpec g = Group("print", {"print", "3"});
  g.labels["baton.job"] = "job.acme.x";
  // The manager's service "create" events, streamed live from before the
  // creates for a few seconds: dockerd answers a `since` from its last 256
  // events of every kind only, which the other tests on the shared swarm
  // overrun (this check flaked reading them afterwards).
  const int64_t t0 = std::time(nullptr) - 1;
  std::string events;
  std::thread watch([&] {
    DockerClient(suite_.state->manager_socket)
        .Stream("GET",
                "/events?since=" + std::to_string(t0) + "&until=" + std::to_string(t0 + 6) + "&filters=" +
                    docker::QueryEscape(Json{{"type", {"service"}}, {"event", {"create"}}}.dump()),
                [&](std::string_view data) {
                  events.append(data);
                  return true;
                },
                30s)
        .status()
        .IgnoreError();
  });
  // Two creates at once and one after: one service.
  std::vector<Result<GroupState>> created(2, Result<GroupState>(InternalError("not run")));
  std::thread other([&] { created[1] = runtime_->CreateGroup(g); });
  created[0] = runtime_->CreateGroup(g);
  other.join();
  BATON_ASSERT_OK(created[0].status());
  BATON_ASSERT_OK(created[1].status());
  BATON_ASSERT_OK(runtime_->CreateGroup(g).status());
  const std::string service = SwarmRuntime::ServiceName(g.name);
  Json services = Manager("/services?filters=" + docker::QueryEscape(Json{{"name", {service}}}.dump()));
  ASSERT_EQ(services.size(), 1u) << services.dump();
  const Json spec = services[0]["Spec"];
  EXPECT_EQ(spec["Mode"]["ReplicatedJob"].value("MaxConcurrent", 0), 1);
  EXPECT_EQ(spec["Mode"]["ReplicatedJob"].value("TotalCompletions", 0), 1);
  EXPECT_EQ(spec["TaskTemplate"]["RestartPolicy"].value("Condition", ""), "none");
  EXPECT_EQ(spec["TaskTemplate"]["ContainerSpec"].value("Image", ""), suite_.image->digest);
  const Json res = spec["TaskTemplate"]["Resources"];
  EXPECT_EQ(res["Limits"].value("NanoCPUs", 0), 100000000);
  EXPECT_EQ(res["Reservations"].value("NanoCPUs", 0), 100000000);
  EXPECT_EQ(res["Limits"].value("MemoryBytes", 0), 32 << 20);
  EXPECT_EQ(res["Reservations"].value("MemoryBytes", 0), 32 << 20);
  EXPECT_EQ(res["Limits"].value("Pids", 0), 512);
  EXPECT_EQ(spec["Labels"].value("baton.job", ""), "job.acme.x");
  EXPECT_EQ(spec["Labels"].value("baton.group", ""), g.name);
  EXPECT_EQ(spec["TaskTemplate"]["ContainerSpec"]["Labels"].value("baton.job", ""), "job.acme.x");

  ContainerState done = AwaitExit(*runtime_, g.name);
  EXPECT_EQ(done.status, "exited");
  EXPECT_EQ(done.exit_code, 0);
  EXPECT_TRUE(done.error.empty()) << done.error;
  EXPECT_FALSE(done.node.empty());
  auto logs = runtime_->Logs(done.id);
  BATON_ASSERT_OK(logs.status());
  EXPECT_EQ(Joined(*logs, LogLine::Stream::kStdout), "progress 1/3\nprogress 2/3\nprogress 3/3\n");
  EXPECT_EQ(Joined(*logs, LogLine::Stream::kStderr), "warning 1/3\nwarning 2/3\nwarning 3/3\n");
  // Read in part: the tail, or a page.
  auto tail = runtime_->LogsTail(done.id, 2);
  BATON_ASSERT_OK(tail.status());
  ASSERT_EQ(tail->size(), 2u);
  EXPECT_EQ((*tail)[0].text, (*logs)[4].text);
  EXPECT_EQ((*tail)[1].text, (*logs)[5].text);
  auto page = runtime_->LogsRange(done.id, 1, 3);
  BATON_ASSERT_OK(page.status());
  ASSERT_EQ(page->size(), 3u);
  EXPECT_EQ((*page)[0].text, (*logs)[1].text);
  EXPECT_EQ((*page)[2].text, (*logs)[3].text);
  // A follow of an ended task gives every line and returns.
  std::vector<LogLine> followed;
  BATON_EXPECT_OK(runtime_->FollowLogs(done.id, [&](const LogLine& l) { followed.push_back(l); return true; }, 30s));
  EXPECT_EQ(followed.size(), 6u);
  // The one task ran once: Swarm made no other.
  Json tasks = Manager("/tasks?filters=" + docker::QueryEscape(Json{{"service", {service}}}.dump()));
  EXPECT_EQ(tasks.size(), 1u) << tasks.dump();
  // Service create events: exactly one for it.
  watch.join();
  size_t creates = 0;
  for (size_t at = 0; (at = events.find("\"name\":\"" + service + "\"", at)) != std::string::npos; ++at) ++creates;
  EXPECT_EQ(creates, 1u);

  const std::string container = Manager("/tasks/" + done.id)["Status"]["ContainerStatus"].value("ContainerID", "");
  // By a runtime that can ask either node: Swarm keeps an ended job task's
  // container on its node, so Baton removes it there.
  BATON_ASSERT_OK(both_->DeleteGroup(g.name));
  EXPECT_EQ(both_->InspectGroup(g.name).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Manager("/services/" + service).is_null());
  const std::string node_socket =
      done.node == suite_.state->manager_node ? suite_.state->manager_socket : suite_.state->worker_socket;
  auto gone = DockerClient(node_socket).Request("GET", "/containers/" + container + "/json");
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->status, 404) << gone->body.substr(0, 300);
  BATON_EXPECT_OK(both_->DeleteGroup(g.name));  // nothing left: OK
}

TEST_F(SwarmRuntimeTest, TheSandboxHoldsOnSwarmCapabilitiesNoNewPrivsPidsReadOnlyUserAndNoNetwork) {
  GroupSpec sandbox = Group("sandbox", {"sandbox"});
  sandbox.containers[0].user = "1000:1000";
  sandbox.containers[0].read_only_root_fs = true;
  sandbox.containers[0].pids_limit = 64;
  GroupSpec routes = Group("routes", {"cat", "/proc/net/route", "/proc/net/dev"});
  GroupSpec bomb = Group("bomb", {"fork", "200"});
  bomb.containers[0].pids_limit = 32;
  for (GroupSpec* g : {&sandbox, &routes, &bomb}) BATON_ASSERT_OK(runtime_->CreateGroup(*g).status());

  ContainerState s = AwaitExit(*runtime_, sandbox.name);
  EXPECT_EQ(s.exit_code, 0);
  const std::string out = Joined(*runtime_->Logs(s.id), LogLine::Stream::kStdout);
  EXPECT_NE(out.find("uid=1000 gid=1000"), std::string::npos) << out;
  EXPECT_NE(out.find("capeff=0000000000000000"), std::string::npos) << out;
  EXPECT_NE(out.find("nonewprivs=1"), std::string::npos) << out;  // set by baton-exec
  EXPECT_NE(out.find("raw=denied"), std::string::npos) << out;
  EXPECT_NE(out.find("packet=denied"), std::string::npos) << out;
  EXPECT_NE(out.find("rootfs=readonly"), std::string::npos) << out;
  EXPECT_NE(out.find("pids.max=64"), std::string::npos) << out;
  // What the task's container was given, read from its node.
  const std::string node_socket =
      s.node == suite_.state->manager_node ? suite_.state->manager_socket : suite_.state->worker_socket;
  Json task = Manager("/tasks/" + s.id);
  auto inspect = DockerClient(node_socket).Request(
      "GET", "/containers/" + task["Status"]["ContainerStatus"].value("ContainerID", "") + "/json");
  ASSERT_TRUE(inspect.ok());
  Json host = Json::parse(inspect->body, nullptr, false)["HostConfig"];
  EXPECT_EQ(host["CapDrop"], Json::array({"ALL"})) << host.dump();
  EXPECT_EQ(host.value("PidsLimit", 0), 64);
  EXPECT_EQ(host.value("ReadonlyRootfs", false), true);
  // Its log files are capped, so its output cannot fill the node's disk.
  EXPECT_EQ(host["LogConfig"].value("Type", ""), "json-file") << host["LogConfig"].dump();
  EXPECT_EQ(host["LogConfig"]["Config"].value("max-size", ""), "10m") << host["LogConfig"].dump();
  EXPECT_EQ(host["LogConfig"]["Config"].value("max-file", ""), "3") << host["LogConfig"].dump();

  // network "none": loopback only, and no route.
  ContainerState r = AwaitExit(*runtime_, routes.name);
  EXPECT_EQ(r.exit_code, 0);
  const std::string net = Joined(*runtime_->Logs(r.id), LogLine::Stream::kStdout);
  bool default_route = false;
  std::istringstream lines(net);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string iface, destination;
    if (fields >> iface >> destination && destination == "00000000") default_route = true;
  }
  EXPECT_FALSE(default_route) << net;
  EXPECT_NE(net.find("lo:"), std::string::npos) << net;
  EXPECT_EQ(net.find("eth0:"), std::string::npos) << net;

  // The pids limit stops a fork bomb.
  ContainerState b = AwaitExit(*runtime_, bomb.name);
  const std::string forked = Joined(*runtime_->Logs(b.id), LogLine::Stream::kStdout);
  EXPECT_EQ(forked.find("forked 200 of 200"), std::string::npos) << forked;
  EXPECT_NE(forked.find("forked "), std::string::npos) << forked;
}

TEST_F(SwarmRuntimeTest, SecretsReachTheJobAndNoServiceTaskSecretOrContainerInspectShowsThem) {
  const std::string env_value = "env-secret-" + prefix_ + "-7f3a";
  const std::string file_value = "file-secret-" + prefix_ + "-91c2";
  GroupSpec env = Group("env", {"env", "API_TOKEN", "PLAIN"});
  GroupSpec file = Group("file", {"cat", "/run/baton/secrets/cfg"});
  for (GroupSpec* g : {&env, &file}) {
    g->containers[0].env = {{"PLAIN", "visible"}};
    g->containers[0].secret_env = {{"API_TOKEN", env_value}};
    g->containers[0].secret_files = {{"cfg", file_value}};
    BATON_ASSERT_OK(runtime_->CreateGroup(*g).status());
  }
  ContainerState e = AwaitExit(*runtime_, env.name);
  ContainerState f = AwaitExit(*runtime_, file.name);
  EXPECT_EQ(e.exit_code, 0);
  EXPECT_EQ(f.exit_code, 0);
  EXPECT_NE(Joined(*runtime_->Logs(e.id), LogLine::Stream::kStdout).find("API_TOKEN=" + env_value + "\nPLAIN=visible"),
            std::string::npos);
  EXPECT_NE(Joined(*runtime_->Logs(f.id), LogLine::Stream::kStdout).find("cfg: " + file_value), std::string::npos);

  const std::string password = suite_.state->Credentials().password;
  std::vector<std::string> shown;
  for (const GroupSpec* g : {&env, &file}) {
    const std::string service = SwarmRuntime::ServiceName(g->name);
    shown.push_back(ManagerText("/services/" + service));
    shown.push_back(ManagerText("/tasks?filters=" + docker::QueryEscape(Json{{"service", {service}}}.dump())));
  }
  Json secrets = Manager("/secrets?filters=" + docker::QueryEscape(Json{{"label", {"baton.test=" + prefix_}}}.dump()));
  EXPECT_EQ(secrets.size(), 4u) << secrets.dump();  // two per group, labelled with the group's labels
  shown.push_back(secrets.dump());
  for (const Json& s : secrets) shown.push_back(ManagerText("/secrets/" + s.value("ID", "")));
  for (const ContainerState* c : {&e, &f}) {
    Json task = Manager("/tasks/" + c->id);
    const std::string socket =
        c->node == suite_.state->manager_node ? suite_.state->manager_socket : suite_.state->worker_socket;
    auto inspect = DockerClient(socket).Request(
        "GET", "/containers/" + task["Status"]["ContainerStatus"].value("ContainerID", "") + "/json");
    ASSERT_TRUE(inspect.ok() && inspect->status == 200);
    shown.push_back(inspect->body);
  }
  for (const std::string& text : shown) {
    EXPECT_EQ(text.find(env_value), std::string::npos) << text.substr(0, 2000);
    EXPECT_EQ(text.find(file_value), std::string::npos) << text.substr(0, 2000);
    EXPECT_EQ(text.find(password), std::string::npos) << "the registry password is shown";
  }
  EXPECT_NE(shown[0].find("/run/baton/exec"), std::string::npos);  // what is shown: the shim and the secret's target

  for (const GroupSpec* g : {&env, &file}) BATON_ASSERT_OK(runtime_->DeleteGroup(g->name));
  EXPECT_TRUE(Manager("/secrets?filters=" + docker::QueryEscape(Json{{"label", {"baton.test=" + prefix_}}}.dump()))
                  .empty());
}

// Starts `make(i)` for i = 0, 1, … two at a time until one group landed on
// each node (Swarm spreads them; other tests' tasks may skew it); returns the
// one on the manager's node and the one on the worker. Groups that landed
// on a node already covered are deleted.
std::pair<std::string, std::string> OnEachNode(SwarmRuntime& rt, const testing::SwarmState& state,
                                               const std::function<GroupSpec(int)>& make) {
  std::string on_manager, on_worker;
  for (int i = 0; i < 12 && (on_manager.empty() || on_worker.empty()); i += 2) {
    std::vector<std::string> names;
    for (int k = i; k < i + 2; ++k) {
      GroupSpec g = make(k);
      if (!rt.CreateGroup(g).ok()) continue;
      names.push_back(g.name);
    }
    for (const std::string& name : names) {
      std::string node;
      PollUntil(
          [&] {
            auto g = rt.InspectGroup(name);
            if (g.ok()) node = g->containers[0].node;
            return !node.empty();
          },
          60s);
      std::string& slot = node == state.manager_node ? on_manager : on_worker;
      if (slot.empty() && !node.empty()) {
        slot = name;
      } else {
        rt.DeleteGroup(name).IgnoreError();
      }
    }
  }
  return {on_manager, on_worker};
}

TEST_F(SwarmRuntimeTest, AnOomKillIsConfirmedByTheNodeAndOtherwiseReportedAsExit137UnderAMemoryLimit) {
  auto [on_manager, on_worker] = OnEachNode(*runtime_, *suite_.state, [&](int i) {
    // After 300 ms: with cgroup v1 an OOM in the first milliseconds of a
    // task can escape dockerd's OOM watch (docs/http-api.md).
    GroupSpec g = Group("oom" + std::to_string(i), {"alloc", "200", "300"});
    g.containers[0].memory_bytes = 16 << 20;
    return g;
  });
  ASSERT_FALSE(on_manager.empty());
  ASSERT_FALSE(on_worker.empty());
  ContainerState confirmed = AwaitExit(*runtime_, on_manager);
  EXPECT_EQ(confirmed.exit_code, 137);
  EXPECT_TRUE(confirmed.oom_killed);
  EXPECT_TRUE(confirmed.error.empty()) << confirmed.error;
  ContainerState unconfirmed = AwaitExit(*runtime_, on_worker);
  EXPECT_EQ(unconfirmed.exit_code, 137);
  EXPECT_FALSE(unconfirmed.oom_killed);  // never a guess
  EXPECT_NE(unconfirmed.error.find("exit 137 (SIGKILL) under a memory limit of 16 MiB"), std::string::npos)
      << unconfirmed.error;
  // The same task, by a runtime that can ask the worker: confirmed.
  auto asked = both_->InspectGroup(on_worker);
  BATON_ASSERT_OK(asked.status());
  EXPECT_TRUE(asked->containers[0].oom_killed);
  EXPECT_TRUE(asked->containers[0].error.empty()) << asked->containers[0].error;
}

// The registry takes no anonymous pull; a node that is not the manager pulls
// a job's image with the credentials sent along with its service
// (X-Registry-Auth), and without them its task is rejected, saying why.
TEST_F(SwarmRuntimeTest, TheNodesPullWithTheCredentialsSentAlongWithTheService) {
  // This test process's image is on the manager (built there), not on the worker.
  auto anonymous = DockerClient(suite_.state->worker_socket)
                       .Request("POST", "/images/create?fromImage=" + docker::QueryEscape(suite_.image->digest));
  ASSERT_TRUE(anonymous.ok());
  EXPECT_TRUE(anonymous->status != 200 || anonymous->body.find("\"error") != std::string::npos)
      << "the registry let the worker pull anonymously: " << anonymous->body.substr(0, 300);

  auto [on_manager, on_worker] = OnEachNode(*runtime_, *suite_.state, [&](int i) {
    return Group("pull" + std::to_string(i), {"exit", "0"});
  });
  ASSERT_FALSE(on_worker.empty());
  ContainerState pulled = AwaitExit(*runtime_, on_worker);
  EXPECT_EQ(pulled.exit_code, 0) << pulled.error;
  EXPECT_EQ(pulled.node, suite_.state->worker_node);

  // The same, by a runtime that sends no credentials: whatever lands on a
  // node without the image is rejected (the image is on the worker now:
  // remove it there first).
  BATON_ASSERT_OK(runtime_->DeleteGroup(on_worker));
  if (!on_manager.empty()) BATON_ASSERT_OK(runtime_->DeleteGroup(on_manager));
  auto removed = DockerClient(suite_.state->worker_socket)
                     .Request("DELETE", "/images/" + docker::QueryEscape(suite_.image->digest) + "?force=1");
  ASSERT_TRUE(removed.ok() && (removed->status == 200 || removed->status == 404)) << removed->body;
  SwarmOptions o = Options({});
  o.registries.clear();
  SwarmRuntime anonymous_runtime(o);
  auto [m2, w2] = OnEachNode(anonymous_runtime, *suite_.state, [&](int i) {
    return Group("anon" + std::to_string(i), {"exit", "0"});
  });
  ASSERT_FALSE(w2.empty());
  ContainerState rejected = AwaitExit(anonymous_runtime, w2);
  EXPECT_EQ(rejected.exit_code, -1);
  EXPECT_NE(rejected.error.find("rejected before it ran: No such image"), std::string::npos) << rejected.error;
  std::printf("without credentials, on the worker: %s\n", rejected.error.c_str());
}

TEST_F(SwarmRuntimeTest, StopKeepsTheExitCodeWhereTheNodeCanBeAskedAndOtherwiseRemovesTheServiceKeepingTheLogs) {
  auto [on_manager, on_worker] = OnEachNode(*runtime_, *suite_.state, [&](int i) {
    return Group("serve" + std::to_string(i), {"serve", std::to_string(18000 + i)});
  });
  ASSERT_FALSE(on_manager.empty());
  ASSERT_FALSE(on_worker.empty());
  for (const std::string& name : {on_manager, on_worker}) {
    ASSERT_TRUE(PollUntil(
        [&] {
          auto g = runtime_->InspectGroup(name);
          if (!g.ok() || !g->containers[0].running) return false;
          auto logs = runtime_->Logs(g->containers[0].id);
          return logs.ok() && Joined(*logs, LogLine::Stream::kStdout).find("listening on") != std::string::npos;
        },
        60s));
  }
  // On the manager's node: stopped there (SIGTERM: `serve` exits 0); the task stays with its logs.
  BATON_ASSERT_OK(runtime_->StopGroup(on_manager, 5s));
  auto stopped = runtime_->InspectGroup(on_manager);
  BATON_ASSERT_OK(stopped.status());
  EXPECT_EQ(stopped->containers[0].status, "exited");
  EXPECT_EQ(stopped->containers[0].exit_code, 0);
  EXPECT_TRUE(stopped->containers[0].error.empty());
  EXPECT_NE(Joined(*runtime_->Logs(stopped->containers[0].id), LogLine::Stream::kStdout).find("listening on"),
            std::string::npos);
  BATON_EXPECT_OK(runtime_->StopGroup(on_manager, 5s));  // stopped already: OK

  // On the worker, which cannot be asked: Swarm removes the task; the logs read before stay.
  BATON_ASSERT_OK(runtime_->StopGroup(on_worker, 5s));
  const std::string worker_service = SwarmRuntime::ServiceName(on_worker);
  EXPECT_TRUE(PollUntil(
      [&] { return Manager("/tasks?filters=" + docker::QueryEscape(Json{{"service", {worker_service}}}.dump())).empty(); },
      60s));
  auto removed = runtime_->InspectGroup(on_worker);
  BATON_ASSERT_OK(removed.status());
  const ContainerState& c = removed->containers[0];
  EXPECT_EQ(c.status, "exited");
  EXPECT_EQ(c.exit_code, -1);
  EXPECT_NE(c.error.find("stopped by Swarm removing its task"), std::string::npos) << c.error;
  EXPECT_NE(Joined(*runtime_->Logs(c.id), LogLine::Stream::kStdout).find("listening on"), std::string::npos);
  // Another process (a restarted Baton) does not know what it printed, and says so.
  auto fresh = SwarmRuntime(Options({})).InspectGroup(on_worker);
  BATON_ASSERT_OK(fresh.status());
  EXPECT_EQ(fresh->containers[0].status, "exited");
  EXPECT_EQ(fresh->containers[0].exit_code, -1);
  EXPECT_NE(fresh->containers[0].error.find("were not kept"), std::string::npos) << fresh->containers[0].error;
  BATON_ASSERT_OK(runtime_->DeleteGroup(on_worker));
  EXPECT_EQ(runtime_->InspectGroup(on_worker).status().code(), StatusCode::kNotFound);
}

TEST_F(SwarmRuntimeTest, ATaskNoNodeCanTakeWaitsSayingNoSuitableNode) {
  GroupSpec g = Group("huge", {"exit", "0"});
  g.containers[0].cpus = 500;  // more than any node
  BATON_ASSERT_OK(runtime_->CreateGroup(g).status());
  Status start = runtime_->StartGroup(g.name);
  EXPECT_EQ(start.code(), StatusCode::kResourceExhausted) << start.ToString();
  EXPECT_NE(start.message().find("no suitable node"), std::string::npos) << start.ToString();
  auto state = runtime_->InspectGroup(g.name);
  BATON_ASSERT_OK(state.status());
  EXPECT_EQ(state->containers[0].status, "created");
  EXPECT_NE(state->containers[0].waiting.find("insufficient resources"), std::string::npos)
      << state->containers[0].waiting;
  BATON_ASSERT_OK(runtime_->DeleteGroup(g.name));
}

TEST_F(SwarmRuntimeTest, CapacityIsTheReadyNodesResources) {
  auto capacity = runtime_->Capacity();
  BATON_ASSERT_OK(capacity.status());
  Json nodes = Manager("/nodes");
  double cpus = 0, largest = 0;
  for (const Json& n : nodes) {
    const double c = static_cast<double>(n["Description"]["Resources"].value("NanoCPUs", int64_t{0})) / 1e9;
    cpus += c;
    largest = std::max(largest, c);
  }
  EXPECT_EQ(capacity->nodes, 2);
  EXPECT_EQ(static_cast<size_t>(capacity->nodes), nodes.size());
  EXPECT_DOUBLE_EQ(capacity->cpus, cpus);
  EXPECT_DOUBLE_EQ(capacity->largest_node_cpus, largest);
  EXPECT_GT(capacity->largest_node_memory_bytes, 0);
  EXPECT_EQ(capacity->memory_bytes, 2 * capacity->largest_node_memory_bytes);  // two nodes of one machine
}

TEST_F(SwarmRuntimeTest, WatchEventsReportsEachEndedTaskOnceAsADieEventWithItsExitCode) {
  const TimePoint since = std::chrono::system_clock::now() - 1s;
  GroupSpec ok = Group("ok", {"exit", "0"});
  GroupSpec three = Group("three", {"exit", "3"});
  for (GroupSpec* g : {&ok, &three}) BATON_ASSERT_OK(runtime_->CreateGroup(*g).status());
  std::map<std::string, std::vector<int>> exits;  // group -> exit codes reported
  PollUntil(
      [&] {
        exits.clear();
        runtime_
            ->WatchEvents(
                {{"baton.test", prefix_}},
                [&](const ContainerEvent& e) {
                  if (e.action == "die") exits[e.labels.at("baton.group")].push_back(e.exit_code);
                  return true;
                },
                1s, since)
            .IgnoreError();
        return exits.size() == 2;
      },
      90s, 100ms);
  EXPECT_EQ(exits[ok.name], std::vector<int>({0}));
  EXPECT_EQ(exits[three.name], std::vector<int>({3}));
}

TEST_F(SwarmRuntimeTest, TheReconcilerFindsServicesAndWhatADeleteLeftByLabelAndRemovesThem) {
  GroupSpec a = Group("orphan", {"sleep", "30"});
  GroupSpec b = Group("leftover", {"exit", "0"});
  b.containers[0].secret_files = {{"cfg", "leftover-secret"}};
  for (GroupSpec* g : {&a, &b}) BATON_ASSERT_OK(runtime_->CreateGroup(*g).status());
  // A crash between a delete's steps: the service is gone, its secret and network are not.
  ASSERT_EQ(DockerClient(suite_.state->manager_socket)
                .Request("DELETE", "/services/" + SwarmRuntime::ServiceName(b.name))
                ->status,
            200);
  auto listed = runtime_->ListByLabels({{"baton.test", prefix_}});
  BATON_ASSERT_OK(listed.status());
  std::map<std::string, std::string> status;  // group -> status
  for (const ContainerState& c : *listed) status[c.labels.at("baton.group")] = c.status;
  EXPECT_EQ(status.size(), 2u);
  EXPECT_EQ(status[b.name], "removing");
  auto removed = RemoveOrphanGroups(*runtime_, {{"baton.test", prefix_}}, [](const std::string&) { return false; });
  BATON_ASSERT_OK(removed.status());
  EXPECT_EQ(std::set<std::string>(removed->begin(), removed->end()), (std::set<std::string>{a.name, b.name}));
  auto after = runtime_->ListByLabels({{"baton.test", prefix_}});
  BATON_ASSERT_OK(after.status());
  EXPECT_TRUE(after->empty());
  EXPECT_TRUE(Manager("/secrets?filters=" + docker::QueryEscape(Json{{"label", {"baton.test=" + prefix_}}}.dump()))
                  .empty());
}

TEST_F(SwarmRuntimeTest, WhatSwarmCannotRunIsRefusedAndNothingIsCreated) {
  GroupSpec two = Group("two", {"exit", "0"});
  two.containers.push_back(two.containers[0]);
  two.containers[1].name = "side";
  GroupSpec bridge = Group("bridge", {"exit", "0"});
  bridge.network = NetworkMode::kBridge;
  GroupSpec callback = Group("callback", {"exit", "0"});
  callback.callback_dir = "/tmp";
  for (const GroupSpec* g : {&two, &bridge, &callback}) {
    EXPECT_EQ(runtime_->CreateGroup(*g).status().code(), StatusCode::kInvalidArgument) << g->name;
  }
  auto listed = runtime_->ListByLabels({{"baton.test", prefix_}});
  BATON_ASSERT_OK(listed.status());
  EXPECT_TRUE(listed->empty());
  const RuntimeFeatures f = runtime_->Features();
  EXPECT_FALSE(f.sidecars);
  EXPECT_FALSE(f.callback_socket);
  EXPECT_FALSE(f.bridge_network);
  EXPECT_FALSE(f.loopback_reachable);
}

using testing::TcpToUnix;  // the manager's API over tcp:// (testing/tcp_forward.h)

TEST_F(SwarmRuntimeTest, TheManagerIsReachedOverALoopbackTcpAddressAndNoOtherAddressIsTaken) {
  TcpToUnix forward(suite_.state->manager_socket);
  SwarmOptions o = Options({});
  o.manager = "tcp://127.0.0.1:" + std::to_string(forward.port());
  SwarmRuntime tcp(o);
  BATON_EXPECT_OK(tcp.CheckManager());
  auto capacity = tcp.Capacity();
  BATON_ASSERT_OK(capacity.status());
  EXPECT_EQ(capacity->nodes, 2);
  for (const char* bad : {"tcp://10.0.0.1:2375", "tcp://localhost:2375", "tcp://127.0.0.1", "relative.sock",
                          "tcp://127.0.0.1:99999"}) {
    EXPECT_EQ(DockerClient::ValidEndpoint(bad).code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(DockerClient(bad).Request("GET", "/_ping").status().code(), StatusCode::kInvalidArgument) << bad;
  }
  BATON_EXPECT_OK(DockerClient::ValidEndpoint("unix://" + suite_.state->manager_socket));
  // Not a manager: the worker's own API.
  SwarmOptions w = Options({});
  w.manager = suite_.state->worker_socket;
  EXPECT_EQ(SwarmRuntime(w).CheckManager().code(), StatusCode::kFailedPrecondition);
}

// baton-exec, as shipped to swarm nodes: with BATON_EXEC_REQUIRE_NO_NETWORK=1
// it refuses to run a job in a network namespace that has more than
// loopback (this test's own: the host's), and runs it in one that has not.
TEST(SwarmExecShimTest, RefusesToStartANoNetworkJobWhereTheContainerHasANetwork) {
  testing::TempDir dir;
  const std::string shim = dir.File("baton-exec");
  {
    std::ofstream out(shim, std::ios::binary);
    const std::string_view program = ExecShimProgram();
    out.write(program.data(), static_cast<std::streamsize>(program.size()));
  }
  ::chmod(shim.c_str(), 0755);
  EXPECT_LE(ExecShimProgram().size(), 500u * 1024) << "too large for a swarm config: build with musl-gcc";
  auto run = [&](bool own_netns) {
    int out[2];
    EXPECT_EQ(::pipe(out), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(out[1], STDERR_FILENO);
      ::dup2(out[1], STDOUT_FILENO);
      if (own_netns && ::unshare(CLONE_NEWNET) != 0) _exit(99);
      ::setenv("BATON_EXEC_REQUIRE_NO_NETWORK", "1", 1);
      ::execl(shim.c_str(), shim.c_str(), "/usr/bin/env", static_cast<char*>(nullptr));
      _exit(98);
    }
    ::close(out[1]);
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, text);
  };
  auto [refused, why] = run(false);
  EXPECT_EQ(refused, 125) << why;
  EXPECT_NE(why.find("the job asked for no network"), std::string::npos) << why;
  auto [ran, env] = run(true);
  EXPECT_EQ(ran, 0) << env;
  EXPECT_EQ(env.find("BATON_EXEC_REQUIRE_NO_NETWORK"), std::string::npos) << "passed on to the job";
}

TEST(SwarmServiceNameTest, IsTheGroupWhenValidElseAPrefixAndAHashWithinSixtyThreeCharacters) {
  EXPECT_EQ(SwarmRuntime::ServiceName("job-acme-0123456789abcdef-a1"), "job-acme-0123456789abcdef-a1");
  const std::string long_group = "job-" + std::string(63, 't') + "-0123456789abcdef-a12";
  const std::string name = SwarmRuntime::ServiceName(long_group);
  EXPECT_LE(name.size(), 63u);
  EXPECT_EQ(name, SwarmRuntime::ServiceName(long_group));  // deterministic
  EXPECT_NE(name, SwarmRuntime::ServiceName(long_group + "3"));
  EXPECT_NE(SwarmRuntime::ServiceName("a.b"), "a.b");
  EXPECT_NE(SwarmRuntime::ServiceName("a.b"), SwarmRuntime::ServiceName("a_b"));
}

}  // namespace
}  // namespace baton::runtime::swarm
