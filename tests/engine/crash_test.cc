// Crash safety with node processes (tests/engine/crash_worker_main.cc)
// SIGKILLed at random moments and restarted:
//   - CrashTest: one worker on a SQLite task hub, 500 orchestrations of 5
//     activities;
//   - PostgresCrashTest (issue 12, "Must show" 3): three nodes on one
//     PostgreSQL database, 500 orchestrations of 5 activities and 50 entity
//     critical sections (transfers between accounts), one node at a time
//     SIGKILLed 5 times and restarted.
// In the end every orchestration has completed exactly once with the right
// output and a well-formed history, and (PostgreSQL) the accounts' total is
// conserved and no entity is left locked. The tests print their counts and
// the longest stall.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>
#include <thread>
#include <atomic>

#include "baton/client.h"
#include "baton/entity.h"
#include "baton/postgres_store.h"
#include "baton/sqlite_store.h"
#include "store/postgres/pg_connection.h"
#include "testing/crash_nodes.h"
#include "testing/postgres_test_db.h"
#include "testing/test_util.h"

namespace baton {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::NodeProcess;

constexpr int kInstances = 500;
constexpr int kKills = 4;

bool KilledBySigkill(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }

// How often each activity (instance, task id) ran; how many runs repeated one.
struct ActivityCounts {
  std::map<std::string, int> runs;
  int repeated = 0;
  std::vector<int64_t> micros;
};
ActivityCounts CountActivities(const std::string& log) {
  ActivityCounts c;
  for (const testing::ActivityRun& run : testing::ReadActivityLog(log)) {
    if (++c.runs[run.key] > 1) ++c.repeated;
    c.micros.push_back(run.micros);
  }
  return c;
}

TEST(CrashTest, EveryOrchestrationCompletesExactlyOnceAcrossSigkills) {
  testing::TempDir dir;
  const std::string db = dir.File("hub.db");
  const std::string log = dir.File("activities.log");
  {
    SqliteStoreOptions options;
    options.path = db;
    auto store = OpenSqliteStore(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    Client client(**store);
    for (int i = 0; i < kInstances; ++i) {
      ScheduleOptions o;
      o.instance_id = "crash-" + std::to_string(i);
      ASSERT_TRUE(client.ScheduleNewOrchestration("Five", i * 10, o).ok());
    }
  }

  std::random_device rd;
  const unsigned seed = rd();
  std::mt19937 rng(seed);
  // Each kill lands mid-run: after the worker has executed a random number of
  // further activities (read from the size of the activity log).
  std::uniform_int_distribution<int> more_activities(100, 500);
  std::printf("crash test: seed %u\n", seed);
  auto worker = [&](bool exit_when_idle) {
    std::vector<std::string> args = {BATON_CRASH_WORKER, "--db", db, "--log", log};
    if (exit_when_idle) args.push_back("--exit-when-idle");
    return std::make_unique<NodeProcess>(args);
  };
  for (int k = 0; k < kKills; ++k) {
    const size_t target = testing::CountLines(log) + more_activities(rng);
    auto node = worker(/*exit_when_idle=*/false);
    ASSERT_GT(node->pid(), 0);
    ASSERT_TRUE(testing::Eventually([&] { return testing::CountLines(log) >= target; }, seconds(60)))
        << "the worker made no progress";
    const int status = node->KillAndWait(SIGKILL);
    ASSERT_TRUE(KilledBySigkill(status))
        << "the worker exited before it was killed (status " << status << ")";
    std::printf("crash test: SIGKILL #%d after %zu activity executions in all\n", k + 1,
                testing::CountLines(log));
  }
  auto last = worker(/*exit_when_idle=*/true);
  const int status = last->Wait();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "final worker status " << status;

  SqliteStoreOptions options;
  options.path = db;
  auto store = OpenSqliteStore(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Client client(**store);
  int completed = 0;
  for (int i = 0; i < kInstances; ++i) {
    std::string id = "crash-" + std::to_string(i);
    auto state = client.GetState(id);
    ASSERT_TRUE(state.ok()) << id;
    ASSERT_EQ(state->status, OrchestrationStatus::kCompleted) << id;
    EXPECT_EQ(FromPayload(state->output), i * 10 + 5) << id;
    auto history = client.GetHistory(id);
    ASSERT_TRUE(history.ok());
    EXPECT_EQ(testing::HistoryProblem(*history), "") << id;
    ++completed;
  }

  ActivityCounts activities = CountActivities(log);
  EXPECT_EQ(activities.runs.size(), static_cast<size_t>(kInstances * 5));
  std::printf("crash test: %d kills, %d/%d orchestrations completed once, %zu activity calls, "
              "%d executions repeated after a kill\n",
              kKills, completed, kInstances, activities.runs.size(), activities.repeated);
}

// ---- Three nodes on PostgreSQL ----

constexpr int kFives = 500;
constexpr int kTransfers = 50;
constexpr int kNodes = 3;
constexpr int kPgKills = 5;
constexpr int kLeaseMs = 15000;  // the default
constexpr int64_t kOpening = 1000;  // each account's balance before the transfers
const std::vector<std::string> kAccounts = {"a", "b", "c", "d"};

TEST(PostgresCrashTest, ThreeNodesOneSigkilledRepeatedlyLoseNothingAndRunNothingTwice) {
  const std::string url = testing::CreateTestDatabase();
  ASSERT_FALSE(url.empty());
  testing::TempDir dir;
  const std::string log = dir.File("activities.log");
  PostgresStoreOptions options;
  options.url = url;
  options.release_gone_nodes = false;
  auto store = OpenPostgresStore(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Client client(**store);

  std::random_device rd;
  const unsigned seed = rd();
  std::mt19937 rng(seed);
  std::printf("postgres crash test: seed %u\n", seed);
  // Every start is acknowledged before the nodes run: none may be lost.
  for (const std::string& account : kAccounts) {
    ASSERT_TRUE(client.SignalEntity(EntityId("Account", account), "deposit", kOpening).ok());
  }
  std::vector<std::string> ids;
  for (int i = 0; i < kFives + kTransfers; ++i) {
    ScheduleOptions o;
    Result<std::string> id = InternalError("unset");
    if (i % 11 == 10) {  // the transfers spread over the run
      const size_t from = rng() % kAccounts.size();
      const size_t to = (from + 1 + rng() % (kAccounts.size() - 1)) % kAccounts.size();
      o.instance_id = "transfer-" + std::to_string(i);
      Json input = {{"from", kAccounts[from]},
                    {"to", kAccounts[to]},
                    {"amount", static_cast<int>(rng() % 100) + 1}};
      id = client.ScheduleNewOrchestration("Transfer", input, o);
    } else {
      o.instance_id = "five-" + std::to_string(i);
      id = client.ScheduleNewOrchestration("Five", i * 10, o);
    }
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
  }
  ASSERT_EQ(ids.size(), static_cast<size_t>(kFives + kTransfers));

  int generation = 0;
  auto start_node = [&](int n) {
    return std::make_unique<NodeProcess>(std::vector<std::string>{
        BATON_CRASH_WORKER, "--store", url, "--log", log, "--node",
        "node" + std::to_string(n) + "." + std::to_string(generation++), "--lease-ms",
        std::to_string(kLeaseMs), "--no-release-gone-nodes"});
  };
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<NodeProcess>> nodes;
  for (int n = 0; n < kNodes; ++n) nodes.push_back(start_node(n));

  // The kills land at random points of the run: after a random number of
  // activity executions in all (2,500 at least), spaced out.
  std::set<int> points;
  while (points.size() < static_cast<size_t>(kPgKills)) {
    const int p = 150 + static_cast<int>(rng() % 2000);
    bool spaced = true;
    for (int q : points) spaced = spaced && std::abs(p - q) >= 100;
    if (spaced) points.insert(p);
  }
  int k = 0;
  std::vector<int64_t> kill_micros;
  for (int point : points) {
    ASSERT_TRUE(testing::Eventually(
        [&] { return testing::CountLines(log) >= static_cast<size_t>(point); }, seconds(90)))
        << "the nodes made no progress";
    const int victim = static_cast<int>(rng() % kNodes);
    kill_micros.push_back(ToUnixMicros(std::chrono::system_clock::now()));
    const int status = nodes[victim]->KillAndWait(SIGKILL);
    ASSERT_TRUE(KilledBySigkill(status)) << "node " << victim << " had exited (status " << status
                                         << ")";
    std::printf("postgres crash test: SIGKILL #%d of node %d after %zu activity executions\n",
                ++k, victim, testing::CountLines(log));
    nodes[victim] = start_node(victim);  // restarted at once
  }

  std::atomic<bool> diag_stop{false};
  std::thread diag([&] {
    auto conn = pg::PgConnection::Connect(url, "");
    if (!conn.ok()) return;
    while (!diag_stop) {
      auto r = (*conn)->Exec(
          "SELECT (SELECT count(*) FROM activity_tasks) AS tasks,"
          " (SELECT count(*) FROM activity_tasks WHERE due_at <= baton_now()) AS tasks_due,"
          " (SELECT string_agg(locked_by || ':' || n, ',') FROM (SELECT locked_by, count(*) n FROM activity_tasks WHERE locked_until > baton_now() GROUP BY 1) x) AS task_leases,"
          " (SELECT count(*) FROM instance_queue WHERE ready_at IS NOT NULL) AS inst_ready,"
          " (SELECT count(*) FROM instance_queue WHERE due_at <= baton_now()) AS inst_due,"
          " (SELECT string_agg(locked_by || ':' || n, ',') FROM (SELECT locked_by, count(*) n FROM instance_queue WHERE locked_until > baton_now() GROUP BY 1) x) AS inst_leases,"
          " (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()) AS sessions",
          "diag");
      if (r.ok()) {
        std::printf("diag %lld tasks=%s due=%s leases=[%s] inst_ready=%s due=%s leases=[%s] sessions=%s lines=%zu\n",
                    (long long)(ToUnixMicros(std::chrono::system_clock::now()) / 1000 % 100000),
                    r->Text(0, 0).c_str(), r->Text(0, 1).c_str(), r->Text(0, 2).c_str(), r->Text(0, 3).c_str(),
                    r->Text(0, 4).c_str(), r->Text(0, 5).c_str(), r->Text(0, 6).c_str(), testing::CountLines(log));
      }
      std::this_thread::sleep_for(milliseconds(200));
    }
  });
  // Everything completes (a hang guard, not a timed assertion).
  const auto deadline = std::chrono::steady_clock::now() + seconds(240);
  for (const std::string& id : ids) {
    const auto left = std::chrono::duration_cast<milliseconds>(
        std::max(deadline - std::chrono::steady_clock::now(),
                 std::chrono::steady_clock::duration(milliseconds(1))));
    auto state = client.WaitForCompletion(id, left);
    ASSERT_TRUE(state.ok()) << id << " was lost or stuck: " << state.status().ToString();
  }
  diag_stop = true;
  diag.join();
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  for (auto& node : nodes) {
    const int status = node->KillAndWait(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "graceful stop: " << status;
  }

  int completed = 0, completions = 0, consistent = 0;
  std::vector<int64_t> completed_at;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& id = ids[i];
    auto state = client.GetState(id);
    ASSERT_TRUE(state.ok()) << id;
    ASSERT_EQ(state->status, OrchestrationStatus::kCompleted) << id;
    if (state->completed_at) completed_at.push_back(ToUnixMicros(*state->completed_at));
    if (id.starts_with("five-")) {
      EXPECT_EQ(FromPayload(state->output), static_cast<int>(i) * 10 + 5) << id;
    } else {
      const Json out = FromPayload(state->output);
      consistent += out.is_object() && out.value("consistent", false) ? 1 : 0;
    }
    auto history = client.GetHistory(id);
    ASSERT_TRUE(history.ok()) << id;
    EXPECT_EQ(testing::HistoryProblem(*history), "") << id;
    for (const HistoryEvent& e : *history) {
      completions += std::holds_alternative<events::ExecutionCompleted>(e.body) ? 1 : 0;
    }
    ++completed;
  }
  EXPECT_EQ(completions, completed) << "an orchestration completed twice";
  EXPECT_EQ(consistent, kTransfers) << "a critical section interleaved with another";

  int64_t total = 0;
  int locked = 0;
  for (const std::string& account : kAccounts) {
    auto entity = client.GetEntity(EntityId("Account", account));
    ASSERT_TRUE(entity.ok()) << account << ": " << entity.status().ToString();
    const Json state = FromPayload(entity->state);
    total += state.is_object() ? state.value("balance", int64_t{0}) : 0;
    if (!entity->locked_by.empty() || entity->backlog != 0) ++locked;
    EXPECT_EQ(entity->locked_by, "") << account << " is left locked";
    EXPECT_EQ(entity->backlog, 0) << account;
  }
  EXPECT_EQ(total, kOpening * static_cast<int64_t>(kAccounts.size())) << "money was made or lost";

  ActivityCounts activities = CountActivities(log);
  EXPECT_EQ(activities.runs.size(), static_cast<size_t>(kFives * 5));
  for (const auto& [key, runs] : activities.runs) {
    EXPECT_TRUE(key.starts_with("five-")) << key;
  }
  std::printf(
      "postgres crash test: %d nodes, %d SIGKILLs: %d/%zu orchestrations completed "
      "(%d x 5 activities, %d transfers), 0 lost, %d completed twice, %d transfers "
      "consistent, total %lld of %lld, %d entities left locked; %zu activity calls, %d "
      "executions repeated after a kill; %.1f s\n",
      kNodes, kPgKills, completed, ids.size(), kFives, kTransfers, completions - completed,
      consistent, static_cast<long long>(total),
      static_cast<long long>(kOpening * static_cast<int64_t>(kAccounts.size())), locked,
      activities.runs.size(), activities.repeated, wall_s);
  const testing::Gap no_completion = testing::LongestGap(completed_at);
  const testing::Gap no_activity = testing::LongestGap(activities.micros);
  std::printf(
      "postgres crash test: longest stall %lld ms with no orchestration completing (after %zu "
      "completions), %lld ms with no activity starting (after %zu of %zu); lease %d ms\n",
      static_cast<long long>(no_completion.ms), no_completion.after,
      static_cast<long long>(no_activity.ms), no_activity.after, activities.micros.size(),
      kLeaseMs);
  for (size_t i = 0; i < kill_micros.size(); ++i) {
    std::printf("  kill %zu at %+lld ms from the activity gap (%lld)\n", i + 1,
                static_cast<long long>((kill_micros[i] - no_activity.begin_micros) / 1000),
                (long long)(kill_micros[i] / 1000 % 100000));
  }
}

}  // namespace
}  // namespace baton
