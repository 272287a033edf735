// Fresh PostgreSQL databases for tests.
//
// scripts/test starts a throw-away cluster (scripts/pg-up) and exports its
// URL as BATON_TEST_POSTGRES_URL. Every test that needs PostgreSQL creates
// its own database with a random name from it, so tests run in parallel and
// leave nothing behind: each database is dropped when the test process exits
// (ctest runs every test case in its own process). There is no skipping: a
// test run without the variable fails, loudly, with how to set it.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "store/postgres/pg_connection.h"

namespace baton::testing {

inline constexpr const char* kPostgresUrlVariable = "BATON_TEST_POSTGRES_URL";

// The cluster's admin URL (its `postgres` database), or "" after recording a
// test failure that says how to get one.
inline std::string PostgresAdminUrl() {
  const char* url = std::getenv(kPostgresUrlVariable);
  if (url == nullptr || *url == '\0') {
    ADD_FAILURE() << kPostgresUrlVariable
                  << " is not set: PostgreSQL tests never skip. Run them through scripts/test, "
                     "or start a cluster with `scripts/pg-up` and export "
                  << kPostgresUrlVariable << "=<the URL it prints>.";
    return std::string();
  }
  return url;
}

namespace internal {

struct TestDatabases {
  std::mutex mu;
  std::string admin_url;
  std::vector<std::string> names;

  ~TestDatabases() {
    // At process exit: every store of the test is closed by now; FORCE ends
    // any session a crashed test left behind.
    if (names.empty()) return;
    auto admin = pg::PgConnection::Connect(admin_url, "");
    if (!admin.ok()) return;
    for (const std::string& name : names) {
      (*admin)
          ->Exec("DROP DATABASE IF EXISTS " + pg::QuoteIdentifier(name) + " WITH (FORCE)",
                 "drop test database")
          .status()
          .IgnoreError();
    }
  }
};

inline TestDatabases& Databases() {
  static TestDatabases databases;
  return databases;
}

}  // namespace internal

// Creates an empty database (UTF8, C collation) and returns its connection
// string, or "" after recording a failure. Dropped at process exit.
inline std::string CreateTestDatabase() {
  std::string admin_url = PostgresAdminUrl();
  if (admin_url.empty()) return std::string();
  std::random_device rd;
  std::string name = "baton_test_" + std::to_string(::getpid()) + "_" +
                     std::to_string(std::uniform_int_distribution<uint64_t>()(rd) % 1000000000);
  auto admin = pg::PgConnection::Connect(admin_url, "");
  if (!admin.ok()) {
    ADD_FAILURE() << "cannot reach the test cluster at " << admin_url << ": "
                  << admin.status().ToString();
    return std::string();
  }
  auto created =
      (*admin)->Exec("CREATE DATABASE " + pg::QuoteIdentifier(name) +
                         " ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
                     "create test database");
  if (!created.ok()) {
    ADD_FAILURE() << created.status().ToString();
    return std::string();
  }
  {
    internal::TestDatabases& dbs = internal::Databases();
    std::lock_guard lock(dbs.mu);
    dbs.admin_url = admin_url;
    dbs.names.push_back(name);
  }
  auto url = pg::WithDatabase(admin_url, name);
  if (!url.ok()) {
    ADD_FAILURE() << url.status().ToString();
    return std::string();
  }
  return *url;
}

}  // namespace baton::testing
