// The platform's stores on SQLite in a test's directory (tenants, job logs,
// secrets, keys), plus the vault and the kept logs over them, for tests that
// run job functions or the tenant directory without a `baton serve`.
#pragma once

#include <memory>
#include <string>

#include "batch/job_logs.h"
#include "batch/secret_vault.h"
#include "store/sqlite/sqlite_platform_stores.h"

namespace baton::testing {

struct SqlitePlatform {
  std::unique_ptr<store::TenantStore> tenants;
  std::unique_ptr<store::JobLogStore> log_store;
  std::unique_ptr<store::SecretStore> secret_store;
  std::unique_ptr<store::KeyStore> keys;
  std::unique_ptr<batch::SecretVault> vault;
  std::unique_ptr<batch::JobLogs> logs;

  // Opens everything under `dir`; the first error, or OK.
  Status Open(const std::string& dir) {
    BATON_ASSIGN_OR_RETURN(tenants, store::OpenSqliteTenantStore(dir + "/tenants.db"));
    BATON_ASSIGN_OR_RETURN(log_store, store::OpenSqliteJobLogStore(dir + "/job-logs.db"));
    BATON_ASSIGN_OR_RETURN(secret_store, store::OpenSqliteSecretStore(dir + "/secrets.db"));
    keys = store::OpenFileKeyStore(dir);
    BATON_ASSIGN_OR_RETURN(vault, batch::SecretVault::Open(*secret_store, *keys));
    logs = std::make_unique<batch::JobLogs>(*log_store);
    return Status::Ok();
  }
};

}  // namespace baton::testing
