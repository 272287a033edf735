// StoreReader: a read-only view of a task hub, for tools that inspect a live
// deployment from outside its server process (deploy preflight,
// baton/preflight.h) and must not be able to change it.
//
// A Store is a StoreReader too (StoreReaderOf); the standalone readers below
// open the data of a running deployment without taking it over:
//
//   * OpenSqliteStoreReader opens the SQLite file with SQLITE_OPEN_READONLY,
//     takes no lock file (the server keeps its own), applies no migration and
//     starts no thread. WAL mode lets it read the last committed state while
//     the server writes.
//   * OpenPostgresStoreReader opens one session with
//     default_transaction_read_only=on, so the database itself refuses any
//     write, applies no migration, takes no lease and listens to nothing.
//
// Thread-safety: a reader is used by one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "baton/history.h"
#include "baton/instance.h"
#include "baton/status.h"

namespace baton {

class Store;

class StoreReader {
 public:
  virtual ~StoreReader() = default;
  // As Store::QueryInstances: InvalidArgument for a bad page size or token.
  virtual Result<QueryPage> QueryInstances(const InstanceQuery& query) = 0;
  // As Store::GetHistory: the current execution's events in order.
  // NotFound: no such instance. DataLoss: a stored chunk does not parse.
  virtual Result<std::vector<HistoryEvent>> GetHistory(const std::string& instance_id) = 0;
};

// A reader over `store`, which must outlive it. Reads only.
std::unique_ptr<StoreReader> StoreReaderOf(Store& store);

// Opens the SQLite task hub at `path` read-only (see above). NotFound: no
// such file. Unavailable: SQLite cannot open it.
Result<std::unique_ptr<StoreReader>> OpenSqliteStoreReader(const std::string& path);

// Opens the PostgreSQL task hub at the libpq URL `url` in a read-only
// session. Unavailable: the database cannot be reached. Declared here,
// defined in the PostgreSQL store library (baton_store_postgres).
Result<std::unique_ptr<StoreReader>> OpenPostgresStoreReader(const std::string& url);

}  // namespace baton
