// The README's example, complete: an orchestration that calls an activity,
// sleeps on a durable timer and waits for an approval event, on an embedded
// SQLite task hub. Build it against the installed SDK (examples/README.md):
//
//   cmake -S examples -B build-examples -DCMAKE_PREFIX_PATH=/usr/local
//   cmake --build build-examples && build-examples/hello
#include <baton/client.h>
#include <baton/registry.h>
#include <baton/sqlite_store.h>
#include <baton/worker.h>

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  baton::Registry registry;
  baton::Status added = registry.AddActivity("SayHello", [](baton::ActivityContext& ctx) -> baton::Json {
    return "Hello, " + ctx.GetInput<std::string>() + "!";
  });
  if (added.ok()) {
    added = registry.AddOrchestrator("Greet", [](baton::OrchestrationContext& ctx) -> baton::Task<baton::Json> {
      std::string greeting = co_await ctx.CallActivity<std::string>("SayHello", "Tokyo");
      co_await ctx.CreateTimer(std::chrono::seconds(1));  // durable: survives restarts
      baton::Json approval = co_await ctx.WaitForExternalEvent("Approve");
      co_return baton::Json{greeting, approval};
    });
  }
  if (!added.ok()) {
    std::fprintf(stderr, "%s\n", added.ToString().c_str());
    return 1;
  }

  baton::SqliteStoreOptions options;
  options.path = argc > 1 ? argv[1] : "hello.db";
  auto store = baton::OpenSqliteStore(options);
  if (!store.ok()) {
    std::fprintf(stderr, "cannot open the task hub: %s\n", store.status().ToString().c_str());
    return 1;
  }
  baton::Worker worker(**store, registry);
  if (baton::Status s = worker.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  baton::Client client(**store);
  auto id = client.ScheduleNewOrchestration("Greet");
  if (!id.ok() || !client.RaiseEvent(*id, "Approve", true).ok()) {
    std::fprintf(stderr, "cannot start Greet\n");
    return 1;
  }
  auto done = client.WaitForCompletion(*id, std::chrono::seconds(30));
  worker.Stop();
  if (!done.ok() || done->status != baton::OrchestrationStatus::kCompleted) {
    std::fprintf(stderr, "Greet did not complete\n");
    return 1;
  }
  std::printf("%s completed: %s\n", id->c_str(), done->output.c_str());
  return 0;
}
