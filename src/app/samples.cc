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
}

}  // namespace baton::app
