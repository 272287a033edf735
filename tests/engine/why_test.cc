// `baton why` at the engine layer (engine/why.h): each case is built by the
// test with a real worker on a real store, then the chain is assembled from
// the wait sources and checked link by link.
#include "engine/why.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include <cstdlib>
#include <fstream>

#include "baton/client.h"
#include "baton/registry.h"
#include "baton/worker.h"
#include "testing/test_store.h"
#include "testing/test_util.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

EntityId Account42() { return EntityId("Account", "42"); }

class WhyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = testing::OpenTestStore(dir_.path(), nullptr);
    if (!store.ok()) {  // ends the test, not only this helper (its next line would use a null store)
      ADD_FAILURE() << store.status().ToString();
      throw std::runtime_error("no store: " + store.status().ToString());
    }
    store_ = std::move(*store);
    client_ = std::make_unique<Client>(*store_);
  }
  void TearDown() override {
    if (worker_) worker_->Stop();
  }
  void StartWorker() {
    worker_ = std::make_unique<Worker>(*store_, registry_, WorkerOptions{});
    BATON_ASSERT_OK(worker_->Start());
  }
  std::string Start(const std::string& name, const std::string& id, const Json& input = nullptr) {
    ScheduleOptions o;
    o.instance_id = id;
    auto r = client_->ScheduleNewOrchestration(name, input, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return id;
  }
  // Waits until the instance's custom status is `status`.
  bool AwaitStatus(const std::string& id, const Json& status) {
    return testing::Eventually([&] {
      auto s = client_->GetState(id);
      return s.ok() && FromPayload(s->custom_status) == status;
    });
  }
  engine::WhyChain Why(const std::string& id, std::optional<int> sdk_workers = 0) {
    engine::SdkWorkerCount count = [sdk_workers](std::string_view) { return sdk_workers; };
    engine::InstanceWaitSource instances(*client_, &registry_, count);
    engine::EntityWaitSource entities(*client_);
    engine::WorkerWaitSource workers(count);
    auto chain = engine::ExplainWait(engine::InstanceSubject(id), {&instances, &entities, &workers});
    EXPECT_TRUE(chain.ok()) << chain.status().ToString();
    return chain.ok() ? *chain : engine::WhyChain{};
  }
  static std::vector<std::string> Layers(const engine::WhyChain& c) {
    std::vector<std::string> out;
    for (const auto& l : c.links) out.push_back(l.layer);
    return out;
  }

  testing::TempDir dir_;
  Registry registry_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Client> client_;
};

TEST_F(WhyTest, ATimerIsTheRootWithItsDueTime) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Nap", [](OrchestrationContext& ctx) -> Task<Json> {
    ctx.SetCustomStatus("napping");
    co_await ctx.CreateTimer(std::chrono::hours(2));
    co_return nullptr;
  }));
  StartWorker();
  Start("Nap", "nap-1");
  ASSERT_TRUE(AwaitStatus("nap-1", "napping"));
  auto history = client_->GetHistory("nap-1");
  ASSERT_TRUE(history.ok());
  TimePoint due;
  for (const auto& e : *history) {
    if (auto* t = std::get_if<events::TimerCreated>(&e.body)) due = t->fire_at;
  }
  engine::WhyChain c = Why("nap-1");
  ASSERT_EQ(Layers(c), std::vector<std::string>({"timer"}));
  EXPECT_EQ(c.links[0].details["dueAt"], FormatIso8601(due));
  EXPECT_TRUE(c.links[0].next.empty());
}

TEST_F(WhyTest, AnExternalEventIsNamedFromAReplay) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Approval", [](OrchestrationContext& ctx) -> Task<Json> {
    ctx.SetCustomStatus("asking");
    co_await ctx.WaitForExternalEvent("ManagerApproval");
    co_return nullptr;
  }));
  StartWorker();
  Start("Approval", "ap-1");
  ASSERT_TRUE(AwaitStatus("ap-1", "asking"));
  engine::WhyChain c = Why("ap-1");
  ASSERT_EQ(Layers(c), std::vector<std::string>({"external-event"}));
  EXPECT_EQ(c.links[0].details["events"], Json::array({"managerapproval"}));
  EXPECT_NE(c.links[0].summary.find("'managerapproval'"), std::string::npos) << c.links[0].summary;
  EXPECT_TRUE(c.links[0].details.contains("since"));
}

TEST_F(WhyTest, ARetryBackoffShowsAttemptNextTimeAndLastError) {
  BATON_ASSERT_OK(registry_.AddActivity("Flaky", [](ActivityContext&) -> Json {
    throw std::runtime_error("connection refused by billing");
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Bill", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CallActivity("Flaky", nullptr, RetryPolicy(5, std::chrono::hours(1)));
    co_return nullptr;
  }));
  StartWorker();
  Start("Bill", "bill-1");
  engine::WhyChain c;
  ASSERT_TRUE(testing::Eventually([&] {
    c = Why("bill-1");
    return !c.links.empty() && c.links[0].layer == "retry";
  }));
  ASSERT_EQ(c.links.size(), 1u);
  const Json& d = c.links[0].details;
  EXPECT_EQ(d["activity"], "Flaky");
  EXPECT_EQ(d["failedAttempts"], 1);
  EXPECT_NE(d["lastError"].get<std::string>().find("connection refused by billing"), std::string::npos);
  TimePoint next;
  ASSERT_TRUE(ParseIso8601(d["nextAttemptAt"].get<std::string>(), &next));
  EXPECT_GT(next, std::chrono::system_clock::now() + 50min);
}

TEST_F(WhyTest, AnEntityLockLeadsToItsHolderAndWhatTheHolderWaitsFor) {
  BATON_ASSERT_OK(registry_.AddEntity("Account", [](EntityContext& ctx) -> Json { return nullptr; }));
  // Named coroutines: g++ 12 miscompiles these two lambdas inside a macro argument.
  OrchestratorFn holder = [](OrchestrationContext& ctx) -> Task<Json> {
    std::vector<EntityId> lock = {Account42()};
    co_await ctx.LockEntities(lock);
    ctx.SetCustomStatus(Json("holding"));
    co_await ctx.WaitForExternalEvent("Release");
    co_return nullptr;
  };
  OrchestratorFn transfer = [](OrchestrationContext& ctx) -> Task<Json> {
    std::vector<EntityId> lock = {Account42()};
    co_await ctx.LockEntities(lock);
    co_return nullptr;
  };
  BATON_ASSERT_OK(registry_.AddOrchestrator("Holder", holder));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Transfer", transfer));
  StartWorker();
  Start("Holder", "holder-1");
  ASSERT_TRUE(AwaitStatus("holder-1", "holding"));
  Start("Transfer", "transfer-1");
  engine::WhyChain c;
  ASSERT_TRUE(testing::Eventually([&] {
    c = Why("transfer-1");
    return c.links.size() == 3 && c.links[2].layer == "external-event";
  })) << WhyJson(c).dump(2);
  EXPECT_EQ(Layers(c), std::vector<std::string>({"entity-lock", "entity-lock", "external-event"}));
  EXPECT_EQ(c.links[0].next, "entity:@account@42");
  EXPECT_EQ(c.links[1].details["lockedBy"], "holder-1");
  EXPECT_TRUE(c.links[1].details.contains("since"));
  EXPECT_EQ(c.links[2].subject, "instance:holder-1");
  EXPECT_EQ(c.links[2].details["events"], Json::array({"release"}));
  if (const char* keep = std::getenv("BATON_EXAMPLE_DIR")) {  // the output docs/why.md shows
    std::ofstream(std::string(keep) + "/why-lock.json") << WhyJson(c).dump(2);
  }
  // Released: the transfer runs to the end and its chain is "done".
  BATON_ASSERT_OK(client_->RaiseEvent("holder-1", "Release"));
  ASSERT_TRUE(client_->WaitForCompletion("transfer-1", 60s).ok());
  EXPECT_EQ(Layers(Why("transfer-1")), std::vector<std::string>({"done"}));
}

TEST_F(WhyTest, AChildOrchestrationIsFollowedRecursively) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Leaf", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CreateTimer(std::chrono::hours(1));
    co_return nullptr;
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Middle", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CallSubOrchestrator("Leaf", nullptr, SubOrchestratorOptions("leaf-1"));
    co_return nullptr;
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Top", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CallSubOrchestrator("Middle", nullptr, SubOrchestratorOptions("middle-1"));
    co_return nullptr;
  }));
  StartWorker();
  Start("Top", "top-1");
  engine::WhyChain c;
  ASSERT_TRUE(testing::Eventually([&] {
    c = Why("top-1");
    return c.links.size() == 3 && c.links[2].layer == "timer";
  })) << WhyJson(c).dump(2);
  EXPECT_EQ(Layers(c), std::vector<std::string>({"child", "child", "timer"}));
  EXPECT_EQ(c.links[0].next, "instance:middle-1");
  EXPECT_EQ(c.links[1].next, "instance:leaf-1");
  EXPECT_EQ(WhyJson(c)["rootCause"]["layer"], "timer");
}

TEST_F(WhyTest, SuspendedInstancesAndASuspendedParent) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Kid", [](OrchestrationContext& ctx) -> Task<Json> {
    ctx.SetCustomStatus("waiting");
    co_await ctx.WaitForExternalEvent("Go");
    co_return nullptr;
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Mom", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CallSubOrchestrator("Kid", nullptr, SubOrchestratorOptions("kid-1"));
    co_return nullptr;
  }));
  StartWorker();
  Start("Mom", "mom-1");
  ASSERT_TRUE(AwaitStatus("kid-1", "waiting"));
  BATON_ASSERT_OK(client_->Suspend("mom-1", "maintenance window"));
  ASSERT_TRUE(testing::Eventually([&] {
    auto s = client_->GetState("mom-1");
    return s.ok() && s->status == OrchestrationStatus::kSuspended;
  }));
  engine::WhyChain mom = Why("mom-1");
  ASSERT_EQ(Layers(mom), std::vector<std::string>({"suspended"}));
  EXPECT_EQ(mom.links[0].details["reason"], "maintenance window");
  // The child finishes; its result waits for the suspended parent.
  BATON_ASSERT_OK(client_->RaiseEvent("kid-1", "Go"));
  ASSERT_TRUE(client_->WaitForCompletion("kid-1", 60s).ok());
  engine::WhyChain kid = Why("kid-1");
  EXPECT_EQ(Layers(kid), std::vector<std::string>({"done", "suspended"}));
  EXPECT_EQ(kid.links[0].next, "instance:mom-1");
}

TEST_F(WhyTest, NoSdkWorkerConnectedForTheHub) {
  // No C++ orchestrator of that name: an SDK orchestrator, and no worker runs.
  Start("PythonOrchestrator", "acme::py-1");
  engine::WhyChain none = Why("acme::py-1", 0);
  ASSERT_EQ(Layers(none), std::vector<std::string>({"pending", "sdk-worker"}));
  EXPECT_EQ(none.links[0].next, "workers:acme::");
  EXPECT_NE(none.links[1].summary.find("no SDK worker is connected for task hub 'acme'"), std::string::npos)
      << none.links[1].summary;
  EXPECT_EQ(none.links[1].details["connectedWorkers"], 0);
  engine::WhyChain off = Why("acme::py-1", std::nullopt);
  EXPECT_NE(off.links[1].summary.find("sidecar is off"), std::string::npos) << off.links[1].summary;
  engine::WhyChain some = Why("acme::py-1", 2);
  EXPECT_NE(some.links[1].summary.find("2 SDK worker stream(s) connected"), std::string::npos);
}

TEST_F(WhyTest, UnknownSubjectsAndCallerScope) {
  engine::InstanceWaitSource instances(*client_, &registry_, {});
  EXPECT_EQ(engine::ExplainWait("instance:nope", {&instances}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(engine::ExplainWait("bogus:1", {&instances}).status().code(), StatusCode::kNotFound);
  // A chain that would lead to what the caller may not see stops at the border.
  BATON_ASSERT_OK(registry_.AddOrchestrator("Peek", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CallSubOrchestrator("Leaf2", nullptr, SubOrchestratorOptions("hidden-child"));
    co_return nullptr;
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Leaf2", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CreateTimer(std::chrono::hours(1));
    co_return nullptr;
  }));
  StartWorker();
  Start("Peek", "acme::peek");
  engine::WhyChain c;
  ASSERT_TRUE(testing::Eventually([&] {
    auto r = engine::ExplainWait(engine::InstanceSubject("acme::peek"), {&instances}, [](const std::string& s) {
      return s.find("hidden-child") == std::string::npos;  // as if in another hub
    });
    if (!r.ok()) return false;
    c = *r;
    return !c.links.empty() && c.links[0].layer == "child";
  }));
  EXPECT_EQ(c.links.size(), 1u);
  EXPECT_TRUE(c.truncated);
  EXPECT_TRUE(c.links[0].next.empty());
}

}  // namespace
}  // namespace baton
