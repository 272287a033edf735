#include "app/samples.h"

namespace baton::app {

void RegisterSamples(Registry& registry) {
  registry
      .AddActivity("SayHello",
                   [](ActivityContext& ctx) -> Json { return "Hello, " + ctx.GetInput<std::string>() + "!"; })
      .IgnoreError();
  registry
      .AddOrchestrator("HelloCities",
                       [](OrchestrationContext& ctx) -> Task<Json> {
                         std::vector<std::string> cities = ctx.GetInput<std::vector<std::string>>();
                         Json greetings = Json::array();
                         for (const std::string& city : cities) {
                           std::string greeting = co_await ctx.CallActivity<std::string>("SayHello", city);
                           greetings.push_back(greeting);
                         }
                         co_return greetings;
                       })
      .IgnoreError();
  // The benchmark workload: five sequential activities with short results.
  registry
      .AddOrchestrator("Hello5",
                       [](OrchestrationContext& ctx) -> Task<Json> {
                         Json greetings = Json::array();
                         for (const char* city : {"Tokyo", "Seattle", "London", "Paris", "Lima"}) {
                           std::string greeting = co_await ctx.CallActivity<std::string>("SayHello", city);
                           greetings.push_back(greeting);
                         }
                         co_return greetings;
                       })
      .IgnoreError();
  // Waits for an "approve" event, for trying out events, suspend and terminate.
  registry
      .AddOrchestrator("AwaitApproval",
                       [](OrchestrationContext& ctx) -> Task<Json> {
                         ctx.SetCustomStatus("waiting for the 'approve' event");
                         Json approval = co_await ctx.WaitForExternalEvent("approve");
                         co_return Json{{"input", ctx.GetInput()}, {"approval", approval}};
                       })
      .IgnoreError();
  // A counter entity: "add" (input: a number), "reset", "get", "delete".
  registry
      .AddEntity("Counter",
                 [](EntityContext& ctx) -> Json {
                   int64_t value = ctx.GetState<int64_t>(0);
                   const std::string& op = ctx.OperationName();
                   if (op == "add") {
                     ctx.SetState(value + ctx.GetInput<int64_t>());
                   } else if (op == "reset") {
                     ctx.SetState(0);
                   } else if (op == "get") {
                     return value;
                   } else if (op == "delete") {
                     ctx.DeleteState();
                   } else {
                     throw DurableError("UnknownOperation", "Counter has no operation '" + op + "'");
                   }
                   return nullptr;
                 })
      .IgnoreError();
  // Locks Counter/<input>, waits for the event "release", adds 1, unlocks.
  registry
      .AddOrchestrator("LockAndWait",
                       [](OrchestrationContext& ctx) -> Task<Json> {
                         EntityId counter("Counter", ctx.GetInput<std::string>());
                         std::vector<EntityId> lock_set{counter};
                         co_await ctx.LockEntities(std::move(lock_set));
                         ctx.SetCustomStatus("locked");
                         co_await ctx.WaitForExternalEvent("release");
                         co_await ctx.CallEntity(counter, "add", 1);
                         ctx.UnlockEntities();
                         co_return co_await ctx.CallEntity(counter, "get");
                       })
      .IgnoreError();
  // Fails with its input as the message, for trying out failure handling.
  registry
      .AddOrchestrator("FailWith",
                       [](OrchestrationContext& ctx) -> Task<Json> {
                         throw DurableError("SampleFailure", ctx.GetInput<std::string>());
                         co_return nullptr;
                       })
      .IgnoreError();
}

}  // namespace baton::app
