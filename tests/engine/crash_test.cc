// Crash safety with node processes (tests/engine/crash_worker_main.cc):
//   - CrashTest: one worker on a SQLite task hub, 500 orchestrations of 5
//     activities, SIGKILLed 4 times at random moments and restarted;
//   - PostgresCrashTest (issue 12, "Must show" 3): three nodes on one
//     PostgreSQL database, 500 orchestrations of 5 activities and 50 entity
//     critical sections (transfers between accounts), one node at a time
//     SIGKILLed 5 times at random moments and restarted at once; and a
//     node killed while it holds a ten-minute lease, whose work another node
//     takes over once the dead node's sessions are gone;
//   - PostgresServerRestartTest ("Must show" 4): three nodes while their
//     PostgreSQL (a private cluster) restarts with `pg_ctl restart -m
//     immediate` under 200 running orchestrations, events raised and
//     orchestrations started meanwhile.
// In the end every orchestration has completed exactly once with the right
// output and a well-formed history, every acknowledged start and event is
// there, and (PostgreSQL) the accounts' total is conserved, no entity is left
// locked and nothing is left in the queues. The tests print their counts and
// the longest stall (docs/postgres.md, "Failure tests").
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "baton/client.h"
#include "baton/entity.h"
#include "baton/postgres_store.h"
#include "baton/sqlite_store.h"
#include "store/postgres/pg_connection.h"
#include "testing/crash_nodes.h"
#include "testing/postgres_test_db.h"
#include "testing/private_pg_cluster.h"
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

// The node ids whose sessions are connected to the database behind `url`.
std::set<std::string> ConnectedNodes(const std::string& url) {
  std::set<std::string> nodes;
  auto conn = pg::PgConnection::Connect(url, "");
  if (!conn.ok()) return nodes;
  auto r = (*conn)->Exec(
      "SELECT DISTINCT substr(application_name, 12) FROM pg_stat_activity WHERE "
      "datname = current_database() AND starts_with(application_name, 'baton node ')",
      "connected nodes");
  if (!r.ok()) return nodes;
  for (int i = 0; i < r->rows(); ++i) nodes.insert(r->Text(i, 0));
  return nodes;
}


constexpr int kFives = 500;
constexpr int kTransfers = 50;
constexpr int kNodes = 3;
constexpr int kPgKills = 5;
constexpr int kLeaseMs = 15000;  // the default
constexpr int64_t kOpening = 1000;  // each account's balance before the transfers
const std::vector<std::string> kAccounts = {"a", "b", "c", "d"};

// A node that dies holding a lease need not make its work wait for the lease
// to expire: once all its sessions have been gone for a few seconds, another
// node releases its leases (migration 0004). The lease here is ten minutes,
// so only the release lets the orchestration finish within the hang guard.
TEST(PostgresCrashTest, AKilledNodesLeasesAreReleasedLongBeforeTheyExpire) {
  const std::string url = testing::CreateTestDatabase();
  ASSERT_FALSE(url.empty());
  testing::TempDir dir;
  const std::string log = dir.File("activities.log");
  PostgresStoreOptions options;
  options.url = url;
  options.node_id = "test-client";
  options.release_gone_nodes = false;  // only node b may release anything
  auto store = OpenPostgresStore(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Client client(**store);
  auto conn = pg::PgConnection::Connect(url, "");
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  auto count = [&](const std::string& sql) {
    auto r = (*conn)->Exec(sql, "count");
    return r.ok() ? r->Int(0, 0) : -1;
  };
  const std::string ten_minutes = "600000";

  // Node a takes the first activity and hangs in it (a Step of ten minutes).
  NodeProcess a({BATON_CRASH_WORKER, "--store", url, "--log", log, "--node", "a", "--lease-ms",
                 ten_minutes, "--step-ms", ten_minutes});
  ASSERT_TRUE(client.ScheduleNewOrchestration("Five", 0, {.instance_id = "five"}).ok());
  ASSERT_TRUE(testing::Eventually(
      [&] {
        return count("SELECT count(*) FROM activity_tasks WHERE locked_by = 'a' AND lock_token "
                     "IS NOT NULL AND locked_until > baton_now()") == 1;
      },
      seconds(60)))
      << "node a never leased the activity";
  NodeProcess b({BATON_CRASH_WORKER, "--store", url, "--log", log, "--node", "b", "--lease-ms",
                 ten_minutes});
  ASSERT_TRUE(testing::Eventually([&] { return ConnectedNodes(url).contains("b"); }, seconds(60)));
  ASSERT_TRUE(KilledBySigkill(a.KillAndWait(SIGKILL)));

  // Node b runs all five Steps (a hang guard far below the lease).
  auto state = client.WaitForCompletion("five", seconds(120));
  ASSERT_TRUE(state.ok()) << "the dead node's lease was not released: "
                          << state.status().ToString();
  EXPECT_EQ(state->status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(FromPayload(state->output), 5);
  auto history = client.GetHistory("five");
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(testing::HistoryProblem(*history), "");
  EXPECT_EQ(testing::CountLines(log), 5u) << "node a never finished a Step";
}

TEST(PostgresCrashTest, ThreeNodesOneSigkilledRepeatedlyLoseNothingAndRunNothingTwice) {
  const std::string url = testing::CreateTestDatabase();
  ASSERT_FALSE(url.empty());
  testing::TempDir dir;
  const std::string log = dir.File("activities.log");
  PostgresStoreOptions options;
  options.url = url;
  options.node_id = "test-client";
  options.release_gone_nodes = false;  // the nodes watch each other
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
        std::to_string(kLeaseMs)});
  };
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<NodeProcess>> nodes;
  for (int n = 0; n < kNodes; ++n) nodes.push_back(start_node(n));

  // The kills land at random points of the run: after a random number of
  // activity executions in all (2,500 at least), spaced out. A soak run may
  // ask for more with BATON_CHAOS_KILLS (up to 40).
  int kills = kPgKills;
  if (const char* env = std::getenv("BATON_CHAOS_KILLS")) {
    kills = std::clamp(std::atoi(env), kPgKills, 40);
  }
  std::set<int> points;
  while (points.size() < static_cast<size_t>(kills)) {
    const int p = 150 + static_cast<int>(rng() % 2000);
    bool spaced = true;
    for (int q : points) spaced = spaced && std::abs(p - q) >= 1000 / kills;
    if (spaced) points.insert(p);
  }
  int k = 0;
  for (int point : points) {
    ASSERT_TRUE(testing::Eventually(
        [&] { return testing::CountLines(log) >= static_cast<size_t>(point); }, seconds(90)))
        << "the nodes made no progress";
    const int victim = static_cast<int>(rng() % kNodes);
    const int status = nodes[victim]->KillAndWait(SIGKILL);
    ASSERT_TRUE(KilledBySigkill(status)) << "node " << victim << " had exited (status " << status
                                         << ")";
    std::printf("postgres crash test: SIGKILL #%d of node %d at %.1f s, after %zu activity "
                "executions\n",
                ++k, victim,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                testing::CountLines(log));
    nodes[victim] = start_node(victim);  // restarted at once
  }

  // Everything completes (a hang guard, not a timed assertion).
  int lost = 0;
  const auto deadline = std::chrono::steady_clock::now() + seconds(240);
  for (const std::string& id : ids) {
    const auto left = std::chrono::duration_cast<milliseconds>(
        std::max(deadline - std::chrono::steady_clock::now(),
                 std::chrono::steady_clock::duration(milliseconds(1))));
    auto state = client.WaitForCompletion(id, left);
    if (!state.ok() || state->status != OrchestrationStatus::kCompleted) {
      ++lost;
      ADD_FAILURE() << id << " was lost or stuck: "
                    << (state.ok() ? std::string(OrchestrationStatusName(state->status))
                                   : state.status().ToString());
    }
  }
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
    if (state->status != OrchestrationStatus::kCompleted) continue;  // counted as lost
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
  // Nothing is left behind in the database: no message undelivered, no
  // activity task, no live lease.
  int64_t left_behind = -1;
  {
    auto conn = pg::PgConnection::Connect(url, "");
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    auto r = (*conn)->Exec(
        "SELECT (SELECT count(*) FROM inbox) + (SELECT count(*) FROM activity_tasks) + "
        "(SELECT count(*) FROM instance_queue WHERE lock_token IS NOT NULL)",
        "left behind");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    left_behind = r->Int(0, 0);
  }
  EXPECT_EQ(left_behind, 0) << "messages, tasks or leases left in the database";

  ActivityCounts activities = CountActivities(log);
  EXPECT_EQ(activities.runs.size(), static_cast<size_t>(kFives * 5));
  for (const auto& [key, runs] : activities.runs) {
    EXPECT_TRUE(key.starts_with("five-")) << key;
  }
  std::printf(
      "postgres crash test: %d nodes, %d SIGKILLs: %d/%zu orchestrations completed "
      "(%d x 5 activities, %d transfers), %d lost, %d completed twice, %d transfers "
      "consistent, total %lld of %lld, %d entities left locked, %lld rows left behind; %zu "
      "activity calls, %d executions repeated after a kill; %.1f s\n",
      kNodes, kills, completed, ids.size(), kFives, kTransfers, lost, completions - completed,
      consistent, static_cast<long long>(total),
      static_cast<long long>(kOpening * static_cast<int64_t>(kAccounts.size())), locked,
      static_cast<long long>(left_behind), activities.runs.size(), activities.repeated, wall_s);
  const testing::Gap no_completion = testing::LongestGap(completed_at);
  const testing::Gap no_activity = testing::LongestGap(activities.micros);
  std::printf(
      "postgres crash test: longest stall %lld ms with no orchestration completing (after %zu "
      "completions), %lld ms with no activity starting (after %zu of %zu); lease %d ms\n",
      static_cast<long long>(no_completion.ms), no_completion.after,
      static_cast<long long>(no_activity.ms), no_activity.after, activities.micros.size(),
      kLeaseMs);
}

// ---- PostgreSQL itself crashes under three nodes ----

constexpr int kRunning = 200;     // StepsAround instances, running when the server dies
constexpr int kLateStarts = 40;   // Five instances started around the restart
constexpr int kRestartLeaseMs = 5000;

// Issue 12, "Must show" 4: `pg_ctl restart -m immediate` while three node
// processes run 200 orchestrations (each: two activities, an external event,
// three activities) and a client raises their events and starts more. Every
// acknowledged start and event survives (an event's value shows in the
// output), the nodes reconnect by themselves, everything completes once with
// a well-formed history.
TEST(PostgresServerRestartTest, ImmediateRestartUnderThreeNodesLosesNoAcknowledgedStartOrEvent) {
  testing::PrivatePgCluster cluster(BATON_SOURCE_DIR);
  const std::string url = cluster.url();
  ASSERT_FALSE(url.empty()) << "scripts/pg-up could not start a private cluster";
  testing::TempDir dir;
  const std::string log = dir.File("activities.log");
  PostgresStoreOptions options;
  options.url = url;
  options.node_id = "test-client";
  options.release_gone_nodes = false;
  auto store = OpenPostgresStore(options);  // migrates before the nodes start
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Client client(**store);

  std::vector<std::unique_ptr<NodeProcess>> nodes;
  std::set<std::string> node_ids;
  for (int n = 0; n < kNodes; ++n) {
    node_ids.insert("node" + std::to_string(n));
    nodes.push_back(std::make_unique<NodeProcess>(std::vector<std::string>{
        BATON_CRASH_WORKER, "--store", url, "--log", log, "--node", "node" + std::to_string(n),
        "--lease-ms", std::to_string(kRestartLeaseMs), "--step-ms", "10"}));
  }
  const auto started = std::chrono::steady_clock::now();

  std::vector<std::string> ids;
  for (int i = 0; i < kRunning; ++i) {
    ScheduleOptions o;
    o.instance_id = "around-" + std::to_string(i);
    auto id = client.ScheduleNewOrchestration("StepsAround", i * 10, o);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
  }
  // Running: most have done their first activities and wait for "go".
  ASSERT_TRUE(testing::Eventually(
      [&] { return testing::CountLines(log) >= static_cast<size_t>(kRunning * 3 / 2); },
      seconds(120)))
      << "the nodes made no progress";

  // The client raises every instance's event and starts more instances while
  // the server restarts; a call that returns OK is acknowledged.
  std::atomic<int> raised{0};
  std::vector<Status> event_status(kRunning, Status::Ok());
  std::vector<Status> start_status(kLateStarts, Status::Ok());
  std::atomic<int> slowest_call_ms{0};
  auto timed = [&](auto call) {
    const auto t0 = std::chrono::steady_clock::now();
    Status s = call();
    const int ms = static_cast<int>(std::chrono::duration_cast<milliseconds>(
                                        std::chrono::steady_clock::now() - t0)
                                        .count());
    int prev = slowest_call_ms.load();
    while (ms > prev && !slowest_call_ms.compare_exchange_weak(prev, ms)) {
    }
    return s;
  };
  std::thread raiser([&] {
    for (int i = 0; i < kRunning; ++i) {
      event_status[i] = timed([&] { return client.RaiseEvent(ids[i], "go", i); });
      ++raised;
      std::this_thread::sleep_for(milliseconds(10));
    }
  });
  std::thread starter([&] {
    for (int j = 0; j < kLateStarts; ++j) {
      ScheduleOptions o;
      o.instance_id = "late-" + std::to_string(j);
      start_status[j] = timed([&] {
        return client.ScheduleNewOrchestration("Five", j * 10, o).status();
      });
      std::this_thread::sleep_for(milliseconds(40));
    }
  });
  ASSERT_TRUE(testing::Eventually([&] { return raised.load() >= kRunning / 3; }, seconds(120)));
  const size_t lines_before = testing::CountLines(log);
  const int raised_before = raised.load();
  const auto restart_began = std::chrono::steady_clock::now();
  const bool restarted = cluster.RestartImmediately();
  const auto restart_ms = std::chrono::duration_cast<milliseconds>(
                              std::chrono::steady_clock::now() - restart_began)
                              .count();
  raiser.join();
  starter.join();
  ASSERT_TRUE(restarted) << "pg_ctl restart -m immediate failed";
  std::printf("postgres server restart test: restarted in %lld ms after %d of %d events and %zu "
              "activity executions\n",
              static_cast<long long>(restart_ms), raised_before, kRunning, lines_before);

  int events_acked = 0, starts_acked = 0;
  for (int i = 0; i < kRunning; ++i) {
    EXPECT_TRUE(event_status[i].ok()) << ids[i] << ": " << event_status[i].ToString();
    events_acked += event_status[i].ok() ? 1 : 0;
  }
  for (int j = 0; j < kLateStarts; ++j) {
    EXPECT_TRUE(start_status[j].ok()) << "late-" << j << ": " << start_status[j].ToString();
    if (start_status[j].ok()) {
      ++starts_acked;
      ids.push_back("late-" + std::to_string(j));
    }
  }

  // Everything acknowledged completes (a hang guard, not a timed assertion):
  // the nodes reconnected by themselves.
  int completed = 0, lost = 0, wrong = 0, completions = 0, events_seen = 0;
  std::vector<int64_t> completed_at;
  const auto deadline = std::chrono::steady_clock::now() + seconds(180);
  for (const std::string& id : ids) {
    const auto left = std::chrono::duration_cast<milliseconds>(
        std::max(deadline - std::chrono::steady_clock::now(),
                 std::chrono::steady_clock::duration(milliseconds(1))));
    auto state = client.WaitForCompletion(id, left);
    if (!state.ok() || state->status != OrchestrationStatus::kCompleted) {
      ++lost;
      ADD_FAILURE() << id << " did not complete: "
                    << (state.ok() ? std::string(OrchestrationStatusName(state->status)) : state.status().ToString());
      continue;
    }
    ++completed;
    if (state->completed_at) completed_at.push_back(ToUnixMicros(*state->completed_at));
    const int i = std::stoi(id.substr(id.find('-') + 1));
    // An "around" output holds the event's value: a lost event never completes.
    const int expected = id.starts_with("around-") ? i * 10 + 5 + i : i * 10 + 5;
    if (FromPayload(state->output) != expected) {
      ++wrong;
      ADD_FAILURE() << id << " output " << state->output << ", expected " << expected;
    }
    auto history = client.GetHistory(id);
    ASSERT_TRUE(history.ok()) << id;
    EXPECT_EQ(testing::HistoryProblem(*history), "") << id;
    int events = 0;
    for (const HistoryEvent& e : *history) {
      completions += std::holds_alternative<events::ExecutionCompleted>(e.body) ? 1 : 0;
      events += std::holds_alternative<events::EventRaised>(e.body) ? 1 : 0;
    }
    if (id.starts_with("around-")) {
      EXPECT_EQ(events, 1) << id << ": the event recorded " << events << " times";
      events_seen += events;
    }
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(completions, completed) << "an orchestration completed twice";

  // Each node is still the process we started, and connected again.
  for (auto& node : nodes) EXPECT_TRUE(node->Running()) << "a node exited";
  EXPECT_TRUE(testing::Eventually(
      [&] {
        const std::set<std::string> connected = ConnectedNodes(url);
        return std::includes(connected.begin(), connected.end(), node_ids.begin(), node_ids.end());
      },
      seconds(30)))
      << "not every node has a session again";
  for (auto& node : nodes) {
    const int status = node->KillAndWait(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "graceful stop: " << status;
  }

  ActivityCounts activities = CountActivities(log);
  EXPECT_EQ(activities.runs.size(), static_cast<size_t>(kRunning * 5 + starts_acked * 5));
  const testing::Gap no_completion = testing::LongestGap(completed_at);
  const testing::Gap no_activity = testing::LongestGap(activities.micros);
  std::printf(
      "postgres server restart test: %d nodes; %d/%d events and %d/%d late starts acknowledged "
      "(slowest call %d ms); %d/%zu orchestrations completed, %d lost, %d wrong output, %d "
      "completed twice, %d events recorded; %zu activity calls, %d re-run after the restart; "
      "longest stall %lld ms with no activity starting, %lld ms with no orchestration "
      "completing; %.1f s\n",
      kNodes, events_acked, kRunning, starts_acked, kLateStarts, slowest_call_ms.load(),
      completed, ids.size(), lost, wrong, completions - completed, events_seen,
      activities.runs.size(), activities.repeated, static_cast<long long>(no_activity.ms),
      static_cast<long long>(no_completion.ms), wall_s);
}

}  // namespace
}  // namespace baton
