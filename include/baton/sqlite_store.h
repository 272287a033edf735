// SqliteStore: the embedded, zero-set-up Store (store.h) on one SQLite file.
//
// One process owns the file at a time (an advisory lock on "<path>.lock";
// a second opener gets FailedPrecondition naming the holder). The database
// runs in WAL mode with one writer thread that group-commits: every write
// queued while a transaction is in flight goes into the next transaction, so
// concurrent commits share one fsync. Readers use their own connections and
// never block the writer. The schema is versioned: the migrations in
// src/store/sqlite/migrations/ are applied at open (and by MigrateSqliteStore)
// and recorded in the file's schema_migrations table.
//
// Work queues (which instance has visible messages, which activity tasks are
// waiting) are mirrored in memory and rebuilt from the file at open, so a
// fetch never scans the database and a fetcher is woken the moment a commit
// makes work visible. Leases therefore live in memory: they end with the
// process, which is also the only process that could hold them.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "baton/clock.h"
#include "baton/status.h"
#include "baton/store.h"

namespace baton {

enum class Durability {
  // Every commit is fsync'ed before it is acknowledged or its effects are
  // visible (SQLite synchronous=FULL for every transaction).
  kFull,
  // Acknowledged client writes and work-item commits that ask for it
  // (OrchestrationUpdate::sync, e.g. an orchestration's completion) are
  // fsync'ed; intermediate episode and activity commits ride on the next
  // fsync. Survives SIGKILL with nothing lost; a power cut may re-run
  // in-flight episodes (activities are at-least-once in any mode).
  kAcknowledged,
};

struct SqliteStoreOptions {
  std::string path;  // database file; created with its schema when missing
  std::shared_ptr<Clock> clock;  // null = SystemClock()
  // How long a fetched work item stays leased to its holder. The store
  // renews the leases it holds (checked every 1/6 of this, at most every
  // 2 s, once a third has passed), so a holder that runs longer — a long
  // activity, in process or in an SDK worker — keeps its item until it
  // completes or abandons it; an expired lease is never renewed.
  std::chrono::milliseconds lease_duration{std::chrono::minutes(2)};
  Durability durability = Durability::kFull;
  int max_batch = 1024;  // most writes per group-committed transaction
  // Group commit: when the writer was idle, the previous transaction held
  // two or more writes (several callers writing at once), fewer are queued
  // now and the batch will be fsync'ed, it waits up to this long before it
  // commits, so that one fsync covers more writes (fewer fsyncs and wake-ups
  // per write, the same acknowledgement rules). The wait ends as soon as as
  // many writes are queued as the previous transaction had. A writer that
  // sees one write at a time never waits (only the first write after a
  // shared transaction may), nor does one that is behind; after a wait that
  // ran its full length it skips the next 1, 3, 7, … up to 63 chances to
  // wait (reset by the first wait cut short), so callers that take turns,
  // each waiting for the other's commit, are not slowed.
  // 0 = never; at most 100 ms.
  std::chrono::microseconds group_commit_wait{500};
};

// Opens (creating if needed) the store at options.path and applies its
// pending migrations. FailedPrecondition: another process holds the file, or
// its schema is newer than this build. Unavailable/Internal: SQLite could not
// open or migrate the file (message names the cause).
Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options);

// Applies the pending migrations of the file at `path` (created if missing)
// and nothing else (`baton migrate`). Returns the schema version before and
// after. FailedPrecondition: the file's schema is newer than this build.
Result<SchemaVersion> MigrateSqliteStore(const std::string& path);

}  // namespace baton
