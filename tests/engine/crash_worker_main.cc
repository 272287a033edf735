// A Baton node for the crash tests: serves the orchestrations below from a
// SQLite task hub (--db) or from a PostgreSQL one shared with other nodes
// (--store postgresql://…) until it is killed, until SIGTERM (a graceful
// stop), or, with --exit-when-idle, until no instance is left running.
//
//   Five         five sequential "Step" activities (input + 5)
//   StepsAround  two Steps, then waits for the event "go" (an int), then
//                three Steps: input + 5 + go
//   Transfer     a critical section over two "Account" entities: reads both
//                balances, moves the amount, reads them again; returns
//                whether nobody else wrote in between
//
// Every Step execution (which first sleeps --step-ms) appends "<instance>
// <task id> <unix micros> <node>\n" to --log with one O_APPEND write (atomic
// between processes), so the tests can count repeated executions after
// SIGKILLs and find stalls.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "baton/client.h"
#include "baton/entity.h"
#include "baton/postgres_store.h"
#include "baton/registry.h"
#include "baton/sqlite_store.h"
#include "baton/worker.h"

using namespace baton;

namespace {

volatile sig_atomic_t g_stop = 0;
void OnTerm(int) { g_stop = 1; }

struct Account {
  int64_t balance = 0;
  void Deposit(int64_t amount) { balance += amount; }
  void Withdraw(int64_t amount) { balance -= amount; }
  int64_t Balance() const { return balance; }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Account, balance)

void Register(Registry& registry, int log_fd, int step_ms, const std::string& node) {
  registry
      .AddActivity("Step",
                   [log_fd, step_ms, node](ActivityContext& ctx) -> Json {
                     if (step_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
                     const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count();
                     std::string line = ctx.InstanceId() + " " + std::to_string(ctx.TaskId()) +
                                        " " + std::to_string(micros) + " " + node + "\n";
                     if (write(log_fd, line.data(), line.size()) !=
                         static_cast<ssize_t>(line.size())) {
                       throw std::runtime_error("log write failed");
                     }
                     return ctx.GetInput<int>() + 1;
                   })
      .IgnoreError();
  registry
      .AddOrchestrator("Five",
                       [](OrchestrationContext& ctx) -> Task<Json> {
                         int value = ctx.GetInput<int>();
                         for (int i = 0; i < 5; ++i)
                           value = co_await ctx.CallActivity<int>("Step", value);
                         co_return value;
                       })
      .IgnoreError();
  registry
      .AddOrchestrator("StepsAround",
                       [](OrchestrationContext& ctx) -> Task<Json> {
                         int value = ctx.GetInput<int>();
                         for (int i = 0; i < 2; ++i)
                           value = co_await ctx.CallActivity<int>("Step", value);
                         value += co_await ctx.WaitForExternalEvent<int>("go");
                         for (int i = 0; i < 3; ++i)
                           value = co_await ctx.CallActivity<int>("Step", value);
                         co_return value;
                       })
      .IgnoreError();
  registry
      .AddEntity("Account", EntityClass<Account>()
                                .Operation("deposit", &Account::Deposit)
                                .Operation("withdraw", &Account::Withdraw)
                                .Operation("balance", &Account::Balance))
      .IgnoreError();
  registry
      .AddOrchestrator(
          "Transfer",
          [](OrchestrationContext& ctx) -> Task<Json> {
            Json in = ctx.GetInput();
            EntityId from("Account", in["from"].get<std::string>());
            EntityId to("Account", in["to"].get<std::string>());
            const int64_t amount = in["amount"].get<int64_t>();
            std::vector<EntityId> lock_set{from, to};
            co_await ctx.LockEntities(std::move(lock_set));
            const int64_t a = co_await ctx.CallEntity<int64_t>(from, "balance");
            const int64_t b = co_await ctx.CallEntity<int64_t>(to, "balance");
            co_await ctx.CallEntity(from, "withdraw", amount);
            co_await ctx.CallEntity(to, "deposit", amount);
            const int64_t a2 = co_await ctx.CallEntity<int64_t>(from, "balance");
            const int64_t b2 = co_await ctx.CallEntity<int64_t>(to, "balance");
            ctx.UnlockEntities();
            co_return Json{{"consistent", a2 == a - amount && b2 == b + amount}};
          })
      .IgnoreError();
}

}  // namespace

int main(int argc, char** argv) {
  std::string db, url, log, node;
  int lease_ms = 0;
  int step_ms = 0;
  bool exit_when_idle = false;
  bool release_gone_nodes = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--db" && i + 1 < argc) db = argv[++i];
    else if (a == "--store" && i + 1 < argc) url = argv[++i];
    else if (a == "--log" && i + 1 < argc) log = argv[++i];
    else if (a == "--node" && i + 1 < argc) node = argv[++i];
    else if (a == "--lease-ms" && i + 1 < argc) lease_ms = std::stoi(argv[++i]);
    else if (a == "--step-ms" && i + 1 < argc) step_ms = std::stoi(argv[++i]);
    else if (a == "--exit-when-idle") exit_when_idle = true;
    else if (a == "--no-release-gone-nodes") release_gone_nodes = false;
  }
  if (db.empty() == url.empty() || log.empty()) {
    std::fprintf(stderr,
                 "usage: %s (--db PATH | --store postgresql://…) --log PATH [--node NAME] "
                 "[--lease-ms N] [--step-ms N] [--no-release-gone-nodes] [--exit-when-idle]\n",
                 argv[0]);
    return 2;
  }
  int log_fd = open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (log_fd < 0) {
    std::perror("open log");
    return 2;
  }
  struct sigaction term {};
  term.sa_handler = OnTerm;
  sigaction(SIGTERM, &term, nullptr);

  Registry registry;
  Register(registry, log_fd, step_ms, node.empty() ? "-" : node);

  Result<std::unique_ptr<Store>> store = UnavailableError("no store");
  if (!db.empty()) {
    SqliteStoreOptions options;
    options.path = db;
    store = OpenSqliteStore(options);
  } else {
    PostgresStoreOptions options;
    options.url = url;
    options.node_id = node;
    if (lease_ms > 0) options.lease_duration = std::chrono::milliseconds(lease_ms);
    options.release_gone_nodes = release_gone_nodes;
    store = OpenPostgresStore(options);
  }
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 3;
  }
  Worker worker(**store, registry);
  if (!worker.Start().ok()) return 4;
  Client client(**store);
  while (!g_stop) {
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
