// DockerRuntime against the real dockerd and the local registry started by
// scripts/docker-up (scripts/test runs it first). Test images are built here,
// FROM scratch with the static testjob program; nothing comes from the internet.
#include "runtime/docker/docker_runtime.h"
#include "runtime/exec_shim/exec_shim.h"
#include "testing/test_image.h"
#include "testing/test_util.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <thread>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace baton::runtime::docker {
namespace {

using namespace std::chrono_literals;

const std::string kRepo = "127.0.0.1:5000/baton-test/testjob";

RegistryCredentials Credentials() { return testing::LocalRegistryCredentials(BATON_RUN_DIR); }

// A name unique to this process and test, for groups and labels.
std::string Unique(const std::string& what) {
  std::string name = "t" + std::to_string(getpid()) + "-" + what;
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

// Connects to 127.0.0.1:port and GETs /ping; true on "pong" (retries ~5 s).
// Up to ≈ 15 s: a container start on a loaded machine can take seconds.
bool PingLoopback(uint16_t port) {
  for (int i = 0; i < 300; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string body;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      const char req[] = "GET /ping HTTP/1.0\r\n\r\n";
      if (write(fd, req, sizeof req - 1) > 0) {
        char buf[512];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) body.append(buf, n);
      }
    }
    close(fd);
    if (body.find("pong") != std::string::npos) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

class DockerRuntimeTest : public ::testing::Test {
 protected:
  // Builds the test image once, pushes it with the platform's credentials,
  // drops the local copy and pulls it back, like a job would. A failure
  // fails every test (never skips it).
  static void SetUpTestSuite() {
    runtime_ = new DockerRuntime();
    setup_ = new Status(PrepareImage());
  }
  static Status PrepareImage() {
    auto image = testing::PrepareTestImage(*runtime_, BATON_TESTJOB, BATON_RUN_DIR);
    if (!image.ok()) return image.status();
    image_ = new std::string(image->digest);
    tag_ = new std::string(image->tag);
    return Status::Ok();
  }
  void SetUp() override { ASSERT_TRUE(setup_->ok()) << setup_->ToString(); }
  static void TearDownTestSuite() {
    if (image_ && tag_) testing::RemoveTestImage(*runtime_, testing::TestImage{*tag_, *image_});
    delete image_;
    delete tag_;
    delete runtime_;
    delete setup_;
  }

  void TearDown() override {
    for (const auto& g : groups_) runtime_->DeleteGroup(g).IgnoreError();
  }

  // One container running `args` of testjob.
  ContainerSpec Job(const std::string& name, std::vector<std::string> args) {
    ContainerSpec c;
    c.name = name;
    c.image = *image_;
    c.args = std::move(args);
    return c;
  }

  GroupState Create(GroupSpec spec) {
    groups_.push_back(spec.name);
    auto g = runtime_->CreateGroup(spec);
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    return g.ok() ? *g : GroupState{};
  }

  std::string Output(const std::string& id, LogLine::Stream stream) {
    auto logs = runtime_->Logs(id);
    EXPECT_TRUE(logs.ok()) << logs.status().ToString();
    std::string out;
    if (logs.ok()) {
      for (const LogLine& l : *logs) {
        if (l.stream == stream) out += l.text + "\n";
      }
    }
    return out;
  }

  static DockerRuntime* runtime_;
  static std::string* image_;  // the pulled digest reference
  static std::string* tag_;    // the tag it was pushed as
  static Status* setup_;
  std::vector<std::string> groups_;
};

DockerRuntime* DockerRuntimeTest::runtime_ = nullptr;
std::string* DockerRuntimeTest::image_ = nullptr;
std::string* DockerRuntimeTest::tag_ = nullptr;
Status* DockerRuntimeTest::setup_ = nullptr;

TEST_F(DockerRuntimeTest, TwoContainersOfAGroupTalkOverLocalhost) {
  GroupSpec spec;
  spec.name = Unique("pair");
  spec.network = NetworkMode::kNone;  // no network at all, but a shared loopback
  spec.containers = {Job("server", {"serve", "8080"}), Job("client", {"fetch", "127.0.0.1", "8080", "/ping"})};
  GroupState g = Create(spec);
  ASSERT_EQ(g.containers.size(), 2u);
  EXPECT_EQ(g.containers[0].name, "server");
  ASSERT_TRUE(runtime_->StartGroup(spec.name).ok());
  auto code = runtime_->WaitContainer(g.containers[1].id, 60s);
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 0);
  EXPECT_NE(Output(g.containers[1].id, LogLine::Stream::kStdout).find("pong"), std::string::npos);
  ASSERT_TRUE(runtime_->StopGroup(spec.name, 2s).ok());
  auto stopped = runtime_->InspectGroup(spec.name);
  ASSERT_TRUE(stopped.ok());
  EXPECT_FALSE(stopped->containers[0].running);
}

TEST_F(DockerRuntimeTest, CreateIsIdempotent) {
  GroupSpec spec;
  spec.name = Unique("idem");
  spec.containers = {Job("main", {"sleep", "1"})};
  GroupState first = Create(spec);
  auto second = runtime_->CreateGroup(spec);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->containers.size(), 1u);
  EXPECT_EQ(second->containers[0].id, first.containers[0].id);
}

TEST_F(DockerRuntimeTest, MemoryLimitIsEnforcedAndCpuLimitVisible) {
  GroupSpec spec;
  spec.name = Unique("oom");
  // The delay: containerd watches a container's memory cgroup for OOM only once
  // the task has started, so an OOM within milliseconds of the start can go
  // unreported by dockerd (cgroup v1; seen in CI as exit 137 without OOMKilled).
  ContainerSpec hog = Job("hog", {"alloc", "512", "300"});
  hog.memory_bytes = 32 << 20;
  hog.cpus = 0.5;
  spec.containers = {hog};
  GroupState g = Create(spec);
  ASSERT_TRUE(runtime_->StartGroup(spec.name).ok());
  auto code = runtime_->WaitContainer(g.containers[0].id, 60s);
  ASSERT_TRUE(code.ok());
  auto state = runtime_->InspectGroup(spec.name);
  ASSERT_TRUE(state.ok());
  const ContainerState& c = state->containers[0];
  EXPECT_TRUE(c.oom_killed) << "exit code " << c.exit_code;
  EXPECT_NE(c.exit_code, 0);
  // The event that backs up State.OOMKilled, which cgroup v1 dockerd can miss.
  ASSERT_TRUE(c.started_at && c.finished_at);
  auto saw = runtime_->SawOomEvent(c.id, *c.started_at, *c.finished_at + 2s);
  ASSERT_TRUE(saw.ok()) << saw.status().ToString();
  EXPECT_TRUE(*saw);
  EXPECT_DOUBLE_EQ(c.cpus, 0.5);
  EXPECT_EQ(c.memory_bytes, 32 << 20);
}

TEST_F(DockerRuntimeTest, SecretEnvReachesTheContainerAndNothingElse) {
  const std::string secret = "s3cr3t-" + std::to_string(getpid()) + "-value";
  GroupSpec spec;
  spec.name = Unique("secret");
  ContainerSpec c = Job("main", {"env", "TOKEN", "PLAIN"});
  c.secret_env["TOKEN"] = secret;
  c.env["PLAIN"] = "visible";
  spec.containers = {c};
  GroupState g = Create(spec);
  ASSERT_TRUE(runtime_->StartGroup(spec.name).ok());
  ASSERT_TRUE(runtime_->WaitContainer(g.containers[0].id, 60s).ok());
  // The container got it...
  EXPECT_NE(Output(g.containers[0].id, LogLine::Stream::kStdout).find("TOKEN=" + secret), std::string::npos);
  // ...but nothing Baton returns shows it.
  auto state = runtime_->InspectGroup(spec.name);
  ASSERT_TRUE(state.ok());
  std::string dump;
  for (const auto& cs : state->containers) {
    dump += cs.id + cs.name + cs.status;
    for (const auto& [k, v] : cs.labels) dump += k + v;
  }
  EXPECT_EQ(dump.find(secret), std::string::npos);
  // An error about this spec does not quote it either.
  GroupSpec bad = spec;
  bad.name = Unique("secret-bad");
  bad.containers[0].image = "127.0.0.1:5000/baton-test/does-not-exist:1";
  groups_.push_back(bad.name);
  auto failed = runtime_->CreateGroup(bad);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message().find(secret), std::string::npos) << failed.status().message();
}

// The default secrets dir is under /dev/shm, which every local user may
// write: one could create it first (or a symlink in its place) and plant
// .bin/baton-exec-<size>, which Baton would mount as /run/baton/exec into
// every job with secret env, the secrets in its hands. A secrets dir (or
// anything in it) that is not this process's own is refused, never used.
TEST_F(DockerRuntimeTest, SecretsDirOfAnotherUserIsNeverUsed) {
  testing::TempDir dir;
  constexpr uid_t kOther = 4242;
  const std::string squatted = dir.File("squatted");
  ASSERT_EQ(::mkdir(squatted.c_str(), 0777), 0);
  ASSERT_EQ(::mkdir((squatted + "/.bin").c_str(), 0777), 0);
  const std::string planted = squatted + "/.bin/baton-exec-" + std::to_string(ExecShimProgram().size());
  {
    std::ofstream out(planted, std::ios::binary);
    out << std::string(ExecShimProgram().size(), 'x');
  }
  ASSERT_EQ(::chmod(planted.c_str(), 0755), 0);
  for (const std::string& p : {squatted, squatted + "/.bin", planted}) ASSERT_EQ(::chown(p.c_str(), kOther, kOther), 0);
  const std::string linked = dir.File("linked");
  ASSERT_EQ(::symlink(squatted.c_str(), linked.c_str()), 0);

  for (const std::string& secrets_dir : {squatted, linked}) {
    DockerRuntime runtime("/var/run/docker.sock", secrets_dir);
    GroupSpec spec;
    spec.name = Unique("squat");
    ContainerSpec c = Job("main", {"env", "TOKEN"});
    c.secret_env["TOKEN"] = "squatted-" + std::to_string(getpid());
    spec.containers = {c};
    groups_.push_back(spec.name);
    auto created = runtime.CreateGroup(spec);
    EXPECT_FALSE(created.ok()) << secrets_dir << ": a secrets dir of uid " << kOther << " was used";
    if (!created.ok()) {
      EXPECT_NE(created.status().message().find(secrets_dir), std::string::npos) << created.status().message();
    }
    struct stat st {};
    ASSERT_EQ(::lstat(squatted.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, kOther);
    EXPECT_EQ(testing::ReadWholeFile(planted), std::string(ExecShimProgram().size(), 'x'));
  }
}

TEST_F(DockerRuntimeTest, LogsKeepStdoutAndStderrApartAndStatsAreReported) {
  GroupSpec spec;
  spec.name = Unique("logs");
  spec.containers = {Job("main", {"print", "3"})};
  GroupState g = Create(spec);
  ASSERT_TRUE(runtime_->StartGroup(spec.name).ok());
  ASSERT_TRUE(runtime_->WaitContainer(g.containers[0].id, 60s).ok());
  std::string out = Output(g.containers[0].id, LogLine::Stream::kStdout);
  std::string err = Output(g.containers[0].id, LogLine::Stream::kStderr);
  EXPECT_NE(out.find("progress 3/3"), std::string::npos) << out;
  EXPECT_EQ(out.find("warning"), std::string::npos) << out;
  EXPECT_NE(err.find("warning 1/3"), std::string::npos) << err;
  EXPECT_EQ(err.find("progress"), std::string::npos) << err;
  // Read in part: the tail, or a page, as Logs() orders them.
  auto all = runtime_->Logs(g.containers[0].id);
  ASSERT_TRUE(all.ok() && all->size() == 6u);
  auto tail = runtime_->LogsTail(g.containers[0].id, 2);
  ASSERT_TRUE(tail.ok() && tail->size() == 2u);
  EXPECT_EQ((*tail)[0].text, (*all)[4].text);
  EXPECT_EQ((*tail)[1].text, (*all)[5].text);
  auto page = runtime_->LogsRange(g.containers[0].id, 1, 3);
  ASSERT_TRUE(page.ok() && page->size() == 3u);
  EXPECT_EQ((*page)[0].text, (*all)[1].text);
  EXPECT_EQ((*page)[2].text, (*all)[3].text);
  // The container's log files are capped (json-file, max-size/max-file).
  auto inspect = DockerClient().Request("GET", "/containers/" + g.containers[0].id + "/json");
  ASSERT_TRUE(inspect.ok() && inspect->status == 200);
  nlohmann::json log_config = nlohmann::json::parse(inspect->body)["HostConfig"]["LogConfig"];
  EXPECT_EQ(log_config.value("Type", ""), "json-file") << log_config.dump();
  EXPECT_EQ(log_config["Config"].value("max-size", ""), kLogFileSize) << log_config.dump();
  EXPECT_EQ(log_config["Config"].value("max-file", ""), kLogFiles) << log_config.dump();

  GroupSpec running;
  running.name = Unique("stats");
  running.containers = {Job("main", {"sleep", "30"})};
  GroupState r = Create(running);
  ASSERT_TRUE(runtime_->StartGroup(running.name).ok());
  auto usage = runtime_->Stats(r.containers[0].id);
  ASSERT_TRUE(usage.ok()) << usage.status().ToString();
  EXPECT_GT(usage->memory_bytes, 0);
  auto started = runtime_->InspectGroup(running.name);
  ASSERT_TRUE(started.ok());
  EXPECT_TRUE(started->containers[0].running);
  EXPECT_TRUE(started->containers[0].started_at.has_value());
}

TEST_F(DockerRuntimeTest, PullErrorsAreClearAndQuick) {
  RegistryCredentials wrong = Credentials();
  wrong.password = "not-the-password";
  // By tag: a digest already present locally is not checked against the registry.
  auto unauthorized = runtime_->PullImage(*tag_, wrong, 30s);
  EXPECT_EQ(unauthorized.status().code(), StatusCode::kUnauthenticated) << unauthorized.status().ToString();
  auto missing = runtime_->PullImage(kRepo + ":no-such-tag", Credentials(), 30s);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
  // Nothing listens on this port: a registry that is down.
  auto t0 = std::chrono::steady_clock::now();
  auto down = runtime_->PullImage("127.0.0.1:5999/baton-test/testjob:1", Credentials(), 30s);
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable) << down.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s);  // bounded by the timeout given, never a hang
  // dockerd itself down: a socket nobody serves.
  DockerRuntime nowhere("/tmp/baton-no-such-docker.sock");
  EXPECT_EQ(nowhere.Ping(2s).code(), StatusCode::kUnavailable);
  EXPECT_EQ(nowhere.InspectGroup("x").status().code(), StatusCode::kUnavailable);
}

TEST_F(DockerRuntimeTest, ReconcilerRemovesOrphansAndLeavesOthersAlone) {
  const std::string owner = Unique("reconcile");
  GroupSpec keep, orphan;
  keep.name = owner + "-keep";
  orphan.name = owner + "-orphan";
  keep.labels = orphan.labels = {{"baton.test", owner}};
  keep.containers = {Job("main", {"sleep", "30"})};
  orphan.containers = {Job("main", {"sleep", "30"})};
  Create(keep);
  Create(orphan);
  // A container that is not Baton's (no labels), created through the API.
  DockerClient client;
  nlohmann::json body = {{"Image", *image_}, {"Cmd", {"sleep", "30"}}, {"Labels", {{"baton.test", owner}}}};
  auto plain = client.Request("POST", "/containers/create?name=" + owner + "-plain", body.dump());
  ASSERT_TRUE(plain.ok());
  ASSERT_EQ(plain->status, 201) << plain->body;
  std::string plain_id = nlohmann::json::parse(plain->body)["Id"];

  auto removed = RemoveOrphanGroups(*runtime_, {{"baton.test", owner}},
                                    [&](const std::string& g) { return g == keep.name; });
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, std::vector<std::string>{orphan.name});
  EXPECT_EQ(runtime_->InspectGroup(orphan.name).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(runtime_->InspectGroup(keep.name).ok());
  auto still = client.Request("GET", "/containers/" + plain_id + "/json");
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->status, 200);  // left alone
  client.Request("DELETE", "/containers/" + plain_id + "?force=1").status().IgnoreError();
}

TEST_F(DockerRuntimeTest, EventsStreamReportsDieWithExitCodeAndLogsCanBeFollowed) {
  GroupSpec spec;
  spec.name = Unique("events");
  spec.containers = {Job("main", {"exit", "3"})};
  GroupState g = Create(spec);
  std::optional<ContainerEvent> died;
  const TimePoint before_start = std::chrono::system_clock::now() - 1s;
  ASSERT_TRUE(runtime_->StartGroup(spec.name).ok());
  // Events since before the start are replayed, so no race with the subscription.
  Status watched = runtime_->WatchEvents({{"baton.group", spec.name}},
                                         [&](const ContainerEvent& e) {
                                           if (e.action != "die") return true;
                                           died = e;
                                           return false;
                                         },
                                         60s, before_start);
  EXPECT_TRUE(watched.ok()) << watched.ToString();
  ASSERT_TRUE(died.has_value());
  EXPECT_EQ(died->exit_code, 3);
  EXPECT_EQ(died->container_id, g.containers[0].id);
  EXPECT_EQ(died->labels["baton.group"], spec.name);

  // Following the logs of a running job: past lines, then new ones, to its end.
  GroupSpec printer;
  printer.name = Unique("follow");
  printer.containers = {Job("main", {"print", "4"})};
  GroupState p = Create(printer);
  ASSERT_TRUE(runtime_->StartGroup(printer.name).ok());
  std::vector<LogLine> lines;
  Status followed = runtime_->FollowLogs(p.containers[0].id,
                                         [&](const LogLine& l) {
                                           lines.push_back(l);
                                           return true;
                                         },
                                         60s);  // returns when the container stops
  EXPECT_TRUE(followed.ok()) << followed.ToString();
  int out = 0, err = 0;
  for (const LogLine& l : lines) (l.stream == LogLine::Stream::kStdout ? out : err)++;
  EXPECT_EQ(out, 4);
  EXPECT_EQ(err, 4);
}

TEST_F(DockerRuntimeTest, BridgeGroupPublishesPortsOnLoopbackOnly) {
  GroupSpec spec;
  spec.name = Unique("bridge");
  spec.network = NetworkMode::kBridge;
  spec.scratch_volume = true;
  ContainerSpec server = Job("server", {"serve", "8080"});
  server.ports = {PortMapping{8080, 0}};
  spec.containers = {server};
  GroupState g = Create(spec);
  ASSERT_TRUE(runtime_->StartGroup(spec.name).ok());
  auto state = runtime_->InspectGroup(spec.name);
  ASSERT_TRUE(state.ok());
  ASSERT_TRUE(state->containers[0].published_ports.count(8080));
  uint16_t port = state->containers[0].published_ports.at(8080);
  ASSERT_GT(port, 0);
  // Reached through 127.0.0.1 only, never the bridge address.
  EXPECT_TRUE(PingLoopback(port));
}

TEST_F(DockerRuntimeTest, HostNetworkGroupRestartsAndServesAgain) {
  const uint16_t port = testing::FreeLoopbackPort();
  ASSERT_GT(port, 0);
  GroupSpec spec;
  spec.name = Unique("host");
  spec.network = NetworkMode::kHost;
  spec.containers = {Job("server", {"serve", std::to_string(port), "127.0.0.1"})};  // loopback only
  GroupState g = Create(spec);
  ASSERT_TRUE(runtime_->StartGroup(spec.name).ok());
  ASSERT_TRUE(PingLoopback(port));
  auto first = runtime_->InspectGroup(spec.name);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(runtime_->RestartGroup(spec.name, 2s).ok());
  auto second = runtime_->InspectGroup(spec.name);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->containers[0].running);
  EXPECT_NE(second->containers[0].started_at, first->containers[0].started_at);
  EXPECT_TRUE(PingLoopback(port));
  // Stop: SIGTERM within the grace period (testjob exits at once on it).
  ASSERT_TRUE(runtime_->StopGroup(spec.name, 10s).ok());
  auto stopped = runtime_->InspectGroup(spec.name);
  ASSERT_TRUE(stopped.ok());
  EXPECT_FALSE(stopped->containers[0].running);
  EXPECT_EQ(stopped->containers[0].exit_code, 0);
}

}  // namespace
}  // namespace baton::runtime::docker
