// PostgreSQL crashes under load: two nodes (each a PostgresStore and a
// Worker) run 200 orchestrations of three activities; in the middle the
// server is restarted with `pg_ctl restart -m immediate` (no checkpoint, WAL
// replay at start). Every acknowledged start must survive, the nodes must
// reconnect (re-LISTEN, poll at once, read back commits whose connection
// broke) and every orchestration must complete exactly once with a
// well-formed history.
//
// The test restarts a cluster of its own, started by scripts/pg-up in a temp
// run dir, so the shared test cluster other tests use is never touched.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "baton/client.h"
#include "baton/postgres_store.h"
#include "baton/registry.h"
#include "baton/worker.h"
#include "testing/test_util.h"

namespace baton {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kInstances = 200;

// Runs `command` with the shell; its stdout, or nullopt when it failed.
std::optional<std::string> Run(const std::string& command) {
  std::array<char, 4096> buf;
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return std::nullopt;
  while (std::fgets(buf.data(), buf.size(), p) != nullptr) out += buf.data();
  if (pclose(p) != 0) return std::nullopt;
  return out;
}

// A private cluster: scripts/pg-up in a temp run dir; stopped and removed
// at the end (by pg_ctl, since a restart changes the postmaster's PID).
class PrivateCluster {
 public:
  PrivateCluster() {
    // The server runs as `postgres` when we are root: it must enter the dir.
    std::filesystem::permissions(dir_.path(), std::filesystem::perms::owner_all |
                                                  std::filesystem::perms::group_exec |
                                                  std::filesystem::perms::others_exec);
    env_ = "BATON_RUN_DIR='" + dir_.path() + "' BATON_PG_PORT=0 ";
    auto out = Run(env_ + BATON_SOURCE_DIR "/scripts/pg-up 2>/dev/null");
    if (!out || out->empty()) return;
    url_ = out->substr(0, out->find_last_not_of("\n") + 1);
    url_ = url_.substr(url_.find_last_of('\n') + 1);
  }
  ~PrivateCluster() {
    if (!url_.empty())
      Run(AsServer() + "/usr/lib/postgresql/15/bin/pg_ctl -D '" + DataDir() +
          "' stop -m fast >/dev/null 2>&1");
    Run(env_ + BATON_SOURCE_DIR "/scripts/pg-down >/dev/null 2>&1");
  }
  const std::string& url() const { return url_; }
  bool RestartImmediately() {
    return Run(AsServer() + "/usr/lib/postgresql/15/bin/pg_ctl -D '" + DataDir() +
               "' restart -m immediate -w -t 60 -l '" + dir_.path() +
               "/postgres.log' >/dev/null 2>&1")
        .has_value();
  }

 private:
  std::string DataDir() const { return dir_.path() + "/postgres/data"; }
  static std::string AsServer() { return getuid() == 0 ? "runuser -u postgres -- " : ""; }

  testing::TempDir dir_;
  std::string env_;
  std::string url_;
};

class Node {
 public:
  Node(const std::string& url, const Registry& registry) {
    PostgresStoreOptions options;
    options.url = url;
    options.lease_duration = seconds(5);  // a lost lease comes back soon
    auto store = OpenPostgresStore(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return;
    store_ = std::move(store).value();
    worker_ = std::make_unique<Worker>(*store_, registry);
    EXPECT_TRUE(worker_->Start().ok());
    client_ = std::make_unique<Client>(*store_);
  }
  ~Node() {
    if (worker_) worker_->Stop();
  }
  Client& client() { return *client_; }
  bool ok() const { return client_ != nullptr; }

 private:
  std::unique_ptr<Store> store_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Client> client_;
};

TEST(PostgresRestartTest,
     AnImmediateRestartUnderLoadLosesNothingAcknowledgedAndEverythingCompletes) {
  PrivateCluster cluster;
  ASSERT_FALSE(cluster.url().empty()) << "scripts/pg-up could not start a private cluster";
  Registry registry;
  ASSERT_TRUE(registry
                  .AddActivity("Step",
                               [](ActivityContext& ctx) -> Json {
                                 std::this_thread::sleep_for(milliseconds(2));
                                 return ctx.GetInput<int>() + 1;
                               })
                  .ok());
  ASSERT_TRUE(registry
                  .AddOrchestrator("ThreeSteps",
                                   [](OrchestrationContext& ctx) -> Task<Json> {
                                     int x = ctx.GetInput<int>();
                                     for (int i = 0; i < 3; ++i)
                                       x = co_await ctx.CallActivity<int>("Step", x);
                                     co_return x;
                                   })
                  .ok());
  Node a(cluster.url(), registry);
  Node b(cluster.url(), registry);
  ASSERT_TRUE(a.ok() && b.ok());

  std::vector<std::string> ids;
  for (int i = 0; i < kInstances; ++i) {
    ScheduleOptions options;
    options.instance_id = "r-" + std::to_string(i);
    auto id = (i % 2 ? a : b).client().ScheduleNewOrchestration("ThreeSteps", i * 10, options);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
    if (i == kInstances / 2) {
      // Half started (acknowledged), the first ones running: crash the server.
      ASSERT_TRUE(cluster.RestartImmediately());
    }
  }
  for (int i = 0; i < kInstances; ++i) {
    auto state = a.client().WaitForCompletion(ids[i], seconds(120), /*include_payloads=*/true);
    ASSERT_TRUE(state.ok()) << ids[i] << ": " << state.status().ToString();
    EXPECT_EQ(state->status, OrchestrationStatus::kCompleted) << ids[i];
    EXPECT_EQ(state->output, std::to_string(i * 10 + 3)) << ids[i];
    auto history = b.client().GetHistory(ids[i]);
    ASSERT_TRUE(history.ok());
    int started = 0, scheduled = 0, completed = 0, ended = 0;
    for (const HistoryEvent& e : *history) {
      started += std::holds_alternative<events::ExecutionStarted>(e.body);
      scheduled += std::holds_alternative<events::TaskScheduled>(e.body);
      completed += std::holds_alternative<events::TaskCompleted>(e.body);
      ended += std::holds_alternative<events::ExecutionCompleted>(e.body);
    }
    EXPECT_EQ(started, 1) << ids[i];
    EXPECT_EQ(scheduled, 3) << ids[i];
    EXPECT_EQ(completed, 3) << ids[i] << " (each result recorded once)";
    EXPECT_EQ(ended, 1) << ids[i];
  }
}

}  // namespace
}  // namespace baton
