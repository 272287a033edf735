// The backends the platform stores' conformance suite runs on
// (tests/store/platform_store_conformance_test.cc): each opens its four
// stores for one test.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store/job_log_store.h"
#include "store/key_store.h"
#include "store/lease_store.h"
#include "store/secret_store.h"
#include "baton/postgres_store.h"
#include "store/postgres/postgres_platform_stores.h"
#include "store/sqlite/sqlite_platform_stores.h"
#include "testing/postgres_test_db.h"
#include "store/tenant_store.h"

namespace baton::testing {

struct PlatformStoreSet {
  std::unique_ptr<store::TenantStore> tenants;
  std::unique_ptr<store::JobLogStore> logs;
  std::unique_ptr<store::SecretStore> secrets;
  std::unique_ptr<store::KeyStore> keys;
  std::unique_ptr<store::LeaseStore> leases;
};

struct PlatformBackend {
  std::string name;
  // Opens fresh, empty stores; `dir` is the test's own temp dir.
  std::function<Result<PlatformStoreSet>(const std::string& dir)> open;
};

inline Result<PlatformStoreSet> OpenSqlitePlatformStores(const std::string& dir) {
  PlatformStoreSet s;
  BATON_ASSIGN_OR_RETURN(s.tenants, store::OpenSqliteTenantStore(dir + "/tenants.db"));
  BATON_ASSIGN_OR_RETURN(s.logs, store::OpenSqliteJobLogStore(dir + "/job-logs.db"));
  BATON_ASSIGN_OR_RETURN(s.secrets, store::OpenSqliteSecretStore(dir + "/secrets.db"));
  s.keys = store::OpenFileKeyStore(dir);
  s.leases = store::OpenLocalLeaseStore();
  return s;
}

// A fresh database of the test cluster (BATON_TEST_POSTGRES_URL), migrated.
inline Result<PlatformStoreSet> OpenPostgresPlatformStores(const std::string&) {
  const std::string url = CreateTestDatabase();
  if (url.empty()) return UnavailableError("no test database (BATON_TEST_POSTGRES_URL)");
  BATON_RETURN_IF_ERROR(MigratePostgresStore(url).status());
  PlatformStoreSet s;
  BATON_ASSIGN_OR_RETURN(s.tenants, store::OpenPostgresTenantStore(url));
  BATON_ASSIGN_OR_RETURN(s.logs, store::OpenPostgresJobLogStore(url));
  BATON_ASSIGN_OR_RETURN(s.secrets, store::OpenPostgresSecretStore(url));
  BATON_ASSIGN_OR_RETURN(s.keys, store::OpenPostgresKeyStore(url));
  BATON_ASSIGN_OR_RETURN(s.leases, store::OpenPostgresLeaseStore(url));
  return s;
}

inline std::vector<PlatformBackend> PlatformBackends() {
  return {PlatformBackend{"Sqlite", OpenSqlitePlatformStores}, PlatformBackend{"Postgres", OpenPostgresPlatformStores}};
}

}  // namespace baton::testing
