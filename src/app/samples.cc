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
