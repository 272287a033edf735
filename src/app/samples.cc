#include "app/samples.h"

#include <algorithm>

#include "baton/job.h"

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
  // Fans out `count` batch jobs (1-1000) of `spec` and fans in their
  // results (include/baton/job.h): job i is named "<spec.name>-<i>" and gets
  // INDEX=i in its environment. Yields {"count", "completed", "results"}.
  registry
      .AddOrchestrator("FanOutJobs",
                       [](OrchestrationContext& ctx) -> Task<Json> {
                         const Json in = ctx.GetInput();
                         if (!in.is_object() || !in.contains("spec") || !in["spec"].is_object() ||
                             !in["spec"].value("name", Json()).is_string() || !in.value("count", Json()).is_number_integer()) {
                           throw DurableError("InvalidArgument", "the input is {\"count\": n, \"spec\": {a job spec}}");
                         }
                         const int count = std::clamp(in["count"].get<int>(), 1, 1000);
                         std::vector<Task<Json>> jobs;
                         for (int i = 0; i < count; ++i) {
                           Json spec = in["spec"];
                           spec["name"] = spec["name"].get<std::string>() + "-" + std::to_string(i);
                           spec["env"]["INDEX"] = std::to_string(i);
                           jobs.push_back(CallJob(ctx, std::move(spec)));
                         }
                         std::vector<Json> results = co_await WhenAll(std::move(jobs));
                         int completed = 0;
                         for (const Json& r : results) completed += r.is_object() && r.value("status", "") == "Completed";
                         co_return Json{{"count", count}, {"completed", completed}, {"results", results}};
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
  // An activity that always fails, called with a retry policy of 3 attempts:
  // for trying out retries (the dashboard's timeline groups them on one row).
  registry
      .AddActivity("FailActivity",
                   [](ActivityContext& ctx) -> Json {
                     throw DurableError("SampleFailure", ctx.GetInput<std::string>());
                   })
      .IgnoreError();
  registry
      .AddOrchestrator("RetryThenGiveUp",
                       [](OrchestrationContext& ctx) -> Task<Json> {
                         try {
                           co_await ctx.CallActivity("FailActivity", ctx.GetInput(),
                                                     RetryPolicy(3, std::chrono::milliseconds(100), 1.0));
                         } catch (const TaskFailedError& e) {
                           co_return Json{{"gaveUp", e.what()}};
                         }
                         co_return nullptr;
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
