// The SQLite implementations of the platform's stores (tenants and keys, job
// logs, secrets, keys), for one node: each in its own file of the data dir,
// as earlier versions kept them (tenants.db, job-logs.db, secrets.db, and
// <name>.key files), so a data dir carries over.
//
// Thread-safety: each store serializes its calls on one connection.
#pragma once

#include <memory>
#include <string>

#include "baton/status.h"
#include "store/job_log_store.h"
#include "store/key_store.h"
#include "store/secret_store.h"
#include "store/tenant_store.h"

namespace baton::store {

// <path>: the SQLite file (created, mode 0600).
Result<std::unique_ptr<TenantStore>> OpenSqliteTenantStore(const std::string& path);
Result<std::unique_ptr<JobLogStore>> OpenSqliteJobLogStore(const std::string& path);
Result<std::unique_ptr<SecretStore>> OpenSqliteSecretStore(const std::string& path);
// Keys are files <dir>/<name>.key (mode 0600).
std::unique_ptr<KeyStore> OpenFileKeyStore(const std::string& dir);

}  // namespace baton::store
