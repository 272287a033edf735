// `baton backup FILE` and `baton restore FILE`: every database and key file
// of a SQLite data dir in one archive, taken while the server runs.
//
// Backup reads the data dir directly (run it on the server's machine, as the
// server's user): each SQLite database (the task hub, tenants and keys, job
// logs, secrets) is copied with SQLite's online backup API in one read
// transaction, so each copy is that database as of one commit, and the
// server keeps serving meanwhile (store/sqlite/sqlite_backup.h). Everything a
// start acknowledged before the backup began is in the copy: an
// acknowledgement means the commit is on disk. The databases are copied one
// after the other (task hub first), each consistent on its own. The key files
// (<name>.key: the key that seals secrets, the job-token key, the deployment
// id, the sample tenant's key) and node-id go in as they are.
//
// The archive is a POSIX tar file (`tar tvf` lists it) whose first member,
// baton-backup.json, names every member with its size and SHA-256. It holds
// the key that opens the secrets in it: it is written 0600, and it must be
// kept like the data dir itself.
//
// Restore checks the whole archive first (names, sizes, digests, each
// database's integrity) and writes nothing when any check fails; it refuses
// while a server holds the data dir's task hub, and into a data dir that
// already has one unless `force`. A PostgreSQL deployment is backed up with
// pg_dump instead (docs/postgres.md#backup-and-restore).
#pragma once

#include <string>

#include "baton/status.h"

namespace baton::app {

struct BackupSummary {
  int databases = 0;
  int key_files = 0;
  int64_t bytes = 0;
};

// Writes the archive of `data_dir` to `file` (atomically: a temporary file
// renamed into place). `hub_path` is the task hub database (normally
// <data_dir>/baton.db). NotFound when there is no task hub; Unavailable on
// I/O errors.
Result<BackupSummary> Backup(const std::string& data_dir, const std::string& hub_path, const std::string& file);

// Restores the archive `file` into `data_dir` (created if missing), the task
// hub going to `hub_path`. InvalidArgument / DataLoss for an archive that is
// not a sound Baton backup (nothing is written then); FailedPrecondition while
// a server uses the data dir, or when it holds a task hub and !force.
Result<BackupSummary> Restore(const std::string& file, const std::string& data_dir, const std::string& hub_path,
                              bool force);

}  // namespace baton::app
