// Tenant isolation end to end (docs/SECURITY.md): a real `baton serve`, the
// real dockerd and registry, and jobs that try what a hostile tenant would.
//
//   SandboxE2eTest:   what a job's container may do (capabilities, raw
//                     sockets, host network, loopback, pids, images).
//   SecretsE2eTest:   where secrets go (the process) and where they never are
//                     (docker inspect, the data dir after the job).
//   AdmissionE2eTest: request rate, unfinished-job and instance caps, over
//                     HTTP and gRPC, and a neighbour that still gets served.
//
// Every wait is a liveness bound; what a test measures it prints.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include "batch/secret_vault.h"
#include "store/sqlite/sqlite_platform_stores.h"
#include "e2e/job_fixture.h"
#include "orchestrator_service.grpc.pb.h"

namespace baton {
namespace {

using namespace std::chrono_literals;
using namespace e2e;
using testing::HttpResult;
using SteadyClock = std::chrono::steady_clock;

class IsolationTest : public JobServerTest {
 protected:
  // The job's kept (or live) log lines, stdout and stderr alike.
  std::vector<std::string> LogLines(const std::string& key, const std::string& id) {
    HttpResult r = Call(key, "GET", "/api/v1/jobs/" + id + "/logs");
    std::vector<std::string> out;
    Json j = ParseOrNull(r.body);
    for (const Json& line : j.value("lines", Json::array())) out.push_back(line.value("text", ""));
    return out;
  }
  static bool Has(const std::vector<std::string>& lines, const std::string& text) {
    return std::find(lines.begin(), lines.end(), text) != lines.end();
  }
  static bool HasPrefix(const std::vector<std::string>& lines, const std::string& prefix) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.rfind(prefix, 0) == 0; });
  }
  static std::string Joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
  HttpResult Patch(const std::string& tenant, const std::string& body) {
    return Call(admin_, "PATCH", "/api/v1/admin/tenants/" + tenant + "/settings", body);
  }
  // Runs `spec` to its end; returns its final view and its log lines.
  std::pair<Json, std::vector<std::string>> Run(const std::string& key, const Json& spec) {
    const std::string id = Submit(key, spec);
    if (id.empty()) return {};
    Json end = AwaitEnd(key, id);
    return {end, LogLines(key, id)};
  }
  size_t Jobs(const std::string& key) {
    Json j = ParseOrNull(Call(key, "GET", "/api/v1/jobs").body);
    return j.value("jobs", Json::array()).size();
  }
};

class SandboxE2eTest : public IsolationTest {};
class SecretsE2eTest : public IsolationTest {};
class AdmissionE2eTest : public IsolationTest {};

// ---- Sandbox ----

TEST_F(SandboxE2eTest, AJobHasNoCapabilitiesNoNewPrivilegesAndAPidsLimit) {
  StartServer(2, 1024);
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  auto [end, lines] = Run(key, Spec("probe", {"sandbox"}));
  EXPECT_EQ(end.value("status", ""), "Completed") << end.dump();
  EXPECT_TRUE(Has(lines, "capeff=0000000000000000")) << Joined(lines);
  EXPECT_TRUE(Has(lines, "nonewprivs=1")) << Joined(lines);
  EXPECT_TRUE(Has(lines, "raw=denied")) << Joined(lines);
  EXPECT_TRUE(Has(lines, "packet=denied")) << Joined(lines);
  EXPECT_TRUE(Has(lines, "pids.max=512")) << Joined(lines);
  EXPECT_TRUE(Has(lines, "rootfs=writable")) << Joined(lines);

  // Tightened by the spec: a read-only root, another user, fewer processes.
  auto [tight_end, tight] = Run(
      key, Spec("tight", {"sandbox"}, Json{{"readOnlyRootFs", true}, {"user", "1000:1000"}, {"pidsLimit", 64}}));
  EXPECT_EQ(tight_end.value("status", ""), "Completed") << tight_end.dump();
  EXPECT_TRUE(Has(tight, "rootfs=readonly")) << Joined(tight);
  EXPECT_TRUE(Has(tight, "uid=1000 gid=1000")) << Joined(tight);
  EXPECT_TRUE(Has(tight, "pids.max=64")) << Joined(tight);

  // A fork bomb stops at the limit.
  auto [bomb_end, bomb] = Run(key, Spec("bomb", {"fork", "200"}, Json{{"pidsLimit", 32}}));
  int forked = -1;
  for (const std::string& l : bomb) std::sscanf(l.c_str(), "forked %d of 200", &forked);
  EXPECT_GE(forked, 0) << Joined(bomb);
  EXPECT_LT(forked, 32) << Joined(bomb);
  std::printf("sandbox: capeff 0, no-new-privileges, raw and packet sockets denied; fork bomb stopped at %d\n",
              forked);
}

TEST_F(SandboxE2eTest, HostNetworkNeedsTheGrantAndEvenThenNoTrafficCanBeCaptured) {
  StartServer(2, 1024);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 2}});
  const std::string victim = CreateTenant("victim", Json{{"cpu", 1}});

  HttpResult refused = Call(acme, "POST", "/api/v1/jobs", Spec("host", {"sandbox"}, Json{{"network", "host"}}).dump());
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_EQ(ErrorField(refused), "network");
  EXPECT_EQ(Jobs(acme), 0u) << "a refused job leaves nothing behind";

  ASSERT_EQ(Patch("acme", R"({"grants":{"hostNetwork":true}})").status, 200);
  // The victim's key crosses loopback while the sniffer listens on the host network.
  const std::string needle = victim.substr(0, 24);
  const std::string sniffer = Submit(acme, Spec("sniffer", {"sniff", "4", needle}, Json{{"network", "host"}}));
  ASSERT_FALSE(sniffer.empty());
  AwaitStatus(acme, sniffer, "Running", 60s);
  int victim_calls = 0;
  const auto until = SteadyClock::now() + 4s;
  while (SteadyClock::now() < until) {
    victim_calls += Call(victim, "GET", "/api/v1/jobs").status == 200;
    std::this_thread::sleep_for(50ms);
  }
  Json end = AwaitEnd(acme, sniffer);
  std::vector<std::string> lines = LogLines(acme, sniffer);
  EXPECT_EQ(end.value("status", ""), "Completed") << "exit 3 would mean a packet socket opened: " << Joined(lines);
  EXPECT_TRUE(HasPrefix(lines, "sniff: denied")) << Joined(lines);
  EXPECT_FALSE(HasPrefix(lines, "captured")) << Joined(lines);
  EXPECT_GT(victim_calls, 0);
  std::printf("sandbox: host-network sniffer denied a packet socket during %d calls with another tenant's key\n",
              victim_calls);
}

TEST_F(SandboxE2eTest, ABridgeJobCannotReachBatonOnLoopbackButAGrantedHostJobCan) {
  StartServer(2, 1024);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 2}});
  const std::string port = std::to_string(server_->port());
  auto [bridge_end, bridge] = Run(acme, Spec("reach", {"connect", "127.0.0.1", port}, Json{{"network", "bridge"}}));
  EXPECT_EQ(bridge_end.value("status", ""), "Failed") << bridge_end.dump();
  EXPECT_TRUE(HasPrefix(bridge, "connect: ")) << Joined(bridge);
  // The probe itself works: on the host network (granted) it connects.
  ASSERT_EQ(Patch("acme", R"({"grants":{"hostNetwork":true}})").status, 200);
  auto [host_end, host] = Run(acme, Spec("reach-host", {"connect", "127.0.0.1", port}, Json{{"network", "host"}}));
  EXPECT_EQ(host_end.value("status", ""), "Completed") << host_end.dump();
  EXPECT_TRUE(Has(host, "connected")) << Joined(host);
}

TEST_F(SandboxE2eTest, CapabilitiesAndImagesOutsideTheNamespaceNeedGrants) {
  StartServer(2, 1024);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 2}});

  HttpResult cap = Call(acme, "POST", "/api/v1/jobs",
                        Spec("raw", {"sandbox"}, Json{{"capabilities", {"NET_RAW"}}}).dump());
  EXPECT_EQ(cap.status, 403) << cap.body;
  EXPECT_EQ(ErrorField(cap), "capabilities[0]");
  Json foreign = Spec("foreign", {"sandbox"});
  foreign["image"] = "127.0.0.1:5000/globex/private:1";
  HttpResult image = Call(acme, "POST", "/api/v1/jobs", foreign.dump());
  EXPECT_EQ(image.status, 403) << image.body;
  EXPECT_EQ(ErrorField(image), "image");
  // Without the admin's grant of the test images' prefix, they are foreign too.
  ASSERT_EQ(Patch("acme", R"({"grants":{"imagePrefixes":[]}})").status, 200);
  HttpResult ungranted = Call(acme, "POST", "/api/v1/jobs", Spec("again", {"sandbox"}).dump());
  EXPECT_EQ(ungranted.status, 403) << ungranted.body;
  EXPECT_EQ(Jobs(acme), 0u);

  // Only an admin changes settings; hostile ones are refused and change nothing.
  EXPECT_EQ(Call(acme, "PATCH", "/api/v1/admin/tenants/acme/settings", R"({"grants":{"hostNetwork":true}})").status,
            403);
  HttpResult bad = Patch("acme", R"({"grants":{"capabilities":["NET_RAW","EVERYTHING"]}})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(ErrorField(bad), "grants.capabilities[1]");
  EXPECT_EQ(Patch("nobody", R"({"limits":{"burst":5}})").status, 404);
  Json settings = ParseOrNull(Call(admin_, "GET", "/api/v1/admin/tenants/acme/settings").body);
  EXPECT_EQ(settings["grants"]["capabilities"], Json::array()) << settings.dump();
  EXPECT_EQ(settings["grants"]["hostNetwork"], false) << settings.dump();

  // Granted, the capability is there (so the sandbox test above can fail).
  ASSERT_EQ(Patch("acme", R"({"grants":{"capabilities":["NET_RAW"],"imagePrefixes":["127.0.0.1:5000/baton-test/"]}})")
                .status,
            200);
  auto [end, lines] = Run(acme, Spec("raw", {"sandbox"}, Json{{"capabilities", {"NET_RAW"}}}));
  EXPECT_EQ(end.value("status", ""), "Completed") << end.dump();
  EXPECT_TRUE(Has(lines, "raw=opened")) << Joined(lines);
}

// ---- Secrets ----

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) out.push_back(it->path().string());
  }
  return out;
}

int ModeOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 0777) : -1;
}

TEST_F(SecretsE2eTest, SecretsReachTheProcessButNeverDockerInspectAndAreGoneWhenTheJobEnds) {
  const std::string secrets_dir = dir_.File("secrets");
  StartServer(2, 1024, {"--secrets-dir", secrets_dir});
  const std::string acme = CreateTenant("acme", Json{{"cpu", 2}});
  const std::string env_secret = "env-secret-7d1f0c93b2", file_secret = "file-secret-4e8a61d5c0";
  const Json secrets = {{"secretEnv", {{"API_TOKEN", env_secret}}},
                        {"secretFiles", {{"db.pass", file_secret}}},
                        {"completion", "callback"}};

  // They reach the process: the env through baton-exec, the file under BATON_SECRETS_DIR.
  Json env_spec = Spec("env", {"env", "API_TOKEN", "BATON_SECRETS_DIR"}, secrets);
  env_spec["completion"] = "exitCode";
  auto [env_end, env_lines] = Run(acme, env_spec);
  EXPECT_EQ(env_end.value("status", ""), "Completed") << env_end.dump();
  EXPECT_TRUE(Has(env_lines, "API_TOKEN=" + env_secret)) << Joined(env_lines);
  EXPECT_TRUE(Has(env_lines, "BATON_SECRETS_DIR=/run/baton/secrets")) << Joined(env_lines);
  Json file_spec = Spec("file", {"cat", "/run/baton/secrets/db.pass"}, secrets);
  file_spec["completion"] = "exitCode";
  auto [file_end, file_lines] = Run(acme, file_spec);
  EXPECT_TRUE(Has(file_lines, "/run/baton/secrets/db.pass: " + file_secret)) << Joined(file_lines);

  // While a job runs, Docker's view of its container holds no secret, nor
  // the job token (a callback job's BATON_JOB_TOKEN is secret env too).
  // (Its secrets are its own: the jobs above printed theirs into their logs,
  // which is theirs to do.)
  const std::string held_env = "held-env-2c9b7e4a11", held_file = "held-file-5a0d3f8e62";
  const Json held = {{"secretEnv", {{"API_TOKEN", held_env}}},
                     {"secretFiles", {{"db.pass", held_file}}},
                     {"completion", "callback"}};
  const std::string id = Submit(acme, Spec("holder", {"sleep", "120"}, held));
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(AwaitStatus(acme, id, "Running").value("status", ""), "Running");
  auto containers = suite_.docker->ListByLabels({{"baton.job", batch::JobInstanceId("acme", id)}});
  ASSERT_TRUE(containers.ok() && containers->size() == 1);
  runtime::docker::DockerClient docker;
  auto inspect = docker.Request("GET", "/containers/" + (*containers)[0].id + "/json");
  ASSERT_TRUE(inspect.ok() && inspect->status == 200);
  EXPECT_EQ(inspect->body.find(held_env), std::string::npos);
  EXPECT_EQ(inspect->body.find(held_file), std::string::npos);
  EXPECT_EQ(inspect->body.find("bjt_"), std::string::npos) << "the job token is visible in docker inspect";
  EXPECT_NE(inspect->body.find("/run/baton/secrets"), std::string::npos);
  const std::string group_dir = secrets_dir + "/" + (*containers)[0].labels.at("baton.group");
  EXPECT_EQ(testing::ReadWholeFile(group_dir + "/main/db.pass"), held_file);

  // The vault holds the job's secrets sealed while it runs…
  auto secret_store = store::OpenSqliteSecretStore(DataDir() + "/secrets.db");
  ASSERT_TRUE(secret_store.ok()) << secret_store.status().ToString();
  auto keys = store::OpenFileKeyStore(DataDir());
  auto vault = batch::SecretVault::Open(**secret_store, *keys);
  ASSERT_TRUE(vault.ok()) << vault.status().ToString();
  EXPECT_EQ(*(*vault)->Count(batch::JobInstanceId("acme", id)), 2);
  ASSERT_EQ(Call(acme, "POST", "/api/v1/jobs/" + id + "/cancel").status, 202);
  EXPECT_EQ(AwaitEnd(acme, id).value("status", ""), "Canceled");

  // …and nothing of them is left once it ended: not in the vault, not on the
  // node's tmpfs, not in any file of the data dir.
  EXPECT_TRUE(PollUntil([&] { return *(*vault)->Count(batch::JobInstanceId("acme", id)) == 0; }, 30s));
  EXPECT_TRUE(PollUntil([&] { return !std::filesystem::exists(group_dir); }, 30s)) << group_dir;
  for (const std::string& f : FilesUnder(DataDir())) {
    const std::string content = testing::ReadWholeFile(f);
    EXPECT_EQ(content.find(held_env), std::string::npos) << f;
    EXPECT_EQ(content.find(held_file), std::string::npos) << f;
  }
  // Data files are the server's user's alone.
  EXPECT_EQ(ModeOf(DataDir()), 0700);
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(DataDir())) {
    if (!entry.is_regular_file()) continue;
    ++files;
    EXPECT_EQ(ModeOf(entry.path().string()), 0600) << entry.path();
  }
  EXPECT_GE(files, 8);
  std::printf("secrets: env and file reached the job, absent from docker inspect; vault, tmpfs and %d data files "
              "clean after the job; data files 0600\n",
              files);
}

// ---- Admission ----

TEST_F(AdmissionE2eTest, ABurstOfSubmitsIsThrottledWhileAnotherTenantsJobStillRuns) {
  StartServer(2, 2048);
  const std::string noisy = CreateTenant("noisy", Json{{"cpu", 0.5}, {"jobs", 1}});
  const std::string quiet = CreateTenant("quiet", Json{{"cpu", 1}});
  ASSERT_EQ(Patch("noisy", R"({"limits":{"requestsPerSecond":20,"burst":50}})").status, 200);
  constexpr int kThreads = 8, kPerThread = 125;
  std::atomic<int> accepted{0}, throttled{0}, other{0}, missing_retry_after{0};
  const auto started = SteadyClock::now();
  std::vector<std::thread> threads;
  const std::string body = Spec("noise", {"sleep", "60"}).dump();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        HttpResult r = Call(noisy, "POST", "/api/v1/jobs", body);
        if (r.status == 202) {
          ++accepted;
        } else if (r.status == 429) {
          ++throttled;
          if (r.headers.count("retry-after") == 0 || std::atoi(r.headers["retry-after"].c_str()) < 1) {
            ++missing_retry_after;
          }
        } else {
          ++other;
        }
      }
    });
  }
  // The neighbour submits while the burst is on.
  std::this_thread::sleep_for(100ms);
  const auto quiet_submit = SteadyClock::now();
  const std::string q = Submit(quiet, Spec("quiet", {"exit", "0"}));
  ASSERT_FALSE(q.empty());
  Json quiet_end = AwaitEnd(quiet, q);
  const double quiet_s = SecondsSince(quiet_submit);
  for (auto& t : threads) t.join();
  const double burst_s = SecondsSince(started);
  EXPECT_EQ(quiet_end.value("status", ""), "Completed") << quiet_end.dump();
  EXPECT_EQ(accepted + throttled + other, kThreads * kPerThread);
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(throttled.load(), 0);
  EXPECT_EQ(missing_retry_after.load(), 0);
  // The token bucket's bound: the burst plus the rate over the time taken.
  EXPECT_LE(accepted.load(), 50 + static_cast<int>(20 * burst_s) + 1);
  std::printf("admission: %d submits in %.2f s: %d accepted, %d got 429; the other tenant's job was submitted and "
              "completed in %.2f s\n",
              kThreads * kPerThread, burst_s, accepted.load(), throttled.load(), quiet_s);
}

TEST_F(AdmissionE2eTest, UnfinishedJobAndStoredInstanceCapsHoldOverHttpAndGrpc) {
  StartServer(2, 2048);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 2}});
  ASSERT_EQ(Patch("acme", R"({"limits":{"maxQueuedJobs":2,"maxInstances":3}})").status, 200);
  const std::string a = Submit(acme, Spec("a", {"sleep", "120"}));
  const std::string b = Submit(acme, Spec("b", {"sleep", "120"}));
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  HttpResult third = Call(acme, "POST", "/api/v1/jobs", Spec("c", {"sleep", "120"}).dump());
  EXPECT_EQ(third.status, 429) << third.body;
  EXPECT_NE(third.body.find("limit of 2 unfinished jobs"), std::string::npos) << third.body;
  EXPECT_EQ(Jobs(acme), 2u);
  // Once one ends, there is room again (after the cap's recount).
  ASSERT_EQ(Call(acme, "POST", "/api/v1/jobs/" + a + "/cancel").status, 202);
  EXPECT_EQ(AwaitEnd(acme, a).value("status", ""), "Canceled");
  EXPECT_TRUE(PollUntil([&] { return Call(acme, "POST", "/api/v1/jobs", Spec("c", {"exit", "0"}).dump()).status == 202; },
                        30s, 500ms));

  // Instances: three may be stored, the fourth start is refused, by HTTP and by gRPC.
  const std::string start = "/runtime/webhooks/durabletask/orchestrators/HelloCities";
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Call(acme, "POST", start, R"(["Tokyo"])").status, 202);
  HttpResult fourth = Call(acme, "POST", start, R"(["Tokyo"])");
  EXPECT_EQ(fourth.status, 429) << fourth.body;
  ASSERT_NE(server_->grpc_port(), 0);
  auto channel = ::grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                       ::grpc::InsecureChannelCredentials());
  auto stub = ::TaskHubSidecarService::NewStub(channel);
  {
    ::grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + acme);
    ::CreateInstanceRequest req;
    req.set_name("HelloCities");
    ::CreateInstanceResponse resp;
    ::grpc::Status s = stub->StartInstance(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), ::grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  }
  // The request rate over gRPC: a bucket of one, refilled once a minute.
  ASSERT_EQ(Patch("acme", R"({"limits":{"requestsPerSecond":0.016,"burst":1}})").status, 200);
  int ok = 0, exhausted = 0;
  std::string retry_after;
  for (int i = 0; i < 3; ++i) {
    ::grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + acme);
    ::GetInstanceRequest req;
    req.set_instanceid("none");
    ::GetInstanceResponse resp;
    ::grpc::Status s = stub->GetInstance(&ctx, req, &resp);
    if (s.error_code() == ::grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++exhausted;
      auto it = ctx.GetServerTrailingMetadata().find("retry-after");
      if (it != ctx.GetServerTrailingMetadata().end()) retry_after = std::string(it->second.data(), it->second.size());
    } else {
      ++ok;
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(exhausted, 2);
  EXPECT_GE(std::atoi(retry_after.c_str()), 1);
  // The admin is never limited.
  EXPECT_EQ(Call(admin_, "GET", "/api/v1/admin/tenants/acme/settings").status, 200);
}

}  // namespace
}  // namespace baton
