// Baton's engine benchmarks. Run through scripts/bench:
//
//   scripts/bench hello5 [N] [C]   orchestrations of 5 sequential activities
//       [--metrics on|off|ab [--pairs K]]  ab: metrics off and on alternated, K rounds each
//   scripts/bench metrics-cost [N]  ns per recorded event on/off, events per hello5 workflow
//   scripts/bench fanout [N]       one orchestration fanning out to N activities
//   scripts/bench replay [N]       full replay of an N-event history, and the
//                                  memory of cached idle orchestrations
//   scripts/bench hello5-http [N] [C]  hello5 started and awaited through the
//                                  HTTP API of a real `baton serve`
//   scripts/bench http-rate [S] [C]  wrk: status GETs and starts per second
//   scripts/bench entity-signals [N] [C]  signals/s to one entity and to 1,000
//   scripts/bench container-run [N]  DockerRuntime create+start+wait+remove vs `docker run --rm`
//   scripts/bench job-latency [N] [--runtime docker|swarm|both]  batch job submit -> container running, by phase
//   scripts/bench job-throughput [N] [Q] [--runtime docker|swarm|both]  tiny batch jobs per second under a quota of Q jobs
//   scripts/bench hello5-pg [N] [C] [NODES]  hello5 on PostgreSQL with NODES nodes (pg_bench.h)
//
// Every run (but hello5-pg) uses a fresh SQLite task hub in a temp dir with the durable
// settings Baton ships with. Figures are printed, never asserted. The job
// benchmarks are in job_bench.h.
#include <dlfcn.h>
#include <sqlite3.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "baton/client.h"
#include "baton/entity.h"
#include "baton/registry.h"
#include "baton/sqlite_store.h"
#include "baton/worker.h"
#include "bench_util.h"
#include "core/executor.h"
#include "job_bench.h"
#include "pg_bench.h"
#include "runtime/docker/docker_runtime.h"
#include "testing/server_process.h"
#include "testing/prometheus_text.h"
#include "util/metrics.h"

using namespace baton;
using namespace baton::bench;

namespace {

class Hub {
 public:
  explicit Hub(Registry& registry, WorkerOptions options = {}) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "baton-bench-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    SqliteStoreOptions store_options;
    store_options.path = dir_ + "/hub.db";
    // BATON_BENCH_DURABILITY=acknowledged|full compares against the shipped default.
    if (const char* d = std::getenv("BATON_BENCH_DURABILITY")) {
      store_options.durability =
          std::string(d) == "acknowledged" ? Durability::kAcknowledged : Durability::kFull;
    }
    // BATON_BENCH_GROUP_COMMIT_WAIT_US=0 compares against the shipped group-commit wait.
    if (const char* w = std::getenv("BATON_BENCH_GROUP_COMMIT_WAIT_US")) {
      store_options.group_commit_wait = std::chrono::microseconds(std::atoi(w));
    }
    auto store = OpenSqliteStore(store_options);
    if (!store.ok()) {
      std::fprintf(stderr, "open store: %s\n", store.status().ToString().c_str());
      std::exit(1);
    }
    store_ = std::move(*store);
    if (const char* n = std::getenv("BATON_BENCH_ACTIVITY_THREADS")) options.activity_threads = std::atoi(n);
    if (const char* n = std::getenv("BATON_BENCH_ORCHESTRATION_THREADS")) {
      options.orchestration_threads = std::atoi(n);
    }
    worker_ = std::make_unique<Worker>(*store_, registry, options);
    if (!worker_->Start().ok()) std::exit(1);
    client_ = std::make_unique<Client>(*store_);
  }
  ~Hub() {
    worker_->Stop();
    worker_.reset();
    client_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  Client& client() { return *client_; }
  Worker& worker() { return *worker_; }

  // Starts one orchestration and waits for its result; returns the latency.
  double RunOne(const std::string& name, const Json& input) {
    auto t0 = Clock_::now();
    auto id = client_->ScheduleNewOrchestration(name, input);
    if (!id.ok()) {
      std::fprintf(stderr, "schedule: %s\n", id.status().ToString().c_str());
      std::exit(1);
    }
    auto state = client_->WaitForCompletion(*id, std::chrono::minutes(5), /*include_payloads=*/true);
    if (!state.ok() || state->status != OrchestrationStatus::kCompleted) {
      std::fprintf(stderr, "instance %s did not complete: %s\n", id->c_str(),
                   state.ok() ? state->output.c_str() : state.status().ToString().c_str());
      std::exit(1);
    }
    return Ms(Clock_::now() - t0);
  }

 private:
  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Client> client_;
};

void RegisterHello5(Registry& registry) {
  registry.AddActivity("Hello", [](ActivityContext& ctx) -> Json {
    return "Hello, " + ctx.GetInput<std::string>() + "!";
  }).IgnoreError();
  registry.AddOrchestrator("Hello5", [](OrchestrationContext& ctx) -> Task<Json> {
    std::vector<std::string> out;
    for (const char* city : {"Tokyo", "Seattle", "London", "Paris", "Lima"}) {
      out.push_back(co_await ctx.CallActivity<std::string>("Hello", city));
    }
    co_return out;
  }).IgnoreError();
}

int Hello5(int n, int c) {
  Registry registry;
  RegisterHello5(registry);
  Hub hub(registry);

  // Warm-up, then one at a time, then a closed loop of C clients.
  for (int i = 0; i < 200; ++i) hub.RunOne("Hello5", nullptr);
  std::vector<double> c1;
  for (int i = 0; i < 200; ++i) c1.push_back(hub.RunOne("Hello5", nullptr));

  std::atomic<int> next{0};
  std::mutex mu;
  std::vector<double> latencies;
  latencies.reserve(n);
  auto t0 = Clock_::now();
  std::vector<std::thread> clients;
  for (int k = 0; k < c; ++k) {
    clients.emplace_back([&] {
      std::vector<double> mine;
      while (next.fetch_add(1) < n) mine.push_back(hub.RunOne("Hello5", nullptr));
      std::lock_guard lock(mu);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : clients) t.join();
  double seconds = std::chrono::duration<double>(Clock_::now() - t0).count();
  std::printf("baton hello5: N=%d C=%d thr=%.0f/s p50=%.2fms p95=%.2fms p99=%.2fms c1_p50=%.2fms\n",
              n, c, n / seconds, Percentile(latencies, 0.50), Percentile(latencies, 0.95),
              Percentile(latencies, 0.99), Percentile(c1, 0.50));
  return 0;
}

// hello5 with metrics off and on, alternated in one process (ABBA order:
// off on, on off, off on, … so that drift of the machine hits both alike),
// each round on a fresh task hub: `scripts/bench hello5 N C --metrics ab`.
// Prints every round, then the on/off ratios of the median throughputs and
// of the median CPU time (user + system, the whole process) per workflow:
// on a shared machine the second is far steadier than the first.
int Hello5MetricsAb(int n, int c, int pairs) {
  Registry registry;
  RegisterHello5(registry);
  auto cpu_seconds = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  };
  std::vector<double> on, off, cpu_on, cpu_off;
  for (int round = 0; round < 2 * pairs; ++round) {
    const bool first_of_pair = round % 2 == 0;
    const bool enabled = ((round / 2) % 2 == 0) ? !first_of_pair : first_of_pair;
    util::metrics::SetEnabled(enabled);
    Hub hub(registry);
    for (int i = 0; i < 200; ++i) hub.RunOne("Hello5", nullptr);
    std::atomic<int> next{0};
    auto t0 = Clock_::now();
    const double cpu0 = cpu_seconds();
    std::vector<std::thread> clients;
    for (int k = 0; k < c; ++k) {
      clients.emplace_back([&] {
        while (next.fetch_add(1) < n) hub.RunOne("Hello5", nullptr);
      });
    }
    for (auto& t : clients) t.join();
    const double thr = n / std::chrono::duration<double>(Clock_::now() - t0).count();
    const double cpu_us = (cpu_seconds() - cpu0) * 1e6 / n;
    (enabled ? on : off).push_back(thr);
    (enabled ? cpu_on : cpu_off).push_back(cpu_us);
    std::printf("hello5 round %d: metrics %-3s thr=%.0f/s cpu=%.0fus/wf\n", round + 1, enabled ? "on" : "off", thr,
                cpu_us);
    std::fflush(stdout);
  }
  util::metrics::SetEnabled(true);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  double sum_on = 0, sum_off = 0;
  for (double x : on) sum_on += x;
  for (double x : off) sum_off += x;
  std::printf("baton hello5 metrics on/off: N=%d C=%d rounds=%d each: thr median on=%.0f/s off=%.0f/s ratio=%.3f "
              "(mean ratio %.3f); cpu median on=%.0fus/wf off=%.0fus/wf ratio=%.3f\n",
              n, c, pairs, median(on), median(off), median(on) / median(off), sum_on / sum_off, median(cpu_on),
              median(cpu_off), median(cpu_on) / median(cpu_off));
  return 0;
}

// What recording costs, measured apart from the noise of a whole workload:
// ns per event (a counter add and a timed histogram observation, the pair
// the engine records most) with metrics on and off, from 1 thread and from
// 10 threads on the same series (the worst case: every add contends for one
// cache line); then the events hello5 records per workflow (counted by a
// hello5 run with metrics on, read back from the exposition), and so the
// cost per workflow. `scripts/bench metrics-cost [N]`.
int MetricsCost(int n) {
  util::metrics::Registry r;
  util::metrics::Counter& counter = r.GetCounter("bench_total", "x");
  util::metrics::Histogram& histogram = r.GetHistogram("bench_seconds", "x");
  auto per_event_ns = [&](bool enabled, int threads) {
    util::metrics::SetEnabled(enabled);
    const int each = 2'000'000 / threads;
    auto cpu = [] {
      rusage u{};
      getrusage(RUSAGE_SELF, &u);
      return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e9 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e3;
    };
    const double cpu0 = cpu();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (int i = 0; i < each; ++i) {
          const auto start = util::metrics::StartTimer();
          counter.Inc();
          histogram.ObserveSince(start);
        }
      });
    }
    for (auto& t : pool) t.join();
    // Per pair of events, in CPU time (not wall time: the machine is shared).
    return (cpu() - cpu0) / (static_cast<double>(each) * threads);
  };
  double cost[2][2];
  for (int threads : {1, 10}) {
    const int k = threads == 1 ? 0 : 1;
    double on = 1e18, off = 1e18;
    for (int rep = 0; rep < 5; ++rep) {  // best of 5: the least disturbed by other load
      off = std::min(off, per_event_ns(false, threads));
      on = std::min(on, per_event_ns(true, threads));
    }
    cost[k][0] = off;
    cost[k][1] = on;
    std::printf("counter add + timed histogram observation, %2d thread(s): on=%.1f ns off=%.1f ns (CPU time)\n",
                threads, on, off);
  }
  util::metrics::SetEnabled(true);

  // The events of hello5, counted: the process registry before and after.
  Registry registry;
  RegisterHello5(registry);
  auto events = [] {
    testing::PromText t = testing::ParsePromText(util::metrics::Default().Expose());
    double adds = 0, observations = 0;
    for (const auto& [family, type] : t.types) {
      if (type == "counter") adds += t.Sum(family);
      if (type == "histogram") observations += t.Sum(family + "_count");
    }
    return std::pair<double, double>(adds, observations);
  };
  auto [adds0, obs0] = events();
  {
    Hub hub(registry);
    std::atomic<int> next{0};
    std::vector<std::thread> clients;
    for (int k = 0; k < 50; ++k) {
      clients.emplace_back([&] {
        while (next.fetch_add(1) < n) hub.RunOne("Hello5", nullptr);
      });
    }
    for (auto& t : clients) t.join();
  }
  auto [adds1, obs1] = events();
  const double adds = (adds1 - adds0) / n, observations = (obs1 - obs0) / n;
  // A counter add costs at most a pair's; every observation is one pair.
  const double worst_ns = (adds + observations) * (cost[1][1] - cost[1][0]);
  std::printf("baton metrics cost: hello5 records %.1f counter adds and %.1f histogram observations per workflow: "
              "<= %.2f us/wf with 10 threads contending (%.2f us uncontended)\n",
              adds, observations, worst_ns / 1000, (adds + observations) * (cost[0][1] - cost[0][0]) / 1000);
  return 0;
}

int FanOut(int n) {
  Registry registry;
  registry.AddActivity("Square", [](ActivityContext& ctx) -> Json {
    int64_t x = ctx.GetInput<int64_t>();
    return x * x;
  }).IgnoreError();
  registry.AddOrchestrator("FanOut", [](OrchestrationContext& ctx) -> Task<Json> {
    int count = ctx.GetInput<int>();
    std::vector<Task<int64_t>> tasks;
    tasks.reserve(count);
    for (int i = 0; i < count; ++i) tasks.push_back(ctx.CallActivity<int64_t>("Square", i));
    std::vector<int64_t> results = co_await WhenAll(std::move(tasks));
    int64_t sum = 0;
    for (int64_t r : results) sum += r;
    co_return sum;
  }).IgnoreError();
  Hub hub(registry);
  double ms = hub.RunOne("FanOut", n);
  WorkerStats stats = hub.worker().Stats();
  std::printf("baton fanout: N=%d total=%.0fms activities=%.0f/s episodes=%llu\n", n, ms,
              n / (ms / 1000.0), static_cast<unsigned long long>(stats.episodes));
  return 0;
}

long RssKb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

using MallocProperty = int (*)(const char*, size_t*);

// tcmalloc's MallocExtension_GetNumericProperty, or null on another allocator.
MallocProperty TcmallocProperty() {
  static auto property = reinterpret_cast<MallocProperty>(dlsym(RTLD_DEFAULT, "MallocExtension_GetNumericProperty"));
  return property;
}

// Bytes the allocator has handed out and not had back: tcmalloc's
// generic.current_allocated_bytes when the binary runs on it (found at run
// time, as BATON_TCMALLOC may be off), glibc's mallinfo2 otherwise. Unlike
// RSS, it does not hide memory reused from an allocator's free lists.
size_t HeapInUse() {
  size_t value = 0;
  if (TcmallocProperty() != nullptr && TcmallocProperty()("generic.current_allocated_bytes", &value)) return value;
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

const char* AllocatorName() { return TcmallocProperty() != nullptr ? "tcmalloc" : "glibc"; }

int Replay(int n) {
  // 1. A real history of about n events: fan out n/2 activities and in.
  Registry registry;
  registry.AddActivity("Id", [](ActivityContext& ctx) -> Json { return ctx.GetInput(); }).IgnoreError();
  registry.AddOrchestrator("Wide", [](OrchestrationContext& ctx) -> Task<Json> {
    int count = ctx.GetInput<int>();
    std::vector<Task<Json>> tasks;
    for (int i = 0; i < count; ++i) tasks.push_back(ctx.CallActivity("Id", i));
    co_await WhenAll(std::move(tasks));
    co_return count;
  }).IgnoreError();
  registry.AddOrchestrator("Idle", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CallActivity("Id", 1);
    co_await ctx.WaitForExternalEvent("never");
    co_return nullptr;
  }).IgnoreError();
  std::vector<HistoryEvent> history;
  {
    Hub hub(registry);
    auto id = hub.client().ScheduleNewOrchestration("Wide", n / 2);
    hub.client().WaitForCompletion(*id, std::chrono::minutes(5)).status().IgnoreError();
    history = *hub.client().GetHistory(*id);
  }
  // Replay it (without its completion, as a live instance would be) many times.
  while (!history.empty() && !std::holds_alternative<events::OrchestratorCompleted>(history.back().body)) {
    history.pop_back();
  }
  if (history.size() >= 2) history.resize(history.size() - 2);  // drop ExecutionCompleted too
  auto lookup = [&](std::string_view name) { return registry.FindOrchestrator(name); };
  const int rounds = 20;
  auto t0 = Clock_::now();
  for (int r = 0; r < rounds; ++r) {
    core::Executor executor(lookup, "replay");
    for (const HistoryEvent& e : history) executor.Apply(e, /*replaying=*/true);
  }
  double seconds = std::chrono::duration<double>(Clock_::now() - t0).count();
  double events_per_s = rounds * history.size() / seconds;

  // 2. Memory per cached idle orchestration.
  const int idle = 2000;
  Hub hub(registry);
  long before = RssKb();
  const size_t heap_before = HeapInUse();
  const sqlite3_int64 sqlite_before = sqlite3_memory_used();
  std::vector<std::string> ids;
  for (int i = 0; i < idle; ++i) ids.push_back(*hub.client().ScheduleNewOrchestration("Idle", nullptr));
  // Wait until every instance has had its second episode (it is then idle in the cache).
  for (const auto& id : ids) {
    for (int tries = 0; tries < 10000; ++tries) {
      auto h = hub.client().GetHistory(id);
      if (h.ok() && std::any_of(h->begin(), h->end(), [](const HistoryEvent& e) {
            return std::holds_alternative<events::TaskCompleted>(e.body);
          }))
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  long after = RssKb();
  const size_t heap_after = HeapInUse();
  const sqlite3_int64 sqlite_after = sqlite3_memory_used();
  WorkerStats stats = hub.worker().Stats();
  std::printf("baton replay: events=%zu replay=%.0f events/s (%.2fms per full replay) "
              "idle_cached=%zu heap_per_idle=%.1fKiB (%s; of which SQLite's own %.1fKiB) rss_per_idle=%.1fKiB "
              "cache_estimate_per_idle=%.1fKiB\n",
              history.size(), events_per_s, seconds * 1000 / rounds, stats.cached_instances,
              (static_cast<double>(heap_after) - static_cast<double>(heap_before)) / 1024.0 / idle, AllocatorName(),
              static_cast<double>(sqlite_after - sqlite_before) / 1024.0 / idle,
              static_cast<double>(after - before) / idle,
              stats.cached_instances ? stats.cached_bytes / 1024.0 / stats.cached_instances : 0.0);
  return 0;
}

// hello5 through the HTTP API: each orchestration is started with
// ?timeout= so the same request waits for its result (DF "start and wait").
int Hello5Http(int n, int c) {
  namespace http = boost::beast::http;
  std::string tmpl = (std::filesystem::temp_directory_path() / "baton-bench-XXXXXX").string();
  std::string dir = mkdtemp(tmpl.data());
  int rc = 0;
  {
    testing::ServerProcess server(BATON_BINARY, dir + "/data");
    HttpConnection admin(server.port());
    std::string body;
    const std::string key = BenchTenantKey(admin, server.admin_key());
    const std::string target = "/runtime/webhooks/durabletask/orchestrators/Hello5?timeout=60&pollingInterval=1";
    auto run_one = [&](HttpConnection& conn) {
      std::string out;
      auto t0 = Clock_::now();
      int status = conn.Call(http::verb::post, target, key, "", &out);
      if (status != 200) {
        std::fprintf(stderr, "start-and-wait answered %d: %s\n", status, out.c_str());
        std::exit(1);
      }
      return Ms(Clock_::now() - t0);
    };
    HttpConnection warm(server.port());
    for (int i = 0; i < 200; ++i) run_one(warm);
    std::vector<double> c1;
    for (int i = 0; i < 200; ++i) c1.push_back(run_one(warm));

    std::atomic<int> next{0};
    std::mutex mu;
    std::vector<double> latencies;
    auto t0 = Clock_::now();
    std::vector<std::thread> clients;
    for (int k = 0; k < c; ++k) {
      clients.emplace_back([&] {
        HttpConnection conn(server.port());
        std::vector<double> mine;
        while (next.fetch_add(1) < n) mine.push_back(run_one(conn));
        std::lock_guard lock(mu);
        latencies.insert(latencies.end(), mine.begin(), mine.end());
      });
    }
    for (auto& t : clients) t.join();
    double seconds = std::chrono::duration<double>(Clock_::now() - t0).count();
    std::printf("baton hello5-http: N=%d C=%d thr=%.0f/s p50=%.2fms p95=%.2fms p99=%.2fms c1_p50=%.2fms\n", n, c,
                n / seconds, Percentile(latencies, 0.50), Percentile(latencies, 0.95), Percentile(latencies, 0.99),
                Percentile(c1, 0.50));
    if (server.Terminate() != 0) rc = 1;
  }
  std::filesystem::remove_all(dir);
  return rc;
}

// Runs wrk (Debian's package) against a fresh server and returns its
// "Requests/sec" figure, or -1.
double RunWrk(unsigned short port, const std::string& script, const std::string& key, const std::string& instance,
              int seconds, int connections) {
  std::string cmd = "BATON_KEY=" + key + " BATON_INSTANCE=" + instance + " wrk -t2 -c" + std::to_string(connections) +
                    " -d" + std::to_string(seconds) + "s --timeout 10s -s " + script + " http://127.0.0.1:" +
                    std::to_string(port) + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char line[512];
  double rate = -1;
  int non2xx = 0;
  while (std::fgets(line, sizeof line, p)) {
    std::string l(line);
    if (l.rfind("Requests/sec:", 0) == 0) rate = std::atof(l.c_str() + 13);
    if (l.find("Non-2xx") != std::string::npos) non2xx = std::atoi(l.c_str() + l.find(':') + 1);
  }
  pclose(p);
  if (non2xx > 0) std::fprintf(stderr, "wrk: %d non-2xx answers\n", non2xx);
  return rate;
}

// Request rates of status GETs and of starts, measured with wrk over
// keep-alive connections on loopback (bounded: `seconds` per phase).
int HttpRate(int seconds, int connections) {
  namespace http = boost::beast::http;
  std::string tmpl = (std::filesystem::temp_directory_path() / "baton-bench-XXXXXX").string();
  std::string dir = mkdtemp(tmpl.data());
  {
    testing::ServerProcess server(BATON_BINARY, dir + "/data");
    HttpConnection admin(server.port());
    std::string body;
    const std::string key = BenchTenantKey(admin, server.admin_key());
    admin.Call(http::verb::post, "/runtime/webhooks/durabletask/orchestrators/Hello5/probe?timeout=60", key, "",
               &body);
    const std::string wrk_dir = BATON_SOURCE_DIR "/bench/wrk/";
    double status_rate = RunWrk(server.port(), wrk_dir + "status.lua", key, "probe", seconds, connections);
    double start_rate = RunWrk(server.port(), wrk_dir + "start.lua", key, "", seconds, connections);
    std::printf("baton http-rate: connections=%d duration=%ds status_get=%.0f req/s start=%.0f req/s\n", connections,
                seconds, status_rate, start_rate);
    server.Terminate();
  }
  std::filesystem::remove_all(dir);
  return 0;
}

// Signals per second, end to end (acknowledged by the store, then applied by
// the entity), from C client threads to `entities` entities.
double SignalRate(int total, int entities, int clients) {
  Registry registry;
  registry.AddEntity("Counter", [](EntityContext& ctx) -> Json {
    ctx.SetState(ctx.GetState<int64_t>(0) + ctx.GetInput<int64_t>());
    return nullptr;
  }).IgnoreError();
  Hub hub(registry);
  std::atomic<int> next{0};
  auto t0 = Clock_::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < total;) {
        Status s = hub.client().SignalEntity(EntityId("Counter", "k" + std::to_string(i % entities)), "add", 1);
        if (!s.ok()) {
          std::fprintf(stderr, "signal: %s\n", s.ToString().c_str());
          std::exit(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  // Applied: every entity reached its share (bounded wait).
  const int64_t share = total / entities;
  auto deadline = Clock_::now() + std::chrono::minutes(5);
  for (int k = 0; k < entities; ++k) {
    for (;;) {
      auto e = hub.client().GetEntity(EntityId("Counter", "k" + std::to_string(k)));
      if (e.ok() && e->has_state && FromPayload(e->state).get<int64_t>() == share) break;
      if (Clock_::now() > deadline) {
        std::fprintf(stderr, "entity k%d did not reach %lld\n", k, static_cast<long long>(share));
        std::exit(1);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  double seconds = std::chrono::duration<double>(Clock_::now() - t0).count();
  return total / seconds;
}

int EntitySignals(int total, int clients) {
  double one = SignalRate(total, 1, clients);
  double thousand = SignalRate(total, 1000, clients);
  std::printf("baton entity-signals: N=%d C=%d one_entity=%.0f signals/s thousand_entities=%.0f signals/s\n", total,
              clients, one, thousand);
  return 0;
}

std::string ReadBinary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// create + start + wait + remove of a trivial container through DockerRuntime,
// against `docker run --rm` of the same image, interleaved in one run.
int ContainerRun(int n) {
  runtime::docker::DockerRuntime docker;
  if (Status s = docker.Ping(); !s.ok()) {
    std::fprintf(stderr, "%s (run scripts/docker-up)\n", s.ToString().c_str());
    return 1;
  }
  const std::string image = "baton-bench/testjob:" + std::to_string(getpid());
  std::string tar = runtime::docker::MakeTar(
      {{"Dockerfile", "FROM scratch\nCOPY testjob /testjob\nENTRYPOINT [\"/testjob\"]\n"},
       {"testjob", ReadBinary(BATON_TESTJOB)}},
      {"testjob"});
  if (Status s = docker.BuildImage(image, tar); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::vector<double> ours, cli;
  for (int i = 0; i < n + 2; ++i) {  // the first two of each are warm-up
    runtime::GroupSpec spec;
    spec.name = "bench-" + std::to_string(getpid()) + "-" + std::to_string(i);
    runtime::ContainerSpec c;
    c.name = "main";
    c.image = image;
    c.args = {"exit", "0"};
    spec.containers = {c};
    auto t0 = Clock_::now();
    auto group = docker.CreateGroup(spec);
    if (!group.ok() || !docker.StartGroup(spec.name).ok() ||
        !docker.WaitContainer(group->containers[0].id, std::chrono::seconds(60)).ok() ||
        !docker.DeleteGroup(spec.name).ok()) {
      std::fprintf(stderr, "a container run failed\n");
      return 1;
    }
    double ms_ours = Ms(Clock_::now() - t0);
    t0 = Clock_::now();
    std::string cmd = "docker run --rm --network none " + image + " exit 0 >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "docker run failed\n");
      return 1;
    }
    double ms_cli = Ms(Clock_::now() - t0);
    if (i >= 2) {
      ours.push_back(ms_ours);
      cli.push_back(ms_cli);
    }
  }
  docker.RemoveImage(image).IgnoreError();
  double p_ours = Percentile(ours, 0.5), p_cli = Percentile(cli, 0.5);
  std::printf("baton container-run: N=%d baton_p50=%.1fms docker_run_rm_p50=%.1fms ratio=%.2f\n", n, p_ours, p_cli,
              p_ours / p_cli);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // --runtime R (the job benchmarks) may come anywhere; the rest are positional.
  std::string runtime = "docker";
  std::string metrics = "on";
  int metrics_pairs = 5;
  std::vector<char*> positional;
  for (int i = 0; i < argc; ++i) {
    if (std::string(argv[i]) == "--runtime" && i + 1 < argc) {
      runtime = argv[++i];
    } else if (std::string(argv[i]) == "--metrics" && i + 1 < argc) {
      // on (the default, as shipped) | off | ab (hello5: alternate; --pairs K rounds of each)
      metrics = argv[++i];
      if (metrics == "off") util::metrics::SetEnabled(false);
    } else if (std::string(argv[i]) == "--pairs" && i + 1 < argc) {
      metrics_pairs = std::max(1, std::atoi(argv[++i]));
    } else {
      positional.push_back(argv[i]);
    }
  }
  argc = static_cast<int>(positional.size());
  argv = positional.data();
  std::string what = argc > 1 ? argv[1] : "";
  auto arg = [&](int i, int dflt) { return argc > i ? std::atoi(argv[i]) : dflt; };
  if (what == "hello5" && metrics == "ab") return Hello5MetricsAb(arg(2, 2000), arg(3, 50), metrics_pairs);
  if (what == "hello5") return Hello5(arg(2, 2000), arg(3, 50));
  if (what == "fanout") return FanOut(arg(2, 10000));
  if (what == "metrics-cost") return MetricsCost(arg(2, 2000));
  if (what == "replay") return Replay(arg(2, 10000));
  if (what == "hello5-http") return Hello5Http(arg(2, 2000), arg(3, 50));
  if (what == "http-rate") return HttpRate(arg(2, 10), arg(3, 32));
  if (what == "entity-signals") return EntitySignals(arg(2, 20000), arg(3, 16));
  if (what == "container-run") return ContainerRun(arg(2, 20));
  if (what == "job-latency") return JobLatency(arg(2, 20), runtime);
  if (what == "job-throughput") return JobThroughput(arg(2, 100), arg(3, 8), runtime);
  if (what == "hello5-pg") return Hello5Pg(arg(2, 2000), arg(3, 50), arg(4, 1));
  if (what == "hello5-pg-node" && argc > 2) return Hello5PgNode(argv[2]);
  std::fprintf(stderr, "usage: %s hello5 [N] [C] | hello5-http [N] [C] | http-rate [SECONDS] [CONNECTIONS] | entity-signals [N] [C] | container-run [N] | "
               "job-latency [N] [--runtime docker|swarm|both] | job-throughput [N] [Q] [--runtime docker|swarm|both] | "
               "fanout [N] | replay [N] | hello5-pg [N] [C] [NODES]\n",
               argv[0]);
  return 2;
}
