// SqliteStore's implementation class, private to src/store/sqlite/ and its
// tests. The public entry point is OpenSqliteStore (baton/sqlite_store.h);
// read that header for the contract, this one for how it is met.
//
// Moving parts:
//
//   * The file lock: flock(LOCK_EX) on "<path>.lock", which holds the owner's
//     pid, so one process owns the file and therefore all leases.
//   * The writer: one thread with its own connection. Every mutation is a
//     WriteOp queued to it. The writer takes up to max_batch queued ops, runs
//     them in ONE transaction (each in its own SAVEPOINT, so a failing op
//     rolls back alone), commits (one fsync for the whole batch), then
//     publishes each op's in-memory effects and finally runs the callbacks.
//   * Readers: a small pool of connections for GetInstance, QueryInstances,
//     GetHistory and the instance row of a fetch. WAL lets them read the last
//     committed state while the writer writes.
//   * Work queues, guarded by mu_: per instance its pending messages in seq
//     order and its lease; a FIFO of instances that are ready (a visible
//     message, no lease); a min-heap of future due times (timers, delayed
//     starts, abandon delays) and an ordered set of lease expiries. The same
//     for activity tasks. Rebuilt from the inbox and activity_tasks tables at
//     open; changed only by publishing a committed op, by fetches, abandons
//     and lease expiry, so memory never shows work that is not on disk.
//
// Lock order: wake_hub_->mu, then mu_. writer_mu_ and readers_mu_ are
// leaves: nothing else is locked while one of them is held. Ops run by the
// writer take mu_ briefly; the writer holds no lock while running SQL.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "baton/sqlite_store.h"
#include "baton/store.h"
#include "store/sqlite/sqlite_connection.h"

namespace baton::sqlite {

// Group-commit counters, for tests and diagnostics.
struct WriterStats {
  uint64_t transactions = 0;    // committed batches
  uint64_t ops = 0;             // ops the writer ran, committed or failed
  uint64_t lingered = 0;        // batches that waited for more (group_commit_wait)
  uint64_t linger_filled = 0;   // of those, waits cut short: as many writes came as the last batch had
  uint64_t linger_skipped = 0;  // waits not begun, after waits that ran their full length (backoff)
};

class SqliteStore final : public Store {
 public:
  // Use OpenSqliteStore; Open fills in the defaults of `options`.
  static Result<std::unique_ptr<SqliteStore>> Open(SqliteStoreOptions options);

  // Drains queued writes, stops the writer, closes the file and releases the
  // lock. REQUIRES: no other thread is inside a method of this store.
  ~SqliteStore() override;

  Status CreateInstance(const CreateInstanceRequest& request) override;
  Status SendMessage(Message message) override;
  Result<InstanceState> GetInstance(const std::string& instance_id, bool include_payloads) override;
  Result<QueryPage> QueryInstances(const InstanceQuery& query) override;
  Result<std::vector<HistoryEvent>> GetHistory(const std::string& instance_id) override;
  Result<std::vector<QueueDepth>> QueueDepths(TimePoint now) override;
  void SetNodeReporter(std::function<NodeReport()> reporter) override;
  // This process alone ("<hostname>:<pid>"), always up, with the leases of
  // its work items; the reporter runs on the caller's thread.
  Result<std::vector<NodeInfo>> ListNodes() override;
  Result<int> PurgeInstance(const std::string& instance_id) override;
  Result<int> PurgeInstances(const PurgeFilter& filter) override;
  Result<InstanceState> WaitForInstance(const std::string& instance_id, WaitCondition condition,
                                        std::chrono::milliseconds timeout,
                                        bool include_payloads) override;
  // Native: a creation is one write op whose callback the writer calls; a
  // wait is checked on the writer thread, with its connection, right after
  // each commit that changed the instance's status (no thread waits).
  bool SupportsAsyncClientCalls() const override { return true; }
  void CreateInstanceAsync(const CreateInstanceRequest& request, CommitCallback done) override;
  uint64_t WaitForInstanceAsync(const std::string& instance_id, WaitCondition condition,
                                bool include_payloads, WaitCallback done) override;
  void CancelWait(uint64_t wait) override;
  Result<std::optional<OrchestrationWorkItem>> FetchOrchestrationWorkItem(
      std::chrono::milliseconds max_wait) override;
  void CompleteOrchestrationWorkItem(const OrchestrationWorkItem& item, OrchestrationUpdate update,
                                     CommitCallback done) override;
  void AbandonOrchestrationWorkItem(const OrchestrationWorkItem& item,
                                    std::chrono::milliseconds delay) override;
  Result<std::optional<ActivityWorkItem>> FetchActivityWorkItem(
      std::chrono::milliseconds max_wait) override;
  void CompleteActivityWorkItem(const ActivityWorkItem& item, Message result,
                                CommitCallback done) override;
  void AbandonActivityWorkItem(const ActivityWorkItem& item,
                               std::chrono::milliseconds delay) override;
  void Interrupt() override;
  void ResumeFetching() override;

  // Leases the keeper extended since the store opened.
  uint64_t lease_renewals() const { return renewals_.load(std::memory_order_relaxed); }

  WriterStats writer_stats() const {
    return {transactions_.load(std::memory_order_relaxed), ops_.load(std::memory_order_relaxed),
            lingered_.load(std::memory_order_relaxed), linger_filled_.load(std::memory_order_relaxed),
            linger_skipped_.load(std::memory_order_relaxed)};
  }

 private:
  // One mutation, run by the writer thread.
  struct WriteOp {
    // Runs the op's SQL inside its SAVEPOINT on the writer connection. A
    // non-OK status rolls back this op alone.
    std::function<Status(Connection&)> execute;
    // After COMMIT, with mu_ held: make the op's effects visible in memory.
    std::function<void()> publish;
    // After a rollback of this op or of its batch, with mu_ held: undo any
    // in-memory reservation `execute` made.
    std::function<void()> discard;
    CommitCallback done;
    bool sync = true;  // needs synchronous=FULL
  };

  struct PendingMessage {
    Message message;
    int dequeue_count = 0;
  };

  // The in-memory queue of one instance. Exists while the instance has
  // pending messages or a lease.
  struct InstanceQueue {
    std::map<uint64_t, PendingMessage> messages;  // by seq
    bool in_ready = false;                        // listed in ready_
    bool locked = false;
    bool committing = false;  // a Complete for this lease is in the writer
    // The keeper may renew the lease: from the fetch until a commit of it
    // is attempted (a failed one leaves the lease to run out, as before).
    bool renewable = false;
    uint64_t lock_token = 0;
    TimePoint locked_until;
    // This lease's entry in orch_leases_, while lease_listed. Expiry unlists
    // a lease whose commit is in flight; that commit then ends it.
    std::multimap<TimePoint, std::string>::iterator lease_it;
    bool lease_listed = false;
    TimePoint not_before;  // not fetched before this (abandon delay)
  };

  struct TaskEntry {
    ActivityTask task;
    int dequeue_count = 0;
    bool in_ready = false;
    bool locked = false;
    bool committing = false;
    bool renewable = false;  // as InstanceQueue's
    uint64_t lock_token = 0;
    TimePoint locked_until;
    std::multimap<TimePoint, uint64_t>::iterator lease_it;  // as InstanceQueue's
    bool lease_listed = false;
    TimePoint not_before;
  };

  template <typename Key>
  struct DueEntry {
    TimePoint at;
    Key key;
    bool operator>(const DueEntry& o) const { return at > o.at; }
  };
  template <typename Key>
  using DueHeap =
      std::priority_queue<DueEntry<Key>, std::vector<DueEntry<Key>>, std::greater<DueEntry<Key>>>;

  struct Waiter {
    std::condition_variable cv;
    bool signaled = false;
  };

  // A WaitForInstanceAsync call, registered until it ends.
  struct AsyncWaiter {
    uint64_t id = 0;
    std::string instance_id;
    WaitCondition condition = WaitCondition::kCompleted;
    bool include_payloads = false;
    WaitCallback done;
  };

  // Shared with the clock's subscription so that a jump notified after the
  // store is gone finds `store` null instead of a dangling pointer.
  struct WakeHub {
    std::mutex mu;
    SqliteStore* store = nullptr;
  };

  // The committed status and history length of an instance row.
  struct RowHead {
    OrchestrationStatus status = OrchestrationStatus::kPending;
    int64_t history_size = 0;
    std::string execution_id;
  };

  // An instance replaced or purged: its queue, lease and tasks go.
  struct Wipe {
    std::string instance_id;
  };
  // One in-memory consequence of a committed op, applied in the order the op
  // wrote them so that memory ends up as the database does.
  using Step = std::variant<Wipe, Message, ActivityTask>;
  struct Effects {
    std::vector<Step> steps;
    std::vector<std::string> status_changed;  // wake WaitForInstance waiters
  };

  explicit SqliteStore(SqliteStoreOptions options);

  Status Initialize();
  Status LoadQueues();

  // ---- Writer ----
  void Enqueue(WriteOp op);
  // Enqueues a sync op and blocks until it is committed or failed.
  Status RunSync(std::function<Status(Connection&)> execute, std::function<void()> publish);
  void WriterLoop();
  void RunBatch(std::vector<WriteOp>& batch);
  Status ApplySynchronous(bool full);

  // Helpers run by ops inside the write transaction (writer thread only).
  Result<std::optional<RowHead>> ReadHead(Connection& c, const std::string& id);
  Status DeleteInstanceRows(Connection& c, const std::string& id);
  Status InsertInstanceRow(Connection& c, const events::ExecutionStarted& e, TimePoint now);
  // The row of a durable entity, created by the first message sent to it.
  Status CreateEntityRow(Connection& c, const std::string& instance_id, TimePoint now);
  // Assign the next seq to the message/task and insert it.
  Status InsertInbox(Connection& c, Message& message, const std::string& event_json);
  Status InsertTask(Connection& c, ActivityTask& task);
  // Inserts `message` into its target's inbox. ExecutionStarted creates (or
  // replaces a terminal) target, or answers the parent with
  // InstanceAlreadyExists; other messages to a missing instance are dropped.
  Status DeliverMessage(Connection& c, Message message, const std::string& event_json,
                        TimePoint now, Effects* effects);

  // ---- Readers ----
  class ReaderLease;
  Result<std::unique_ptr<Connection>> AcquireReader();
  void ReleaseReader(std::unique_ptr<Connection> conn);
  Result<std::optional<InstanceState>> ReadInstance(Connection& c, const std::string& id,
                                                    bool include_payloads, int64_t* history_size,
                                                    int64_t* history_generation = nullptr);

  // Removes the leased messages of a work item whose instance row is gone.
  void DropOrphanMessages(const OrchestrationWorkItem& item);

  // ---- Work queues (REQUIRES: mu_ held) ----
  void PublishEffects(Effects& effects, TimePoint now);
  void ApplySteps(std::vector<Step>& steps, TimePoint now);
  void AddMessage(Message message, TimePoint now);
  void AddTask(ActivityTask task, TimePoint now);
  void WipeInstance(const std::string& id);
  void RemoveTask(uint64_t seq);
  // Puts the instance/task on its ready FIFO if it is unleased and has
  // visible work; forgets an instance queue that is empty and unleased.
  void ReevaluateInstance(const std::string& id, TimePoint now);
  void ReevaluateTask(uint64_t seq, TimePoint now);
  void ScheduleInstance(const std::string& id, TimePoint at);
  void ScheduleTask(uint64_t seq, TimePoint at);
  void WakeSleeperBefore(const std::multiset<TimePoint>& sleepers, std::condition_variable& cv,
                         TimePoint at);
  void UnlockInstance(InstanceQueue& q);
  void UnlockTask(TaskEntry& t);
  // Acts on due times and expired leases up to `now`.
  void PromoteInstances(TimePoint now);
  void PromoteTasks(TimePoint now);
  std::optional<TimePoint> NextInstanceDue() const;
  std::optional<TimePoint> NextTaskDue() const;
  bool TakeReadyInstance(TimePoint now, OrchestrationWorkItem* item);
  bool TakeReadyTask(TimePoint now, ActivityWorkItem* item);
  void NotifyStatusChanged(const std::string& id);
  // Reads the instance of each wait in `waits` on `c` (no transaction
  // open) and ends those that reached their condition. Without mu_.
  void CheckAsyncWaits(Connection& c, const std::vector<std::shared_ptr<AsyncWaiter>>& waits);
  // Whether `state` is what a wait for `condition` waits for.
  static bool Reached(const InstanceState& state, WaitCondition condition);
  // Removes wait `id` from async_waiters_ and async_by_id_ and returns it;
  // null when it is not registered (ended or cancelled). REQUIRES: mu_.
  std::shared_ptr<AsyncWaiter> TakeAsyncWaitLocked(uint64_t id);
  // Ends wait `w` with `result` unless it ended already (takes mu_).
  void EndAsyncWait(const std::shared_ptr<AsyncWaiter>& w, Result<InstanceState> result);
  void OnClockJump();  // takes mu_ itself
  // Sleeps on `cv` until notified, the due time `due`, MaxSleep, or the real
  // time `deadline`, whichever comes first.
  void WaitForWork(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                   std::multiset<TimePoint>& sleepers, std::optional<TimePoint> due, TimePoint now,
                   std::chrono::steady_clock::time_point deadline);

  SqliteStoreOptions options_;
  std::shared_ptr<Clock> clock_;
  int lock_fd_ = -1;
  int clock_subscription_ = 0;
  std::shared_ptr<WakeHub> wake_hub_;
  TimePoint opened_at_;  // by clock_ (ListNodes' started_at)
  std::mutex reporter_mu_;
  std::function<NodeReport()> reporter_;

  // Writer state. writer_conn_ and next_seq_ belong to the writer thread
  // (and to Initialize before it starts).
  std::unique_ptr<Connection> writer_conn_;
  uint64_t next_seq_ = 1;
  int current_synchronous_ = -1;  // 1 = NORMAL, 2 = FULL
  std::mutex writer_mu_;
  std::condition_variable writer_cv_;
  std::deque<WriteOp> writer_queue_;
  bool writer_stopping_ = false;
  std::thread writer_thread_;
  std::atomic<uint64_t> transactions_{0};
  std::atomic<uint64_t> lingered_{0};
  std::atomic<uint64_t> linger_filled_{0};
  std::atomic<uint64_t> linger_skipped_{0};
  std::atomic<uint64_t> ops_{0};
  // Group commit's wait (WriterLoop): while the writer waits, an enqueue
  // wakes it only once linger_target_ writes are queued. Under writer_mu_.
  bool lingering_ = false;
  size_t linger_target_ = 0;
  // Backoff after waits that ran their full length: the next linger_skip_
  // chances are not taken; linger_backoff_ grows 1, 3, 7, … 63 and is reset
  // by a wait cut short. Writer thread only.
  uint32_t linger_backoff_ = 0;
  uint32_t linger_skip_ = 0;

  // Idle reader connections.
  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;

  // Work queues and leases.
  std::mutex mu_;
  std::condition_variable orch_cv_;
  std::condition_variable task_cv_;
  bool interrupted_ = false;
  uint64_t next_token_ = 1;
  std::unordered_map<std::string, InstanceQueue> instances_;
  std::deque<std::string> ready_;
  DueHeap<std::string> orch_due_;
  std::multimap<TimePoint, std::string> orch_leases_;
  std::unordered_map<uint64_t, TaskEntry> tasks_;
  std::unordered_map<std::string, std::set<uint64_t>> tasks_by_instance_;
  std::deque<uint64_t> task_ready_;
  DueHeap<uint64_t> task_due_;
  std::multimap<TimePoint, uint64_t> task_leases_;
  // Clock times at which sleeping fetchers will wake; a new due time earlier
  // than all of them wakes one fetcher so it re-plans.
  std::multiset<TimePoint> orch_sleepers_;
  std::multiset<TimePoint> task_sleepers_;
  std::unordered_map<std::string, std::vector<Waiter*>> waiters_;
  // Asynchronous waits by instance and by id; those whose instance changed
  // status in a commit wait in async_to_check_ for the writer to read them
  // (CheckAsyncWaits) once mu_ is released.
  std::unordered_map<std::string, std::vector<std::shared_ptr<AsyncWaiter>>> async_waiters_;
  std::unordered_map<uint64_t, std::shared_ptr<AsyncWaiter>> async_by_id_;
  std::vector<std::shared_ptr<AsyncWaiter>> async_to_check_;
  uint64_t next_async_wait_ = 0;
  size_t last_batch_ = 0;  // writes in the previous transaction (writer thread only)

  // The lease keeper (KeeperLoop): every lease this process holds (a locked
  // instance or task: held by a worker thread, or by an SDK worker through
  // the sidecar until it answers or its stream ends) that has less than two
  // thirds of lease_duration left is extended to lease_duration from now, as
  // PostgreSQL's keeper does for a node's leases. So a work item held longer
  // than the lease (a long activity) is not offered to a second worker while
  // its holder runs; a lease that already expired is not renewed.
  void KeeperLoop();
  void RenewHeldLeases();
  std::thread keeper_thread_;
  std::condition_variable keeper_cv_;  // with mu_
  bool keeper_stopping_ = false;       // guarded by mu_
  std::atomic<uint64_t> renewals_{0};
};

// The group-commit counters of a store made by OpenSqliteStore.
// REQUIRES: `store` is a SqliteStore.
inline WriterStats GetWriterStats(Store& store) {
  return static_cast<SqliteStore&>(store).writer_stats();
}

}  // namespace baton::sqlite
