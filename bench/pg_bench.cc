#include "pg_bench.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "baton/client.h"
#include "baton/postgres_store.h"
#include "baton/registry.h"
#include "baton/worker.h"
#include "bench_util.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/postgres_store_impl.h"

namespace baton::bench {
namespace {

void RegisterHello5Pg(Registry& registry) {
  registry
      .AddActivity("Hello",
                   [](ActivityContext& ctx) -> Json {
                     return "Hello, " + ctx.GetInput<std::string>() + "!";
                   })
      .IgnoreError();
  registry
      .AddOrchestrator("Hello5",
                       [](OrchestrationContext& ctx) -> Task<Json> {
                         std::vector<std::string> out;
                         for (const char* city : {"Tokyo", "Seattle", "London", "Paris", "Lima"}) {
                           out.push_back(co_await ctx.CallActivity<std::string>("Hello", city));
                         }
                         co_return out;
                       })
      .IgnoreError();
}

WorkerOptions BenchWorkerOptions() {
  WorkerOptions options;
  if (const char* n = std::getenv("BATON_BENCH_ACTIVITY_THREADS"))
    options.activity_threads = std::atoi(n);
  if (const char* n = std::getenv("BATON_BENCH_ORCHESTRATION_THREADS")) {
    options.orchestration_threads = std::atoi(n);
  }
  return options;
}

PostgresStoreOptions BenchStoreOptions(const std::string& url) {
  PostgresStoreOptions options;
  options.url = url;
  if (const char* n = std::getenv("BATON_BENCH_COMMIT_THREADS"))
    options.commit_threads = std::atoi(n);
  if (const char* n = std::getenv("BATON_BENCH_PG_PREFETCH")) options.prefetch = std::atoi(n) != 0;
  if (const char* n = std::getenv("BATON_BENCH_PG_BACKLOG")) options.prefetch_backlog = std::atoi(n);
  if (const char* n = std::getenv("BATON_BENCH_PG_INLINE")) options.inline_commits = std::atoi(n) != 0;
  return options;
}

std::atomic<bool> g_stop{false};

}  // namespace

int Hello5PgNode(const char* url) {
  signal(SIGTERM, [](int) { g_stop = true; });
  auto store = OpenPostgresStore(BenchStoreOptions(url));
  if (!store.ok()) {
    std::fprintf(stderr, "node: open store: %s\n", store.status().ToString().c_str());
    return 1;
  }
  Registry registry;
  RegisterHello5Pg(registry);
  Worker worker(**store, registry, BenchWorkerOptions());
  if (!worker.Start().ok()) return 1;
  std::printf("ready\n");
  std::fflush(stdout);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  worker.Stop();
  return 0;
}

int Hello5Pg(int n, int c, int nodes) {
  const char* admin_url = std::getenv("BATON_BENCH_POSTGRES_URL");
  if (admin_url == nullptr || *admin_url == '\0') {
    std::fprintf(
        stderr,
        "hello5-pg: set BATON_BENCH_POSTGRES_URL (scripts/bench does, with scripts/pg-up)\n");
    return 2;
  }
  if (nodes < 1 || nodes > 8) {
    std::fprintf(stderr, "hello5-pg: NODES must be 1..8\n");
    return 2;
  }
  auto admin = pg::PgConnection::Connect(admin_url, "");
  if (!admin.ok()) {
    std::fprintf(stderr, "hello5-pg: %s\n", admin.status().ToString().c_str());
    return 1;
  }
  const std::string db = "baton_bench_" + std::to_string(getpid()) + "_" +
                         std::to_string(std::random_device{}() % 100000);
  if (auto r = (*admin)->Exec("CREATE DATABASE " + db +
                                  " ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
                              "create database");
      !r.ok()) {
    std::fprintf(stderr, "hello5-pg: %s\n", r.status().ToString().c_str());
    return 1;
  }
  const std::string url = *pg::WithDatabase(admin_url, db);
  if (auto m = MigratePostgresStore(url); !m.ok()) {
    std::fprintf(stderr, "hello5-pg: %s\n", m.status().ToString().c_str());
    return 1;
  }

  // Nodes 2..K: children of this process, stopped by PID.
  std::vector<pid_t> children;
  for (int i = 1; i < nodes; ++i) {
    int out[2];
    if (pipe(out) != 0) return 1;
    pid_t pid = fork();
    if (pid == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execl("/proc/self/exe", "baton_bench", "hello5-pg-node", url.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    char line[64] = {};
    FILE* f = fdopen(out[0], "r");
    if (std::fgets(line, sizeof line, f) == nullptr) {
      std::fprintf(stderr, "hello5-pg: node %d did not start\n", i + 1);
    }
    std::fclose(f);
    children.push_back(pid);
  }

  int exit_code = 0;
  {
    auto store = OpenPostgresStore(BenchStoreOptions(url));
    if (!store.ok()) {
      std::fprintf(stderr, "hello5-pg: %s\n", store.status().ToString().c_str());
      return 1;
    }
    Registry registry;
    RegisterHello5Pg(registry);
    Worker worker(**store, registry, BenchWorkerOptions());
    if (!worker.Start().ok()) return 1;
    Client client(**store);
    auto run_one = [&]() -> double {
      auto t0 = Clock_::now();
      auto id = client.ScheduleNewOrchestration("Hello5", nullptr);
      if (!id.ok()) {
        std::fprintf(stderr, "schedule: %s\n", id.status().ToString().c_str());
        std::exit(1);
      }
      auto state =
          client.WaitForCompletion(*id, std::chrono::minutes(5), /*include_payloads=*/false);
      if (!state.ok() || state->status != OrchestrationStatus::kCompleted) {
        std::fprintf(stderr, "instance %s did not complete: %s\n", id->c_str(),
                     state.ok() ? std::string(OrchestrationStatusName(state->status)).c_str()
                                : state.status().ToString().c_str());
        std::exit(1);
      }
      return Ms(Clock_::now() - t0);
    };

    for (int i = 0; i < 200; ++i) run_one();
    std::vector<double> c1;
    for (int i = 0; i < 200; ++i) c1.push_back(run_one());

    const pg::PostgresStats before = pg::GetPostgresStats(**store);
    std::atomic<int> next{0};
    std::mutex mu;
    std::vector<double> latencies;
    latencies.reserve(n);
    auto t0 = Clock_::now();
    std::vector<std::thread> clients;
    for (int k = 0; k < c; ++k) {
      clients.emplace_back([&] {
        std::vector<double> mine;
        while (next.fetch_add(1) < n) mine.push_back(run_one());
        std::lock_guard lock(mu);
        latencies.insert(latencies.end(), mine.begin(), mine.end());
      });
    }
    for (auto& t : clients) t.join();
    const double seconds = std::chrono::duration<double>(Clock_::now() - t0).count();
    const pg::PostgresStats after = pg::GetPostgresStats(**store);
    const WorkerStats ws = worker.Stats();
    worker.Stop();
    std::fprintf(stderr,
                 "node 1: %.1f claims/wf (%.1f empty), %.1f commits/wf (%.1f inline), %.1f other "
                 "reads/wf, %.1f round trips/wf (of all nodes' wf), %llu notifications sent (%llu "
                 "not sent: alone), %llu received; %llu episodes, %llu activities on node 1\n",
                 double(after.claims - before.claims) / n,
                 double(after.empty_claims - before.empty_claims) / n,
                 double(after.commits - before.commits) / n,
                 double(after.inline_commits - before.inline_commits) / n,
                 double(after.reads - before.reads) / n,
                 double(after.round_trips - before.round_trips) / n,
                 static_cast<unsigned long long>(after.notifications - before.notifications),
                 static_cast<unsigned long long>(after.notifications_skipped -
                                                 before.notifications_skipped),
                 static_cast<unsigned long long>(after.notified - before.notified),
                 static_cast<unsigned long long>(ws.episodes),
                 static_cast<unsigned long long>(ws.activities_executed));
    std::printf(
        "baton hello5-pg: nodes=%d N=%d C=%d thr=%.0f/s p50=%.2fms p95=%.2fms p99=%.2fms "
        "c1_p50=%.2fms\n",
        nodes, n, c, n / seconds, Percentile(latencies, 0.50), Percentile(latencies, 0.95),
        Percentile(latencies, 0.99), Percentile(c1, 0.50));
  }
  for (pid_t pid : children) {
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) exit_code = 1;
  }
  // PostgreSQL's own count of the transactions of the whole run (warm-up,
  // c1 and the measured part; every node): a backend reports its counters
  // when it exits, so they are complete once every store has closed.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  if (auto x = (*admin)->Exec("SELECT xact_commit, xact_rollback FROM pg_stat_database "
                              "WHERE datname = '" + db + "'",
                              "read pg_stat_database");
      x.ok() && x->rows() == 1) {
    const int total = n + 400;
    std::fprintf(stderr, "database: %.1f transactions/wf committed, %lld rolled back (%d wf)\n",
                 double(x->Int(0, 0)) / total, static_cast<long long>(x->Int(0, 1)), total);
  }
  (*admin)
      ->Exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)", "drop database")
      .status()
      .IgnoreError();
  return exit_code;
}

}  // namespace baton::bench
