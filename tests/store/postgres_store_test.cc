// PostgresStore specifics beyond the Store conformance suite: versioned
// migrations, several stores (nodes) on one database, wake-ups through
// LISTEN/NOTIFY and the polling backstop, lease renewal and takeover, and
// the read-back of a commit whose connection broke. Every test runs against
// its own fresh database on the cluster scripts/test starts.

#include "baton/postgres_store.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/postgres/postgres_store_impl.h"
#include "store/store_conformance.h"
#include "testing/postgres_test_db.h"

namespace baton::pg {
namespace {

using baton::testing::CreateTestDatabase;
using baton::testing::TempDir;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int64_t kStartMicros = 1'767'225'600'000'000;

// Re-checks `condition` until it holds or 30 s pass (a hang guard, not a
// timed assertion).
bool Eventually(const std::function<bool()>& condition) {
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return condition();
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = CreateTestDatabase();
    ASSERT_FALSE(url_.empty());
  }

  PostgresStoreOptions Options(std::shared_ptr<Clock> clock = nullptr) {
    PostgresStoreOptions o;
    o.url = url_;
    o.clock = std::move(clock);
    return o;
  }

  std::unique_ptr<PostgresStore> MustOpen(const PostgresStoreOptions& options) {
    auto store = PostgresStore::Open(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // A plain connection for looking at the database from outside.
  std::unique_ptr<PgConnection> Raw() {
    auto conn = PgConnection::Connect(url_, "SET client_min_messages = warning");
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    return conn.ok() ? std::move(conn).value() : nullptr;
  }
  std::vector<std::string> Column(const std::string& sql) {
    auto conn = Raw();
    std::vector<std::string> out;
    if (conn == nullptr) return out;
    auto r = conn->Exec(sql, "test query");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(r->Text(i, 0));
    return out;
  }

  static Status Create(Store& store, const std::string& id, const std::string& input = "") {
    CreateInstanceRequest r;
    r.instance_id = id;
    r.name = "Orch";
    r.input = input;
    r.execution_id = id + "-e1";
    return store.CreateInstance(r);
  }
  static Status Commit(Store& store, const OrchestrationWorkItem& item, OrchestrationUpdate u) {
    std::promise<Status> done;
    auto f = done.get_future();
    store.CompleteOrchestrationWorkItem(item, std::move(u),
                                        [&done](const Status& s) { done.set_value(s); });
    return f.get();
  }
  static Status CommitActivity(Store& store, const ActivityWorkItem& item, Message result) {
    std::promise<Status> done;
    auto f = done.get_future();
    store.CompleteActivityWorkItem(item, std::move(result),
                                   [&done](const Status& s) { done.set_value(s); });
    return f.get();
  }
  static OrchestrationUpdate Episode(const OrchestrationWorkItem& item, OrchestrationStatus status,
                                     std::vector<HistoryEvent> events,
                                     const std::string& output = "") {
    OrchestrationUpdate u;
    u.execution_id = item.instance.execution_id;
    u.status = status;
    u.output = output;
    u.new_events = std::move(events);
    return u;
  }
  static std::optional<OrchestrationWorkItem> FetchNow(Store& store) {
    auto r = store.FetchOrchestrationWorkItem(milliseconds(0));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : std::nullopt;
  }

  std::string url_;
};

// ---- Schema ----

TEST_F(PostgresStoreTest, MigrationsAreRecordedOnceAndRerunningIsANoop) {
  Result<SchemaVersion> v = MigratePostgresStore(url_);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->before, 0);
  EXPECT_EQ(v->after, LatestSchemaVersion());
  v = MigratePostgresStore(url_);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->before, v->after);
  EXPECT_EQ(Column("SELECT version || ' ' || name FROM schema_migrations ORDER BY version"),
            (std::vector<std::string>{"1 task_hub", "2 platform", "3 history_generation",
                                      "4 dead_node_leases", "5 hot_path", "6 fewer_round_trips", "7 key_expiry",
                                      "8 newest_first", "9 nodes", "10 generic_episode_plans"}));
  // Several nodes starting at once: the advisory lock makes them take turns.
  std::vector<std::thread> nodes;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    nodes.emplace_back([&] {
      if (MustOpen(Options()) != nullptr) ++ok;
    });
  }
  for (std::thread& t : nodes) t.join();
  EXPECT_EQ(ok.load(), 4);
}

TEST_F(PostgresStoreTest, RefusesADatabaseWithANewerOrOlderSchema) {
  ASSERT_TRUE(MigratePostgresStore(url_).ok());
  Raw()
      ->Exec("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')", "insert")
      .status()
      .IgnoreError();
  auto store = PostgresStore::Open(Options());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition) << store.status().ToString();

  Raw()->Exec("DELETE FROM schema_migrations", "delete").status().IgnoreError();
  PostgresStoreOptions no_migrate = Options();
  no_migrate.migrate = false;
  store = PostgresStore::Open(no_migrate);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("baton migrate"), std::string::npos);
}

TEST_F(PostgresStoreTest, TextPostgresCannotStoreIsRefusedAndChangesNothing) {
  auto store = MustOpen(Options());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Create(*store, std::string("nul\0id", 6)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Create(*store, "bad-input", std::string("\"a\0b\"", 5)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Column("SELECT count(*) FROM instances"), std::vector<std::string>{"0"});
}

// ---- Many stores on one database ----

TEST_F(PostgresStoreTest, TwoStoresNeverLeaseTheSameInstanceOrTask) {
  // Two nodes, four fetching threads each, over 200 instances of one
  // activity each: every episode and every activity runs exactly once.
  auto a = MustOpen(Options());
  auto b = MustOpen(Options());
  ASSERT_TRUE(a && b);
  constexpr int kInstances = 200;
  for (int i = 0; i < kInstances; ++i) ASSERT_TRUE(Create(*a, "i-" + std::to_string(i)).ok());

  std::mutex mu;
  std::map<uint64_t, int> tokens_seen;
  std::map<std::string, int> starts, results, activities;
  std::atomic<int> finished{0};
  auto node = [&](Store& store) {
    while (finished.load() < kInstances) {
      auto item = store.FetchOrchestrationWorkItem(milliseconds(50));
      ASSERT_TRUE(item.ok()) << item.status().ToString();
      if (item->has_value()) {
        OrchestrationWorkItem& w = **item;
        OrchestrationUpdate u;
        u.execution_id = w.instance.execution_id;
        bool has_result = false;
        for (const Message& m : w.messages) {
          has_result |= std::holds_alternative<events::TaskCompleted>(m.event.body);
        }
        {
          std::lock_guard lock(mu);
          ++tokens_seen[w.lock_token];
          ++(has_result ? results : starts)[w.instance_id];
        }
        u.new_events = {HistoryEvent{-1, TimePoint{}, events::OrchestratorStarted{}}};
        if (has_result) {
          u.status = OrchestrationStatus::kCompleted;
        } else {
          u.status = OrchestrationStatus::kRunning;
          u.tasks.push_back(ActivityTask{0, w.instance_id, w.instance.execution_id, 1, "Work", "",
                                         "", TimePoint{}});
        }
        Status s = Commit(store, w, u);
        ASSERT_TRUE(s.ok()) << s.ToString();
        if (has_result) ++finished;
      }
      auto task = store.FetchActivityWorkItem(milliseconds(0));
      ASSERT_TRUE(task.ok());
      if (task->has_value()) {
        {
          std::lock_guard lock(mu);
          ++tokens_seen[(*task)->lock_token];
          ++activities[(*task)->task.instance_id];
        }
        Message result{0, (*task)->task.instance_id, (*task)->task.execution_id, TimePoint{},
                       HistoryEvent{-1, TimePoint{}, events::TaskCompleted{1, "1"}}};
        ASSERT_TRUE(CommitActivity(store, **task, result).ok());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] { node(*a); });
    threads.emplace_back([&] { node(*b); });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(finished.load(), kInstances);
  EXPECT_EQ(starts.size(), static_cast<size_t>(kInstances));
  EXPECT_EQ(results.size(), static_cast<size_t>(kInstances));
  EXPECT_EQ(activities.size(), static_cast<size_t>(kInstances));
  for (const auto& m : {starts, results, activities}) {
    for (const auto& [id, n] : m) EXPECT_EQ(n, 1) << id;
  }
  for (const auto& [token, n] : tokens_seen) EXPECT_EQ(n, 1) << "token " << token;
  EXPECT_EQ(Column("SELECT count(*) FROM instances WHERE status = 'Completed'"),
            std::vector<std::string>{std::to_string(kInstances)});
  EXPECT_EQ(Column("SELECT count(*) FROM activity_tasks"), std::vector<std::string>{"0"});
  EXPECT_GT(a->stats().claims, 0u);
  EXPECT_GT(b->stats().claims, 0u);
}

TEST_F(PostgresStoreTest, ZombieCompleteAfterAnotherStoreTookOverIsAbortedAndWritesNothing) {
  auto clock = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
  auto a = MustOpen(Options(clock));
  auto b = MustOpen(Options(clock));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(Create(*a, "z").ok());
  std::optional<OrchestrationWorkItem> stale = FetchNow(*a);
  ASSERT_TRUE(stale.has_value());
  // Node A stalls past its lease (its keeper cannot renew an expired lease).
  clock->Advance(stale->locked_until - clock->Now() + milliseconds(1));
  std::optional<OrchestrationWorkItem> fresh = FetchNow(*b);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(fresh->instance_id, "z");
  EXPECT_GT(fresh->lock_token, stale->lock_token);
  std::vector<HistoryEvent> events = {HistoryEvent{-1, clock->Now(), events::OrchestratorStarted{}},
                                      fresh->messages[0].event};
  ASSERT_TRUE(
      Commit(*b, *fresh, Episode(*fresh, OrchestrationStatus::kCompleted, events, "\"b\"")).ok());

  OrchestrationUpdate zombie =
      Episode(*stale, OrchestrationStatus::kFailed,
              {HistoryEvent{-1, clock->Now(), events::OrchestratorStarted{}}}, "\"a\"");
  zombie.tasks.push_back(ActivityTask{0, "z", "z-e1", 1, "Work", "", "", clock->Now()});
  Message to_other;
  to_other.instance_id = "@counter@k";
  to_other.event = HistoryEvent{-1, clock->Now(), events::EventRaised{"Never", ""}};
  zombie.outbox.push_back(to_other);
  EXPECT_EQ(Commit(*a, *stale, zombie).code(), StatusCode::kAborted);

  auto state = b->GetInstance("z", true);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(state->output, "\"b\"");
  EXPECT_EQ(*b->GetHistory("z"), events) << "every event once, none of the zombie's";
  EXPECT_EQ(Column("SELECT count(*) FROM activity_tasks"), std::vector<std::string>{"0"});
  EXPECT_EQ(Column("SELECT count(*) FROM instances"), std::vector<std::string>{"1"})
      << "the zombie's message did not create the entity";
}

TEST_F(PostgresStoreTest, ABatchWithAFencedOutCommitCommitsTheOthersAndWritesNothingForIt) {
  auto clock = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
  PostgresStoreOptions options = Options(clock);
  options.commit_threads = 1;  // one committer: what queues behind it goes as one batch
  options.inline_commits = false;  // b0 too: its callback holds the committer
  auto s = MustOpen(options);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(Create(*s, "z").ok());
  std::optional<OrchestrationWorkItem> stale = FetchNow(*s);
  ASSERT_TRUE(stale.has_value());
  // The lease on "z" is lost; the instance is leased again (a new token).
  clock->Advance(stale->locked_until - clock->Now() + milliseconds(1));
  for (const char* id : {"b0", "b1", "b2"}) ASSERT_TRUE(Create(*s, id).ok());
  std::map<std::string, OrchestrationWorkItem> items;
  for (int i = 0; i < 4; ++i) {
    std::optional<OrchestrationWorkItem> item = FetchNow(*s);
    ASSERT_TRUE(item.has_value());
    items[item->instance_id] = *item;
  }
  ASSERT_EQ(items.size(), 4u);
  ASSERT_GT(items["z"].lock_token, stale->lock_token);
  auto episode = [&](const OrchestrationWorkItem& item) {
    return Episode(item, OrchestrationStatus::kCompleted,
                   {HistoryEvent{-1, clock->Now(), events::OrchestratorStarted{}},
                    item.messages[0].event},
                   "\"" + item.instance_id + "\"");
  };
  const uint64_t commits_before = s->stats().commits;

  // The first commit's callback holds the only committer while the others queue.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<Status> first, zombie_done, second, third;
  s->CompleteOrchestrationWorkItem(items["b0"], episode(items["b0"]), [&](const Status& st) {
    first.set_value(st);
    released.wait();
  });
  OrchestrationUpdate zombie =
      Episode(*stale, OrchestrationStatus::kFailed,
              {HistoryEvent{-1, clock->Now(), events::OrchestratorStarted{}}}, "\"zombie\"");
  zombie.tasks.push_back(ActivityTask{0, "z", "z-e1", 1, "Work", "", "", clock->Now()});
  Message to_other;
  to_other.instance_id = "@counter@k";
  to_other.event = HistoryEvent{-1, clock->Now(), events::EventRaised{"Never", ""}};
  zombie.outbox.push_back(to_other);
  ASSERT_TRUE(first.get_future().get().ok());
  // b2 before the zombie, b1 after it: the batch sorts them by instance.
  s->CompleteOrchestrationWorkItem(items["b2"], episode(items["b2"]),
                                   [&](const Status& st) { third.set_value(st); });
  s->CompleteOrchestrationWorkItem(*stale, zombie,
                                   [&](const Status& st) { zombie_done.set_value(st); });
  s->CompleteOrchestrationWorkItem(items["b1"], episode(items["b1"]),
                                   [&](const Status& st) { second.set_value(st); });
  release.set_value();
  EXPECT_EQ(zombie_done.get_future().get().code(), StatusCode::kAborted);
  EXPECT_TRUE(second.get_future().get().ok());
  EXPECT_TRUE(third.get_future().get().ok());
  EXPECT_EQ(s->stats().commits - commits_before, 2u)
      << "the three queued commits went as one transaction";

  for (const char* id : {"b0", "b1", "b2"}) {
    auto state = s->GetInstance(id, true);
    ASSERT_TRUE(state.ok());
    EXPECT_EQ(state->status, OrchestrationStatus::kCompleted) << id;
    EXPECT_EQ(state->output, "\"" + std::string(id) + "\"");
    EXPECT_EQ(s->GetHistory(id)->size(), 2u) << id;
  }
  // Nothing of the zombie's: no history, no task, no entity, no commit_log row.
  EXPECT_TRUE(s->GetHistory("z")->empty());
  EXPECT_EQ(Column("SELECT count(*) FROM activity_tasks"), std::vector<std::string>{"0"});
  EXPECT_EQ(Column("SELECT count(*) FROM instances"), std::vector<std::string>{"4"});
  EXPECT_EQ(Column("SELECT count(*) FROM commit_log WHERE commit_key = " +
                   std::to_string(stale->lock_token)),
            std::vector<std::string>{"0"});
  // The live lease on "z" was untouched: its holder commits.
  ASSERT_TRUE(Commit(*s, items["z"], episode(items["z"])).ok());
  EXPECT_EQ(s->GetInstance("z", true)->output, "\"z\"");
}

TEST_F(PostgresStoreTest, ACommitSubmittedWhileTheCommittersAreIdleRunsOnTheCallersThread) {
  auto clock = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
  auto s = MustOpen(Options(clock));
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(Create(*s, "inline").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow(*s);
  ASSERT_TRUE(item.has_value());
  const PostgresStats before = s->stats();
  std::promise<std::thread::id> called_on;
  std::promise<Status> status;
  s->CompleteOrchestrationWorkItem(
      *item,
      Episode(*item, OrchestrationStatus::kCompleted,
              {HistoryEvent{-1, clock->Now(), events::OrchestratorStarted{}},
               item->messages[0].event},
              "\"done\""),
      [&](const Status& st) {
        status.set_value(st);
        called_on.set_value(std::this_thread::get_id());
      });
  // The call returned after its round trip: the commit is there already.
  EXPECT_EQ(s->stats().inline_commits - before.inline_commits, 1u);
  EXPECT_EQ(s->stats().commits - before.commits, 1u);
  EXPECT_EQ(Column("SELECT status || ' ' || output FROM instances WHERE instance_id = 'inline'"),
            std::vector<std::string>{"Completed \"done\""});
  EXPECT_TRUE(status.get_future().get().ok());
  EXPECT_EQ(called_on.get_future().get(), std::this_thread::get_id())
      << "the callback ran on the calling thread too (CommitCallback allows it)";

  // Fenced as ever: a second commit with the same (released) lease is
  // refused, inline too, and writes nothing.
  EXPECT_EQ(Commit(*s, *item, Episode(*item, OrchestrationStatus::kFailed, {}, "\"zombie\"")).code(),
            StatusCode::kAborted);
  EXPECT_EQ(s->stats().inline_commits - before.inline_commits, 2u);
  EXPECT_EQ(Column("SELECT status || ' ' || output FROM instances WHERE instance_id = 'inline'"),
            std::vector<std::string>{"Completed \"done\""});

  // Switched off, the commit goes to a committer thread.
  PostgresStoreOptions handed_over = Options(clock);
  handed_over.inline_commits = false;
  auto h = MustOpen(handed_over);
  ASSERT_NE(h, nullptr);
  ASSERT_TRUE(Create(*h, "handed").ok());
  std::optional<OrchestrationWorkItem> other = FetchNow(*h);
  ASSERT_TRUE(other.has_value());
  std::promise<std::thread::id> handed_on;
  h->CompleteOrchestrationWorkItem(*other, Episode(*other, OrchestrationStatus::kCompleted, {}),
                                   [&](const Status& st) {
                                     EXPECT_TRUE(st.ok());
                                     handed_on.set_value(std::this_thread::get_id());
                                   });
  EXPECT_NE(handed_on.get_future().get(), std::this_thread::get_id());
  EXPECT_EQ(h->stats().inline_commits, 0u);
}

TEST_F(PostgresStoreTest, ANodeAloneSendsNoNotificationsUntilAnotherNodeStarts) {
  PostgresStoreOptions slow_poll = Options();
  slow_poll.poll_interval = std::chrono::minutes(5);  // only a NOTIFY can wake b in time
  auto a = MustOpen(slow_poll);
  ASSERT_NE(a, nullptr);
  // The keeper's look at the sessions finds none but a's own.
  ASSERT_TRUE(Eventually([&] { return a->stats().alone; }));
  ASSERT_TRUE(Create(*a, "unheard").ok());
  ASSERT_TRUE(Eventually([&] { return a->stats().notifications_skipped >= 1; }));
  EXPECT_EQ(a->stats().notifications, 0u) << "nobody listens: nothing sent";

  // Another node starts: it says so when it listens, and a notifies again
  // at once (not only after its next look at the sessions).
  auto b = MustOpen(slow_poll);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(Eventually([&] { return b->stats().listening && !a->stats().alone; }));
  std::promise<std::optional<OrchestrationWorkItem>> fetched;
  std::thread fetcher([&] {
    for (;;) {  // b's first claims may find "unheard": take it, then wait for "heard"
      auto r = b->FetchOrchestrationWorkItem(seconds(60));
      if (!r.ok() || !r->has_value() || (*r)->instance_id == "heard") {
        fetched.set_value(r.ok() ? std::move(r).value() : std::nullopt);
        return;
      }
    }
  });
  ASSERT_TRUE(Eventually([&] { return b->stats().empty_claims >= 1; }));  // it sleeps
  ASSERT_TRUE(Create(*a, "heard").ok());
  std::optional<OrchestrationWorkItem> item = fetched.get_future().get();
  fetcher.join();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->instance_id, "heard");
  EXPECT_GE(a->stats().notifications, 1u);
  EXPECT_FALSE(a->stats().alone);
}

TEST_F(PostgresStoreTest, ClosingAStoreReleasesTheLeasesItHolds) {
  auto clock = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
  auto b = MustOpen(Options(clock));
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(Create(*b, "held").ok());
  {
    auto a = MustOpen(Options(clock));
    ASSERT_NE(a, nullptr);
    ASSERT_TRUE(FetchNow(*a).has_value());
    EXPECT_FALSE(FetchNow(*b).has_value());
  }
  // No time passed: the lease ended with the store that held it.
  std::optional<OrchestrationWorkItem> item = FetchNow(*b);
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->dequeue_count, 2);
}

TEST_F(PostgresStoreTest, EachNodeIsListedWithItsOwnLeasesAndAClosedOneAsStopped) {
  PostgresStoreOptions oa = Options(), ob = Options();
  oa.node_id = "node-a";
  ob.node_id = "node-b";
  auto a = MustOpen(oa);
  auto b = MustOpen(ob);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(Create(*a, "x").ok());
  ASSERT_TRUE(Create(*a, "y").ok());
  // Each node leases one (a's claim may take both; then it gives y back).
  std::optional<OrchestrationWorkItem> on_a = FetchNow(*a);
  ASSERT_TRUE(on_a.has_value());
  std::optional<OrchestrationWorkItem> on_b;
  for (int i = 0; i < 100 && !on_b; ++i) {
    on_b = FetchNow(*b);
    if (!on_b) {
      if (auto more = FetchNow(*a)) a->AbandonOrchestrationWorkItem(*more, milliseconds(0));
    }
  }
  ASSERT_TRUE(on_b.has_value());
  auto nodes = b->ListNodes();
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  ASSERT_EQ(nodes->size(), 2u);
  const NodeInfo& na = (*nodes)[0];
  const NodeInfo& nb = (*nodes)[1];
  EXPECT_EQ(na.node_id, "node-a");
  EXPECT_EQ(nb.node_id, "node-b");
  EXPECT_EQ(na.state, NodeState::kUp);
  EXPECT_EQ(nb.state, NodeState::kUp);
  EXPECT_EQ(na.leased_instances, std::vector<std::string>{on_a->instance_id});
  EXPECT_EQ(nb.leased_instances, std::vector<std::string>{on_b->instance_id});
  // A closed node gives its leases back and reads as stopped; a holder of a
  // lease that never heartbeats (an older build) as unknown.
  a.reset();
  auto conn = pg::PgConnection::Connect(url_, "");
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->Exec("UPDATE instance_queue SET locked_by = 'old-build' WHERE locked_by = 'node-b'", "t").ok());
  nodes = b->ListNodes();
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes->size(), 3u);
  EXPECT_EQ((*nodes)[0].node_id, "node-a");
  EXPECT_EQ((*nodes)[0].state, NodeState::kStopped);
  EXPECT_TRUE((*nodes)[0].stopped_at.has_value());
  EXPECT_EQ((*nodes)[0].instance_leases, 0);
  EXPECT_EQ((*nodes)[1].node_id, "node-b");
  EXPECT_EQ((*nodes)[1].instance_leases, 0);
  EXPECT_EQ((*nodes)[2].node_id, "old-build");
  EXPECT_EQ((*nodes)[2].state, NodeState::kUnknown);
  EXPECT_EQ((*nodes)[2].leased_instances, std::vector<std::string>{on_b->instance_id});
}

TEST_F(PostgresStoreTest, ANodeWithoutHeartbeatsForTenSecondsIsGone) {
  auto clock = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
  PostgresStoreOptions o = Options(clock);
  o.node_id = "ticking";
  auto store = MustOpen(o);
  ASSERT_NE(store, nullptr);
  // The database row as another node would see it later, with no heartbeat
  // in between: the heartbeat time stays, the clock moves on.
  auto conn = pg::PgConnection::Connect(url_, "");
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->Exec("INSERT INTO nodes (node_id, started_at, heartbeat_at) VALUES ('silent', " +
                                std::to_string(kStartMicros) + ", " + std::to_string(kStartMicros) + ")",
                            "t")
                  .ok());
  auto nodes = store->ListNodes();
  ASSERT_TRUE(nodes.ok());
  auto state_of = [&](const std::string& id) {
    for (const NodeInfo& n : *nodes) {
      if (n.node_id == id) return NodeStateName(n.state);
    }
    return "absent";
  };
  EXPECT_STREQ(state_of("silent"), "up");
  clock->Advance(kNodeGoneAfter + std::chrono::seconds(1));
  nodes = store->ListNodes();
  ASSERT_TRUE(nodes.ok());
  EXPECT_STREQ(state_of("silent"), "gone");
}

TEST_F(PostgresStoreTest, HeldLeasesAreRenewedUntilCompleted) {
  auto clock = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
  PostgresStoreOptions o = Options(clock);
  o.lease_duration = seconds(30);
  auto a = MustOpen(o);
  auto b = MustOpen(o);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(Create(*a, "long").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow(*a);
  ASSERT_TRUE(item.has_value());
  const int64_t first_expiry = ToUnixMicros(item->locked_until);
  // Two thirds of the lease gone: the keeper extends it.
  clock->Advance(seconds(20));
  ASSERT_TRUE(Eventually([&] {
    auto until = Column("SELECT locked_until FROM instance_queue WHERE instance_id = 'long'");
    return !until.empty() && std::stoll(until[0]) > first_expiry;
  }));
  EXPECT_GE(a->stats().renewals, 1u);
  // Past the first expiry, the instance is still held: nobody else gets it,
  // and the holder's commit lands.
  clock->Advance(seconds(15));
  EXPECT_FALSE(FetchNow(*b).has_value());
  EXPECT_TRUE(Commit(*a, *item, Episode(*item, OrchestrationStatus::kCompleted, {})).ok());
}

TEST_F(PostgresStoreTest, TheDatabaseClockDecidesLeaseExpiry) {
  // No injected clock: locked_until is the database's time plus the lease.
  PostgresStoreOptions o = Options();
  o.lease_duration = seconds(15);
  auto store = MustOpen(o);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Create(*store, "dbclock").ok());
  const int64_t before = std::stoll(Column("SELECT baton_now()")[0]);
  std::optional<OrchestrationWorkItem> item = FetchNow(*store);
  ASSERT_TRUE(item.has_value());
  const int64_t after = std::stoll(Column("SELECT baton_now()")[0]);
  const int64_t until = ToUnixMicros(item->locked_until);
  EXPECT_GE(until, before + 15'000'000);
  EXPECT_LE(until, after + 15'000'000);
}

// ---- Wake-ups ----

TEST_F(PostgresStoreTest, ACommitOnOneNodeWakesFetchersAndWaitersOnAnother) {
  PostgresStoreOptions slow_poll = Options();
  slow_poll.poll_interval = std::chrono::minutes(5);  // only a NOTIFY can wake it in time
  auto a = MustOpen(slow_poll);
  auto b = MustOpen(slow_poll);
  ASSERT_TRUE(a && b);
  // Once listening, nothing but a notification wakes b's idle fetcher.
  ASSERT_TRUE(Eventually([&] { return a->stats().listening && b->stats().listening; }));

  std::promise<std::optional<OrchestrationWorkItem>> fetched;
  std::thread fetcher([&] {
    auto r = b->FetchOrchestrationWorkItem(seconds(60));
    fetched.set_value(r.ok() ? std::move(r).value() : std::nullopt);
  });
  ASSERT_TRUE(Eventually([&] { return b->stats().claims >= 1; }));  // it found nothing, sleeps
  ASSERT_TRUE(Create(*a, "w").ok());
  std::optional<OrchestrationWorkItem> item = fetched.get_future().get();
  fetcher.join();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->instance_id, "w");
  EXPECT_GE(b->stats().notified, 1u);

  std::promise<Result<InstanceState>> waited;
  std::thread waiter([&] {
    waited.set_value(a->WaitForInstance("w", WaitCondition::kCompleted, seconds(60), true));
  });
  ASSERT_TRUE(Eventually([&] { return a->waiting() == 1; }));
  ASSERT_TRUE(
      Commit(*b, *item, Episode(*item, OrchestrationStatus::kCompleted, {}, "\"done\"")).ok());
  Result<InstanceState> state = waited.get_future().get();
  waiter.join();
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->output, "\"done\"");
}

// The second way an instance is leased: by the commit of an activity result
// while this node has an idle fetcher (baton_complete_task's claim). It must
// carry the history generation as a claim does.
TEST_F(PostgresStoreTest, AnInstanceLeasedByAnActivityResultCarriesItsHistoryGeneration) {
  PostgresStoreOptions o = Options();
  o.poll_interval = std::chrono::minutes(5);  // no backstop claim during the test
  auto store = MustOpen(o);
  ASSERT_NE(store, nullptr);
  // (Once connected, the listener wakes every fetcher once: let that pass first.)
  ASSERT_TRUE(Eventually([&] { return store->stats().listening; }));
  ASSERT_TRUE(Create(*store, "p").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow(*store);
  ASSERT_TRUE(item.has_value());
  const TimePoint now = std::chrono::system_clock::now();
  OrchestrationUpdate rewrite = Episode(*item, OrchestrationStatus::kRunning,
                                        {HistoryEvent{-1, now, events::OrchestratorStarted{}},
                                         item->messages[0].event});
  rewrite.reset_history = true;  // generation 1
  rewrite.tasks.push_back(ActivityTask{0, "p", "p-e1", 1, "Work", "", "", TimePoint{}});
  ASSERT_TRUE(Commit(*store, *item, rewrite).ok());
  auto task = store->FetchActivityWorkItem(seconds(10));
  ASSERT_TRUE(task.ok() && task->has_value());

  std::promise<std::optional<OrchestrationWorkItem>> fetched;
  const uint64_t claims_before = store->stats().claims;
  std::thread fetcher([&] {
    auto r = store->FetchOrchestrationWorkItem(seconds(60));
    fetched.set_value(r.ok() ? std::move(r).value() : std::nullopt);
  });
  ASSERT_TRUE(Eventually([&] { return store->stats().claims > claims_before; }));  // idle now
  const uint64_t claims = store->stats().claims;
  Message result{0, "p", "p-e1", TimePoint{},
                 HistoryEvent{-1, now, events::TaskCompleted{1, "\"done\""}}};
  ASSERT_TRUE(CommitActivity(*store, **task, std::move(result)).ok());
  item = fetched.get_future().get();
  fetcher.join();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(store->stats().claims, claims) << "handed over by the result's commit, not claimed";
  EXPECT_EQ(item->history_size, 2);
  EXPECT_EQ(item->history_generation, 1);
}

TEST_F(PostgresStoreTest, AWaiterForCompletionReadsOnlyWhenItsInstanceEnds) {
  auto clock = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
  PostgresStoreOptions o = Options(clock);
  o.poll_interval = std::chrono::minutes(5);  // no backstop re-read during the test
  // No look at the sessions, so never "alone": the wait reads at its start
  // (a node alone skips that read too: AWaiterOnAnInstanceItsNodeStartedAloneReadsNothing).
  o.release_gone_nodes = false;
  auto store = MustOpen(o);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Create(*store, "w").ok());
  // (Once connected, the listener wakes every waiter once: let that pass first.)
  ASSERT_TRUE(Eventually([&] { return store->stats().listening; }));
  std::future<Result<InstanceState>> waited = std::async(std::launch::async, [&] {
    return store->WaitForInstance("w", WaitCondition::kCompleted, seconds(60), false);
  });
  ASSERT_TRUE(Eventually([&] { return store->waiting() == 1 && store->stats().reads == 1; }))
      << "waiting " << store->waiting() << ", reads " << store->stats().reads;

  // This node commits the instance's first episode: Running, which is not
  // what the waiter waits for, so it is not woken to read it.
  std::optional<OrchestrationWorkItem> item = FetchNow(*store);
  ASSERT_TRUE(item.has_value());
  ASSERT_TRUE(Commit(*store, *item,
                     Episode(*item, OrchestrationStatus::kRunning,
                             {HistoryEvent{-1, clock->Now(), events::OrchestratorStarted{}},
                              item->messages[0].event}))
                  .ok());
  // Were it woken, it would read now: give it the time to (not a timed
  // assertion: a slow waiter only makes the check below weaker, never wrong).
  for (int i = 0; i < 100 && store->stats().reads == 1; ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(store->stats().reads, 1u) << "woken by a Running status";
  Message raised;
  raised.instance_id = "w";
  raised.event = HistoryEvent{-1, clock->Now(), events::EventRaised{"Go", ""}};
  ASSERT_TRUE(store->SendMessage(raised).ok());
  item = FetchNow(*store);
  ASSERT_TRUE(item.has_value());
  ASSERT_TRUE(Commit(*store, *item,
                     Episode(*item, OrchestrationStatus::kCompleted,
                             {HistoryEvent{-1, clock->Now(), events::OrchestratorStarted{}},
                              item->messages[0].event},
                             "\"done\""))
                  .ok());
  Result<InstanceState> state = waited.get();
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(store->stats().reads, 1u)
      << "one read at the start; the completing commit handed the state over";
  // What it was handed is what a read returns.
  Result<InstanceState> read = store->GetInstance("w", false);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(state->instance_id, read->instance_id);
  EXPECT_EQ(state->name, read->name);
  EXPECT_EQ(state->execution_id, read->execution_id);
  EXPECT_EQ(state->status, read->status);
  EXPECT_EQ(state->created_at, read->created_at);
  EXPECT_EQ(state->last_updated_at, read->last_updated_at);
  EXPECT_EQ(state->completed_at, read->completed_at);
  EXPECT_EQ(state->output, "") << "asked without payloads";
}

TEST_F(PostgresStoreTest, AWaiterOnAnInstanceItsNodeStartedAloneReadsNothing) {
  auto clock = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
  PostgresStoreOptions o = Options(clock);
  o.poll_interval = std::chrono::minutes(5);  // no backstop re-read during the test
  auto store = MustOpen(o);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Eventually([&] { return store->stats().listening && store->stats().alone; }));
  ASSERT_TRUE(Create(*store, "w").ok());
  auto wait = [&](const std::string& id, WaitCondition condition) {
    return std::async(std::launch::async, [&store, id, condition] {
      return store->WaitForInstance(id, condition, seconds(60), false);
    });
  };
  std::future<Result<InstanceState>> started = wait("w", WaitCondition::kStarted);
  std::future<Result<InstanceState>> completed = wait("w", WaitCondition::kCompleted);
  ASSERT_TRUE(Eventually([&] { return store->waiting() == 2; }));
  EXPECT_EQ(store->stats().reads, 0u) << "Pending, as this node knows: nothing to read";
  EXPECT_EQ(store->stats().known_waits, 2u);

  std::optional<OrchestrationWorkItem> item = FetchNow(*store);
  ASSERT_TRUE(item.has_value());
  ASSERT_TRUE(Commit(*store, *item,
                     Episode(*item, OrchestrationStatus::kRunning,
                             {HistoryEvent{-1, clock->Now(), events::OrchestratorStarted{}},
                              item->messages[0].event}))
                  .ok());
  Result<InstanceState> running = started.get();
  ASSERT_TRUE(running.ok()) << running.status().ToString();
  EXPECT_EQ(running->status, OrchestrationStatus::kRunning);
  EXPECT_EQ(store->stats().reads, 0u) << "the commit handed the state to the waiter";
  // A wait that starts now knows it is Running: for kStarted it reads (what
  // it returns needs the whole state), for kCompleted it does not.
  Result<InstanceState> again =
      store->WaitForInstance("w", WaitCondition::kStarted, seconds(60), false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, OrchestrationStatus::kRunning);
  EXPECT_EQ(store->stats().reads, 1u);

  Message raised;
  raised.instance_id = "w";
  raised.event = HistoryEvent{-1, clock->Now(), events::EventRaised{"Go", ""}};
  ASSERT_TRUE(store->SendMessage(raised).ok());
  item = FetchNow(*store);
  ASSERT_TRUE(item.has_value());
  ASSERT_TRUE(Commit(*store, *item,
                     Episode(*item, OrchestrationStatus::kCompleted,
                             {HistoryEvent{-1, clock->Now(), events::OrchestratorStarted{}},
                              item->messages[0].event},
                             "\"done\""))
                  .ok());
  Result<InstanceState> done = completed.get();
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(store->stats().reads, 1u);
  // Once terminal it is forgotten: a later wait reads, and returns at once.
  Result<InstanceState> late =
      store->WaitForInstance("w", WaitCondition::kCompleted, seconds(60), false);
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(store->stats().reads, 2u);
  EXPECT_EQ(store->stats().known_waits, 2u);
}

// A change this node did not make itself (here: another node's commit,
// announced by NOTIFY) makes it forget what it knew: its waiters read.
TEST_F(PostgresStoreTest, AnotherNodesCommitMakesAWaiterReadAgain) {
  auto clock = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
  PostgresStoreOptions o = Options(clock);
  o.poll_interval = std::chrono::minutes(5);  // only a NOTIFY wakes a waiter in time
  o.lease_duration = seconds(30);
  auto a = MustOpen(o);
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(Eventually([&] { return a->stats().listening && a->stats().alone; }));
  ASSERT_TRUE(Create(*a, "moved").ok());
  // a takes the work, then loses its lease (a's node stalls); b takes it.
  std::optional<OrchestrationWorkItem> stale = FetchNow(*a);
  ASSERT_TRUE(stale.has_value());
  auto b = MustOpen(o);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(Eventually([&] { return b->stats().listening && !a->stats().alone; }));
  std::future<Result<InstanceState>> completed = std::async(std::launch::async, [&] {
    return a->WaitForInstance("moved", WaitCondition::kCompleted, seconds(60), false);
  });
  ASSERT_TRUE(Eventually([&] { return a->waiting() == 1; }));
  EXPECT_EQ(a->stats().known_waits, 1u) << "a still knows it Pending: no read";
  clock->Advance(seconds(31));
  std::optional<OrchestrationWorkItem> item = FetchNow(*b);
  ASSERT_TRUE(item.has_value());
  ASSERT_TRUE(Commit(*b, *item,
                     Episode(*item, OrchestrationStatus::kCompleted,
                             {HistoryEvent{-1, clock->Now(), events::OrchestratorStarted{}},
                              item->messages[0].event},
                             "\"b\""))
                  .ok());
  Result<InstanceState> done = completed.get();
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->status, OrchestrationStatus::kCompleted);
  EXPECT_GE(a->stats().reads, 1u) << "woken by b's NOTIFY, it read";
  // The stale holder's commit is refused as ever.
  EXPECT_EQ(Commit(*a, *stale, Episode(*stale, OrchestrationStatus::kFailed, {})).code(),
            StatusCode::kAborted);
}

// A start made while this node has an idle orchestration fetcher is leased
// to it by the start's own statement (baton_start_instance): the fetcher
// gets the work item a claim would have returned, without a claim.
TEST_F(PostgresStoreTest, AStartLeasesTheNewInstanceToAnIdleFetcherWithoutAClaim) {
  PostgresStoreOptions o = Options();
  o.poll_interval = std::chrono::minutes(5);  // no backstop claim during the test
  auto a = MustOpen(o);
  auto b = MustOpen(o);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(Eventually([&] { return a->stats().listening && b->stats().listening; }));
  std::promise<std::optional<OrchestrationWorkItem>> fetched;
  std::thread fetcher([&] {
    auto r = a->FetchOrchestrationWorkItem(seconds(60));
    fetched.set_value(r.ok() ? std::move(r).value() : std::nullopt);
  });
  ASSERT_TRUE(Eventually([&] { return a->idle_orchestration_fetchers() == 1; }));
  const uint64_t claims = a->stats().claims;
  ASSERT_TRUE(Create(*a, "s", "\"in\"").ok());
  std::optional<OrchestrationWorkItem> item = fetched.get_future().get();
  fetcher.join();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(a->stats().claims, claims) << "handed over by the start, not claimed";
  EXPECT_FALSE(FetchNow(*b).has_value()) << "leased to A";
  // The same item a claim returns.
  Result<InstanceState> read = a->GetInstance("s", false);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(item->instance_id, "s");
  EXPECT_EQ(item->instance.name, "Orch");
  EXPECT_EQ(item->instance.execution_id, "s-e1");
  EXPECT_EQ(item->instance.status, OrchestrationStatus::kPending);
  EXPECT_EQ(item->instance.created_at, read->created_at);
  EXPECT_EQ(item->instance.last_updated_at, read->last_updated_at);
  EXPECT_EQ(item->history_size, 0);
  EXPECT_EQ(item->history_generation, 0);
  EXPECT_EQ(item->dequeue_count, 1);
  ASSERT_EQ(item->messages.size(), 1u);
  const auto* started = std::get_if<events::ExecutionStarted>(&item->messages[0].event.body);
  ASSERT_NE(started, nullptr);
  EXPECT_EQ(started->input, "\"in\"");
  EXPECT_EQ(item->messages[0].execution_id, "s-e1");
  // Its lease is real: the fenced commit lands, and consumes the message.
  ASSERT_TRUE(Commit(*a, *item,
                     Episode(*item, OrchestrationStatus::kCompleted,
                             {HistoryEvent{-1, std::chrono::system_clock::now(),
                                           events::OrchestratorStarted{}},
                              item->messages[0].event}))
                  .ok());
  EXPECT_FALSE(FetchNow(*b).has_value());
  EXPECT_EQ(Column("SELECT count(*) FROM inbox WHERE instance_id = 's'"),
            (std::vector<std::string>{"0"}));
  // An id that exists still goes through the full create: refused, nothing leased.
  EXPECT_EQ(Create(*a, "s").code(), StatusCode::kAlreadyExists);
}

// A fetcher of a node that keeps a backlog (prefetch_backlog) takes it in
// its claim: several due instances, each leased with its own token, one
// claim round trip.
TEST_F(PostgresStoreTest, OneClaimTakesThisNodesBacklogOfDueInstances) {
  auto clock = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
  PostgresStoreOptions o = Options(clock);
  o.poll_interval = std::chrono::minutes(5);
  o.prefetch_backlog = 2;
  auto a = MustOpen(o);
  auto b = MustOpen(o);
  ASSERT_TRUE(a && b);
  for (const std::string id : {"m1", "m2", "m3", "m4"}) ASSERT_TRUE(Create(*a, id).ok());
  const uint64_t claims = a->stats().claims;
  std::vector<OrchestrationWorkItem> items;
  std::optional<OrchestrationWorkItem> item = FetchNow(*a);
  ASSERT_TRUE(item.has_value());
  items.push_back(*item);
  EXPECT_EQ(a->stats().claims, claims + 1);
  for (int i = 0; i < 2; ++i) {
    item = FetchNow(*a);
    ASSERT_TRUE(item.has_value());
    items.push_back(*item);
  }
  EXPECT_EQ(a->stats().claims, claims + 1) << "three instances, one claim";
  // The fourth is left for any node.
  std::optional<OrchestrationWorkItem> on_b = FetchNow(*b);
  ASSERT_TRUE(on_b.has_value());
  EXPECT_FALSE(FetchNow(*b).has_value());
  std::set<std::string> ids{on_b->instance_id};
  std::set<uint64_t> tokens{on_b->lock_token};
  for (const OrchestrationWorkItem& it : items) {
    ids.insert(it.instance_id);
    tokens.insert(it.lock_token);
    ASSERT_EQ(it.messages.size(), 1u) << it.instance_id;
    EXPECT_TRUE(std::holds_alternative<events::ExecutionStarted>(it.messages[0].event.body));
  }
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(tokens.size(), 4u) << "each instance has its own lease";
  // Each lease is real.
  for (const OrchestrationWorkItem& it : items) {
    EXPECT_TRUE(Commit(*a, it, Episode(it, OrchestrationStatus::kCompleted, {})).ok());
  }
  EXPECT_TRUE(Commit(*b, *on_b, Episode(*on_b, OrchestrationStatus::kCompleted, {})).ok());
}

TEST_F(PostgresStoreTest, AnActivityResultLeasesItsInstanceToABusyNodeUpToTheBacklog) {
  auto clock = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
  PostgresStoreOptions o = Options(clock);
  o.poll_interval = std::chrono::minutes(5);  // "fetches at all" for the whole test
  o.prefetch_backlog = 1;
  auto a = MustOpen(o);
  auto b = MustOpen(o);
  ASSERT_TRUE(a && b);
  // Two instances, each with one activity task, all run by node A.
  std::vector<ActivityWorkItem> tasks;
  for (const std::string id : {"p1", "p2"}) {
    ASSERT_TRUE(Create(*a, id).ok());
    std::optional<OrchestrationWorkItem> item = FetchNow(*a);
    ASSERT_TRUE(item.has_value());
    OrchestrationUpdate u =
        Episode(*item, OrchestrationStatus::kRunning,
                {HistoryEvent{-1, clock->Now(), events::OrchestratorStarted{}},
                 item->messages[0].event});
    u.tasks.push_back(ActivityTask{0, id, id + "-e1", 1, "Work", "", "", clock->Now()});
    ASSERT_TRUE(Commit(*a, *item, u).ok());
    auto task = a->FetchActivityWorkItem(milliseconds(0));
    ASSERT_TRUE(task.ok() && task->has_value());
    tasks.push_back(**task);
  }
  // No orchestration fetcher of A is waiting (A is "busy"): the first result
  // still leases its instance to A (the backlog of 1), the second does not.
  for (const ActivityWorkItem& task : tasks) {
    Message result;
    result.instance_id = task.task.instance_id;
    result.execution_id = task.task.execution_id;
    result.event = HistoryEvent{-1, clock->Now(), events::TaskCompleted{1, "\"r\""}};
    ASSERT_TRUE(CommitActivity(*a, task, result).ok());
  }
  std::optional<OrchestrationWorkItem> on_b = FetchNow(*b);
  ASSERT_TRUE(on_b.has_value());
  EXPECT_EQ(on_b->instance_id, "p2") << "p1 is leased to A's next fetch";
  EXPECT_FALSE(FetchNow(*b).has_value());
  const uint64_t claims = a->stats().claims;
  std::optional<OrchestrationWorkItem> on_a = FetchNow(*a);
  ASSERT_TRUE(on_a.has_value());
  EXPECT_EQ(on_a->instance_id, "p1");
  EXPECT_EQ(a->stats().claims, claims) << "handed over without a claim";
  ASSERT_EQ(on_a->messages.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<events::TaskCompleted>(on_a->messages[0].event.body));
  // Its lease is real: the fenced commit lands.
  EXPECT_TRUE(Commit(*a, *on_a, Episode(*on_a, OrchestrationStatus::kCompleted, {})).ok());
}

TEST_F(PostgresStoreTest, WithNotificationsDroppedTheBackstopPollStillFindsWork) {
  PostgresStoreOptions quiet = Options();
  quiet.notifications = false;
  quiet.poll_interval = milliseconds(200);
  auto a = MustOpen(quiet);
  auto b = MustOpen(quiet);
  ASSERT_TRUE(a && b);
  std::promise<std::optional<OrchestrationWorkItem>> fetched;
  std::thread fetcher([&] {
    auto r = b->FetchOrchestrationWorkItem(seconds(60));
    fetched.set_value(r.ok() ? std::move(r).value() : std::nullopt);
  });
  // A claim that found nothing (one that has only begun may still find the
  // instance created next).
  ASSERT_TRUE(Eventually([&] { return b->stats().empty_claims >= 1; }));
  ASSERT_TRUE(Create(*a, "quiet").ok());
  std::optional<OrchestrationWorkItem> item = fetched.get_future().get();
  fetcher.join();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(b->stats().notified, 0u);
  EXPECT_EQ(a->stats().notifications, 0u);
  EXPECT_GE(b->stats().claims, 2u) << "found by a later poll";

  std::promise<Result<InstanceState>> waited;
  std::thread waiter([&] {
    waited.set_value(a->WaitForInstance("quiet", WaitCondition::kStarted, seconds(60), false));
  });
  ASSERT_TRUE(Eventually([&] { return a->waiting() == 1; }));
  ASSERT_TRUE(Commit(*b, *item, Episode(*item, OrchestrationStatus::kRunning, {})).ok());
  Result<InstanceState> state = waited.get_future().get();
  waiter.join();
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->status, OrchestrationStatus::kRunning);
}

// ---- Unknown commit outcomes ----

// A unix-socket proxy in front of the cluster's socket that can cut the
// connection carrying a given statement: kLanded forwards the statement,
// waits for the server to finish it (ReadyForQuery), then closes the client's
// side without passing on the answer; kLost closes both sides before the
// statement reaches the server.
class CuttingProxy {
 public:
  enum class Cut { kNone, kLanded, kLost };

  CuttingProxy(const std::string& upstream_socket, const std::string& dir, int port)
      : upstream_(upstream_socket), path_(dir + "/.s.PGSQL." + std::to_string(port)) {
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 64) != 0) {
      ADD_FAILURE() << "proxy cannot listen on " << path_;
    }
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~CuttingProxy() {
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    accept_thread_.join();
    for (std::thread& t : pumps_) t.join();
  }
  // The next connection that runs the prepared statement `name` (its Bind
  // message, not the Parse that prepares it) is cut the way `cut` says.
  void CutNext(const std::string& name, Cut cut) {
    std::lock_guard lock(mu_);
    marker_ = std::string(1, '\0') + name + std::string(1, '\0');
    exclude_ = "FROM " + name + "(";
    cut_ = cut;
  }
  int cuts() const { return cuts_.load(); }

 private:
  void AcceptLoop() {
    for (;;) {
      int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", upstream_.c_str());
      if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(client);
        close(server);
        continue;
      }
      std::lock_guard lock(mu_);
      pumps_.emplace_back([this, client, server] { Pump(client, server); });
    }
  }

  // Server-to-client bytes are parsed as messages (type, int32 length) so
  // that a cut can wait for the server's ReadyForQuery ('Z').
  void Pump(int client, int server) {
    bool cutting = false;
    std::string from_server;
    char buf[65536];
    for (;;) {
      pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (poll(fds, 2, 200) < 0 || stopping_) break;
      if (fds[0].revents & (POLLIN | POLLHUP)) {
        ssize_t n = read(client, buf, sizeof buf);
        if (n <= 0) break;
        std::string_view chunk(buf, static_cast<size_t>(n));
        Cut cut = Cut::kNone;
        {
          std::lock_guard lock(mu_);
          if (cut_ != Cut::kNone && chunk.find(marker_) != std::string_view::npos &&
              chunk.find(exclude_) == std::string_view::npos) {
            cut = cut_;
            cut_ = Cut::kNone;
          }
        }
        if (cut == Cut::kLost) {
          ++cuts_;
          break;
        }
        if (send(server, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
        if (cut == Cut::kLanded) {
          ++cuts_;
          cutting = true;
          shutdown(client, SHUT_RDWR);  // the client sees the connection die now
          from_server.clear();
        }
      }
      if (fds[1].revents & (POLLIN | POLLHUP)) {
        ssize_t n = read(server, buf, sizeof buf);
        if (n <= 0) break;
        if (!cutting) {
          // A peer that went away is EPIPE here, not a SIGPIPE for the test.
          if (send(client, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
          continue;
        }
        // Swallow the answer; stop at the end of the transaction.
        from_server.append(buf, static_cast<size_t>(n));
        bool ready = false;
        size_t at = 0;
        while (from_server.size() - at >= 5) {
          uint32_t len = (uint8_t(from_server[at + 1]) << 24) |
                         (uint8_t(from_server[at + 2]) << 16) |
                         (uint8_t(from_server[at + 3]) << 8) | uint8_t(from_server[at + 4]);
          if (from_server.size() - at < 1 + len) break;
          ready |= from_server[at] == 'Z';
          at += 1 + len;
        }
        from_server.erase(0, at);
        if (ready) break;
      }
    }
    close(client);
    close(server);
  }

  std::string upstream_;
  std::string path_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> pumps_;
  std::string marker_;
  std::string exclude_;
  Cut cut_ = Cut::kNone;
  std::atomic<int> cuts_{0};
};

class PostgresOutcomeTest : public PostgresStoreTest {
 protected:
  void SetUp() override {
    PostgresStoreTest::SetUp();
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(url_.c_str(), &error);
    ASSERT_NE(options, nullptr);
    std::string host, port = "5432";
    for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
      if (o->val == nullptr) continue;
      if (std::string(o->keyword) == "host") host = o->val;
      if (std::string(o->keyword) == "port") port = o->val;
    }
    PQconninfoFree(options);
    ASSERT_TRUE(!host.empty() && host[0] == '/')
        << "the test cluster's URL names its unix socket directory";
    proxy_ =
        std::make_unique<CuttingProxy>(host + "/.s.PGSQL." + port, dir_.path(), std::stoi(port));
    // The same database, through the proxy's socket directory.
    auto proxied =
        WithDatabase(url_ + " host=" + dir_.path(), Column("SELECT current_database()")[0]);
    ASSERT_TRUE(proxied.ok());
    proxied_url_ = *proxied;
  }

  TempDir dir_;
  std::unique_ptr<CuttingProxy> proxy_;
  std::string proxied_url_;
};

TEST_F(PostgresOutcomeTest, ACommitThatLandedBeforeTheConnectionBrokeIsReportedCommitted) {
  auto clock = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
  PostgresStoreOptions o = Options(clock);
  o.url = proxied_url_;
  auto store = MustOpen(o);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Create(*store, "landed").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow(*store);
  ASSERT_TRUE(item.has_value());
  std::vector<HistoryEvent> events = {HistoryEvent{-1, clock->Now(), events::OrchestratorStarted{}},
                                      item->messages[0].event};
  proxy_->CutNext("baton_complete_orchestration", CuttingProxy::Cut::kLanded);
  // Had the store retried the call, the lease would be gone and it would say
  // Aborted; had it given up, Unavailable. It reads the outcome back: OK.
  EXPECT_TRUE(
      Commit(*store, *item, Episode(*item, OrchestrationStatus::kCompleted, events, "1")).ok());
  EXPECT_EQ(proxy_->cuts(), 1);
  EXPECT_EQ(store->stats().unknown_outcomes, 1u);
  EXPECT_EQ(*store->GetHistory("landed"), events);
  EXPECT_EQ(store->GetInstance("landed", true)->output, "1");
}

// A start that leased its new instance to an idle fetcher, whose connection
// broke after it committed: the store reads back that it landed but never
// saw the lease, so it gives the lease back at once instead of leaving the
// instance to wait for its expiry.
TEST_F(PostgresOutcomeTest, AStartLeaseWhoseOutcomeWasReadBackIsGivenBackAtOnce) {
  PostgresStoreOptions o = Options();
  o.url = proxied_url_;
  o.poll_interval = std::chrono::minutes(5);     // no backstop claim during the test
  o.lease_duration = std::chrono::minutes(10);   // an expiry cannot free it in time
  auto store = MustOpen(o);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Eventually([&] { return store->stats().listening; }));
  std::promise<std::optional<OrchestrationWorkItem>> fetched;
  std::thread fetcher([&] {
    auto r = store->FetchOrchestrationWorkItem(seconds(60));
    fetched.set_value(r.ok() ? std::move(r).value() : std::nullopt);
  });
  ASSERT_TRUE(Eventually([&] { return store->idle_orchestration_fetchers() == 1; }));
  proxy_->CutNext("baton_start_instance", CuttingProxy::Cut::kLanded);
  EXPECT_TRUE(Create(*store, "cut").ok());
  EXPECT_EQ(proxy_->cuts(), 1);
  EXPECT_EQ(store->stats().unknown_outcomes, 1u);
  std::optional<OrchestrationWorkItem> item = fetched.get_future().get();
  fetcher.join();
  ASSERT_TRUE(item.has_value()) << "the lease the start took was not given back";
  EXPECT_EQ(item->instance_id, "cut");
  ASSERT_EQ(item->messages.size(), 1u);
  EXPECT_TRUE(Commit(*store, *item, Episode(*item, OrchestrationStatus::kCompleted, {})).ok());
  EXPECT_EQ(Column("SELECT count(*) FROM instances WHERE instance_id = 'cut'"),
            (std::vector<std::string>{"1"}))
      << "created once";
}

TEST_F(PostgresOutcomeTest, ACommitLostWithItsConnectionIsRetriedAndLandsOnce) {
  auto clock = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
  PostgresStoreOptions o = Options(clock);
  o.url = proxied_url_;
  auto store = MustOpen(o);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Create(*store, "lost").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow(*store);
  ASSERT_TRUE(item.has_value());
  std::vector<HistoryEvent> events = {HistoryEvent{-1, clock->Now(), events::OrchestratorStarted{}},
                                      item->messages[0].event};
  proxy_->CutNext("baton_complete_orchestration", CuttingProxy::Cut::kLost);
  EXPECT_TRUE(
      Commit(*store, *item, Episode(*item, OrchestrationStatus::kCompleted, events, "1")).ok());
  EXPECT_EQ(proxy_->cuts(), 1);
  EXPECT_EQ(store->stats().unknown_outcomes, 1u);
  EXPECT_EQ(*store->GetHistory("lost"), events);

  // The same for a client call: the event is raised exactly once.
  ASSERT_TRUE(Create(*store, "raised").ok());
  Message m;
  m.instance_id = "raised";
  m.event = HistoryEvent{-1, clock->Now(), events::EventRaised{"Go", ""}};
  proxy_->CutNext("baton_send_message", CuttingProxy::Cut::kLanded);
  EXPECT_TRUE(store->SendMessage(m).ok());
  EXPECT_EQ(Column("SELECT count(*) FROM inbox WHERE instance_id = 'raised'"),
            std::vector<std::string>{"2"});
}

// A batch whose connection breaks: it landed whole or not at all. The calls
// with a commit_log row are reported committed; the fenced-out one has none,
// runs again on its own, and is Aborted; nothing commits twice.
TEST_F(PostgresOutcomeTest, ABatchCutWithItsConnectionIsReadBackCallByCall) {
  for (CuttingProxy::Cut cut : {CuttingProxy::Cut::kLanded, CuttingProxy::Cut::kLost}) {
    SCOPED_TRACE(cut == CuttingProxy::Cut::kLanded ? "landed" : "lost");
    const std::string tag = cut == CuttingProxy::Cut::kLanded ? "l" : "x";
    auto clock = std::make_shared<ManualClock>(FromUnixMicros(kStartMicros));
    PostgresStoreOptions o = Options(clock);
    o.url = proxied_url_;
    o.commit_threads = 1;
    o.inline_commits = false;  // the first commit's callback holds the committer
    auto s = MustOpen(o);
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(Create(*s, tag + "z").ok());
    std::optional<OrchestrationWorkItem> stale = FetchNow(*s);
    ASSERT_TRUE(stale.has_value());
    clock->Advance(stale->locked_until - clock->Now() + milliseconds(1));
    for (const char* n : {"0", "1", "2"}) ASSERT_TRUE(Create(*s, tag + n).ok());
    std::map<std::string, OrchestrationWorkItem> items;
    for (int i = 0; i < 4; ++i) {
      std::optional<OrchestrationWorkItem> item = FetchNow(*s);
      ASSERT_TRUE(item.has_value());
      items[item->instance_id] = *item;
    }
    ASSERT_EQ(items.size(), 4u);
    for (const char* n : {"0", "1", "2", "z"}) ASSERT_TRUE(items.contains(tag + n)) << n;
    auto episode = [&](const OrchestrationWorkItem& item, const std::string& output) {
      return Episode(item, OrchestrationStatus::kCompleted,
                     {HistoryEvent{-1, clock->Now(), events::OrchestratorStarted{}},
                      item.messages[0].event},
                     output);
    };
    const uint64_t unknown_before = s->stats().unknown_outcomes;
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::promise<Status> first, zombie_done, one, two;
    s->CompleteOrchestrationWorkItem(items[tag + "0"], episode(items[tag + "0"], "0"),
                                     [&](const Status& st) {
                                       first.set_value(st);
                                       released.wait();
                                     });
    ASSERT_TRUE(first.get_future().get().ok());
    const uint64_t commits_before = s->stats().commits;
    proxy_->CutNext("baton_complete_orchestration", cut);
    s->CompleteOrchestrationWorkItem(items[tag + "1"], episode(items[tag + "1"], "1"),
                                     [&](const Status& st) { one.set_value(st); });
    s->CompleteOrchestrationWorkItem(*stale, episode(*stale, "\"zombie\""),
                                     [&](const Status& st) { zombie_done.set_value(st); });
    s->CompleteOrchestrationWorkItem(items[tag + "2"], episode(items[tag + "2"], "2"),
                                     [&](const Status& st) { two.set_value(st); });
    release.set_value();
    EXPECT_TRUE(one.get_future().get().ok());
    EXPECT_TRUE(two.get_future().get().ok());
    EXPECT_EQ(zombie_done.get_future().get().code(), StatusCode::kAborted);
    EXPECT_EQ(s->stats().unknown_outcomes - unknown_before, 1u);
    // Landed: the batch, then the zombie alone. Lost: the batch, then all three.
    EXPECT_EQ(s->stats().commits - commits_before, cut == CuttingProxy::Cut::kLanded ? 2u : 4u);
    for (const std::string& id : {tag + "1", tag + "2"}) {
      EXPECT_EQ(s->GetHistory(id)->size(), 2u) << id << ": every event once";
      EXPECT_EQ(s->GetInstance(id, true)->status, OrchestrationStatus::kCompleted) << id;
    }
    EXPECT_TRUE(s->GetHistory(tag + "z")->empty());
    EXPECT_EQ(Column("SELECT count(*) FROM commit_log WHERE commit_key = " +
                     std::to_string(stale->lock_token)),
              std::vector<std::string>{"0"});
    // The live lease's holder commits (and the next round finds only its own).
    ASSERT_TRUE(Commit(*s, items[tag + "z"], episode(items[tag + "z"], "\"z\"")).ok());
  }
  EXPECT_EQ(proxy_->cuts(), 2);
}

}  // namespace
}  // namespace baton::pg
