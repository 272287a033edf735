// Every `baton` client verb against a real `baton serve`: output, JSON output,
// and exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "testing/server_process.h"
#include "testing/test_util.h"

namespace baton {
namespace {

using Json = nlohmann::json;

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `baton ARGS...` with BATON_SERVER/BATON_KEY set, capturing its output.
CliResult RunCli(const std::string& server, const std::string& key, std::vector<std::string> args) {
  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    close(out_pipe[0]);
    close(err_pipe[0]);
    setenv("BATON_SERVER", server.c_str(), 1);
    if (key.empty()) {
      unsetenv("BATON_KEY");
    } else {
      setenv("BATON_KEY", key.c_str(), 1);
    }
    std::vector<char*> argv;
    std::string binary = BATON_BINARY;
    argv.push_back(binary.data());
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  CliResult r;
  // Outputs are small: read stdout then stderr (each fits a pipe buffer).
  char buf[4096];
  ssize_t n;
  while ((n = read(out_pipe[0], buf, sizeof buf)) > 0) r.out.append(buf, n);
  while ((n = read(err_pipe[0], buf, sizeof buf)) > 0) r.err.append(buf, n);
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<testing::ServerProcess>(BATON_BINARY, dir_.File("data"));
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
    admin_ = server_->admin_key();
  }
  CliResult Admin(std::vector<std::string> args) { return RunCli(url_, admin_, std::move(args)); }
  CliResult As(const std::string& key, std::vector<std::string> args) { return RunCli(url_, key, std::move(args)); }

  // Creates tenant `id` and returns a key for it.
  std::string TenantKey(const std::string& id) {
    CliResult t = Admin({"tenant", "create", id});
    EXPECT_EQ(t.exit_code, 0) << t.err;
    CliResult k = Admin({"key", "create", "--tenant", id, "--name", "test", "--output", "json"});
    EXPECT_EQ(k.exit_code, 0) << k.err;
    return Json::parse(k.out)["key"].get<std::string>();
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::string url_, admin_;
};

TEST_F(CliTest, TenantAndKeyVerbs) {
  CliResult created = Admin({"tenant", "create", "acme", "--display-name", "ACME Corp"});
  EXPECT_EQ(created.exit_code, 0) << created.err;
  EXPECT_EQ(Admin({"tenant", "create", "acme"}).exit_code, 4);        // 409
  EXPECT_EQ(Admin({"tenant", "create", "Bad Id"}).exit_code, 6);      // 400
  CliResult list = Admin({"tenant", "list"});
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_NE(list.out.find("ACME Corp"), std::string::npos) << list.out;
  CliResult json = Admin({"tenant", "list", "--output", "json"});
  ASSERT_EQ(json.exit_code, 0);
  EXPECT_EQ(Json::parse(json.out)[0]["id"], "acme");

  CliResult key = Admin({"key", "create", "--tenant", "acme", "--name", "ci"});
  EXPECT_EQ(key.exit_code, 0) << key.err;
  EXPECT_NE(key.out.find("bk_"), std::string::npos);  // shown once
  CliResult keys = Admin({"key", "list", "--tenant", "acme", "--output", "json"});
  ASSERT_EQ(keys.exit_code, 0);
  Json key_list = Json::parse(keys.out);
  ASSERT_EQ(key_list.size(), 1u);
  std::string key_id = key_list[0]["keyId"];
  EXPECT_EQ(Admin({"key", "list", "--tenant", "nobody"}).exit_code, 3);
  EXPECT_EQ(Admin({"key", "revoke", key_id}).exit_code, 0);
  EXPECT_EQ(Admin({"key", "revoke", "ffffffffffff"}).exit_code, 3);
  CliResult admin_key = Admin({"key", "create", "--admin", "--name", "ops", "--output", "json"});
  ASSERT_EQ(admin_key.exit_code, 0) << admin_key.err;
  EXPECT_EQ(As(Json::parse(admin_key.out)["key"], {"tenant", "list"}).exit_code, 0);

  EXPECT_EQ(Admin({"tenant", "disable", "acme"}).exit_code, 0);
  EXPECT_EQ(Admin({"tenant", "disable", "nobody"}).exit_code, 3);
  EXPECT_EQ(Admin({"key", "create", "--tenant", "acme"}).exit_code, 4);  // 412: disabled
}

TEST_F(CliTest, NodesAndWorkersVerbs) {
  CliResult nodes = Admin({"nodes"});
  ASSERT_EQ(nodes.exit_code, 0) << nodes.err;
  // The one node of a SQLite server: this process, up, doing everything.
  EXPECT_NE(nodes.out.find(":" + std::to_string(server_->pid()) + " *"), std::string::npos) << nodes.out;
  EXPECT_NE(nodes.out.find(" up "), std::string::npos) << nodes.out;
  EXPECT_NE(nodes.out.find("api,worker,jobs,sidecar"), std::string::npos) << nodes.out;
  CliResult json = Admin({"nodes", "--output", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  Json answer = Json::parse(json.out);
  ASSERT_EQ(answer["nodes"].size(), 1u);
  EXPECT_EQ(answer["nodes"][0]["id"], answer["thisNode"]);
  EXPECT_EQ(answer["nodes"][0]["version"], "0.1.0");
  EXPECT_EQ(answer["nodes"][0]["leases"]["instances"], 0);
  CliResult gone = Admin({"nodes", "--state", "gone", "--output", "json"});
  ASSERT_EQ(gone.exit_code, 0) << gone.err;
  EXPECT_TRUE(Json::parse(gone.out)["nodes"].empty());
  EXPECT_EQ(Admin({"nodes", "--state", "sideways"}).exit_code, 2);

  CliResult workers = Admin({"workers"});
  ASSERT_EQ(workers.exit_code, 0) << workers.err;
  EXPECT_NE(workers.out.find("TASK HUB"), std::string::npos) << workers.out;
  EXPECT_EQ(Admin({"workers", "--hub", "Not A Tenant"}).exit_code, 6);  // 400

  // A tenant key may not see the deployment.
  const std::string key = TenantKey("acme");
  EXPECT_EQ(As(key, {"nodes"}).exit_code, 5);
  EXPECT_EQ(As(key, {"workers"}).exit_code, 5);
}

TEST_F(CliTest, InstanceVerbs) {
  std::string key = TenantKey("acme");
  CliResult started = As(key, {"instance", "start", "HelloCities", "c1", "--input", R"(["Lyon"])", "--wait", "60"});
  EXPECT_EQ(started.exit_code, 0) << started.err;
  EXPECT_NE(started.out.find("Completed"), std::string::npos) << started.out;
  EXPECT_NE(started.out.find("Hello, Lyon!"), std::string::npos) << started.out;
  EXPECT_EQ(As(key, {"instance", "start", "HelloCities", "c1", "--input", "[]"}).exit_code, 4);  // 409
  EXPECT_EQ(As(key, {"instance", "start", "NoSuchOrchestrator"}).exit_code, 6);                 // 400
  EXPECT_EQ(As(key, {"instance", "start", "HelloCities", "--input", "{not json"}).exit_code, 2);
  EXPECT_EQ(As(key, {"instance", "start", "FailWith", "f1", "--input", R"("no")", "--wait", "60"}).exit_code, 7);
  EXPECT_EQ(As(key, {"instance", "rewind", "f1", "--reason", "try again"}).exit_code, 0);
  EXPECT_EQ(As(key, {"instance", "rewind", "c1"}).exit_code, 4);  // 412: not Failed
  EXPECT_EQ(As(key, {"instance", "rewind", "missing"}).exit_code, 3);

  CliResult status = As(key, {"instance", "status", "c1", "--history"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("TaskScheduled"), std::string::npos) << status.out;
  CliResult status_json = As(key, {"instance", "status", "c1", "--output", "json"});
  ASSERT_EQ(status_json.exit_code, 0);
  EXPECT_EQ(Json::parse(status_json.out)["runtimeStatus"], "Completed");
  EXPECT_EQ(As(key, {"instance", "status", "missing"}).exit_code, 3);
  CliResult history = As(key, {"instance", "history", "c1", "--output", "json"});
  ASSERT_EQ(history.exit_code, 0);
  EXPECT_GE(Json::parse(history.out).size(), 8u);

  // Events, suspend and resume, terminate.
  ASSERT_EQ(As(key, {"instance", "start", "AwaitApproval", "w1"}).exit_code, 0);
  ASSERT_EQ(As(key, {"instance", "start", "AwaitApproval", "w2"}).exit_code, 0);
  EXPECT_EQ(As(key, {"instance", "suspend", "w1", "--reason", "lunch"}).exit_code, 0);
  EXPECT_EQ(As(key, {"instance", "raise", "w1", "approve", "--data", R"({"ok":true})"}).exit_code, 0);
  EXPECT_EQ(As(key, {"instance", "resume", "w1"}).exit_code, 0);
  ASSERT_TRUE(testing::Eventually([&] {
    CliResult r = As(key, {"instance", "status", "w1", "--output", "json"});
    return r.exit_code == 0 && Json::parse(r.out)["runtimeStatus"] == "Completed";
  }));
  EXPECT_EQ(As(key, {"instance", "raise", "w1", "approve"}).exit_code, 4);  // 410: finished
  EXPECT_EQ(As(key, {"instance", "raise", "missing", "approve"}).exit_code, 3);
  EXPECT_EQ(As(key, {"instance", "terminate", "w2", "--reason", "enough"}).exit_code, 0);
  ASSERT_TRUE(testing::Eventually([&] {
    CliResult r = As(key, {"instance", "status", "w2", "--output", "json"});
    return r.exit_code == 0 && Json::parse(r.out)["runtimeStatus"] == "Terminated";
  }));
  EXPECT_EQ(As(key, {"instance", "terminate", "w2"}).exit_code, 4);
  EXPECT_EQ(As(key, {"instance", "suspend", "missing"}).exit_code, 3);
  EXPECT_EQ(As(key, {"instance", "resume", "missing"}).exit_code, 3);

  // Restart under a new id and the same one.
  CliResult restarted = As(key, {"instance", "restart", "c1", "--new-id", "--output", "json"});
  EXPECT_EQ(restarted.exit_code, 0) << restarted.err;
  EXPECT_NE(Json::parse(restarted.out)["id"], "c1");
  EXPECT_EQ(As(key, {"instance", "restart", "c1"}).exit_code, 0);
  EXPECT_EQ(As(key, {"instance", "restart", "missing"}).exit_code, 3);

  // List with filters and every page.
  CliResult list = As(key, {"instance", "list", "--all", "--output", "json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_GE(Json::parse(list.out).size(), 5u);
  CliResult terminated = As(key, {"instance", "list", "--status", "terminated", "--output", "json"});
  ASSERT_EQ(terminated.exit_code, 0) << terminated.err;
  ASSERT_EQ(Json::parse(terminated.out).size(), 1u);
  CliResult table = As(key, {"instance", "list", "--prefix", "w", "--top", "1", "--all"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("w1"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("w2"), std::string::npos) << table.out;
  EXPECT_EQ(As(key, {"instance", "list", "--status", "sleeping"}).exit_code, 2);

  // Purge one, then by filter.
  ASSERT_EQ(As(key, {"instance", "start", "AwaitApproval", "w3"}).exit_code, 0);
  ASSERT_TRUE(testing::Eventually([&] {
    CliResult r = As(key, {"instance", "status", "w3", "--output", "json"});
    return r.exit_code == 0 && Json::parse(r.out)["runtimeStatus"] == "Running";
  }));
  EXPECT_EQ(As(key, {"instance", "purge", "w3"}).exit_code, 4);  // 412: running
  EXPECT_EQ(As(key, {"instance", "purge", "w1"}).exit_code, 0);
  EXPECT_EQ(As(key, {"instance", "purge", "w1"}).exit_code, 3);
  EXPECT_EQ(As(key, {"instance", "purge", "--created-from", "2020-01-01T00:00:00Z", "--yes"}).exit_code, 0);
  EXPECT_EQ(As(key, {"instance", "purge", "--created-from", "2020-01-01T00:00:00Z", "--yes"}).exit_code, 3);
}

TEST_F(CliTest, JobSubmitPrintsTheIdAloneOnStdoutSoThatScriptsCanKeepIt) {
  std::string key = TenantKey("acme");
  // This server has no registry: the image's prefix is granted instead.
  CliResult granted = Admin({"tenant", "settings", "acme", "--image-prefixes", "127.0.0.1:5000/acme/"});
  ASSERT_EQ(granted.exit_code, 0) << granted.err;
  // ID=$(baton job submit …) keeps exactly the id; the status goes to stderr.
  CliResult submitted = As(key, {"job", "submit", "--image", "127.0.0.1:5000/acme/never-pulled:1", "--cpu",
                                 "0.1", "--memory", "16", "--name", "cli-id"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  ASSERT_FALSE(submitted.out.empty());
  EXPECT_EQ(submitted.out.find('\n'), submitted.out.size() - 1) << "one line: " << submitted.out;
  const std::string id = submitted.out.substr(0, submitted.out.size() - 1);
  EXPECT_NE(submitted.err.find("status: "), std::string::npos) << submitted.err;
  CliResult got = As(key, {"job", "get", id, "--output", "json"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_EQ(Json::parse(got.out)["id"], id);
}

TEST_F(CliTest, EntityVerbs) {
  std::string key = TenantKey("acme");
  EXPECT_EQ(As(key, {"entity", "get", "Counter", "c1"}).exit_code, 3);
  EXPECT_EQ(As(key, {"entity", "signal", "Counter", "c1", "add", "--input", "4"}).exit_code, 0);
  EXPECT_EQ(As(key, {"entity", "signal", "Counter", "c2", "add", "--input", "1"}).exit_code, 0);
  EXPECT_EQ(As(key, {"entity", "signal", "Counter", "c1", "add", "--input", "{oops"}).exit_code, 2);
  ASSERT_TRUE(testing::Eventually([&] {
    CliResult r = As(key, {"entity", "get", "Counter", "c1", "--output", "json"});
    return r.exit_code == 0 && Json::parse(r.out) == 4;
  }));
  ASSERT_TRUE(testing::Eventually([&] { return As(key, {"entity", "get", "Counter", "c2"}).exit_code == 0; }));
  CliResult list = As(key, {"entity", "list", "Counter", "--state", "--output", "json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(Json::parse(list.out).size(), 2u);
  CliResult table = As(key, {"entity", "list", "Counter", "--state"});
  EXPECT_NE(table.out.find("c2"), std::string::npos) << table.out;
  EXPECT_EQ(As(key, {"entity", "signal", "Counter", "c2", "delete"}).exit_code, 0);
  ASSERT_TRUE(testing::Eventually([&] { return As(key, {"entity", "get", "Counter", "c2"}).exit_code == 3; }));
  CliResult clean = As(key, {"entity", "clean", "--output", "json"});
  ASSERT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_EQ(Json::parse(clean.out)["emptyEntitiesRemoved"], 1);
}

TEST_F(CliTest, AuthenticationAndConnectionErrors) {
  EXPECT_EQ(RunCli(url_, "", {"instance", "list"}).exit_code, 5);
  EXPECT_EQ(RunCli(url_, "bk_000000000000_" + std::string(48, '0'), {"instance", "list"}).exit_code, 5);
  std::string key = TenantKey("acme");
  EXPECT_EQ(As(key, {"tenant", "list"}).exit_code, 5);  // 403: not an admin key
  // Nobody listens there: a clear error, exit 1, quickly.
  CliResult down = RunCli("http://127.0.0.1:1", admin_, {"tenant", "list"});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.err.find("cannot reach Baton"), std::string::npos) << down.err;
  EXPECT_EQ(RunCli("https://127.0.0.1:1", admin_, {"tenant", "list"}).exit_code, 2);
}

TEST_F(CliTest, EveryVerbHasHelp) {
  const std::vector<std::vector<std::string>> verbs = {
      {"instance", "start"},   {"instance", "status"},    {"instance", "list"},   {"instance", "raise"},
      {"instance", "terminate"}, {"instance", "suspend"}, {"instance", "resume"}, {"instance", "rewind"}, {"instance", "restart"},
      {"instance", "purge"},   {"instance", "history"},   {"tenant", "create"},   {"tenant", "list"},
      {"tenant", "disable"},   {"key", "create"},         {"key", "list"},        {"key", "revoke"},
      {"entity", "get"},       {"entity", "signal"},      {"entity", "list"},     {"entity", "clean"},
      {"serve"},               {"demo"}};
  for (auto verb : verbs) {
    std::string label;
    for (const auto& w : verb) label += w + " ";
    verb.push_back("--help");
    CliResult r = RunCli(url_, "", verb);
    EXPECT_EQ(r.exit_code, 0) << label;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << label << ": " << r.out;
  }
}

}  // namespace
}  // namespace baton
