// A PostgreSQL cluster of a test's own, for tests that crash or restart the
// server (PostgresRestartTest, PostgresServerRestartTest): scripts/pg-up in a
// temp run dir on a free port and its own socket directory, so restarting it
// never disturbs the shared cluster other tests use. `pg_ctl restart -m
// immediate` restarts it (no checkpoint, WAL replay at start); it is stopped
// (pg_ctl, since a restart changes the postmaster's PID) and removed at the
// end.
#pragma once

#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "testing/test_util.h"

namespace baton::testing {

// Runs `command` with the shell; its stdout, or nullopt when it failed.
inline std::optional<std::string> RunShell(const std::string& command) {
  std::array<char, 4096> buf;
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return std::nullopt;
  while (std::fgets(buf.data(), buf.size(), p) != nullptr) out += buf.data();
  if (pclose(p) != 0) return std::nullopt;
  return out;
}

class PrivatePgCluster {
 public:
  // `source_dir`: the repository (for scripts/pg-up and pg-down).
  explicit PrivatePgCluster(const std::string& source_dir) : source_dir_(source_dir) {
    // The server runs as `postgres` when we are root: it must enter the dir.
    std::filesystem::permissions(dir_.path(), std::filesystem::perms::owner_all |
                                                  std::filesystem::perms::group_exec |
                                                  std::filesystem::perms::others_exec);
    env_ = "BATON_RUN_DIR='" + dir_.path() + "' BATON_PG_PORT=0 ";
    auto out = RunShell(env_ + source_dir_ + "/scripts/pg-up 2>/dev/null");
    if (!out || out->empty()) return;
    url_ = out->substr(0, out->find_last_not_of("\n") + 1);
    url_ = url_.substr(url_.find_last_of('\n') + 1);
  }
  ~PrivatePgCluster() {
    if (!url_.empty()) RunShell(PgCtl() + "stop -m fast >/dev/null 2>&1");
    RunShell(env_ + source_dir_ + "/scripts/pg-down >/dev/null 2>&1");
  }
  PrivatePgCluster(const PrivatePgCluster&) = delete;
  PrivatePgCluster& operator=(const PrivatePgCluster&) = delete;

  // "" when the cluster could not start.
  const std::string& url() const { return url_; }
  // The crash: every session ends, nothing is checkpointed, and the server
  // replays its WAL at start. True once it accepts connections again.
  bool RestartImmediately() {
    return RunShell(PgCtl() + "restart -m immediate -w -t 60 -l '" + dir_.path() +
                    "/postgres.log' >/dev/null 2>&1")
        .has_value();
  }

 private:
  std::string PgCtl() const {
    const std::string as_server = getuid() == 0 ? "runuser -u postgres -- " : "";
    return as_server + "/usr/lib/postgresql/15/bin/pg_ctl -D '" + dir_.path() +
           "/postgres/data' ";
  }

  std::string source_dir_;
  TempDir dir_;
  std::string env_;
  std::string url_;
};

}  // namespace baton::testing
