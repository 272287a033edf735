// SqliteStore specifics beyond the Store conformance suite: the file lock,
// the schema and journal mode on disk, group commit, and recovery details.

#include "baton/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite/sqlite_store_impl.h"
#include "store/store_conformance.h"
#include "util/metrics.h"

namespace baton::sqlite {
namespace {

using baton::testing::TempDir;
using std::chrono::milliseconds;

class SqliteStoreTest : public ::testing::Test {
 protected:
  SqliteStoreOptions Options(Durability durability = Durability::kFull) {
    SqliteStoreOptions o;
    o.path = dir_.path() + "/baton.db";
    o.clock = clock_;
    o.durability = durability;
    return o;
  }

  std::unique_ptr<Store> MustOpen(const SqliteStoreOptions& options) {
    Result<std::unique_ptr<Store>> store = OpenSqliteStore(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // A plain sqlite3 connection for looking at the file from outside.
  struct RawDb {
    explicit RawDb(const std::string& path) {
      EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    }
    ~RawDb() { sqlite3_close_v2(db); }
    std::vector<std::string> Column(const std::string& sql) {
      std::vector<std::string> out;
      sqlite3_stmt* st = nullptr;
      EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK)
          << sqlite3_errmsg(db);
      while (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char* text = sqlite3_column_text(st, 0);
        out.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
      }
      sqlite3_finalize(st);
      return out;
    }
    void Exec(const std::string& sql) {
      EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
          << sqlite3_errmsg(db);
    }
    sqlite3* db = nullptr;
  };

  Status Create(Store& store, const std::string& id) {
    CreateInstanceRequest r;
    r.instance_id = id;
    r.name = "Orch";
    r.execution_id = id + "-e1";
    return store.CreateInstance(r);
  }

  // Creates instance `id`, commits its first episode with one activity task
  // (task id 1) and leases that task: the task, and the episode's execution
  // id in `execution_id`.
  std::optional<ActivityWorkItem> LeaseATask(Store& store, const std::string& id, std::string* execution_id) {
    if (!Create(store, id).ok()) return std::nullopt;
    auto item = store.FetchOrchestrationWorkItem(milliseconds(0));
    if (!item.ok() || !item->has_value()) return std::nullopt;
    OrchestrationUpdate u;
    u.execution_id = *execution_id = (*item)->instance.execution_id;
    u.new_events.push_back(HistoryEvent{0, clock_->Now(), events::OrchestratorStarted{}});
    u.tasks.push_back(ActivityTask{0, id, u.execution_id, 1, "Work", "", "", clock_->Now()});
    auto committed = std::make_shared<std::promise<Status>>();
    store.CompleteOrchestrationWorkItem(**item, u, [committed](const Status& s) { committed->set_value(s); });
    if (!committed->get_future().get().ok()) return std::nullopt;
    auto task = store.FetchActivityWorkItem(milliseconds(0));
    if (!task.ok() || !task->has_value()) return std::nullopt;
    return **task;
  }
  // Completes `task` with TaskCompleted{1, result}; the commit's status.
  Status CompleteTask(Store& store, const ActivityWorkItem& task, const std::string& execution_id,
                      const std::string& result) {
    Message m{0, task.task.instance_id, execution_id, clock_->Now(),
              HistoryEvent{-1, clock_->Now(), events::TaskCompleted{1, result}}};
    auto done = std::make_shared<std::promise<Status>>();
    store.CompleteActivityWorkItem(task, m, [done](const Status& s) { done->set_value(s); });
    return done->get_future().get();
  }

  TempDir dir_;
  std::shared_ptr<ManualClock> clock_ =
      std::make_shared<ManualClock>(FromUnixMicros(1'767'225'600'000'000));
};

TEST_F(SqliteStoreTest, SecondOpenerGetsFailedPreconditionNamingTheHolder) {
  std::unique_ptr<Store> first = MustOpen(Options());
  ASSERT_NE(first, nullptr);
  Result<std::unique_ptr<Store>> second = OpenSqliteStore(Options());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find(std::to_string(::getpid())), std::string::npos)
      << second.status().message();

  // Closing releases the lock.
  first.reset();
  EXPECT_NE(MustOpen(Options()), nullptr);
}

TEST_F(SqliteStoreTest, OpenRejectsBadOptions) {
  SqliteStoreOptions o = Options();
  o.path = "";
  EXPECT_EQ(OpenSqliteStore(o).status().code(), StatusCode::kInvalidArgument);
  o = Options();
  o.max_batch = 0;
  EXPECT_EQ(OpenSqliteStore(o).status().code(), StatusCode::kInvalidArgument);
  o = Options();
  o.path = dir_.path() + "/no/such/dir/baton.db";
  Result<std::unique_ptr<Store>> store = OpenSqliteStore(o);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable) << store.status().ToString();
}

TEST_F(SqliteStoreTest, CreatesTheSchemaInWalMode) {
  std::unique_ptr<Store> store = MustOpen(Options());
  ASSERT_NE(store, nullptr);
  RawDb raw(Options().path);
  std::vector<std::string> tables =
      raw.Column("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  EXPECT_EQ(tables, (std::vector<std::string>{"activity_tasks", "history", "inbox", "instances",
                                              "meta", "schema_migrations"}));
  std::vector<std::string> indexes = raw.Column(
      "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' "
      "ORDER BY name");
  EXPECT_EQ(indexes, (std::vector<std::string>{"activity_tasks_by_instance", "inbox_by_instance",
                                               "instances_by_created", "instances_by_status"}));
  EXPECT_EQ(raw.Column("PRAGMA journal_mode"), std::vector<std::string>{"wal"});
  EXPECT_EQ(raw.Column("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::vector<std::string>{"1"});
  EXPECT_EQ(raw.Column("SELECT version || ' ' || name FROM schema_migrations ORDER BY version"),
            (std::vector<std::string>{"1 task_hub", "2 history_generation", "3 newest_first"}));
}

TEST_F(SqliteStoreTest, MigrationsRunOnceAndAFileFromBeforeVersioningIsAdopted) {
  const std::string path = Options().path;
  {
    // A file made before schema_migrations existed: the tables, no record.
    std::unique_ptr<Store> store = MustOpen(Options());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(Create(*store, "kept").ok());
  }
  RawDb(path).Exec("DROP TABLE schema_migrations");
  RawDb(path).Exec("ALTER TABLE instances DROP COLUMN history_generation");  // came with 2
  Result<SchemaVersion> v = MigrateSqliteStore(path);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->before, 0);
  EXPECT_EQ(v->after, 3);
  v = MigrateSqliteStore(path);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->before, 3);
  EXPECT_EQ(v->after, 3);
  std::unique_ptr<Store> store = MustOpen(Options());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->GetInstance("kept", false).ok()) << "the data survived the migration";
}

TEST_F(SqliteStoreTest, RefusesAFileWithANewerSchema) {
  const std::string path = Options().path;
  ASSERT_TRUE(MigrateSqliteStore(path).ok());
  RawDb(path).Exec("INSERT INTO schema_migrations VALUES (999, 'future', 0)");
  Result<std::unique_ptr<Store>> store = OpenSqliteStore(Options());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition) << store.status().ToString();
  EXPECT_NE(store.status().message().find("999"), std::string::npos);
}

TEST_F(SqliteStoreTest, HistoryIsOneRowPerEpisode) {
  std::unique_ptr<Store> store = MustOpen(Options());
  ASSERT_TRUE(Create(*store, "h").ok());
  for (int episode = 0; episode < 3; ++episode) {
    if (episode > 0) {
      Message m;
      m.instance_id = "h";
      m.event.body = events::EventRaised{"Go", ""};
      ASSERT_TRUE(store->SendMessage(m).ok());
    }
    auto item = store->FetchOrchestrationWorkItem(milliseconds(0));
    ASSERT_TRUE(item.ok() && item->has_value());
    OrchestrationUpdate u;
    u.execution_id = "h-e1";
    u.new_events = {HistoryEvent{-1, clock_->Now(), events::OrchestratorStarted{}},
                    (*item)->messages[0].event,
                    HistoryEvent{-1, clock_->Now(), events::OrchestratorCompleted{}}};
    std::promise<Status> done;
    store->CompleteOrchestrationWorkItem(**item, u, [&](const Status& s) { done.set_value(s); });
    ASSERT_TRUE(done.get_future().get().ok());
  }
  RawDb raw(Options().path);
  EXPECT_EQ(raw.Column("SELECT chunk FROM history WHERE instance_id = 'h' ORDER BY chunk"),
            (std::vector<std::string>{"0", "3", "6"}));
  EXPECT_EQ(raw.Column("SELECT history_size FROM instances WHERE instance_id = 'h'"),
            std::vector<std::string>{"9"});
  EXPECT_EQ(store->GetHistory("h")->size(), 9u);
}

TEST_F(SqliteStoreTest, ConcurrentSyncCommitsShareTransactions) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 250;
  std::unique_ptr<Store> store = MustOpen(Options());
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    ASSERT_TRUE(Create(*store, "g-" + std::to_string(i)).ok());
  }
  std::vector<OrchestrationWorkItem> items;
  for (;;) {
    auto r = store->FetchOrchestrationWorkItem(milliseconds(0));
    ASSERT_TRUE(r.ok());
    if (!r->has_value()) break;
    items.push_back(std::move(**r));
  }
  ASSERT_EQ(items.size(), static_cast<size_t>(kThreads * kPerThread));

  WriterStats before = GetWriterStats(*store);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::future<Status>> pending;
      for (int i = t; i < kThreads * kPerThread; i += kThreads) {
        OrchestrationUpdate u;
        u.execution_id = items[i].instance.execution_id;
        u.status = OrchestrationStatus::kCompleted;
        u.output = "1";
        u.sync = true;
        auto done = std::make_shared<std::promise<Status>>();
        pending.push_back(done->get_future());
        store->CompleteOrchestrationWorkItem(items[i], std::move(u),
                                             [done](const Status& s) { done->set_value(s); });
      }
      for (auto& f : pending) {
        if (f.get().ok()) ++ok;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(ok.load(), kThreads * kPerThread);

  WriterStats after = GetWriterStats(*store);
  uint64_t commits = after.ops - before.ops;
  uint64_t transactions = after.transactions - before.transactions;
  EXPECT_EQ(commits, static_cast<uint64_t>(kThreads * kPerThread));
  ASSERT_GT(transactions, 0u);
  EXPECT_GT(commits / transactions, 2u)
      << commits << " commits in " << transactions << " transactions";
}

// Group commit's wait (SqliteStoreOptions::group_commit_wait): a lone
// writer, one write at a time, never waits; an idle writer whose last
// transaction was shared does; a wait outside 0..100 ms is refused.
TEST_F(SqliteStoreTest, GroupCommitWaitsOnlyWhenWritersQueueTogether) {
  SqliteStoreOptions bad = Options();
  bad.group_commit_wait = std::chrono::milliseconds(101);
  EXPECT_EQ(OpenSqliteStore(bad).status().code(), StatusCode::kInvalidArgument);
  bad.group_commit_wait = std::chrono::microseconds(-1);
  EXPECT_EQ(OpenSqliteStore(bad).status().code(), StatusCode::kInvalidArgument);

  SqliteStoreOptions o = Options();
  o.group_commit_wait = std::chrono::milliseconds(2);
  std::unique_ptr<Store> store = MustOpen(o);
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(Create(*store, "lone-" + std::to_string(i)).ok());
  EXPECT_EQ(GetWriterStats(*store).lingered, 0u);

  // Bursts: the first write of a burst is usually committed alone and the
  // rest share the next transaction (an fsync takes far longer than an
  // enqueue); once the burst is done the writer is idle, and the next lone
  // write waits for company. Rounds until that happened (a loaded machine
  // may batch differently), at most 20.
  const WriterStats before = GetWriterStats(*store);
  util::metrics::Counter& waits = util::metrics::Default().GetCounter(
      "baton_store_group_commit_waits_total", "", {{"store", "sqlite"}});
  const uint64_t waits_before = waits.Value();
  for (int round = 0; round < 20 && GetWriterStats(*store).lingered == before.lingered; ++round) {
    std::vector<std::future<Status>> pending;
    for (int i = 0; i < 8; ++i) {
      CreateInstanceRequest r;
      r.instance_id = "burst-" + std::to_string(round) + "-" + std::to_string(i);
      r.name = "Orch";
      r.execution_id = r.instance_id + "-e1";
      auto done = std::make_shared<std::promise<Status>>();
      pending.push_back(done->get_future());
      store->CreateInstanceAsync(r, [done](const Status& s) { done->set_value(s); });
    }
    for (auto& f : pending) ASSERT_TRUE(f.get().ok());
    // Let the writer go idle (it may still be finishing the burst's batch).
    std::this_thread::sleep_for(milliseconds(10));
    ASSERT_TRUE(Create(*store, "after-burst-" + std::to_string(round)).ok());
  }
  const WriterStats after = GetWriterStats(*store);
  EXPECT_GT(after.lingered, before.lingered);
  EXPECT_LT(after.transactions - before.transactions, after.ops - before.ops);  // shared
  EXPECT_EQ(waits.Value() - waits_before, after.lingered - before.lingered);  // seen in production as well
}

// The wait ends as soon as as many writes are queued as the last
// transaction had; one that runs its full length (no company came) makes the
// writer skip its next chance. Counted, never timed: each round has a store
// of its own (no backoff carried over), at most 20 rounds.
TEST_F(SqliteStoreTest, GroupCommitWaitEndsWhenItsBatchIsFullAndBacksOffWhenNoneCome) {
  int next = 0;
  using Pending = std::vector<std::future<Status>>;
  auto enqueue = [&](Store& store, int n, Pending* pending) {
    for (int i = 0; i < n; ++i) {
      CreateInstanceRequest r;
      r.instance_id = "w-" + std::to_string(next++);
      r.name = "Orch";
      r.execution_id = r.instance_id + "-e1";
      auto done = std::make_shared<std::promise<Status>>();
      pending->push_back(done->get_future());
      store.CreateInstanceAsync(r, [done](const Status& s) { done->set_value(s); });
    }
  };
  auto settle = [](Pending* pending) {
    for (auto& f : *pending) ASSERT_TRUE(f.get().ok());
    pending->clear();
  };
  // A store whose writer is idle after a shared transaction (8 writes at
  // once: the first alone, the rest together, or all 8).
  auto primed = [&](int round) {
    SqliteStoreOptions o = Options();
    o.path = dir_.path() + "/round-" + std::to_string(round) + ".db";
    o.group_commit_wait = std::chrono::milliseconds(100);
    std::unique_ptr<Store> store = MustOpen(o);
    Pending pending;
    if (store != nullptr) {
      enqueue(*store, 8, &pending);
      settle(&pending);
    }
    std::this_thread::sleep_for(milliseconds(10));
    return store;
  };

  // A lone write starts the wait; the many that follow it end it early.
  bool filled = false;
  for (int round = 0; round < 20 && !filled; ++round) {
    std::unique_ptr<Store> store = primed(round);
    ASSERT_NE(store, nullptr);
    Pending pending;
    enqueue(*store, 1, &pending);
    std::this_thread::sleep_for(milliseconds(5));  // the writer is waiting for company
    enqueue(*store, 31, &pending);
    settle(&pending);
    filled = GetWriterStats(*store).linger_filled > 0;
  }
  EXPECT_TRUE(filled);

  // A lone write that nobody joins: the wait runs its full length, and the
  // next chance (after another shared transaction) is skipped.
  bool backed_off = false;
  for (int round = 20; round < 40 && !backed_off; ++round) {
    std::unique_ptr<Store> store = primed(round);
    ASSERT_NE(store, nullptr);
    Pending pending;
    enqueue(*store, 1, &pending);
    settle(&pending);
    const WriterStats waited = GetWriterStats(*store);
    if (waited.lingered != 1 || waited.linger_filled != 0) continue;  // batched otherwise: again
    enqueue(*store, 8, &pending);
    settle(&pending);
    std::this_thread::sleep_for(milliseconds(10));
    enqueue(*store, 1, &pending);
    settle(&pending);
    backed_off = GetWriterStats(*store).linger_skipped > 0;
  }
  EXPECT_TRUE(backed_off);
}

// The keeper renews the leases the store holds once a third has passed:
// past the first expiry the holder still has its instance and its
// activity task (nobody else gets them) and its commits land.
TEST_F(SqliteStoreTest, HeldLeasesAreRenewedUntilCompleted) {
  SqliteStoreOptions o = Options();
  o.lease_duration = std::chrono::seconds(30);
  std::unique_ptr<Store> store = MustOpen(o);
  ASSERT_NE(store, nullptr);
  auto& sqlite = static_cast<SqliteStore&>(*store);
  std::string execution_id;
  std::optional<ActivityWorkItem> task = LeaseATask(*store, "long", &execution_id);
  ASSERT_TRUE(task.has_value());
  const TimePoint first_expiry = task->locked_until;

  // Two thirds of the lease gone: the keeper (every 2 s of real time at
  // most) has extended it.
  clock_->Advance(std::chrono::seconds(21));
  for (int i = 0; i < 10000 && sqlite.lease_renewals() == 0; ++i) std::this_thread::sleep_for(milliseconds(1));
  ASSERT_GE(sqlite.lease_renewals(), 1u);
  // Past the first expiry: still held.
  clock_->Advance(std::chrono::seconds(15));
  ASSERT_GT(clock_->Now(), first_expiry);
  auto other = store->FetchActivityWorkItem(milliseconds(0));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value()) << "a held task was offered again";
  EXPECT_TRUE(CompleteTask(*store, *task, execution_id, "\"done\"").ok()) << "the holder's commit lands";

  // An expired lease is not renewed: held by nobody, it is offered again.
  auto next = store->FetchOrchestrationWorkItem(milliseconds(0));
  ASSERT_TRUE(next.ok() && next->has_value());
  clock_->Advance(std::chrono::seconds(31));
  const uint64_t renewed = sqlite.lease_renewals();
  auto again = store->FetchOrchestrationWorkItem(milliseconds(0));
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->instance_id, "long");
  EXPECT_EQ((*again)->dequeue_count, 2);
  EXPECT_EQ(sqlite.lease_renewals(), renewed);
}

// A lease whose commit failed is not renewed: it runs out and the task is
// offered again (the keeper never holds on to work nobody can finish).
TEST_F(SqliteStoreTest, ALeaseWhoseCommitFailedIsNotRenewedAndRunsOut) {
  SqliteStoreOptions o = Options();
  o.lease_duration = std::chrono::seconds(30);
  std::unique_ptr<Store> store = MustOpen(o);
  ASSERT_NE(store, nullptr);
  auto& sqlite = static_cast<SqliteStore&>(*store);
  std::string execution_id;
  std::optional<ActivityWorkItem> task = LeaseATask(*store, "fails", &execution_id);
  ASSERT_TRUE(task.has_value());

  // The task's completion fails in SQLite (a trigger refuses the delete).
  {
    RawDb raw(o.path);
    raw.Exec("CREATE TRIGGER refuse BEFORE DELETE ON activity_tasks BEGIN SELECT RAISE(ABORT, 'injected'); END");
  }
  EXPECT_FALSE(CompleteTask(*store, *task, execution_id, "1").ok());
  {
    RawDb raw(o.path);
    raw.Exec("DROP TRIGGER refuse");
  }

  // Two thirds of the lease: the keeper leaves it (give it two of its ticks).
  clock_->Advance(std::chrono::seconds(21));
  std::this_thread::sleep_for(milliseconds(4500));
  EXPECT_EQ(sqlite.lease_renewals(), 0u);
  // Past its end: offered again, and this time it completes.
  clock_->Advance(std::chrono::seconds(10));
  auto again = store->FetchActivityWorkItem(milliseconds(0));
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->task.seq, task->task.seq);
  EXPECT_TRUE(CompleteTask(*store, **again, execution_id, "1").ok());
}

TEST_F(SqliteStoreTest, AcknowledgedDurabilityCommitsAndSurvivesReopen) {
  {
    std::unique_ptr<Store> store = MustOpen(Options(Durability::kAcknowledged));
    ASSERT_TRUE(Create(*store, "ack").ok());
    auto item = store->FetchOrchestrationWorkItem(milliseconds(0));
    ASSERT_TRUE(item.ok() && item->has_value());
    OrchestrationUpdate u;
    u.execution_id = "ack-e1";
    u.sync = false;  // rides on the next fsync, or on the OS at close
    std::promise<Status> done;
    store->CompleteOrchestrationWorkItem(**item, u, [&](const Status& s) { done.set_value(s); });
    ASSERT_TRUE(done.get_future().get().ok());
  }
  std::unique_ptr<Store> store = MustOpen(Options());
  EXPECT_EQ(store->GetInstance("ack", false)->status, OrchestrationStatus::kRunning);
}

TEST_F(SqliteStoreTest, UnreadableInboxRowIsSkippedAtOpenAndTheRestLoads) {
  {
    std::unique_ptr<Store> store = MustOpen(Options());
    ASSERT_TRUE(Create(*store, "good").ok());
    ASSERT_TRUE(Create(*store, "bad").ok());
  }
  {
    RawDb raw(Options().path);
    raw.Exec("UPDATE inbox SET event = '{not json' WHERE instance_id = 'bad'");
  }
  std::unique_ptr<Store> store = MustOpen(Options());
  ASSERT_NE(store, nullptr);
  auto item = store->FetchOrchestrationWorkItem(milliseconds(0));
  ASSERT_TRUE(item.ok() && item->has_value());
  EXPECT_EQ((*item)->instance_id, "good");
  item = store->FetchOrchestrationWorkItem(milliseconds(0));
  ASSERT_TRUE(item.ok());
  EXPECT_FALSE(item->has_value());
}

TEST_F(SqliteStoreTest, MessagesToAVanishedInstanceAreDropped) {
  {
    std::unique_ptr<Store> store = MustOpen(Options());
    ASSERT_TRUE(Create(*store, "vanish").ok());
  }
  {
    // Only possible by editing the file behind the store's back.
    RawDb raw(Options().path);
    raw.Exec("DELETE FROM instances WHERE instance_id = 'vanish'");
  }
  std::unique_ptr<Store> store = MustOpen(Options());
  auto item = store->FetchOrchestrationWorkItem(milliseconds(0));
  ASSERT_TRUE(item.ok());
  EXPECT_FALSE(item->has_value());
  store.reset();  // drains the queued delete
  RawDb raw(Options().path);
  EXPECT_EQ(raw.Column("SELECT count(*) FROM inbox"), std::vector<std::string>{"0"});
}

}  // namespace
}  // namespace baton::sqlite
