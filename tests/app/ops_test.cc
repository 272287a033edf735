// Operating a real `baton serve` (issue 16): a busy port fails before
// anything is created (ServeBusyPort*), the config file after the
// subcommand, the demo's leftovers, retention settings and purges through
// the API and CLI (Retention*), and backup and restore (Backup*).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <cstring>
#include <map>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "testing/http_client.h"
#include "testing/server_process.h"
#include "testing/test_util.h"

namespace baton {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace std::chrono_literals;

struct Outcome {
  int exit_code = -1;  // -1: killed at the deadline
  std::string out, err;
};

// Runs `baton ARGS...` in `cwd` ("" = here) with stdin from /dev/null, or
// `input` when given; kills it after `deadline`.
Outcome Baton(std::vector<std::string> args, const std::string& cwd = "",
          const std::vector<std::pair<std::string, std::string>>& env = {}, const std::string& input = "",
          std::chrono::seconds deadline = 60s) {
  const std::string dir = testing::TempDir().path();  // removed at once: just a unique name
  const std::string out_path = dir + ".out", err_path = dir + ".err", in_path = dir + ".in";
  std::ofstream(in_path) << input;
  pid_t pid = fork();
  if (pid == 0) {
    int in = open(in_path.c_str(), O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(in, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    std::string binary = BATON_BINARY;
    argv.push_back(binary.data());
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  Outcome r;
  const auto until = std::chrono::steady_clock::now() + deadline;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > until) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      status = -1;
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  if (status != -1 && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  for (const auto& p : {out_path, err_path, in_path}) fs::remove(p);
  return r;
}

// A socket listening on 127.0.0.1 (a port another program holds).
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 4) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("cannot listen");
    }
    port_ = ntohs(a.sin_port);
  }
  ~Listener() { close(fd_); }
  std::string port() const { return std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---- Server start ----

TEST(ServeBusyPort, HttpPortInUseFailsBeforeCreatingAnything) {
  testing::TempDir dir;
  const std::string data = dir.File("data");
  Listener busy;
  Outcome r = Baton({"serve", "--data-dir", data, "--port", busy.port(), "--grpc-port", "-1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, -1) << "still running: " << r.out;
  EXPECT_TRUE(Contains(r.err, "--port")) << r.err;
  EXPECT_TRUE(Contains(r.err, "BATON_PORT")) << r.err;
  EXPECT_TRUE(Contains(r.err, "in use")) << r.err;
  EXPECT_FALSE(fs::exists(data)) << "the data dir was created";
  EXPECT_FALSE(Contains(r.out, "admin key")) << r.out;
  // The same through the environment.
  Outcome env = Baton({"serve", "--data-dir", data, "--grpc-port", "-1"}, "", {{"BATON_PORT", busy.port()}});
  EXPECT_NE(env.exit_code, 0);
  EXPECT_TRUE(Contains(env.err, "BATON_PORT")) << env.err;
  EXPECT_FALSE(fs::exists(data));
}

TEST(ServeBusyPort, GrpcPortInUseFailsBeforeCreatingAnything) {
  testing::TempDir dir;
  const std::string data = dir.File("data");
  Listener busy;
  Outcome r = Baton({"serve", "--data-dir", data, "--port", "0", "--grpc-port", busy.port()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, -1) << "still running: " << r.out;
  EXPECT_TRUE(Contains(r.err, "--grpc-port")) << r.err;
  EXPECT_TRUE(Contains(r.err, "BATON_GRPC_PORT")) << r.err;
  EXPECT_FALSE(fs::exists(data));
  EXPECT_FALSE(Contains(r.out, "admin key")) << r.out;
}

// Two servers: the second refuses both of the first's ports, even though
// gRPC would share a port by default (SO_REUSEPORT).
TEST(ServeBusyPort, ASecondServerCannotShareTheFirstsPorts) {
  testing::TempDir dir;
  const std::string grpc = std::to_string(testing::FreeLoopbackPort());
  testing::ServerProcess first(BATON_BINARY, dir.File("first"), {"--grpc-port", grpc});
  ASSERT_EQ(std::to_string(first.grpc_port()), grpc);
  Outcome http = Baton({"serve", "--data-dir", dir.File("second"), "--port", std::to_string(first.port()),
                    "--grpc-port", "0"});
  EXPECT_NE(http.exit_code, 0);
  EXPECT_TRUE(Contains(http.err, "--port")) << http.err;
  Outcome same_grpc = Baton({"serve", "--data-dir", dir.File("second"), "--port", "0", "--grpc-port", grpc});
  EXPECT_NE(same_grpc.exit_code, 0);
  EXPECT_NE(same_grpc.exit_code, -1) << "the second server shares the gRPC port: " << same_grpc.out;
  EXPECT_TRUE(Contains(same_grpc.err, "--grpc-port")) << same_grpc.err;
  EXPECT_FALSE(fs::exists(dir.File("second")));
  // The first one still answers.
  EXPECT_EQ(testing::HttpCall(first.port(), "GET", "/healthz").status, 200);
}

TEST(ServeBusyPort, BadRetentionFailsBeforeCreatingAnything) {
  testing::TempDir dir;
  for (const char* bad : {"7", "7x", "-1d", "30s", "1h1d", "1d1d"}) {
    Outcome r =
        Baton({"serve", "--data-dir", dir.File("data"), "--port", "0", "--grpc-port", "-1", "--retention", bad});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_TRUE(Contains(r.err, "--retention")) << r.err;
    EXPECT_FALSE(fs::exists(dir.File("data"))) << bad;
  }
}

TEST(ServeConfig, TheConfigFileMayFollowTheSubcommand) {
  testing::TempDir dir;
  const std::string config = dir.File("baton.toml");
  std::ofstream(config) << "[serve]\nsample-tenant = \"fromconfig\"\n";
  testing::ServerProcess server(BATON_BINARY, dir.File("data"), {"--config", config});
  EXPECT_TRUE(testing::Eventually([&] { return fs::exists(dir.File("data") + "/fromconfig.key"); }));
}

TEST(ServeConfig, TheDemoLeavesNoFileBehind) {
  testing::TempDir dir;
  Outcome r = Baton({"demo"}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "status: Completed")) << r.out;
  EXPECT_TRUE(fs::is_empty(dir.path())) << fs::begin(fs::directory_iterator(dir.path()))->path();
}

// ---- Retention through the API and the CLI ----

class OpsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<testing::ServerProcess>(BATON_BINARY, dir_.File("data"));
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }
  testing::HttpResult Call(const std::string& key, const std::string& method, const std::string& target,
                           const std::string& body = "") {
    return testing::HttpCall(server_->port(), method, target, body,
                             {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}});
  }
  Outcome Cli(const std::string& key, std::vector<std::string> args, const std::string& input = "") {
    return Baton(std::move(args), "", {{"BATON_SERVER", url_}, {"BATON_KEY", key}}, input);
  }
  std::string TenantKey(const std::string& id) {
    EXPECT_EQ(Call(server_->admin_key(), "POST", "/api/v1/admin/tenants", Json{{"id", id}}.dump()).status, 201);
    auto k = Call(server_->admin_key(), "POST", "/api/v1/admin/tenants/" + id + "/keys", "{}");
    EXPECT_EQ(k.status, 201) << k.body;
    return Json::parse(k.body)["key"];
  }
  Json Settings(const std::string& tenant) {
    auto r = Call(server_->admin_key(), "GET", "/api/v1/admin/tenants/" + tenant + "/settings");
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? Json::parse(r.body) : Json();
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::string url_;
};

class RetentionApiTest : public OpsApiTest {};
class TenantOpsTest : public OpsApiTest {};

TEST_F(RetentionApiTest, TenantOverrideIsValidatedAndOnlyAnAdminSetsIt) {
  const std::string key = TenantKey("acme");
  const std::string path = "/api/v1/admin/tenants/acme/settings";
  EXPECT_TRUE(Settings("acme")["retention"].is_null());
  for (const Json& bad : {Json("7x"), Json("7"), Json("-1d"), Json("30s"), Json(7), Json(true), Json::array()}) {
    auto r = Call(server_->admin_key(), "PATCH", path, Json{{"retention", bad}}.dump());
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
    EXPECT_TRUE(Contains(r.body, "retention")) << r.body;
  }
  EXPECT_TRUE(Settings("acme")["retention"].is_null()) << "a refused patch changed the settings";
  // A tenant key cannot set its own retention.
  EXPECT_EQ(Call(key, "PATCH", path, R"({"retention": "forever"})").status, 403);
  EXPECT_TRUE(Settings("acme")["retention"].is_null());

  auto set = Call(server_->admin_key(), "PATCH", path, R"({"retention": "30d"})");
  EXPECT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(Settings("acme")["retention"], "30d");
  EXPECT_EQ(Call(server_->admin_key(), "PATCH", path, R"({"retention": "forever"})").status, 200);
  EXPECT_EQ(Settings("acme")["retention"], "forever");
  // The CLI: set, show, back to the server's default.
  Outcome cli = Cli(server_->admin_key(), {"tenant", "settings", "acme", "--retention", "36h"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_TRUE(Contains(cli.out, "1d12h")) << cli.out;
  EXPECT_EQ(Cli(server_->admin_key(), {"tenant", "settings", "acme", "--retention", "soon"}).exit_code, 6);
  EXPECT_EQ(Settings("acme")["retention"], "1d12h");
  EXPECT_EQ(Cli(server_->admin_key(), {"tenant", "settings", "acme", "--retention", "default"}).exit_code, 0);
  EXPECT_TRUE(Settings("acme")["retention"].is_null());
}

TEST_F(RetentionApiTest, PurgeByFilterAsksUnlessYesAndHasADryRun) {
  const std::string key = TenantKey("acme");
  const std::string other = TenantKey("other");
  for (const char* id : {"p1", "p2", "p3"}) {
    Outcome r = Cli(key, {"instance", "start", "HelloCities", id, "--input", R"(["Oslo"])", "--wait", "60"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  ASSERT_EQ(Cli(other, {"instance", "start", "HelloCities", "o1", "--input", "[]", "--wait", "60"}).exit_code, 0);
  const std::vector<std::string> filter = {"instance", "purge", "--created-from", "2000-01-01T00:00:00Z"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = filter;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  Outcome dry = Cli(key, with({"--dry-run"}));
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_TRUE(Contains(dry.out, "Would purge 3 finished instances")) << dry.out;
  // No --yes and no answer (stdin at its end), or "n": nothing is deleted.
  Outcome refused = Cli(key, filter);
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_TRUE(Contains(refused.err, "Purge 3 finished instances?")) << refused.err;
  EXPECT_EQ(Cli(key, filter, "n\n").exit_code, 2);
  EXPECT_EQ(Cli(key, {"instance", "status", "p1"}).exit_code, 0);
  // "y" purges this tenant's three; the other tenant's instance stays.
  Outcome asked = Cli(key, filter, "y\n");
  EXPECT_EQ(asked.exit_code, 0) << asked.err;
  EXPECT_TRUE(Contains(asked.out, "Purged 3 instances")) << asked.out;
  EXPECT_EQ(Cli(key, {"instance", "status", "p1"}).exit_code, 3);
  EXPECT_EQ(Cli(other, {"instance", "status", "o1"}).exit_code, 0);
  // --yes does not ask; nothing left to purge is a 404.
  ASSERT_EQ(Cli(key, {"instance", "start", "HelloCities", "p4", "--input", "[]", "--wait", "60"}).exit_code, 0);
  Outcome yes = Cli(key, with({"--yes"}));
  EXPECT_EQ(yes.exit_code, 0) << yes.err;
  EXPECT_FALSE(Contains(yes.err, "?")) << yes.err;
  EXPECT_EQ(Cli(key, with({"--yes"})).exit_code, 3);
  EXPECT_EQ(Cli(other, {"instance", "status", "o1"}).exit_code, 0);
  // Hostile: a bad dryRun value is a 400 and deletes nothing.
  auto bad = Call(other, "DELETE",
                  "/runtime/webhooks/durabletask/instances?createdTimeFrom=2000-01-01T00:00:00Z&dryRun=maybe");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(Cli(other, {"instance", "status", "o1"}).exit_code, 0);
}

TEST_F(RetentionApiTest, JobDeleteRefusesOtherTenantsIdsAndAdminKeys) {
  const std::string key = TenantKey("acme");
  // Ids that are not this tenant's jobs: 404; malformed: 400; admin: 403.
  auto missing = Call(key, "DELETE", "/api/v1/jobs/0123456789abcdef");
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_EQ(Call(key, "DELETE", "/api/v1/jobs/..%2F..%2Fetc").status, 400);
  EXPECT_EQ(Call(server_->admin_key(), "DELETE", "/api/v1/jobs/0123456789abcdef").status, 403);
  Outcome cli = Cli(key, {"job", "delete", "0123456789abcdef"});
  EXPECT_EQ(cli.exit_code, 3) << cli.err;
}


// ---- Tenants: default quota, own quota, enable, expiring keys ----

TEST_F(TenantOpsTest, TenantsStartWithAFiniteQuotaAndReadOnlyTheirOwn) {
  const std::string acme = TenantKey("acme");
  const std::string other = TenantKey("other");
  // The default (--default-quota cpu=2,memory=4096,jobs=10), not unlimited.
  ASSERT_TRUE(testing::Eventually([&] {
    auto q = Call(server_->admin_key(), "GET", "/api/v1/admin/tenants/acme/quota");
    return q.status == 200 && Json::parse(q.body)["jobs"] == 10;
  }));
  auto admin_view = Json::parse(Call(server_->admin_key(), "GET", "/api/v1/admin/tenants/acme/quota").body);
  EXPECT_EQ(admin_view["cpu"], 2);
  EXPECT_EQ(admin_view["memoryMb"], 4096);
  // Its own, with its key; never another's.
  auto own = Call(acme, "GET", "/api/v1/quota");
  ASSERT_EQ(own.status, 200) << own.body;
  Json q = Json::parse(own.body);
  EXPECT_EQ(q["tenant"], "acme");
  EXPECT_EQ(q["jobs"], 10);
  EXPECT_TRUE(q["queue"].is_array());
  EXPECT_EQ(Call(acme, "GET", "/api/v1/admin/tenants/other/quota").status, 403);
  EXPECT_EQ(Call(acme, "PUT", "/api/v1/admin/tenants/acme/quota", R"({"cpu": 64})").status, 403);
  EXPECT_EQ(Json::parse(Call(acme, "GET", "/api/v1/quota").body)["cpu"], 2) << "a refused PUT changed the quota";
  EXPECT_EQ(Call(server_->admin_key(), "GET", "/api/v1/quota").status, 403);
  Outcome cli = Cli(acme, {"tenant", "quota"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_TRUE(Contains(cli.out, "acme")) << cli.out;
  EXPECT_EQ(Cli(acme, {"tenant", "quota", "--cpu", "8"}).exit_code, 2);
  EXPECT_EQ(Cli(acme, {"tenant", "quota", "other"}).exit_code, 5);  // 403
}

TEST_F(TenantOpsTest, ADisabledTenantIsEnabledAgain) {
  const std::string key = TenantKey("acme");
  EXPECT_EQ(Call(key, "GET", "/api/v1/quota").status, 200);
  ASSERT_EQ(Cli(server_->admin_key(), {"tenant", "disable", "acme"}).exit_code, 0);
  EXPECT_EQ(Call(key, "GET", "/api/v1/quota").status, 401);
  EXPECT_EQ(Call(key, "POST", "/api/v1/admin/tenants/acme/enable").status, 401);  // not with its own key
  Outcome enabled = Cli(server_->admin_key(), {"tenant", "enable", "acme"});
  EXPECT_EQ(enabled.exit_code, 0) << enabled.err;
  EXPECT_EQ(Call(key, "GET", "/api/v1/quota").status, 200);
  EXPECT_EQ(Cli(server_->admin_key(), {"tenant", "enable", "nobody"}).exit_code, 3);
}

TEST_F(TenantOpsTest, KeysExpire) {
  TenantKey("acme");
  const std::string keys = "/api/v1/admin/tenants/acme/keys";
  auto count = [&] { return Json::parse(Call(server_->admin_key(), "GET", keys).body).size(); };
  const size_t before = count();
  for (const Json& bad : {Json{{"expiresIn", "soon"}}, Json{{"expiresIn", "30s"}}, Json{{"expiresIn", 60}},
                          Json{{"expiresTime", "2001-01-01T00:00:00Z"}}, Json{{"expiresTime", "tomorrow"}},
                          Json{{"expiresIn", "1d"}, {"expiresTime", "2099-01-01T00:00:00Z"}}}) {
    auto r = Call(server_->admin_key(), "POST", keys, bad.dump());
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
  }
  EXPECT_EQ(count(), before) << "a refused request created a key";
  // A key that expires in 10 s works now and is refused with 401 after.
  const std::string at = [] {
    const auto t = std::chrono::system_clock::now() + 10s;
    const std::time_t c = std::chrono::system_clock::to_time_t(t);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&c));
    return std::string(buf);
  }();
  auto made = Call(server_->admin_key(), "POST", keys, Json{{"name", "short"}, {"expiresTime", at}}.dump());
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string key = Json::parse(made.body)["key"];
  EXPECT_EQ(Json::parse(made.body)["expiresTime"], at);
  EXPECT_EQ(Call(key, "GET", "/api/v1/quota").status, 200);
  testing::HttpResult refused;
  EXPECT_TRUE(testing::Eventually([&] { return (refused = Call(key, "GET", "/api/v1/quota")).status == 401; }, 60s));
  EXPECT_TRUE(Contains(refused.body, "expired")) << refused.body;
  // The CLI: --expires-in, shown by key list.
  Outcome cli = Cli(server_->admin_key(), {"key", "create", "--tenant", "acme", "--expires-in", "90d"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(Cli(server_->admin_key(), {"key", "create", "--tenant", "acme", "--expires-in", "1x"}).exit_code, 6);
  Outcome list = Cli(server_->admin_key(), {"key", "list", "--tenant", "acme"});
  EXPECT_TRUE(Contains(list.out, "EXPIRES")) << list.out;
}

// ---- Backup and restore ----

const std::string kStart = "/runtime/webhooks/durabletask/orchestrators/HelloCities/";

TEST(BackupTest, TakenDuringA500OrchestrationRunRestoresEveryAcknowledgedInstance) {
  testing::TempDir dir;
  const std::string archive = dir.File("backup.tar");
  std::vector<std::string> acked_before_backup;
  std::set<std::string> acked;
  std::string admin;
  {
    testing::ServerProcess server(BATON_BINARY, dir.File("a"));
    admin = server.admin_key();
    const std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + admin},
                                                     {"Content-Type", "application/json"}};
    std::mutex mu;
    std::atomic<int> next{0};
    std::atomic<bool> backup_started{false};
    std::vector<std::string> acked_while_not_started;
    // Two clients start 500 orchestrations; the backup runs meanwhile.
    auto client = [&] {
      for (int i; (i = next.fetch_add(1)) < 500;) {
        const std::string id = "run-" + std::to_string(i);
        auto r = testing::HttpCall(server.port(), "POST", kStart + id, R"(["Oslo", "Lima"])", auth);
        if (r.status != 202) continue;
        // Acknowledged, and known to be so before the backup began.
        const bool before = !backup_started.load();
        std::lock_guard lock(mu);
        acked.insert(id);
        if (before) acked_while_not_started.push_back(id);
      }
    };
    std::thread c1(client), c2(client);
    ASSERT_TRUE(testing::Eventually([&] { return next.load() >= 250; }, 120s));
    backup_started = true;
    Outcome backup = Baton({"backup", archive, "--data-dir", dir.File("a")});
    const int started_at_end_of_backup = next.load();
    c1.join();
    c2.join();
    ASSERT_EQ(backup.exit_code, 0) << backup.err;
    EXPECT_TRUE(Contains(backup.out, "backed up 4 database(s)")) << backup.out;
    acked_before_backup = acked_while_not_started;
    EXPECT_GE(acked_before_backup.size(), 240u);
    EXPECT_LT(acked_before_backup.size(), 500u) << "the backup did not overlap the run";
    std::printf("acknowledged before the backup: %zu; started when it ended: %d; acknowledged in all: %zu\n",
                acked_before_backup.size(), started_at_end_of_backup, acked.size());
    EXPECT_EQ(acked.size(), 500u);
  }
  // The archive is private and lists as a tar file.
  EXPECT_EQ(fs::status(archive).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);

  Outcome restored = Baton({"restore", archive, "--data-dir", dir.File("b")});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  testing::ServerProcess server(BATON_BINARY, dir.File("b"));
  EXPECT_TRUE(server.admin_key().empty()) << "the restored tenants.db has the admin key";
  const std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + admin}};
  int present = 0, completed = 0;
  for (const std::string& id : acked_before_backup) {
    // Every instance acknowledged before the backup is there, and finishes.
    auto r = testing::HttpCall(server.port(), "GET", "/runtime/webhooks/durabletask/instances/" + id, "", auth);
    EXPECT_EQ(r.status, 200) << id << ": " << r.body;
    present += r.status == 200;
  }
  for (const std::string& id : acked_before_backup) {
    const bool done = testing::Eventually([&] {
      auto r = testing::HttpCall(server.port(), "GET", "/runtime/webhooks/durabletask/instances/" + id, "", auth);
      return r.status == 200 && Json::parse(r.body)["runtimeStatus"] == "Completed";
    }, 120s);
    EXPECT_TRUE(done) << id;
    completed += done;
  }
  EXPECT_EQ(present, static_cast<int>(acked_before_backup.size()));
  EXPECT_EQ(completed, static_cast<int>(acked_before_backup.size()));
}

TEST(BackupTest, RestoreRefusesARunningServerAndAnExistingTaskHub) {
  testing::TempDir dir;
  const std::string archive = dir.File("backup.tar");
  auto server = std::make_unique<testing::ServerProcess>(BATON_BINARY, dir.File("a"));
  ASSERT_EQ(Baton({"backup", archive, "--data-dir", dir.File("a")}).exit_code, 0);
  Outcome busy = Baton({"restore", archive, "--data-dir", dir.File("a"), "--force"});
  EXPECT_EQ(busy.exit_code, 4) << busy.err;
  EXPECT_TRUE(Contains(busy.err, "stop `baton serve` first")) << busy.err;
  server.reset();
  Outcome exists = Baton({"restore", archive, "--data-dir", dir.File("a")});
  EXPECT_EQ(exists.exit_code, 4) << exists.err;
  EXPECT_TRUE(Contains(exists.err, "--force")) << exists.err;
  EXPECT_EQ(Baton({"restore", archive, "--data-dir", dir.File("a"), "--force"}).exit_code, 0);
  // PostgreSQL is pg_dump's job.
  Outcome pg = Baton({"backup", archive, "--store", "postgresql://127.0.0.1/baton"});
  EXPECT_EQ(pg.exit_code, 2);
  EXPECT_TRUE(Contains(pg.err, "pg_dump")) << pg.err;
}

// A ustar member, as a hostile archive would hold it.
std::string TarMember(const std::string& name, const std::string& data) {
  std::string h(512, '\0');
  std::memcpy(h.data(), name.data(), std::min<size_t>(name.size(), 99));
  std::snprintf(&h[100], 8, "%07o", 0600);
  std::snprintf(&h[108], 8, "%07o", 0);
  std::snprintf(&h[116], 8, "%07o", 0);
  std::snprintf(&h[124], 12, "%011o", static_cast<unsigned>(data.size()));
  std::snprintf(&h[136], 12, "%011o", 0);
  h[156] = '0';
  std::memcpy(&h[257], "ustar", 6);
  std::memcpy(&h[263], "00", 2);
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(&h[148], 8, "%06o", sum);
  return h + data + std::string((512 - data.size() % 512) % 512, '\0');
}

TEST(BackupTest, RestoreRefusesHostileOrDamagedArchivesAndWritesNothing) {
  testing::TempDir dir;
  const std::string archive = dir.File("backup.tar");
  {
    testing::ServerProcess server(BATON_BINARY, dir.File("a"));
    ASSERT_EQ(Baton({"backup", archive, "--data-dir", dir.File("a")}).exit_code, 0);
  }
  std::string good;
  {
    std::ifstream in(archive, std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(good.size(), 4096u);
  auto manifest = [](const std::string& name, const std::string& data) {
    return Json{{"format", "baton-backup"},
                {"version", 1},
                {"files", {{{"name", name}, {"size", data.size()}, {"sha256", "00"}}}}}
        .dump();
  };
  std::string flipped = good;
  flipped[flipped.size() - 2048] ^= 0x5a;  // inside the last member's data
  const std::vector<std::pair<std::string, std::string>> hostile = {
      {"flipped byte", flipped},
      {"truncated", good.substr(0, good.size() / 2)},
      {"not a tar", std::string(4096, 'x')},
      {"empty", ""},
      {"path traversal", TarMember("baton-backup.json", manifest("../evil.key", "k")) + TarMember("../evil.key", "k") +
                             std::string(1024, '\0')},
      {"absolute path", TarMember("baton-backup.json", manifest("/tmp/evil.key", "k")) +
                            TarMember("/tmp/evil.key", "k") + std::string(1024, '\0')},
      {"unknown file", TarMember("baton-backup.json", manifest("evil.sh", "k")) + TarMember("evil.sh", "k") +
                           std::string(1024, '\0')},
  };
  for (const auto& [what, bytes] : hostile) {
    const std::string bad = dir.File("bad.tar");
    std::ofstream(bad, std::ios::binary | std::ios::trunc) << bytes;
    const std::string target = dir.File("restored");
    Outcome r = Baton({"restore", bad, "--data-dir", target});
    EXPECT_NE(r.exit_code, 0) << what;
    EXPECT_TRUE(Contains(r.err, "baton: restore:")) << what << ": " << r.err;
    EXPECT_FALSE(fs::exists(target)) << what << ": the data dir was created";
    EXPECT_FALSE(fs::exists(dir.File("evil.key")) || fs::exists("/tmp/evil.key")) << what;
    // No staging directory is left either.
    for (const auto& e : fs::directory_iterator(dir.path())) {
      EXPECT_TRUE(e.path().filename() == "a" || e.path().filename() == "backup.tar" ||
                  e.path().filename() == "bad.tar") << what << ": left " << e.path();
    }
  }
  // The good one still restores.
  EXPECT_EQ(Baton({"restore", archive, "--data-dir", dir.File("restored")}).exit_code, 0);
}

}  // namespace
}  // namespace baton
