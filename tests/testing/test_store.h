// The Store that engine-level tests run on. By default a SqliteStore in the
// test's temp dir; built with BATON_TEST_ON_POSTGRES (the Postgres/ copies of
// the engine and entity suites), a PostgresStore on a fresh database of the
// test cluster, whose URL is kept in the dir so that a test can close the
// store and open the same data again.
#pragma once

#include <fstream>
#include <memory>
#include <string>

#include "baton/clock.h"
#include "baton/sqlite_store.h"
#include "baton/store.h"
#ifdef BATON_TEST_ON_POSTGRES
#include "baton/postgres_store.h"
#include "testing/postgres_test_db.h"
#endif

namespace baton::testing {

// `lease` 0 = the store's default lease duration.
inline Result<std::unique_ptr<Store>> OpenTestStore(const std::string& dir,
                                                    std::shared_ptr<Clock> clock,
                                                    std::chrono::milliseconds lease = {}) {
#ifdef BATON_TEST_ON_POSTGRES
  const std::string marker = dir + "/postgres-url";
  std::string url;
  {
    std::ifstream in(marker);
    std::getline(in, url);
  }
  if (url.empty()) {
    url = CreateTestDatabase();
    if (url.empty()) return UnavailableError("no test database (see the failure above)");
    std::ofstream(marker) << url << "\n";
  }
  PostgresStoreOptions options;
  options.url = url;
  options.clock = std::move(clock);
  if (lease.count() > 0) options.lease_duration = lease;
  return OpenPostgresStore(options);
#else
  SqliteStoreOptions options;
  options.path = dir + "/baton.db";
  options.clock = std::move(clock);
  if (lease.count() > 0) options.lease_duration = lease;
  return OpenSqliteStore(options);
#endif
}

}  // namespace baton::testing
