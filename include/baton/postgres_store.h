// PostgresStore: the Store (store.h) for many Baton nodes on one PostgreSQL
// database.
//
// Every node opens the same database; there are no partitions and no
// membership: each instance and each activity task carries its own lease (a
// fencing token from a sequence, an expiry by the database clock, the
// holder's node id). A fetch claims the row that has been due longest with
// one short statement (FOR UPDATE SKIP LOCKED; a node that keeps a backlog
// takes up to 1 + prefetch_backlog rows in it), so fetchers on many nodes
// never wait for each other and one that loses a candidate takes the next.
// Every completion is one round trip to a server-side function that checks
// the token and the expiry under the row lock and writes nothing when the
// lease was lost (Aborted). The schema, its migrations and the functions are
// src/store/postgres/migrations/*.sql; docs/postgres.md explains them.
//
// Leases are renewed by the store itself, in the background, for as long as
// the work item it handed out is neither completed nor abandoned: an episode
// or an activity may run longer than `lease_duration`; a node that dies or
// stops (SIGSTOP) stops renewing, and its leases expire. Closing the store
// releases the leases it still holds.
//
// Wake-ups: a commit wakes this node's fetchers and waiters at once. Other
// nodes learn of it through LISTEN/NOTIFY, sent after the commit (never
// inside it), coalesced to at most one notification per `notify_interval`;
// a node that found no other node's session at its last look (every 0.5 s,
// with `release_gone_nodes`) sends none, since nobody would receive them,
// until another node starts and announces itself as it begins to listen.
// A notification is a hint: fetchers also poll every `poll_interval` and
// sleep no longer than until the next due timer or lease expiry, and a node
// whose listening connection broke polls at once after reconnecting.
// WaitForInstance re-reads the instance on every notification naming it and
// at least every `poll_interval`.
//
// Durability: acknowledged calls (CreateInstance, SendMessage, purges) and
// work-item commits with `sync` commit with synchronous_commit=on: they
// return after PostgreSQL flushed the WAL. A commit with sync=false uses
// synchronous_commit=off: it is visible at once but a crash of PostgreSQL
// (not of a Baton node) within a fraction of a second can lose it; its work
// item then runs again (activities are at-least-once anyway). If the
// connection breaks while a commit is in flight, the store waits until the
// server has finished that session and reads back whether the commit landed
// (commit_log); it never reports "nothing written" when it may have been.
// Work-item commits queued at once go to PostgreSQL as one transaction (one
// round trip), each still fenced on its own; one that needs sync makes the
// whole batch synchronous (docs/postgres.md, Schema). One submitted while
// the committers are idle runs on the caller's thread (`inline_commits`).
//
// Thread-safety: as Store.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "baton/clock.h"
#include "baton/status.h"
#include "baton/store.h"

namespace baton {

struct PostgresStoreOptions {
  // libpq connection string: "postgresql://user@host:port/db?..." or
  // "host=... dbname=...". Required.
  std::string url;
  // null = the DATABASE clock decides every "now" (lease expiry, due times,
  // created_at). Tests inject a ManualClock; then every call passes its time.
  std::shared_ptr<Clock> clock;
  std::chrono::milliseconds lease_duration{std::chrono::seconds(15)};
  // Longest sleep of an idle fetcher or waiter between polls.
  std::chrono::milliseconds poll_interval{std::chrono::seconds(1)};
  // Send and receive NOTIFY hints. false = polling only (tests of the
  // backstop; a database that forbids LISTEN).
  bool notifications = true;
  std::chrono::milliseconds notify_interval{std::chrono::milliseconds(3)};
  // Most connections this store opens (fetchers, readers, committers).
  int max_connections = 24;
  // Threads committing work items (each with its own connection).
  int commit_threads = 4;
  // A work-item commit submitted while no other commit is queued or running
  // runs on the calling thread, its callback too (CompleteOrchestrationWorkItem
  // and CompleteActivityWorkItem then return after the round trip): one
  // workflow at a time saves two thread hand-offs per step. Under load
  // commits still go to the committer threads and batch there. false =
  // always hand commits (and callbacks) to the committer threads.
  bool inline_commits = true;
  // Commit every work item with synchronous_commit=on, whatever its `sync`.
  bool sync_all = false;
  // A commit that makes work due while this node has idle fetchers leases
  // it to them in the same write (saving a claim round trip each); so does
  // CreateInstance, for a start due now.
  bool prefetch = true;
  // With prefetch: an activity result also leases the instance it wakes to
  // this node when no orchestration fetcher is idle, as long as fewer than
  // this many such instances wait for this node's next fetches (a busy node
  // then runs its instances' next episodes without a claim each, and other
  // nodes still claim the rest). A fetcher's claim likewise takes up to
  // this many more due instances for the node's next fetches (one claim
  // round trip instead of several). 0 = only for idle fetchers, one
  // instance per claim.
  int prefetch_backlog = 2;
  // Recorded in locked_by, and in the application_name of this store's
  // sessions ("baton node <id>") when it is at most 52 characters of
  // [A-Za-z0-9._:@/-]. Give each live node its own. "" = "<hostname>:<pid>".
  std::string node_id;
  // Watch the database's sessions (every 0.5 s): when a node that holds
  // leases, or was seen before, has had no session for 3 s (its process
  // died), release its leases at once instead of waiting for them to expire
  // (docs/postgres.md, "Dead nodes"). Safe even if that node is alive but
  // cut off: its completions are then refused, as after an expiry. Only
  // nodes whose id fits in application_name are watched.
  bool release_gone_nodes = true;
  // How long a call keeps retrying while the database is unreachable, and
  // how long it waits to learn the outcome of a commit whose connection broke.
  std::chrono::milliseconds retry_budget{std::chrono::seconds(30)};
  // Apply the schema migrations at open (OpenPostgresStore). false = refuse
  // to open a database whose schema is not current.
  bool migrate = true;
};

// Connects, applies pending migrations (see `migrate`) and starts the
// store's threads. InvalidArgument: bad options. Unavailable: the database
// cannot be reached. FailedPrecondition: its schema is newer than this build
// (or older, with migrate = false).
Result<std::unique_ptr<Store>> OpenPostgresStore(const PostgresStoreOptions& options);

// Applies the pending migrations of the database at `url` and nothing else
// (`baton migrate`). Several nodes may call it at once: an advisory lock
// serializes them. Returns the schema version before and after.
Result<SchemaVersion> MigratePostgresStore(const std::string& url);

}  // namespace baton
