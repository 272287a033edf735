// Attacks a hostile tenant (or its jobs) can make on a real `baton serve`,
// found in review (docs/SECURITY.md): each test does what the attacker did
// and checks the server and its other tenants did not pay for it.
//
//   AdmissionAttackE2eTest: a job, or a tenant within its request rate,
//                           that tries to take the server down for everyone.
//
// Every wait is a liveness bound; what a test measures it prints.
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>

#include <grpcpp/grpcpp.h>

#include "batch/job_logs.h"
#include "e2e/job_fixture.h"
#include "orchestrator_service.grpc.pb.h"

namespace baton {
namespace {

using namespace std::chrono_literals;
using namespace e2e;
using testing::HttpResult;

class AttackTest : public JobServerTest {
 protected:
  // Starts the server with the open-files limit a service gets by default
  // (systemd's soft limit of 1024), as an attacker would find it.
  void StartServerWithFewFiles(double cpu, int memory_mb, rlim_t files = 1024) {
    rlimit saved{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
    rlimit lowered = saved;
    lowered.rlim_cur = std::min<rlim_t>(files, saved.rlim_max);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
    StartServer(cpu, memory_mb);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  }
  // Running, not a zombie (the child is reaped only when the test ends).
  bool ServerAlive() {
    if (!server_) return false;
    std::ifstream stat("/proc/" + std::to_string(server_->pid()) + "/stat");
    std::string pid, comm, state;
    return static_cast<bool>(stat >> pid >> comm >> state) && state != "Z";
  }
  // The server's open file descriptors; -1 when it cannot be read.
  int ServerFds() {
    DIR* d = opendir(("/proc/" + std::to_string(server_->pid()) + "/fd").c_str());
    if (d == nullptr) return -1;
    int n = 0;
    while (readdir(d) != nullptr) ++n;
    closedir(d);
    return n - 2;
  }
  // A field of the server's /proc status in kB ("VmHWM", "VmRSS"); -1 when unread.
  int64_t ServerKb(const std::string& field) {
    std::ifstream status("/proc/" + std::to_string(server_->pid()) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind(field + ":", 0) == 0) return std::atoll(line.c_str() + field.size() + 1);
    }
    return -1;
  }
  // The server's threads; -1 when they cannot be read.
  int ServerThreads() {
    std::ifstream status("/proc/" + std::to_string(server_->pid()) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
    }
    return -1;
  }
  // A gRPC channel of its own (streams of separate channels are not
  // multiplexed on one connection).
  std::unique_ptr<::TaskHubSidecarService::Stub> Stub(int channel) {
    ::grpc::ChannelArguments args;
    args.SetInt("baton.test.channel", channel);
    return ::TaskHubSidecarService::NewStub(::grpc::CreateCustomChannel(
        "127.0.0.1:" + std::to_string(server_->grpc_port()), ::grpc::InsecureChannelCredentials(), args));
  }
  std::vector<std::string> LogLines(const std::string& key, const std::string& id) {
    Json j = ParseOrNull(Call(key, "GET", "/api/v1/jobs/" + id + "/logs").body);
    std::vector<std::string> out;
    if (!j.is_object()) return out;
    for (const Json& line : j.value("lines", Json::array())) out.push_back(line.value("text", ""));
    return out;
  }
};

class AdmissionAttackE2eTest : public AttackTest {};
class SandboxAttackE2eTest : public AttackTest {};

// A callback job needs no network to reach Baton: the callback socket is
// mounted into it. Holding thousands of connections to it must not starve
// the server of file descriptors (before: the accept loop spun on EMFILE,
// logging ~130,000 lines a second, and the server aborted on an uncaught
// "eventfd_select_interrupter: Too many open files").
TEST_F(AdmissionAttackE2eTest, AJobHoldingThousandsOfCallbackConnectionsDoesNotTakeTheServerDown) {
  StartServerWithFewFiles(2, 2048);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 2}});
  const std::string globex = CreateTenant("globex", Json{{"cpu", 2}});
  const std::string hold =
      Submit(acme, Spec("hold", {"callback-hold", "3000", "25"}, Json{{"completion", "callback"}, {"memoryMb", 256}}));
  ASSERT_FALSE(hold.empty());
  // Until the job has opened all it could, then a while more.
  int most_fds = 0;
  bool held = PollUntil(
      [&] {
        most_fds = std::max(most_fds, ServerFds());
        for (const std::string& l : LogLines(acme, hold)) {
          if (l.rfind("held ", 0) == 0) return true;
        }
        return !ServerAlive();
      },
      90s, 250ms);
  ASSERT_TRUE(held);
  std::string held_line;
  for (const std::string& l : LogLines(acme, hold)) {
    if (l.rfind("held ", 0) == 0) held_line = l;
  }
  for (int i = 0; i < 8 && ServerAlive(); ++i) {
    most_fds = std::max(most_fds, ServerFds());
    std::this_thread::sleep_for(500ms);
  }
  ASSERT_TRUE(ServerAlive()) << "the server died while a job held callback connections (" << held_line << ")";
  // Everyone else is still served: the API, and another tenant's callback job.
  EXPECT_EQ(Call(globex, "GET", "/api/v1/jobs").status, 200);
  const std::string other = Submit(globex, Spec("reports", {"callback", "2"}, Json{{"completion", "callback"}}));
  ASSERT_FALSE(other.empty());
  Json end = AwaitEnd(globex, other);
  EXPECT_EQ(end.value("status", ""), "Completed") << end.dump();
  EXPECT_TRUE(ServerAlive());
  EXPECT_LT(most_fds, 1000) << "the server's file descriptors are not bounded against one job";
  std::printf("callback flood: the job reported \"%s\"; the server kept at most %d fds open and stayed up\n",
              held_line.c_str(), most_fds);
}

// A job's output is the job's to make, but not the server's to hold: a job
// printing 2,000,000 short lines (with 64 MiB of memory of its own) used to
// take the server from ~25 MB to ~490 MB resident (all of it read at once to
// keep the last 10,000 lines), and dockerd kept all of it on the node's disk.
TEST_F(AdmissionAttackE2eTest, AJobPrintingMillionsOfLinesDoesNotBloatTheServerOrTheDisk) {
  StartServer(2, 2048);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 2}});
  // A running job's container shows the cap on its log files.
  const std::string sleeper = Submit(acme, Spec("sleeper", {"sleep", "120"}));
  ASSERT_FALSE(sleeper.empty());
  ASSERT_EQ(AwaitStatus(acme, sleeper, "Running").value("status", ""), "Running");
  auto containers = suite_.docker->ListByLabels({{"baton.job", batch::JobInstanceId("acme", sleeper)}});
  ASSERT_TRUE(containers.ok() && containers->size() == 1);
  runtime::docker::DockerClient docker;
  auto inspect = docker.Request("GET", "/containers/" + (*containers)[0].id + "/json");
  ASSERT_TRUE(inspect.ok() && inspect->status == 200);
  Json log_config = ParseOrNull(inspect->body)["HostConfig"]["LogConfig"];
  EXPECT_TRUE(log_config["Config"].is_object() && log_config["Config"].contains("max-size")) << log_config.dump();
  ASSERT_EQ(Call(acme, "POST", "/api/v1/jobs/" + sleeper + "/cancel").status, 202);

  const int64_t before = ServerKb("VmRSS");
  const std::string loud = Submit(acme, Spec("loud", {"print", "1000000"}, Json{{"cpu", 1}, {"memoryMb", 64}}));
  ASSERT_FALSE(loud.empty());
  // Live reads while it prints, as a tenant would poll them.
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(Call(acme, "GET", "/api/v1/jobs/" + loud + "/logs?after=1999990").status, 200);
  }
  Json end = AwaitEnd(acme, loud, 300s);
  EXPECT_EQ(end.value("status", ""), "Completed") << end.dump();
  const int64_t peak = ServerKb("VmHWM");
  Json kept = ParseOrNull(Call(acme, "GET", "/api/v1/jobs/" + loud + "/logs?attempt=1").body);
  EXPECT_EQ(kept.value("lines", Json::array()).size(), 5000u);  // the first page of what was kept
  if (!kept.value("lines", Json::array()).empty()) {  // which says that it is not all of it
    EXPECT_EQ(kept["lines"][0].value("text", ""), batch::JobLogs::kTruncatedMarker) << kept["lines"][0].dump();
  }
  EXPECT_LT(peak - before, 150 * 1024) << "the server grew from " << before << " kB to a peak of " << peak
                                       << " kB for one job's output";
  std::printf("loud job: 2,000,000 lines; server %lld kB resident before, peak %lld kB\n",
              static_cast<long long>(before), static_cast<long long>(peak));
}

// A followed log (or a start that waits for the end) holds a handler thread
// for its whole wait. One tenant, well within its request rate, used to take
// all 64 of them with 80 follows and stall every other tenant's calls (and
// /healthz) until its waits ran out.
TEST_F(AdmissionAttackE2eTest, LongPollsOfOneTenantDoNotStallTheOthers) {
  StartServer(2, 2048);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 2}});
  const std::string globex = CreateTenant("globex", Json{{"cpu", 2}});
  const std::string quiet = Submit(acme, Spec("quiet", {"sleep", "120"}));
  ASSERT_FALSE(quiet.empty());
  ASSERT_EQ(AwaitStatus(acme, quiet, "Running").value("status", ""), "Running");
  constexpr int kFollows = 80;
  constexpr int kWaitSeconds = 20;
  std::vector<double> follow_seconds(kFollows, 0);
  std::vector<std::thread> follows;
  const auto started = SteadyClock::now();
  for (int i = 0; i < kFollows; ++i) {
    follows.emplace_back([&, i] {
      const auto t = SteadyClock::now();
      HttpResult r = Call(acme, "GET",
                          "/api/v1/jobs/" + quiet + "/logs?follow=true&timeout=" + std::to_string(kWaitSeconds));
      follow_seconds[i] = r.status == 200 ? SecondsSince(t) : -1;
    });
  }
  std::this_thread::sleep_for(2s);  // the follows are in (a liveness pause, not a measure)
  const auto asked = SteadyClock::now();
  HttpResult other = Call(globex, "GET", "/api/v1/jobs");
  const double other_seconds = SecondsSince(asked);
  for (auto& t : follows) t.join();
  EXPECT_EQ(other.status, 200) << other.body;
  const double longest = *std::max_element(follow_seconds.begin(), follow_seconds.end());
  EXPECT_GT(longest, 0) << "no follow waited";
  EXPECT_EQ(std::count(follow_seconds.begin(), follow_seconds.end(), -1.0), 0);
  // The other tenant's call must not wait for the follows: a small fraction
  // of the longest follow, measured in the same run.
  EXPECT_LT(other_seconds, longest / 4) << "another tenant's call waited " << other_seconds << " s behind "
                                         << kFollows << " follows of " << longest << " s";
  std::printf("long polls: %d follows of one tenant (longest %.1f s, all done after %.1f s); another tenant's call "
              "took %.3f s\n",
              kFollows, longest, SecondsSince(started), other_seconds);
  ASSERT_EQ(Call(acme, "POST", "/api/v1/jobs/" + quiet + "/cancel").status, 202);
}

// GetWorkItems is an SDK worker's stream, not a client call: it is not
// rate-limited, and the sidecar gives each one a thread for its whole life.
// One tenant opening hundreds of them used to get as many threads (3,000
// streams: 3,000 threads; under a thread limit the others' calls failed with
// "Server Threadpool Exhausted").
TEST_F(AdmissionAttackE2eTest, WorkerStreamsOfOneTenantAreCappedAndOthersAreServed) {
  StartServer(2, 2048);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 2}});
  const std::string globex = CreateTenant("globex", Json{{"cpu", 2}});
  ASSERT_NE(server_->grpc_port(), 0);
  const int threads_before = ServerThreads();
  constexpr int kStreams = 400, kChannels = 8;
  std::vector<std::unique_ptr<::TaskHubSidecarService::Stub>> stubs;
  for (int c = 0; c < kChannels; ++c) stubs.push_back(Stub(c));
  struct Open {
    std::unique_ptr<::grpc::ClientContext> ctx;
    std::unique_ptr<::grpc::ClientReader<::WorkItem>> reader;
  };
  std::vector<Open> streams;
  for (int i = 0; i < kStreams; ++i) {
    Open o;
    o.ctx = std::make_unique<::grpc::ClientContext>();
    o.ctx->AddMetadata("authorization", "Bearer " + acme);
    // Streams end at their deadline: a refused one has its own status by then.
    o.ctx->set_deadline(std::chrono::system_clock::now() + 15s);
    ::GetWorkItemsRequest req;
    o.reader = stubs[i % kChannels]->GetWorkItems(o.ctx.get(), req);
    streams.push_back(std::move(o));
  }
  // The server has seen them all once the thread count settles (a liveness
  // pause), or refused them.
  int threads_during = ServerThreads();
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(250ms);
    threads_during = std::max(threads_during, ServerThreads());
  }
  // Another tenant's client call is served meanwhile.
  {
    ::grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + globex);
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    ::CreateInstanceRequest req;
    req.set_name("HelloCities");
    req.mutable_input()->set_value(R"(["Tokyo"])");
    ::CreateInstanceResponse resp;
    ::grpc::Status s = stubs[0]->StartInstance(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  }
  int refused = 0;
  for (Open& o : streams) {
    ::grpc::Status s = o.reader->Finish();
    refused += s.error_code() == ::grpc::StatusCode::RESOURCE_EXHAUSTED;
  }
  EXPECT_GT(refused, 0) << "every stream was accepted";
  EXPECT_LT(threads_during - threads_before, kStreams / 4)
      << "one tenant's worker streams took " << threads_during - threads_before << " server threads";
  std::printf("worker streams: %d opened by one tenant, %d refused; server threads %d -> %d\n", kStreams, refused,
              threads_before, threads_during);
}

// Jobs with "network": "bridge" used to share dockerd's default bridge, where
// containers talk to each other freely: one tenant's job reached another
// tenant's job server on its bridge address.
// Grants are an admin's to take back. Host networking (or a capability, or
// an image prefix) granted when a job was submitted used to stay with it: a
// job queued behind the tenant's quota, or the next attempt of a retried job,
// ran on the host network after the admin had revoked the grant.
TEST_F(SandboxAttackE2eTest, AGrantRevokedAfterSubmitIsNotUsedByAJobThatWaitedForIt) {
  StartServer(2, 2048);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 1}});
  ASSERT_EQ(Call(admin_, "PATCH", "/api/v1/admin/tenants/acme/settings", R"({"grants":{"hostNetwork":true}})").status,
            200);
  const std::string blocker = Submit(acme, Spec("blocker", {"sleep", "120"}, Json{{"cpu", 1}}));
  ASSERT_FALSE(blocker.empty());
  ASSERT_EQ(AwaitStatus(acme, blocker, "Running").value("status", ""), "Running");
  const std::string host = Submit(acme, Spec("host", {"sleep", "3"}, Json{{"cpu", 1}, {"network", "host"}}));
  ASSERT_FALSE(host.empty());
  ASSERT_EQ(AwaitStatus(acme, host, "Queued").value("status", ""), "Queued");
  // The admin takes the grant back while the job waits for quota.
  ASSERT_EQ(Call(admin_, "PATCH", "/api/v1/admin/tenants/acme/settings", R"({"grants":{"hostNetwork":false}})").status,
            200);
  ASSERT_EQ(Call(acme, "POST", "/api/v1/jobs/" + blocker + "/cancel").status, 202);
  Json end = AwaitEnd(acme, host, 180s);
  EXPECT_EQ(end.value("status", ""), "Failed") << "it ran on the host network without the grant: " << end.dump();
  const std::string error = end["result"].is_object() ? end["result"].value("error", "") : "";
  EXPECT_NE(error.find("network"), std::string::npos) << end.dump();
  EXPECT_EQ(JobContainers("acme", host), 0u);
}

// Disabling a tenant is how an admin stops it. Its keys stopped working,
// but its jobs did not: one queued behind its quota started once the quota
// freed (and a retried job went on making attempts), running the disabled
// tenant's containers on the node.
TEST_F(SandboxAttackE2eTest, ADisabledTenantsQueuedJobNeverStarts) {
  StartServer(2, 2048);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 1}});
  const std::string blocker = Submit(acme, Spec("blocker", {"sleep", "4"}, Json{{"cpu", 1}}));
  ASSERT_FALSE(blocker.empty());
  ASSERT_EQ(AwaitStatus(acme, blocker, "Running").value("status", ""), "Running");
  const std::string queued = Submit(acme, Spec("queued", {"sleep", "60"}, Json{{"cpu", 1}}));
  ASSERT_FALSE(queued.empty());
  ASSERT_EQ(AwaitStatus(acme, queued, "Queued").value("status", ""), "Queued");
  ASSERT_EQ(Call(admin_, "POST", "/api/v1/admin/tenants/acme/disable").status, 200);
  EXPECT_EQ(Call(acme, "GET", "/api/v1/jobs/" + queued).status, 401);
  // The blocker ends on its own; then the queued job either ends without a
  // container (the fix) or gets one (the hole). The admin reads its instance.
  const std::string instance = "/runtime/webhooks/durabletask/instances/" + batch::JobInstanceId("acme", queued);
  Json state;
  size_t containers = 0;
  PollUntil(
      [&] {
        containers = JobContainers("acme", queued);
        HttpResult r = Call(admin_, "GET", instance);
        state = r.status == 200 || r.status == 202 ? ParseOrNull(r.body) : Json();  // 202: still running
        const std::string status = state.is_object() ? state.value("runtimeStatus", "") : "";
        return (containers > 0 && containers != 999) || status == "Completed" || status == "Failed" ||
               status == "Terminated";
      },
      180s, 250ms);
  EXPECT_EQ(containers, 0u) << "the disabled tenant's queued job started: " << state.dump();
  ASSERT_TRUE(state.is_object()) << "the admin cannot read the job's instance";
  const Json output = state.value("output", Json());
  EXPECT_EQ(output.is_object() ? output.value("status", "") : "", "Failed") << state.dump();
  const std::string error = output.is_object() ? output.value("error", "") : "";
  EXPECT_NE(error.find("disabled"), std::string::npos) << state.dump();
}

TEST_F(SandboxAttackE2eTest, ABridgeJobCannotReachAnotherTenantsBridgeJob) {
  StartServer(2, 2048);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 2}});
  const std::string globex = CreateTenant("globex", Json{{"cpu", 2}});
  const std::string server =
      Submit(acme, Spec("server", {"serve", "8080"}, Json{{"network", "bridge"}, {"ports", {8080}}, {"timeoutSeconds", 300}}));
  ASSERT_FALSE(server.empty());
  ASSERT_EQ(AwaitStatus(acme, server, "Running").value("status", ""), "Running");
  auto containers = suite_.docker->ListByLabels({{"baton.job", batch::JobInstanceId("acme", server)}});
  ASSERT_TRUE(containers.ok() && containers->size() == 1);
  const runtime::ContainerState& target = (*containers)[0];
  // It serves (through its port published on loopback), so a refusal below is the wall.
  ASSERT_EQ(target.published_ports.count(8080), 1u);
  EXPECT_TRUE(PollUntil([&] { return testing::HttpCall(target.published_ports.at(8080), "GET", "/ping").status == 200; },
                        30s));
  runtime::docker::DockerClient docker;
  auto inspect = docker.Request("GET", "/containers/" + target.id + "/json");
  ASSERT_TRUE(inspect.ok() && inspect->status == 200);
  Json j = ParseOrNull(inspect->body);
  std::string address;
  for (const auto& [name, net] : j["NetworkSettings"]["Networks"].items()) {
    if (address.empty()) address = net.value("IPAddress", "");
  }
  ASSERT_FALSE(address.empty()) << inspect->body;
  const std::string probe = Submit(globex, Spec("probe", {"connect", address, "8080"}, Json{{"network", "bridge"}}));
  ASSERT_FALSE(probe.empty());
  Json end = AwaitEnd(globex, probe);
  std::vector<std::string> lines = LogLines(globex, probe);
  EXPECT_EQ(end.value("status", ""), "Failed") << "another tenant's job reached " << address << ":8080";
  EXPECT_EQ(std::find(lines.begin(), lines.end(), "connected"), lines.end());
  std::printf("bridge: a job of another tenant tried %s:8080: %s\n", address.c_str(),
              lines.empty() ? "?" : lines.back().c_str());
  ASSERT_EQ(Call(acme, "POST", "/api/v1/jobs/" + server + "/cancel").status, 202);
  AwaitEnd(acme, server);
}

}  // namespace
}  // namespace baton
