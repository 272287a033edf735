// PostgreSQL crashes under load: two nodes (each a PostgresStore and a
// Worker) run 200 orchestrations of three activities; in the middle the
// server is restarted with `pg_ctl restart -m immediate` (no checkpoint, WAL
// replay at start). Every acknowledged start must survive, the nodes must
// reconnect (re-LISTEN, poll at once, read back commits whose connection
// broke) and every orchestration must complete exactly once with a
// well-formed history.
//
// The test restarts a cluster of its own (testing/private_pg_cluster.h), so
// the shared test cluster other tests use is never touched.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "baton/client.h"
#include "baton/postgres_store.h"
#include "baton/registry.h"
#include "baton/worker.h"
#include "testing/private_pg_cluster.h"
#include "testing/test_util.h"

namespace baton {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kInstances = 200;

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
  testing::PrivatePgCluster cluster(BATON_SOURCE_DIR);
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
