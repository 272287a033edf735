// Batch jobs on many Baton nodes (docs/postgres.md): two `baton serve`
// processes on one PostgreSQL database (the test's own, from the cluster
// scripts/test starts) and one dockerd, each node SIGKILLed and restarted
// while 30 jobs of 3 tenants run. Whatever node runs an activity, handles a
// request or sees a container die, every job must end right, every attempt's
// container must start exactly once, and none may be left behind.
//
// No assertion is about timing; the figures are printed for the ctest log.
#include <random>

#include "e2e/job_fixture.h"
#include "store/postgres/pg_connection.h"
#include "testing/postgres_test_db.h"

namespace baton {
namespace {

using namespace std::chrono_literals;
using namespace e2e;
using testing::HttpResult;
using SteadyClock = std::chrono::steady_clock;

class PostgresJobsE2eTest : public JobServerTest {
 protected:
  void TearDown() override {
    for (auto& n : nodes_) n.reset();  // SIGKILL
    if (!deployment_.empty()) {
      runtime::RemoveOrphanGroups(*suite_.docker, {{"baton.deployment", deployment_}},
                                  [](const std::string&) { return false; })
          .status()
          .IgnoreError();
    }
  }

  // Starts node `i` (0 or 1) on the shared database with its own data dir.
  void StartNode(size_t i) {
    std::vector<std::string> args = {"--store", url_,
                                     "--registry", "127.0.0.1:5000",
                                     "--registry-user", "baton",
                                     "--registry-password-file", std::string(BATON_RUN_DIR) + "/registry/password",
                                     "--job-cpu", "2",
                                     "--job-memory-mb", "2048",
                                     "--reconcile-interval", "2"};
    nodes_[i] = std::make_unique<testing::ServerProcess>(BATON_BINARY, dir_.File("node" + std::to_string(i)), args);
    if (!nodes_[i]->admin_key().empty()) admin_ = nodes_[i]->admin_key();
  }

  HttpResult CallNode(size_t i, const std::string& bearer, const std::string& method, const std::string& target,
                      const std::string& body = "") {
    std::map<std::string, std::string> headers;
    if (!bearer.empty()) headers["Authorization"] = "Bearer " + bearer;
    if (!body.empty()) headers["Content-Type"] = "application/json";
    return testing::HttpCall(nodes_[i]->port(), method, target, body, headers);
  }

  // The deployment id the nodes share (the "deployment" key of the database).
  std::string Deployment() {
    auto c = pg::PgConnection::Connect(url_, "");
    if (!c.ok()) return "";
    auto r = (*c)->Exec("SELECT encode(key, 'escape') FROM platform_keys WHERE name = 'deployment'", "deployment");
    return r.ok() && r->rows() == 1 ? r->Text(0, 0) : "";
  }

  std::string url_;
  std::string deployment_;
  std::unique_ptr<testing::ServerProcess> nodes_[2];
};

TEST_F(PostgresJobsE2eTest, ThirtyJobsOfThreeTenantsOnTwoNodesSurviveEachNodesKill) {
  // `baton serve --store` takes a URL: the cluster's, naming the test's database.
  const std::string conninfo = testing::CreateTestDatabase();
  ASSERT_FALSE(conninfo.empty());
  const size_t at = conninfo.find("dbname='");
  ASSERT_NE(at, std::string::npos) << conninfo;
  const std::string dbname = conninfo.substr(at + 8, conninfo.find('\'', at + 8) - at - 8);
  url_ = testing::PostgresAdminUrl();
  const size_t slash = url_.find("/postgres?");
  ASSERT_NE(slash, std::string::npos) << url_;
  url_.replace(slash, 10, "/" + dbname + "?");
  const auto test_start = SteadyClock::now();
  StartNode(0);
  StartNode(1);
  ASSERT_FALSE(admin_.empty()) << "the first node prints the deployment's admin key";
  deployment_ = Deployment();
  ASSERT_FALSE(deployment_.empty());

  // Tenants made through node 0, used through both.
  const std::vector<std::string> tenants = {"alpha", "beta", "gamma"};
  std::map<std::string, std::string> keys;
  for (const std::string& t : tenants) {
    ASSERT_EQ(CallNode(0, admin_, "POST", "/api/v1/admin/tenants", Json{{"id", t}}.dump()).status, 201);
    ASSERT_EQ(CallNode(0, admin_, "PUT", "/api/v1/admin/tenants/" + t + "/quota", R"({"cpu":1,"weight":1})").status,
              200);
    ASSERT_EQ(CallNode(1, admin_, "PATCH", "/api/v1/admin/tenants/" + t + "/settings",
                       R"({"grants":{"imagePrefixes":["127.0.0.1:5000/baton-test/"]}})")
                  .status,
              200);
    HttpResult k = CallNode(1, admin_, "POST", "/api/v1/admin/tenants/" + t + "/keys", R"({"name":"e2e"})");
    ASSERT_EQ(k.status, 201) << k.body;
    keys[t] = ParseOrNull(k.body).value("key", "");
  }

  // Docker's "start" events of the deployment's containers, by container id.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, int> starts;
  std::set<std::string> seen;
  std::thread watcher([&] {
    const auto deadline = SteadyClock::now() + 400s;
    TimePoint from = std::chrono::system_clock::now() - 1s;
    while (!stop && SteadyClock::now() < deadline) {
      Status s = suite_.docker->WatchEvents(
          {{"baton.deployment", deployment_}},
          [&](const runtime::ContainerEvent& e) {
            std::lock_guard lock(mu);
            const std::string key = e.container_id + "/" + e.action + "/" + std::to_string(ToUnixMicros(e.time));
            if (seen.insert(key).second && e.action == "start") ++starts[e.container_id];
            from = std::max(from, e.time);
            return true;
          },
          1s, from);
      if (!s.ok()) std::this_thread::sleep_for(100ms);
    }
  });

  // 30 jobs, submitted to either node in turn.
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> sleep_seconds(1, 2);
  std::vector<Submitted> jobs;
  std::map<std::string, size_t> submitted_on;
  for (int i = 0; i < 10; ++i) {
    for (const std::string& t : tenants) {
      const size_t node = jobs.size() % 2;
      HttpResult r = CallNode(node, keys[t], "POST", "/api/v1/jobs",
                              Spec(t + "-" + std::to_string(i), {"sleep", std::to_string(sleep_seconds(rng))}).dump());
      ASSERT_EQ(r.status, 202) << r.body;
      const std::string id = ParseOrNull(r.body).value("id", "");
      jobs.push_back({t, id});
      submitted_on[id] = node;
    }
  }

  // Node 1 dies and comes back, then node 0 (the first reconciler, most likely).
  std::uniform_int_distribution<int> gap_ms(800, 2500);
  std::vector<double> kill_times;
  for (size_t victim : {size_t{1}, size_t{0}}) {
    std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms(rng)));
    kill_times.push_back(SecondsSince(test_start));
    nodes_[victim]->Kill();
    nodes_[victim].reset();
    StartNode(victim);
  }

  // Every job, read through the node it was not submitted to.
  std::map<std::string, Json> ended;
  PollUntil(
      [&] {
        for (const Submitted& j : jobs) {
          if (ended.count(j.id)) continue;
          HttpResult r = CallNode(1 - submitted_on[j.id], keys[j.tenant], "GET", "/api/v1/jobs/" + j.id);
          Json v = r.status == 200 ? ParseOrNull(r.body) : Json();
          if (v.is_object() && IsEnded(v.value("status", ""))) ended[j.id] = v;
        }
        return ended.size() == jobs.size();
      },
      300s, 500ms);
  const double all_ended = SecondsSince(test_start);
  auto deployment_containers = [&] {
    auto list = suite_.docker->ListByLabels({{"baton.deployment", deployment_}});
    return list.ok() ? list->size() : size_t{999};
  };
  const bool none_left = PollUntil([&] { return deployment_containers() == 0; }, 60s, 500ms);
  stop = true;
  watcher.join();

  int completed = 0, attempts = 0;
  for (const Submitted& j : jobs) {
    const Json& v = ended[j.id];
    EXPECT_EQ(v.value("status", ""), "Completed") << j.tenant << " " << j.id << ": " << v.dump();
    completed += v.value("status", "") == "Completed";
    attempts += v.contains("result") && v["result"].is_object() ? v["result"].value("attempts", 0) : 0;
  }
  int twice = 0;
  {
    std::lock_guard lock(mu);
    for (const auto& [id, n] : starts) twice += n > 1;
  }
  EXPECT_EQ(twice, 0) << "a container was started more than once";
  EXPECT_EQ(static_cast<int>(starts.size()), attempts) << "one container start per attempt";
  EXPECT_TRUE(none_left) << deployment_containers() << " containers left";
  std::printf(
      "two nodes: %zu jobs, %d Completed, %d attempts, %zu containers started (%d more than once); kills at %.1f s "
      "and %.1f s; all ended at %.1f s; %zu containers left\n",
      jobs.size(), completed, attempts, starts.size(), twice, kill_times[0], kill_times[1], all_ended,
      deployment_containers());
}

}  // namespace
}  // namespace baton
