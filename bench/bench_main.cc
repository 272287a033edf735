// Baton's engine benchmarks. Run through scripts/bench:
//
//   scripts/bench hello5 [N] [C]   orchestrations of 5 sequential activities
//   scripts/bench fanout [N]       one orchestration fanning out to N activities
//   scripts/bench replay [N]       full replay of an N-event history, and the
//                                  memory of cached idle orchestrations
//
// Every run uses a fresh SQLite task hub in a temp dir with the durable
// settings Baton ships with. Figures are printed, never asserted.
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "baton/client.h"
#include "baton/registry.h"
#include "baton/sqlite_store.h"
#include "baton/worker.h"
#include "core/executor.h"

using namespace baton;
using Clock_ = std::chrono::steady_clock;

namespace {

double Ms(Clock_::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

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
  WorkerStats stats = hub.worker().Stats();
  std::printf("baton replay: events=%zu replay=%.0f events/s (%.2fms per full replay) "
              "idle_cached=%zu rss_per_idle=%.1fKiB cache_estimate_per_idle=%.1fKiB\n",
              history.size(), events_per_s, seconds * 1000 / rounds, stats.cached_instances,
              static_cast<double>(after - before) / idle,
              stats.cached_instances ? stats.cached_bytes / 1024.0 / stats.cached_instances : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string what = argc > 1 ? argv[1] : "";
  auto arg = [&](int i, int dflt) { return argc > i ? std::atoi(argv[i]) : dflt; };
  if (what == "hello5") return Hello5(arg(2, 2000), arg(3, 50));
  if (what == "fanout") return FanOut(arg(2, 10000));
  if (what == "replay") return Replay(arg(2, 10000));
  std::fprintf(stderr, "usage: %s hello5 [N] [C] | fanout [N] | replay [N]\n", argv[0]);
  return 2;
}
