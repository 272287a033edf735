// PostgresStore's implementation class, private to src/store/postgres/ and its
// tests. The public entry point is OpenPostgresStore (baton/postgres_store.h);
// read that header for the contract, this one for how it is met.
//
// Moving parts:
//
//   * The pool: connections opened on demand up to max_connections, each
//     configured once (idle_in_transaction_session_timeout below the lease).
//     Every store call is ONE statement, a call of a server-side function
//     (migrations/0001_task_hub.sql) in autocommit: no transaction is ever
//     left open across round trips.
//   * Committers: commit_threads threads that run queued work-item commits,
//     so an orchestration thread fetches its next item while its last
//     episode commits; concurrent commits share WAL flushes in PostgreSQL.
//   * Mutate(): runs one mutating call. If the connection breaks during it,
//     the outcome is unknown: it waits until the server has ended that
//     session, then reads commit_log for the call's key. Landed = success;
//     not landed = nothing written, and the call is retried (fenced calls
//     may then report Aborted, truthfully).
//   * Wake-ups: permits per queue (orchestrations, tasks; see FetchQueue). A
//     fetch that finds nothing sleeps only while no permit is left, so a
//     commit between its claim and its sleep is never missed, and one wake-up
//     costs one claim, not one per fetcher. Local commits add permits
//     directly; the listener thread adds them for NOTIFYs from other nodes;
//     the notifier thread sends this node's NOTIFYs after the commits,
//     coalesced.
//   * The keeper thread renews the leases of work items handed out and not
//     yet completed or abandoned, and prunes commit_log.
//
// Lock order: mu_ is a leaf (never held while calling the database or a
// callback); leases_mu_, notify_mu_ and commit_mu_ are leaves too.
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
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "baton/postgres_store.h"
#include "baton/store.h"
#include "store/postgres/pg_connection.h"

namespace baton::pg {

// Connections to one database, opened on demand and reused.
class ConnectionPool {
 public:
  // Every connection it opens counts its statements in `round_trips`.
  ConnectionPool(std::string conninfo, std::string setup, int max_connections,
                 std::shared_ptr<std::atomic<uint64_t>> round_trips = nullptr)
      : conninfo_(std::move(conninfo)),
        setup_(std::move(setup)),
        max_(max_connections),
        round_trips_(std::move(round_trips)) {}

  // A connection borrowed from the pool; returned (or closed, if broken)
  // when destroyed.
  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<PgConnection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = default;
    ~Lease() {
      if (conn_) pool_->Release(std::move(conn_));
    }
    PgConnection* operator->() { return conn_.get(); }
    PgConnection& operator*() { return *conn_; }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<PgConnection> conn_;
  };

  // Unavailable when a new connection cannot be opened; ResourceExhausted
  // when all are busy for `wait`.
  Result<Lease> Acquire(std::chrono::milliseconds wait = std::chrono::seconds(30));
  void Release(std::unique_ptr<PgConnection> conn);
  // Closes the idle connections (the busy ones close when released).
  void Clear();
  // The server process ids of the open connections.
  std::unordered_set<int64_t> Pids();

 private:
  const std::string conninfo_;
  const std::string setup_;
  const int max_;
  const std::shared_ptr<std::atomic<uint64_t>> round_trips_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  std::unordered_set<int64_t> pids_;
  int open_ = 0;
};

// Counters for tests and diagnostics.
struct PostgresStats {
  uint64_t claims = 0;            // claim round trips (fetches), empty or not
  uint64_t empty_claims = 0;      // of which found nothing
  uint64_t commits = 0;           // work-item and client commits sent (a batch counts once)
  uint64_t reads = 0;             // read-only calls other than claims (GetInstance, waits, ...)
  uint64_t round_trips = 0;       // every statement sent on any connection of the store
  uint64_t notifications = 0;     // NOTIFY statements sent
  uint64_t notified = 0;          // NOTIFYs received from other nodes
  uint64_t notifications_skipped = 0;  // not sent: no other node had a session (alone)
  bool alone = false;             // the last look saw no other node: NOTIFYs are not sent
  uint64_t renewals = 0;          // leases extended by the keeper
  uint64_t unknown_outcomes = 0;  // commits whose connection broke, resolved by read-back
  uint64_t inline_commits = 0;    // of `commits`, run on the caller's thread (Submit)
  uint64_t known_waits = 0;       // WaitForInstance calls that skipped their first read
  bool listening = false;         // the LISTEN connection is up
  int peers = 0;                  // other nodes with sessions at the last look
  uint64_t peers_gone = 0;        // nodes seen whose sessions all went away
  uint64_t leases_released = 0;   // their leases released at once (migration 0004)
};

class PostgresStore final : public Store {
 public:
  static Result<std::unique_ptr<PostgresStore>> Open(PostgresStoreOptions options);
  // Finishes queued commits, releases the leases still held, sends the last
  // notifications and closes every connection.
  // REQUIRES: no other thread is inside a method of this store.
  ~PostgresStore() override;

  Status CreateInstance(const CreateInstanceRequest& request) override;
  Status SendMessage(Message message) override;
  Result<InstanceState> GetInstance(const std::string& instance_id, bool include_payloads) override;
  Result<QueryPage> QueryInstances(const InstanceQuery& query) override;
  Result<std::vector<HistoryEvent>> GetHistory(const std::string& instance_id) override;
  Result<std::vector<QueueDepth>> QueueDepths(TimePoint now) override;
  void SetNodeReporter(std::function<NodeReport()> reporter) override;
  Result<std::vector<NodeInfo>> ListNodes() override;
  Result<int> PurgeInstance(const std::string& instance_id) override;
  Result<int> PurgeInstances(const PurgeFilter& filter) override;
  Result<InstanceState> WaitForInstance(const std::string& instance_id, WaitCondition condition,
                                        std::chrono::milliseconds timeout,
                                        bool include_payloads) override;
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

  PostgresStats stats() const;
  const std::string& node_id() const { return options_.node_id; }
  // Threads inside WaitForInstance (tests).
  int waiting() const;
  // Orchestration fetchers asleep waiting for work (tests).
  int idle_orchestration_fetchers() const;

 private:
  // What a mutating call returned, or that it landed without our seeing the
  // result (the connection broke; commit_log says it committed).
  struct Outcome {
    PgResult result;
    bool read_back = false;
  };

  // One lease handed out by a fetch and not yet completed or abandoned.
  struct HeldLease {
    bool task = false;
    std::string instance_id;  // of an orchestration work item
    int64_t seq = 0;          // of an activity task
    int64_t expires = 0;      // in LocalMicros()
    int64_t renew_at = 0;     // in LocalMicros()
  };

  struct Waiter {
    std::condition_variable cv;
    bool signaled = false;
    WaitCondition condition = WaitCondition::kCompleted;
    bool include_payloads = false;
    // The state that met `condition`, handed over by a commit of this node
    // (KnownStatus::state): returned without reading it again.
    std::optional<InstanceState> state;
  };

  // Shared with the clock's subscription (see SqliteStore::WakeHub).
  struct WakeHub {
    std::mutex mu;
    PostgresStore* store = nullptr;
  };

  explicit PostgresStore(PostgresStoreOptions options);
  Status Start();

  // "Now" passed to the database: the injected clock, or NULL (the
  // database's own clock).
  std::optional<int64_t> NowParam() const;
  // A visible_at for the database: NULL when due now (the database clock
  // decides), else the time in microseconds.
  std::optional<int64_t> VisibleParam(TimePoint visible_at) const;
  // The clock of lease renewal: the injected clock, else the monotonic one.
  int64_t LocalMicros() const;
  int64_t NewClientKey();

  Result<Outcome> Mutate(const Statement& statement, const Params& params, int64_t commit_key,
                         std::string_view what);
  // True: the call keyed `commit_key` committed; false: it did not.
  Result<bool> ResolveOutcome(const std::string& session, int64_t commit_key,
                              std::chrono::steady_clock::time_point deadline);
  // A read-only call, retried once on a fresh connection if the first broke.
  // `counted` false: not one of stats().reads (the keeper's own reads:
  // pruning, watching the nodes).
  Result<PgResult> Read(const Statement& statement, const Params& params, std::string_view what,
                        bool counted = true);
  Result<PgResult> ReadSql(const std::string& sql, const Params& params, std::string_view what,
                           bool counted = true);

  // Queues `job` for a committer thread.
  // One commit for the committer threads. `params` runs on the committer
  // thread (what the idle fetchers want is read at commit time); `finish`
  // gets the outcome (and does the lease bookkeeping and the callback).
  struct CommitJob {
    const Statement* statement = nullptr;
    std::function<Params()> params;
    int64_t commit_key = 0;
    std::string what;
    bool sync = false;
    std::string lock_key;  // the instance it locks first: the batch's lock order
    size_t bytes = 0;      // of its parameters, about
    // The lease bookkeeping and wake-ups; returns what `done` gets.
    std::function<Status(Result<Outcome>)> finish;
    CommitCallback done;
  };
  // Runs `job` at once on the calling thread, its callback included, when
  // no other commit is queued or running (one workflow at a time: the
  // hand-off to a committer thread would be a thread wake-up on the path of
  // every step), else queues it for a committer thread, where it may join a
  // batch.
  void Submit(CommitJob job);
  void CommitterLoop();
  // finish(), then `done`.
  void Finish(CommitJob& job, Result<Outcome> outcome);
  // Several queued commits in one transaction and one round trip; each is
  // still fenced on its own (a lost lease makes that call write nothing and
  // answer 'aborted'). A failed batch falls back to one call each.
  void CommitBatch(std::vector<CommitJob>& jobs);

  // After a commit: wakes this node's fetchers and waiters, and queues the
  // NOTIFY for other nodes. `known` names an instance of `changed` whose new
  // status this node knows (an episode it committed): its local waiters are
  // woken only if that status is what they wait for, saving them a read.
  // `state`, when set, is the instance's whole state as committed (without
  // payloads): waiters without payloads that it satisfies get it and skip
  // their read.
  struct KnownStatus {
    std::string instance_id;
    OrchestrationStatus status;
    std::optional<InstanceState> state;
  };
  void Announce(bool orchestrations, int tasks, const std::vector<std::string>& changed,
                const std::optional<KnownStatus>& known = std::nullopt);
  // A commit whose effects are unknown (read back): wake everyone.
  void AnnounceEverything();
  // A queue of this node's fetchers: a fetcher sleeps only while there is
  // no permit; each wake-up adds permits, and a fetcher that takes one claims
  // again. A permit is added only after the work it announces is committed,
  // so a fetcher that takes it sees that work (or another fetcher took it).
  // Only fetchers inside a Fetch call can miss work, so there are never more
  // permits than they: while every thread is busy running what it fetched,
  // a commit adds none (the next fetch claims afresh anyway).
  //
  // A claim that finds nothing marks the queue quiet until the next due time
  // (at most poll_interval): until then, or until work is announced (the
  // epoch moves), a blocking fetch waits for a permit without asking the
  // database again.
  struct FetchQueue {
    std::condition_variable cv;
    int permits = 0;
    int sleepers = 0;
    int inside = 0;      // threads inside a Fetch call
    uint64_t epoch = 0;  // wake-ups so far
    uint64_t quiet_epoch = UINT64_MAX;
    std::chrono::steady_clock::time_point quiet_until;
    std::chrono::steady_clock::time_point last_fetch;  // when a Fetch call last began
    // Claims in flight: one of them may take, for this node's backlog, the
    // very instance another fetcher of the node was about to claim; that
    // fetcher waits for them (claims_done) and takes what they queued.
    int claiming = 0;
    int claim_waiters = 0;
    std::condition_variable claims_done;
  };
  // Counts a thread inside a Fetch call of `queue` for its scope.
  class InsideFetch;
  // `count` permits (one per new work item), or with kWakeAll one for every
  // fetcher inside (work of unknown amount). `in_database` false: the work
  // was leased to this node and queued in `prefetched` (a claim would not
  // find it), so the queue's epoch stays and a fetcher that found nothing
  // keeps waiting for a permit instead of claiming again.
  static constexpr int kWakeAll = -1;
  void Wake(FetchQueue& queue, int count, bool in_database = true);
  void WakeOrchestrations(bool all) { Wake(orchestrations_, all ? kWakeAll : 1); }
  void WakeTasks(bool all) { Wake(tasks_, all ? kWakeAll : 1); }
  void SignalWaiters(const std::vector<std::string>& ids,
                     const std::optional<KnownStatus>& known = std::nullopt);
  void SignalAllWaiters();
  // Takes a permit of `queue`, sleeping up to `sleep` for one. False when
  // the time passed or the store was interrupted without one.
  bool TakePermit(FetchQueue& queue, std::chrono::steady_clock::duration sleep);
  // How long an idle fetcher may wait before claiming again: until the next
  // due time, at most poll_interval (and the injected clock's MaxSleep).
  std::chrono::steady_clock::duration IdlePeriod(std::optional<int64_t> next_due_in_us) const;
  // The fetch loop shared by both queues: `claim` makes one claim round
  // trip, returning an item or setting how long until the next one is due.
  template <typename Item, typename Claim>
  Result<std::optional<Item>> Fetch(FetchQueue& queue, std::deque<Item>& prefetched,
                                    std::chrono::milliseconds max_wait, Claim claim);
  // Work a commit leased to this node ahead of a fetch ("prefetch"): a
  // commit that makes work due while this node has idle fetchers leases it
  // in the same write, saving those fetchers a claim round trip (and the
  // database a row version). PrefetchWanted is how many idle fetchers have
  // nothing prefetched for them; with `backlog`, it is at least `backlog`
  // minus what is queued already while this node fetches from `queue` at all
  // (a fetch began within poll_interval): a busy node then keeps up to that
  // many items leased for its next fetches. Only a few, so other nodes still
  // find the rest to claim; Interrupt() gives them back.
  template <typename Item>
  int PrefetchWanted(FetchQueue& queue, const std::deque<Item>& prefetched, int backlog = 0);
  // The instance work item in `r` (claim columns from `at`, the history
  // generation in `generation_column`), leased at `claimed_at`
  // (LocalMicros); its lease is tracked.
  // Rows [first_row, end_row) are the instance's (end_row -1: to the end).
  Result<OrchestrationWorkItem> TakeClaimedInstance(const PgResult& r, int at,
                                                    int generation_column, int64_t claimed_at,
                                                    int first_row = 0, int end_row = -1);
  // Tasks leased by a commit (o_claimed JSON): tracked and queued for the
  // idle activity fetchers.
  void TakeClaimedTasks(std::string_view json, int64_t claimed_at);
  int64_t LeaseMicros() const;
  // After a CreateInstance whose outcome was read back: releases the lease
  // the start may have given this node on its new instance (nobody tracks it).
  void ReleaseStartLease(const std::string& instance_id);

  void TrackLease(uint64_t token, const std::string& instance_id, std::optional<uint64_t> task_seq,
                  int64_t claimed_at_local, TimePoint locked_until);
  void ForgetLease(uint64_t token);

  void ListenerLoop();
  void NotifierLoop();
  void KeeperLoop();
  void RenewLeases();
  // Looks at the database's sessions (application_name 'baton node <id>')
  // and at the holders of live leases: a node seen before or holding leases
  // whose sessions have all been gone for kPeerGoneFor gets its leases
  // released (baton_release_node_leases). Keeper thread only.
  void WatchPeers();
  // Upserts this node's row of the nodes table (migrations/0009_nodes.sql)
  // with what the reporter says. Keeper thread only (and Start, before it).
  void Heartbeat(bool starting);
  void OnClockJump();

  PostgresStoreOptions options_;
  std::shared_ptr<Clock> clock_;  // null = the database clock
  std::unique_ptr<ConnectionPool> pool_;
  std::string setup_sql_;
  int clock_subscription_ = 0;
  std::shared_ptr<WakeHub> wake_hub_;
  std::atomic<bool> stopping_{false};

  // Work queues: generations and sleepers.
  mutable std::mutex mu_;
  FetchQueue orchestrations_;
  FetchQueue tasks_;
  std::deque<OrchestrationWorkItem> orch_prefetched_;
  std::deque<ActivityWorkItem> task_prefetched_;
  bool interrupted_ = false;
  std::unordered_map<std::string, std::vector<Waiter*>> waiters_;
  // The status of instances this node started while alone_, as its own
  // commits left it (SignalWaiters keeps it; any change it did not make
  // itself, a NOTIFY naming the instance or one for "any instance", removes
  // it; terminal ones are removed). Lets WaitForInstance skip the read of
  // an instance that has not reached its condition. At most
  // kMaxKnownStatuses entries (instances that run for long stay in it).
  static constexpr size_t kMaxKnownStatuses = 65536;
  std::unordered_map<std::string, OrchestrationStatus> known_status_;

  // Committers.
  std::mutex commit_mu_;
  std::condition_variable commit_cv_;
  std::deque<CommitJob> commit_queue_;
  // Work-item commits queued, running on a committer or running inline
  // (not their callbacks).
  int commits_in_flight_ = 0;
  bool committers_stopping_ = false;
  std::vector<std::thread> committers_;

  // Leases held (keeper).
  std::mutex leases_mu_;
  std::condition_variable keeper_cv_;
  std::map<uint64_t, HeldLease> held_;
  std::thread keeper_;
  // Other nodes seen by WatchPeers (with sessions or holding leases), and
  // since when all their sessions are gone (nullopt: present at the last
  // look). Keeper thread only.
  std::map<std::string, std::optional<std::chrono::steady_clock::time_point>> peers_;
  // What this node reports at each heartbeat (SetNodeReporter); the keeper
  // heartbeats at once when heartbeat_now_ (guarded by leases_mu_).
  std::mutex reporter_mu_;
  std::function<NodeReport()> reporter_;
  bool heartbeat_now_ = false;

  // Notifications.
  std::mutex notify_mu_;
  std::condition_variable notify_cv_;
  bool notify_orch_ = false;
  bool notify_task_ = false;
  std::set<std::string> notify_changed_;
  bool notify_all_changed_ = false;
  std::atomic<int> notifier_pid_{0};
  std::atomic<int> listener_pid_{0};
  std::thread notifier_;
  std::thread listener_;
  int listener_wake_fd_ = -1;  // eventfd: stops the listener's poll()

  std::atomic<bool> listening_{false};
  // No other node had a session at the keeper's last look (WatchPeers), and
  // none has notified since: the notifier sends nothing. The listener clears
  // it on any notification from another node (a starting node sends one).
  std::atomic<bool> alone_{false};
  std::atomic<uint64_t> heard_from_others_{0};
  std::atomic<uint64_t> notifications_skipped_{0};
  std::atomic<uint64_t> empty_claims_{0};
  std::atomic<uint64_t> claims_{0}, commits_{0}, reads_{0}, notifications_{0}, notified_{0}, renewals_{0},
      unknown_outcomes_{0}, peers_gone_{0}, leases_released_{0}, inline_commits_{0},
      known_waits_{0};
  std::atomic<int> peers_seen_{0};
  // Shared with every connection of the store (PgConnection::CountRoundTrips).
  std::shared_ptr<std::atomic<uint64_t>> round_trips_ = std::make_shared<std::atomic<uint64_t>>(0);
};

// The counters of a store made by OpenPostgresStore.
// REQUIRES: `store` is a PostgresStore.
inline PostgresStats GetPostgresStats(Store& store) {
  return static_cast<PostgresStore&>(store).stats();
}

// Applies the pending migrations on `conn` (under an advisory lock).
Result<SchemaVersion> Migrate(PgConnection& conn);
// The version this build's migrations reach.
int LatestSchemaVersion();

}  // namespace baton::pg
