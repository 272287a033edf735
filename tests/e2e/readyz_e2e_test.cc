// GET /readyz against a real `baton serve`: one entry per check (store, disk,
// dockerd, registry), 200 when all pass and 503 when one fails, while
// /healthz stays a liveness check (200). Without a key it shows nothing but
// names and status codes; an admin key adds the details; other keys are
// refused and change nothing. A data dir whose file system fills up — a real
// tmpfs, filled to the last byte — makes the node not ready, and ready again
// once space is freed. A private dockerd stopped under the node, and a
// private registry stopped under it, make it not ready (naming the check)
// while /healthz stays 200, and ready again once they are back (the jobs
// that wait out such outages: tests/e2e/transient_fault_e2e_test.cc).
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "baton/json.h"
#include "testing/http_client.h"
#include "testing/private_daemons.h"
#include "testing/server_process.h"
#include "testing/test_image.h"
#include "testing/test_util.h"

namespace baton {
namespace {

using namespace std::chrono_literals;
using testing::HttpResult;

Json ParseOrNull(const std::string& body) {
  Json j = Json::parse(body, nullptr, false);
  return j.is_discarded() ? Json() : j;
}

Json CheckNamed(const Json& readyz, const std::string& name) {
  for (const Json& c : readyz.value("checks", Json::array())) {
    if (c.value("name", "") == name) return c;
  }
  return Json();
}

bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(250ms);
  }
  return condition();
}

class TransientFaultReadyzTest : public ::testing::Test {
 protected:
  void TearDown() override { server_.reset(); }

  std::vector<std::string> RegistryArgs() const {
    return {"--registry", "127.0.0.1:5000", "--registry-user", "baton", "--registry-password-file",
            std::string(BATON_RUN_DIR) + "/registry/password"};
  }
  void Start(const std::string& data_dir, std::vector<std::string> args) {
    data_dir_ = data_dir;
    server_ = std::make_unique<testing::ServerProcess>(BATON_BINARY, data_dir, args);
    admin_ = server_->admin_key();
    ASSERT_FALSE(admin_.empty());
  }
  HttpResult Get(const std::string& target, const std::string& bearer = "", const std::string& method = "GET") {
    std::map<std::string, std::string> headers;
    if (!bearer.empty()) headers["Authorization"] = "Bearer " + bearer;
    return testing::HttpCall(server_->port(), method, target, "", headers);
  }
  // The next report whose status is `status` (the probe caches for 2 s).
  HttpResult AwaitReadyz(const std::string& status) {
    HttpResult r;
    PollUntil([&] { return ParseOrNull((r = Get("/readyz")).body).value("status", "") == status; }, 30s);
    return r;
  }

  testing::TempDir dir_;
  std::string data_dir_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::string admin_;
};

TEST_F(TransientFaultReadyzTest, ReportsEveryCheckAndShowsDetailsToAdminsOnly) {
  std::vector<std::string> args = RegistryArgs();
  Start(dir_.File("data"), args);
  HttpResult r = AwaitReadyz("ready");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["cache-control"], "no-store");
  Json ready = ParseOrNull(r.body);
  std::vector<std::string> names;
  for (const Json& c : ready["checks"]) {
    names.push_back(c.value("name", ""));
    EXPECT_EQ(c.value("ok", false), true) << c.dump();
    EXPECT_FALSE(c.contains("detail")) << c.dump();  // nothing beyond names and verdicts without a key
    EXPECT_FALSE(c.contains("ms")) << c.dump();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"store", "disk", "dockerd", "registry"}));
  const std::string password = testing::LocalRegistryCredentials(BATON_RUN_DIR).password;
  for (const std::string& secret : {data_dir_, std::string("/var/run/docker.sock"), std::string("127.0.0.1:5000"),
                                    password}) {
    EXPECT_EQ(r.body.find(secret), std::string::npos) << "the summary shows '" << secret << "'";
  }

  HttpResult admin = Get("/readyz", admin_);
  ASSERT_EQ(admin.status, 200) << admin.body;
  EXPECT_TRUE(CheckNamed(ParseOrNull(admin.body), "dockerd").contains("ms")) << admin.body;
  EXPECT_EQ(admin.body.find(password), std::string::npos);

  // Hostile or wrong callers get a 4xx and change nothing.
  HttpResult created = testing::HttpCall(server_->port(), "POST", "/api/v1/admin/tenants", R"({"id":"acme"})",
                                         {{"Authorization", "Bearer " + admin_}, {"Content-Type", "application/json"}});
  ASSERT_EQ(created.status, 201) << created.body;
  HttpResult key = testing::HttpCall(server_->port(), "POST", "/api/v1/admin/tenants/acme/keys", R"({"name":"k"})",
                                     {{"Authorization", "Bearer " + admin_}, {"Content-Type", "application/json"}});
  ASSERT_EQ(key.status, 201) << key.body;
  const std::string tenant_key = ParseOrNull(key.body).value("key", "");
  EXPECT_EQ(Get("/readyz", tenant_key).status, 403);
  EXPECT_EQ(Get("/readyz", "bk_forged_0000").status, 401);
  EXPECT_EQ(Get("/readyz", std::string(5000, 'x')).status, 401);
  EXPECT_EQ(Get("/readyz", "", "POST").status, 405);
  EXPECT_EQ(Get("/readyz", "", "DELETE").status, 405);
  EXPECT_EQ(Get("/readyz?verbose=true&details=1").body.find("detail"), std::string::npos);
  HttpResult instances = Get("/runtime/webhooks/durabletask/instances", admin_);
  ASSERT_EQ(instances.status, 200) << instances.body;
  for (const Json& i : ParseOrNull(instances.body)) {  // the store probe created nothing
    EXPECT_EQ(i.value("instanceId", "").find("readyz"), std::string::npos) << instances.body;
  }
  for (const auto& entry : std::filesystem::directory_iterator(data_dir_)) {
    EXPECT_EQ(entry.path().filename().string().rfind(".readyz", 0), std::string::npos) << entry.path();
  }
  EXPECT_EQ(Get("/healthz").status, 200);
}

TEST_F(TransientFaultReadyzTest, ADataDirBelowTheFreeSpaceThresholdIsNotReadyButAlive) {
  std::vector<std::string> args = RegistryArgs();
  args.insert(args.end(), {"--min-free-disk-mb", std::to_string(int64_t{1} << 40)});  // 1 EiB: never met
  Start(dir_.File("data"), args);
  HttpResult r = AwaitReadyz("notReady");
  EXPECT_EQ(r.status, 503) << r.body;
  Json j = ParseOrNull(r.body);
  EXPECT_EQ(CheckNamed(j, "disk").value("ok", true), false) << r.body;
  EXPECT_EQ(CheckNamed(j, "disk").value("reason", ""), "RESOURCE_EXHAUSTED") << r.body;
  EXPECT_EQ(CheckNamed(j, "store").value("ok", false), true) << r.body;
  EXPECT_EQ(Get("/healthz").status, 200);
}

// A real full disk: the data dir on a 48 MiB tmpfs of this test's own.
TEST_F(TransientFaultReadyzTest, AFullDiskMakesTheNodeNotReadyUntilSpaceIsFreed) {
  const std::string mount_point = dir_.File("tmpfs");
  std::filesystem::create_directories(mount_point);
  ASSERT_EQ(mount("baton-readyz", mount_point.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=48m,mode=0700"), 0)
      << "mount tmpfs: " << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mount_point};
  std::vector<std::string> args = RegistryArgs();
  args.insert(args.end(), {"--min-free-disk-mb", "4"});
  Start(mount_point + "/data", args);
  HttpResult r = AwaitReadyz("ready");
  ASSERT_EQ(r.status, 200) << r.body;

  // Fill the file system to the last byte.
  const std::string filler = mount_point + "/filler";
  {
    std::ofstream out(filler, std::ios::binary);
    std::string block(1 << 20, 'x');
    for (int i = 0; i < 64 && out; ++i) out.write(block.data(), block.size());  // more than 48 MiB: fails at the end
  }
  {
    std::ofstream out(mount_point + "/filler-bytes", std::ios::binary);
    for (int i = 0; i < 1 << 20 && out; ++i) out.put('x');
  }
  r = AwaitReadyz("notReady");
  EXPECT_EQ(r.status, 503) << r.body;
  Json full = ParseOrNull(r.body);
  EXPECT_EQ(CheckNamed(full, "disk").value("ok", true), false) << r.body;
  EXPECT_EQ(CheckNamed(full, "store").value("ok", true), false) << r.body;  // cannot write
  EXPECT_EQ(CheckNamed(full, "store").value("reason", ""), "RESOURCE_EXHAUSTED") << r.body;
  EXPECT_EQ(Get("/healthz").status, 200) << "healthz is liveness: the process still serves";

  std::filesystem::remove(filler);
  std::filesystem::remove(mount_point + "/filler-bytes");
  r = AwaitReadyz("ready");
  EXPECT_EQ(r.status, 200) << r.body;
  server_.reset();  // before the tmpfs goes
}

// The node's own dockerd and registry go away and come back; the shared
// ones are never touched.
class ReadyzOutageTest : public TransientFaultReadyzTest {
 protected:
  void TearDown() override {
    server_.reset();
    if (dockerd_) dockerd_->Remove().IgnoreError();
  }
  // TearDown stops the server before these go.
  std::unique_ptr<testing::PrivateNetns> netns_;
  std::unique_ptr<testing::PrivateDockerd> dockerd_;
  std::unique_ptr<testing::PrivateRegistry> registry_;
};

TEST_F(ReadyzOutageTest, ADockerdThatIsDownMakesTheNodeNotReadyButAlive) {
  netns_ = std::make_unique<testing::PrivateNetns>();
  ASSERT_TRUE(netns_->ok());
  dockerd_ = std::make_unique<testing::PrivateDockerd>(*netns_);
  BATON_ASSERT_OK(dockerd_->Start());
  Start(dir_.File("data"), {"--docker-socket", dockerd_->socket()});
  HttpResult r = AwaitReadyz("ready");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(CheckNamed(ParseOrNull(r.body), "dockerd").value("ok", false), true) << r.body;

  BATON_ASSERT_OK(dockerd_->Stop());
  r = AwaitReadyz("notReady");
  EXPECT_EQ(r.status, 503) << r.body;
  Json down = ParseOrNull(r.body);
  EXPECT_EQ(CheckNamed(down, "dockerd").value("ok", true), false) << r.body;
  EXPECT_EQ(CheckNamed(down, "dockerd").value("reason", ""), "UNAVAILABLE") << r.body;
  EXPECT_EQ(CheckNamed(down, "store").value("ok", false), true) << r.body;
  EXPECT_EQ(CheckNamed(down, "disk").value("ok", false), true) << r.body;
  EXPECT_EQ(r.body.find(dockerd_->socket()), std::string::npos) << "the summary names no path";
  HttpResult admin = Get("/readyz", admin_);
  EXPECT_EQ(admin.status, 503);
  EXPECT_FALSE(CheckNamed(ParseOrNull(admin.body), "dockerd").value("detail", "").empty()) << admin.body;
  EXPECT_EQ(Get("/healthz").status, 200) << "alive while dockerd is down";

  BATON_ASSERT_OK(dockerd_->Start());
  r = AwaitReadyz("ready");
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(ReadyzOutageTest, ARegistryThatIsDownMakesTheNodeNotReadyButAlive) {
  registry_ = std::make_unique<testing::PrivateRegistry>();
  BATON_ASSERT_OK(registry_->Start());
  Start(dir_.File("data"), {"--registry", registry_->host(), "--registry-user", "baton", "--registry-password-file",
                            registry_->password_file()});
  HttpResult r = AwaitReadyz("ready");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(CheckNamed(ParseOrNull(r.body), "registry").value("ok", false), true) << r.body;

  BATON_ASSERT_OK(registry_->Stop());
  r = AwaitReadyz("notReady");
  EXPECT_EQ(r.status, 503) << r.body;
  Json down = ParseOrNull(r.body);
  EXPECT_EQ(CheckNamed(down, "registry").value("ok", true), false) << r.body;
  EXPECT_EQ(CheckNamed(down, "dockerd").value("ok", false), true) << r.body;
  EXPECT_EQ(CheckNamed(down, "store").value("ok", false), true) << r.body;
  EXPECT_EQ(Get("/healthz").status, 200);

  BATON_ASSERT_OK(registry_->Start());
  r = AwaitReadyz("ready");
  EXPECT_EQ(r.status, 200) << r.body;
}

}  // namespace
}  // namespace baton
