// The PostgreSQL implementations of the platform's stores (tenants and keys,
// job logs, secrets, keys, leases): tables of the task hub's database
// (migration 0002_platform.sql), shared by every node. The task hub's store
// (PostgresStore) applies the migrations when it opens; open it first, or
// run `baton migrate`.
//
// Each store keeps one connection, serializes its calls on it, and opens a
// new one when it broke (the call that found it broken fails Unavailable:
// these writes are rare, and every caller can try again).
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <memory>
#include <string>

#include "baton/status.h"
#include "store/job_log_store.h"
#include "store/key_store.h"
#include "store/lease_store.h"
#include "store/secret_store.h"
#include "store/tenant_store.h"

namespace baton::store {

// `url`: a libpq connection string (as for PostgresStore). Unavailable when
// the database cannot be reached.
Result<std::unique_ptr<TenantStore>> OpenPostgresTenantStore(const std::string& url);
Result<std::unique_ptr<JobLogStore>> OpenPostgresJobLogStore(const std::string& url);
Result<std::unique_ptr<SecretStore>> OpenPostgresSecretStore(const std::string& url);
Result<std::unique_ptr<KeyStore>> OpenPostgresKeyStore(const std::string& url);
Result<std::unique_ptr<LeaseStore>> OpenPostgresLeaseStore(const std::string& url);

}  // namespace baton::store
