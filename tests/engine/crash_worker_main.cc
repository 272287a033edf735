// A worker process for the crash-safety test: serves the "Five" orchestration
// (five sequential "Step" activities) from a SQLite task hub until it is
// killed, or, with --exit-when-idle, until no instance is left running.
//
// Every Step execution appends "<instance> <task id>\n" to --log with one
// O_APPEND write, so the test can count repeated executions after SIGKILLs.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "baton/client.h"
#include "baton/registry.h"
#include "baton/sqlite_store.h"
#include "baton/worker.h"

using namespace baton;

int main(int argc, char** argv) {
  std::string db, log;
  bool exit_when_idle = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--db" && i + 1 < argc) db = argv[++i];
    else if (a == "--log" && i + 1 < argc) log = argv[++i];
    else if (a == "--exit-when-idle") exit_when_idle = true;
  }
  if (db.empty() || log.empty()) {
    std::fprintf(stderr, "usage: %s --db PATH --log PATH [--exit-when-idle]\n", argv[0]);
    return 2;
  }
  int log_fd = open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (log_fd < 0) {
    std::perror("open log");
    return 2;
  }

  Registry registry;
  registry.AddActivity("Step", [log_fd](ActivityContext& ctx) -> Json {
    std::string line = ctx.InstanceId() + " " + std::to_string(ctx.TaskId()) + "\n";
    if (write(log_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      throw std::runtime_error("log write failed");
    }
    return ctx.GetInput<int>() + 1;
  }).IgnoreError();
  registry.AddOrchestrator("Five", [](OrchestrationContext& ctx) -> Task<Json> {
    int value = ctx.GetInput<int>();
    for (int i = 0; i < 5; ++i) value = co_await ctx.CallActivity<int>("Step", value);
    co_return value;
  }).IgnoreError();

  SqliteStoreOptions options;
  options.path = db;
  auto store = OpenSqliteStore(options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 3;
  }
  Worker worker(**store, registry);
  if (!worker.Start().ok()) return 4;
  Client client(**store);
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!exit_when_idle) continue;
    InstanceQuery q;
    q.statuses = {OrchestrationStatus::kPending, OrchestrationStatus::kRunning};
    q.page_size = 1;
    auto page = client.Query(q);
    if (page.ok() && page->instances.empty()) break;
  }
  worker.Stop();
  return 0;
}
