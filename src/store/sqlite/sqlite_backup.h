// Copies of live SQLite databases with SQLite's online backup API, for
// `baton backup` / `baton restore` (src/app/backup.h).
//
// BackupSqliteDatabase reads the source through a read-only connection of
// its own and copies every page in one step, that is inside one read
// transaction: the copy is the database as of one commit, whatever other
// connections and processes (a running `baton serve`) write meanwhile. In
// WAL mode (every Baton database) a reader never blocks the writer, so a
// server keeps serving while its databases are copied; its checkpoints only
// wait past the copy's snapshot.
//
// Thread-safety: the functions share nothing; call them from any thread.
#pragma once

#include <string>

#include "baton/status.h"

namespace baton::store {

// Writes a consistent copy of the database at `source` to `dest` (a new
// file; an existing one is overwritten), in rollback-journal mode so that the
// copy is one self-contained file. NotFound when `source` does not exist;
// Unavailable (or DataLoss for a corrupt source) on SQLite errors.
Status BackupSqliteDatabase(const std::string& source, const std::string& dest);

// PRAGMA quick_check of the database file at `path`, opened read-only.
// DataLoss naming the first problem when it is not a sound SQLite database.
Status CheckSqliteDatabase(const std::string& path);

// Puts the database at `path` back in WAL mode (how Baton opens it).
Status UseWalMode(const std::string& path);

}  // namespace baton::store
