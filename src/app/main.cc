// The `baton` binary: wiring of store, worker and client, and the CLI.
//
//   baton demo  [--db FILE]   run the sample orchestration and print its history
//   baton serve [--db FILE]   run a worker with the sample orchestrations until SIGINT/SIGTERM
//   baton version
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "app/samples.h"
#include "baton/client.h"
#include "baton/registry.h"
#include "baton/sqlite_store.h"
#include "baton/worker.h"

namespace baton::app {
namespace {

Result<std::unique_ptr<Store>> Open(const std::string& db) {
  SqliteStoreOptions options;
  options.path = db;
  return OpenSqliteStore(options);
}

std::string Describe(const HistoryEvent& e) {
  return std::visit(
      [](const auto& body) -> std::string {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, events::ExecutionStarted>) return body.name + " " + body.input;
        if constexpr (std::is_same_v<T, events::TaskScheduled>) return body.name + " " + body.input;
        if constexpr (std::is_same_v<T, events::TaskCompleted>) return body.result;
        if constexpr (std::is_same_v<T, events::TimerCreated>) return "fire at " + FormatIso8601(body.fire_at);
        if constexpr (std::is_same_v<T, events::ExecutionCompleted>) {
          return std::string(OrchestrationStatusName(body.status)) + " " + body.result;
        }
        return "";
      },
      e.body);
}

int Demo(const std::string& db) {
  auto store = Open(db);
  if (!store.ok()) {
    std::fprintf(stderr, "baton: cannot open %s: %s\n", db.c_str(), store.status().ToString().c_str());
    return 1;
  }
  Registry registry;
  RegisterSamples(registry);
  Worker worker(**store, registry);
  if (Status s = worker.Start(); !s.ok()) {
    std::fprintf(stderr, "baton: %s\n", s.ToString().c_str());
    return 1;
  }
  Client client(**store);
  auto id = client.ScheduleNewOrchestration("HelloCities", Json{"Tokyo", "Seattle", "London"});
  if (!id.ok()) {
    std::fprintf(stderr, "baton: %s\n", id.status().ToString().c_str());
    return 1;
  }
  std::printf("started HelloCities as instance %s (task hub %s)\n", id->c_str(), db.c_str());
  auto state = client.WaitForCompletion(*id, std::chrono::minutes(1));
  if (!state.ok()) {
    std::fprintf(stderr, "baton: %s\n", state.status().ToString().c_str());
    return 1;
  }
  std::printf("status: %s\noutput: %s\n\nhistory:\n", std::string(OrchestrationStatusName(state->status)).c_str(),
              state->output.c_str());
  auto history = client.GetHistory(*id);
  if (history.ok()) {
    for (const HistoryEvent& e : *history) {
      std::printf("  %3d  %-26s %s  %s\n", e.event_id, std::string(EventKindName(e.body)).c_str(),
                  FormatIso8601(e.timestamp).c_str(), Describe(e).c_str());
    }
  }
  worker.Stop();
  return state->status == OrchestrationStatus::kCompleted ? 0 : 1;
}

int Serve(const std::string& db) {
  // Block the shutdown signals before any thread starts, then wait for one.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto store = Open(db);
  if (!store.ok()) {
    std::fprintf(stderr, "baton: cannot open %s: %s\n", db.c_str(), store.status().ToString().c_str());
    return 1;
  }
  Registry registry;
  RegisterSamples(registry);
  Worker worker(**store, registry);
  if (Status s = worker.Start(); !s.ok()) {
    std::fprintf(stderr, "baton: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("baton: serving task hub %s (Ctrl-C to stop)\n", db.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  std::printf("baton: signal %d, finishing in-flight work...\n", sig);
  worker.Stop();
  std::printf("baton: stopped\n");
  return 0;
}

}  // namespace
}  // namespace baton::app

int main(int argc, char** argv) {
  CLI::App app{"Baton: durable functions and serverless batch jobs"};
  app.require_subcommand(1);
  std::string db = "baton.db";

  auto* demo = app.add_subcommand("demo", "Run the sample orchestration and print its result and history");
  demo->add_option("--db", db, "SQLite task hub file")->capture_default_str();
  auto* serve = app.add_subcommand("serve", "Run a worker with the sample orchestrations until SIGINT/SIGTERM");
  serve->add_option("--db", db, "SQLite task hub file")->capture_default_str();
  app.add_subcommand("version", "Print the version");

  CLI11_PARSE(app, argc, argv);
  if (demo->parsed()) return baton::app::Demo(db);
  if (serve->parsed()) return baton::app::Serve(db);
  std::printf("baton 0.1.0\n");
  return 0;
}
