// Semantics of the durable engine, end to end: Client -> Store -> Worker, on
// SQLite and (the Postgres/ copy, testing/test_store.h) on PostgreSQL
// -> orchestrator coroutines, on a real SQLite file in a temp dir.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "baton/client.h"
#include "baton/registry.h"
#include "baton/worker.h"
#include "testing/test_store.h"
#include "testing/test_util.h"

namespace baton {
namespace {

using namespace std::chrono_literals;
using testing::Eventually;
using testing::TempDir;

constexpr auto kWait = 60s;

class EngineTest : public ::testing::Test {
 protected:
  // Opens the store and starts a worker. `clock` null = system clock.
  void Open(WorkerOptions options = {}, std::chrono::milliseconds lease = {}) {
    auto store = testing::OpenTestStore(dir_.path(), clock_, lease);
    if (!store.ok()) {
      // Ends the test here (gtest reports the exception), not only Open():
      // the test's next line would use the client this did not make.
      ADD_FAILURE() << store.status().ToString();
      throw std::runtime_error("no store: " + store.status().ToString());
    }
    store_ = std::move(*store);
    options.clock = clock_;
    worker_ = std::make_unique<Worker>(*store_, registry_, options);
    BATON_ASSERT_OK(worker_->Start());
    client_ = std::make_unique<Client>(*store_, clock_);
  }

  void Close() {
    if (worker_) worker_->Stop();
    worker_.reset();
    client_.reset();
    store_.reset();
  }

  void TearDown() override { Close(); }

  std::string Start(const std::string& name, const Json& input = nullptr,
                    const ScheduleOptions& options = {}) {
    auto id = client_->ScheduleNewOrchestration(name, input, options);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : std::string();
  }

  InstanceState Await(const std::string& id) {
    auto state = client_->WaitForCompletion(id, kWait);
    EXPECT_TRUE(state.ok()) << id << ": " << state.status().ToString();
    return state.ok() ? *state : InstanceState{};
  }

  // Waits until the instance's custom status equals `expected`.
  bool AwaitCustomStatus(const std::string& id, const Json& expected) {
    return Eventually([&] {
      auto s = client_->GetState(id);
      return s.ok() && FromPayload(s->custom_status) == expected;
    });
  }

  std::vector<HistoryEvent> History(const std::string& id) {
    auto h = client_->GetHistory(id);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() ? *h : std::vector<HistoryEvent>{};
  }

  template <typename E>
  static int Count(const std::vector<HistoryEvent>& history) {
    int n = 0;
    for (const auto& e : history) n += std::holds_alternative<E>(e.body) ? 1 : 0;
    return n;
  }

  TempDir dir_;
  std::shared_ptr<Clock> clock_;  // null = system clock
  Registry registry_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Client> client_;
};

Json Hello(ActivityContext& ctx) { return "Hello, " + ctx.GetInput<std::string>() + "!"; }

TEST_F(EngineTest, SequenceOfActivities) {
  BATON_ASSERT_OK(registry_.AddActivity("Hello", Hello));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Seq", [](OrchestrationContext& ctx) -> Task<Json> {
    std::vector<std::string> out;
    for (const char* city : {"Tokyo", "Seattle", "London"}) {
      out.push_back(co_await ctx.CallActivity<std::string>("Hello", city));
    }
    co_return out;
  }));
  Open();
  std::string id = Start("Seq");
  InstanceState s = Await(id);
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(FromPayload(s.output),
            Json({"Hello, Tokyo!", "Hello, Seattle!", "Hello, London!"}));
  auto history = History(id);
  EXPECT_EQ(Count<events::TaskScheduled>(history), 3);
  EXPECT_EQ(Count<events::TaskCompleted>(history), 3);
  EXPECT_EQ(Count<events::ExecutionCompleted>(history), 1);
  // Action ids start at 1 and completions refer to them.
  for (const auto& e : history) {
    if (auto* c = std::get_if<events::TaskCompleted>(&e.body)) {
      EXPECT_GE(c->task_scheduled_id, 1);
      EXPECT_LE(c->task_scheduled_id, 3);
    }
  }
}

// An activity that runs more than twice as long as the store's lease keeps its
// task: the store renews the lease while the worker runs it, so it runs once
// and its result lands (without renewal it was offered again at each expiry
// and never completed).
TEST_F(EngineTest, AnActivityLongerThanTheLeaseRunsOnceAndCompletes) {
  std::atomic<int> runs{0};
  BATON_ASSERT_OK(registry_.AddActivity("Long", [&](ActivityContext&) -> Json {
    ++runs;
    std::this_thread::sleep_for(7s);
    return "done";
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("CallsLong", [](OrchestrationContext& ctx) -> Task<Json> {
    co_return co_await ctx.CallActivity("Long", Json());
  }));
  Open({}, 3s);  // renewed from 1 s on: a keeper late by up to 2 s is still in time
  InstanceState s = Await(Start("CallsLong"));
  EXPECT_EQ(s.status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(FromPayload(s.output), Json("done"));
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(Count<events::TaskCompleted>(History(s.instance_id)), 1);
}

// DurableTaskConformance: the Client's JsonText payloads are stored as the
// bytes given (what the gRPC sidecar and the HTTP API pass on), checked as
// JSON; execution ids are Guid "N" (32 lowercase hex).
TEST_F(EngineTest, DurableTaskConformanceClientCarriesPayloadBytes) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Wait", [](OrchestrationContext& ctx) -> Task<Json> {
    co_return co_await ctx.WaitForExternalEvent("go");
  }));
  BATON_ASSERT_OK(registry_.AddEntity("Box", [](EntityContext& ctx) -> Json {
    ctx.SetState(ctx.RawInput());  // the input's text, as it arrived
    return nullptr;
  }));
  Open();
  const std::string doc = R"( {"zeta":1,"alpha":[true,null],"n":1.50} )";
  auto id = client_->ScheduleNewOrchestration("Wait", JsonText{doc});
  ASSERT_TRUE(id.ok());
  auto state = client_->GetState(*id);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->input, doc);
  EXPECT_EQ(state->execution_id.size(), 32u);
  EXPECT_EQ(state->execution_id.find_first_not_of("0123456789abcdef"), std::string::npos) << state->execution_id;
  auto null_id = client_->ScheduleNewOrchestration("Wait", JsonText{"null"});
  ASSERT_TRUE(null_id.ok());
  EXPECT_EQ(client_->GetState(*null_id)->input, "null");
  EXPECT_EQ(client_->GetState(Start("Wait"))->input, "");  // the Json overload: null is no value

  BATON_ASSERT_OK(client_->RaiseEvent(*id, "go", JsonText{doc}));
  ASSERT_EQ(Await(*id).status, OrchestrationStatus::kCompleted);
  auto history = History(*id);
  auto raised = std::find_if(history.begin(), history.end(),
                             [](const HistoryEvent& e) { return std::holds_alternative<events::EventRaised>(e.body); });
  ASSERT_NE(raised, history.end());
  EXPECT_EQ(std::get<events::EventRaised>(raised->body).input, doc);

  BATON_ASSERT_OK(client_->Terminate(*null_id, JsonText{R"({"z":0,"a":1})"}));
  InstanceState terminated = Await(*null_id);
  EXPECT_EQ(terminated.status, OrchestrationStatus::kTerminated);
  EXPECT_EQ(terminated.output, R"({"z":0,"a":1})");

  BATON_ASSERT_OK(client_->SignalEntity(EntityId("Box", "b"), "put", JsonText{R"({"z":1,"a":2})"}));
  ASSERT_TRUE(Eventually([&] {
    auto e = client_->GetEntity(EntityId("Box", "b"));
    return e.ok() && e->has_state && FromPayload(e->state) == R"({"z":1,"a":2})";
  }));

  // Checked: not JSON, not UTF-8, too deep. Nothing is stored.
  for (const std::string& bad : std::vector<std::string>{R"({"a":)", "\xff", std::string(200, '[')}) {
    auto refused = client_->ScheduleNewOrchestration("Wait", JsonText{bad}, ScheduleOptions{.instance_id = "bad"});
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(refused.status().message().rfind("input ", 0), 0u) << refused.status().message();
    EXPECT_EQ(client_->RaiseEvent(*id, "go", JsonText{bad}).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(client_->Terminate(*id, JsonText{bad}).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(client_->SignalEntity(EntityId("Box", "b"), "put", JsonText{bad}).code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(client_->GetState("bad").status().code(), StatusCode::kNotFound);
}

TEST_F(EngineTest, FanOutFanInOfAThousandActivities) {
  BATON_ASSERT_OK(registry_.AddActivity("Square", [](ActivityContext& ctx) -> Json {
    int x = ctx.GetInput<int>();
    return x * x;
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("FanOut", [](OrchestrationContext& ctx) -> Task<Json> {
    std::vector<Task<int>> tasks;
    for (int i = 1; i <= 1000; ++i) tasks.push_back(ctx.CallActivity<int>("Square", i));
    std::vector<int> results = co_await WhenAll(std::move(tasks));
    int64_t sum = 0;
    for (int r : results) sum += r;
    co_return sum;
  }));
  Open();
  InstanceState s = Await(Start("FanOut"));
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted) << s.output;
  int64_t expected = 0;
  for (int64_t i = 1; i <= 1000; ++i) expected += i * i;
  EXPECT_EQ(FromPayload(s.output).get<int64_t>(), expected);
}

TEST_F(EngineTest, SubOrchestrationResultAndFailurePropagation) {
  BATON_ASSERT_OK(registry_.AddActivity("Validate", [](ActivityContext& ctx) -> Json {
    if (ctx.GetInput<int>() < 0) {
      throw DurableError("InvalidInput", "value must not be negative", Json{{"field", "value"}});
    }
    return ctx.GetInput<int>() * 10;
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Child", [](OrchestrationContext& ctx) -> Task<Json> {
    co_return co_await ctx.CallActivity("Validate", ctx.GetInput());
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Parent", [](OrchestrationContext& ctx) -> Task<Json> {
    Json ok = co_await ctx.CallSubOrchestrator("Child", 4);
    try {
      co_await ctx.CallSubOrchestrator("Child", -1);
    } catch (const TaskFailedError& e) {
      co_return Json{{"ok", ok},
                     {"type", e.details().error_type},
                     {"message", e.details().error_message},
                     {"details", FromPayload(e.details().details)}};
    }
    co_return "not reached";
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("UncaughtParent", [](OrchestrationContext& ctx) -> Task<Json> {
    co_return co_await ctx.CallSubOrchestrator("Child", -5);
  }));
  Open();
  InstanceState s = Await(Start("Parent"));
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted) << s.output;
  Json out = FromPayload(s.output);
  EXPECT_EQ(out["ok"], 40);
  EXPECT_EQ(out["type"], "InvalidInput");
  EXPECT_EQ(out["message"], "value must not be negative");
  EXPECT_EQ(out["details"], Json({{"field", "value"}}));

  InstanceState failed = Await(Start("UncaughtParent"));
  ASSERT_EQ(failed.status, OrchestrationStatus::kFailed);
  ASSERT_TRUE(failed.failure.has_value());
  EXPECT_EQ(failed.failure->error_type, "InvalidInput");
  EXPECT_EQ(failed.failure->error_message, "value must not be negative");
  EXPECT_EQ(FromPayload(failed.failure->details), Json({{"field", "value"}}));

  // The children exist as instances of their own, linked to the parent.
  auto page = client_->Query(InstanceQuery{});
  ASSERT_TRUE(page.ok());
  int children = 0;
  for (const auto& i : page->instances) children += i.parent_instance_id.empty() ? 0 : 1;
  EXPECT_EQ(children, 3);
}

TEST_F(EngineTest, DurableTimerFiresAtItsTimeAndNotBefore) {
  auto clock = std::make_shared<ManualClock>(std::chrono::system_clock::now());
  clock_ = clock;
  BATON_ASSERT_OK(registry_.AddOrchestrator("Sleep", [](OrchestrationContext& ctx) -> Task<Json> {
    TimePoint before = ctx.CurrentUtcDateTime();
    co_await ctx.CreateTimer(std::chrono::hours(1));
    co_return std::chrono::duration_cast<std::chrono::seconds>(ctx.CurrentUtcDateTime() - before).count();
  }));
  Open();
  std::string id = Start("Sleep");
  ASSERT_TRUE(client_->WaitForStart(id, kWait).ok());
  // Not due yet: nothing completes however long we wait in real time.
  EXPECT_EQ(client_->WaitForCompletion(id, 200ms).status().code(), StatusCode::kDeadlineExceeded);
  clock->Advance(std::chrono::minutes(59));
  EXPECT_EQ(client_->WaitForCompletion(id, 200ms).status().code(), StatusCode::kDeadlineExceeded);
  clock->Advance(std::chrono::minutes(1));
  InstanceState s = Await(id);
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted);
  EXPECT_GE(FromPayload(s.output).get<int64_t>(), 3600);
}

TEST_F(EngineTest, TimerThatCameDueWhileDownFiresAtRestart) {
  auto clock = std::make_shared<ManualClock>(std::chrono::system_clock::now());
  clock_ = clock;
  BATON_ASSERT_OK(registry_.AddOrchestrator("Sleep", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CreateTimer(std::chrono::hours(2));
    co_return "woke";
  }));
  Open();
  std::string id = Start("Sleep");
  ASSERT_TRUE(client_->WaitForStart(id, kWait).ok());
  Close();                         // the process is "down"...
  clock->Advance(std::chrono::hours(3));  // ...while the timer comes due
  Open();
  InstanceState s = Await(id);
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(FromPayload(s.output), "woke");
}

TEST_F(EngineTest, ExternalEventsRaisedBeforeAndAfterTheWait) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Waiter", [](OrchestrationContext& ctx) -> Task<Json> {
    ctx.SetCustomStatus("waiting-for-early");
    Json early = co_await ctx.WaitForExternalEvent("Early");
    ctx.SetCustomStatus("waiting-for-late");
    Json late = co_await ctx.WaitForExternalEvent("late");  // names are case-insensitive
    co_return Json{early, late};
  }));
  Open();
  ScheduleOptions later;
  std::string id = Start("Waiter");
  // Raised before the orchestrator waits (typically before it even started).
  BATON_ASSERT_OK(client_->RaiseEvent(id, "early", 1));
  ASSERT_TRUE(AwaitCustomStatus(id, "waiting-for-late"));
  BATON_ASSERT_OK(client_->RaiseEvent(id, "LATE", 2));
  InstanceState s = Await(id);
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(FromPayload(s.output), Json({1, 2}));
  EXPECT_EQ(client_->RaiseEvent(id, "late", 3).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(client_->RaiseEvent("no-such-instance", "x", 3).code(), StatusCode::kNotFound);
}

TEST_F(EngineTest, WhenAnyOfAnEventAndATimer) {
  auto clock = std::make_shared<ManualClock>(std::chrono::system_clock::now());
  clock_ = clock;
  BATON_ASSERT_OK(registry_.AddOrchestrator("Approval", [](OrchestrationContext& ctx) -> Task<Json> {
    Task<Json> approval = ctx.WaitForExternalEvent("Approve");
    Task<void> deadline = ctx.CreateTimer(std::chrono::hours(24));
    size_t winner = co_await WhenAny(approval, deadline);
    if (winner == 0) {
      Json who = co_await approval;  // g++ 12: no co_await inside a braced list
      co_return Json{{"approved", who}};
    }
    co_return "timed out";
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("TimedWait", [](OrchestrationContext& ctx) -> Task<Json> {
    try {
      co_await ctx.WaitForExternalEvent("Never", std::chrono::minutes(5));
    } catch (const TaskFailedError& e) {
      co_return e.details().error_type;
    }
    co_return "received";
  }));
  Open();
  std::string approved = Start("Approval");
  std::string expired = Start("Approval");
  std::string timed = Start("TimedWait");
  ASSERT_TRUE(client_->WaitForStart(approved, kWait).ok());
  ASSERT_TRUE(client_->WaitForStart(expired, kWait).ok());
  ASSERT_TRUE(client_->WaitForStart(timed, kWait).ok());
  BATON_ASSERT_OK(client_->RaiseEvent(approved, "Approve", "alice"));
  InstanceState a = Await(approved);
  EXPECT_EQ(FromPayload(a.output), Json({{"approved", "alice"}}));
  EXPECT_EQ(client_->WaitForCompletion(expired, 100ms).status().code(), StatusCode::kDeadlineExceeded);
  clock->Advance(std::chrono::hours(25));
  EXPECT_EQ(FromPayload(Await(expired).output), "timed out");
  EXPECT_EQ(FromPayload(Await(timed).output), "TimeoutError");
}

TEST_F(EngineTest, ContinueAsNewCarriesUnprocessedEvents) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Counter", [](OrchestrationContext& ctx) -> Task<Json> {
    Json state = ctx.GetInput();
    int total = state.value("total", 0);
    int generation = state.value("generation", 0);
    if (generation == 5) co_return total;
    ctx.SetCustomStatus(generation);
    int add = co_await ctx.WaitForExternalEvent<int>("add");
    ctx.ContinueAsNew(Json{{"total", total + add}, {"generation", generation + 1}});
    co_return nullptr;
  }));
  Open();
  std::string id = Start("Counter", Json{{"total", 0}, {"generation", 0}});
  ASSERT_TRUE(client_->WaitForStart(id, kWait).ok());
  // Five events in a burst: most arrive while an earlier generation runs and
  // must be carried into the next one.
  for (int i = 1; i <= 5; ++i) BATON_ASSERT_OK(client_->RaiseEvent(id, "add", i));
  InstanceState s = Await(id);
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(FromPayload(s.output), 15);
  // The history is that of the last generation only.
  auto history = History(id);
  EXPECT_EQ(Count<events::ExecutionStarted>(history), 1);
  EXPECT_LT(history.size(), 10u);
}

TEST_F(EngineTest, RetryWithBackoffIsVisibleInHistory) {
  auto attempts = std::make_shared<std::atomic<int>>(0);
  BATON_ASSERT_OK(registry_.AddActivity("Flaky", [attempts](ActivityContext&) -> Json {
    if (++*attempts < 3) throw std::runtime_error("transient");
    return "finally";
  }));
  BATON_ASSERT_OK(registry_.AddActivity("AlwaysFails", [](ActivityContext&) -> Json {
    throw DurableError("Broken", "always");
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Retry", [](OrchestrationContext& ctx) -> Task<Json> {
    RetryPolicy retry;
    retry.max_attempts = 5;
    retry.first_retry_interval = 5ms;
    retry.backoff_coefficient = 2.0;
    std::string result = co_await ctx.CallActivity<std::string>("Flaky", nullptr, retry);
    retry.max_attempts = 2;
    try {
      co_await ctx.CallActivity("AlwaysFails", nullptr, retry);
    } catch (const TaskFailedError& e) {
      co_return Json{result, e.details().error_type};
    }
    co_return "not reached";
  }));
  Open();
  std::string id = Start("Retry");
  InstanceState s = Await(id);
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(FromPayload(s.output), Json({"finally", "Broken"}));
  EXPECT_EQ(attempts->load(), 3);
  auto history = History(id);
  EXPECT_EQ(Count<events::TaskScheduled>(history), 3 + 2);
  EXPECT_EQ(Count<events::TaskFailed>(history), 2 + 2);
  // One backoff timer per retry; the second waits twice as long as the first.
  std::vector<Duration> delays;
  TimePoint last_failure{};
  for (const auto& e : history) {
    if (std::holds_alternative<events::TaskFailed>(e.body)) last_failure = e.timestamp;
    if (auto* t = std::get_if<events::TimerCreated>(&e.body)) delays.push_back(t->fire_at - e.timestamp);
  }
  ASSERT_EQ(delays.size(), 3u);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(delays[0]).count(), 5);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(delays[1]).count(), 10);
  (void)last_failure;
}

TEST_F(EngineTest, RecursiveTerminateStopsChildren) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Forever", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.WaitForExternalEvent("never");
    co_return nullptr;
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Tree", [](OrchestrationContext& ctx) -> Task<Json> {
    std::vector<Task<Json>> children;
    children.push_back(ctx.CallSubOrchestrator("Forever", nullptr, SubOrchestratorOptions(ctx.InstanceId() + "-a")));
    children.push_back(ctx.CallSubOrchestrator("Forever", nullptr, SubOrchestratorOptions(ctx.InstanceId() + "-b")));
    co_await WhenAll(std::move(children));
    co_return nullptr;
  }));
  Open();
  std::string id = Start("Tree", nullptr, {.instance_id = "tree"});
  // The children exist once the parent's first episode committed.
  ASSERT_TRUE(Eventually([&] { return client_->GetState("tree-b").ok(); }));
  ASSERT_TRUE(client_->WaitForStart("tree-a", kWait).ok());
  ASSERT_TRUE(client_->WaitForStart("tree-b", kWait).ok());
  BATON_ASSERT_OK(client_->Terminate(id, "enough", /*recursive=*/true));
  InstanceState s = Await(id);
  EXPECT_EQ(s.status, OrchestrationStatus::kTerminated);
  EXPECT_EQ(FromPayload(s.output), "enough");
  EXPECT_EQ(Await("tree-a").status, OrchestrationStatus::kTerminated);
  EXPECT_EQ(Await("tree-b").status, OrchestrationStatus::kTerminated);
  EXPECT_EQ(client_->Terminate(id).code(), StatusCode::kFailedPrecondition);
}

TEST_F(EngineTest, SuspendBuffersEventsUntilResume) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Collect", [](OrchestrationContext& ctx) -> Task<Json> {
    ctx.SetCustomStatus("ready");
    Json a = co_await ctx.WaitForExternalEvent("item");
    Json b = co_await ctx.WaitForExternalEvent("item");
    co_return Json{a, b};
  }));
  Open();
  std::string id = Start("Collect");
  ASSERT_TRUE(AwaitCustomStatus(id, "ready"));
  BATON_ASSERT_OK(client_->Suspend(id, "maintenance"));
  ASSERT_TRUE(Eventually([&] { return client_->GetState(id)->status == OrchestrationStatus::kSuspended; }));
  BATON_ASSERT_OK(client_->RaiseEvent(id, "item", "first"));
  BATON_ASSERT_OK(client_->RaiseEvent(id, "item", "second"));
  // Events are kept, not consumed, while suspended.
  EXPECT_EQ(client_->WaitForCompletion(id, 200ms).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_->GetState(id)->status, OrchestrationStatus::kSuspended);
  BATON_ASSERT_OK(client_->Resume(id));
  InstanceState s = Await(id);
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(FromPayload(s.output), Json({"first", "second"}));
}

TEST_F(EngineTest, PurgeOneAndByFilter) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Quick", [](OrchestrationContext& ctx) -> Task<Json> {
    co_return ctx.GetInput();
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Forever", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.WaitForExternalEvent("never");
    co_return nullptr;
  }));
  Open();
  std::string a = Start("Quick", 1), b = Start("Quick", 2), c = Start("Quick", 3);
  std::string running = Start("Forever");
  for (const auto& id : {a, b, c}) Await(id);
  ASSERT_TRUE(client_->WaitForStart(running, kWait).ok());

  EXPECT_EQ(client_->Purge(running).status().code(), StatusCode::kFailedPrecondition);
  auto one = client_->Purge(a);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, 1);
  EXPECT_EQ(client_->GetState(a).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(client_->GetHistory(a).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(client_->Purge(a).status().code(), StatusCode::kNotFound);

  auto many = client_->Purge(PurgeFilter{});
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(*many, 2);
  EXPECT_TRUE(client_->GetState(running).ok());  // never purges a running instance
}

TEST_F(EngineTest, RestartUnderSameAndNewId) {
  BATON_ASSERT_OK(registry_.AddActivity("Hello", Hello));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Greet", [](OrchestrationContext& ctx) -> Task<Json> {
    co_return co_await ctx.CallActivity("Hello", ctx.GetInput());
  }));
  Open();
  std::string id = Start("Greet", "Ada", {.instance_id = "greet-1"});
  Await(id);
  auto same = client_->Restart(id);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(*same, id);
  EXPECT_EQ(FromPayload(Await(id).output), "Hello, Ada!");
  auto fresh = client_->Restart(id, /*new_instance_id=*/true);
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(*fresh, id);
  EXPECT_EQ(FromPayload(Await(*fresh).output), "Hello, Ada!");
  EXPECT_EQ(client_->Restart("missing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(client_->ScheduleNewOrchestration("Greet", "x", {.instance_id = id}).status().code(),
            StatusCode::kAlreadyExists);
}

// A Failed instance rewound: what failed runs again, and so does an activity
// still running when the run failed (its answer reaches a Failed instance),
// while what succeeded (a fan-out) does not; it completes.
TEST_F(EngineTest, RewindRunsAgainWhatFailedOrWasOutstandingAndKeepsWhatSucceeded) {
  static std::atomic<bool> healed{false};
  static std::mutex mu;
  static std::map<std::string, int> runs;
  healed = false;
  runs.clear();
  BATON_ASSERT_OK(registry_.AddActivity("Part", [](ActivityContext& ctx) -> Json {
    std::string part = ctx.GetInput<std::string>();
    {
      std::lock_guard lock(mu);
      ++runs[part];
    }
    if (part.starts_with("bad") && !healed) throw std::runtime_error("part " + part + " is broken");
    // Still running when the instance fails; done once the test heals things.
    for (int i = 0; part.starts_with("slow") && !healed && i < 3000; ++i) std::this_thread::sleep_for(10ms);
    return part + "!";
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Parent", [](OrchestrationContext& ctx) -> Task<Json> {
    std::vector<Task<std::string>> parts;
    parts.push_back(ctx.CallActivity<std::string>("Part", "p1"));
    parts.push_back(ctx.CallActivity<std::string>("Part", "p2"));
    std::vector<std::string> done = co_await WhenAll(std::move(parts));
    Task<std::string> slow = ctx.CallActivity<std::string>("Part", "slow-p3");
    slow.Start();
    std::string bad = co_await ctx.CallActivity<std::string>("Part", "bad-p4");  // fails while slow-p3 runs
    std::string s = co_await slow;
    co_return done[0] + done[1] + bad + s;
  }));
  Open();
  std::string id = Start("Parent", "the input", {.instance_id = "rewind-1"});
  ASSERT_EQ(Await(id).status, OrchestrationStatus::kFailed);
  EXPECT_EQ(client_->Rewind("missing").code(), StatusCode::kNotFound);
  healed = true;
  BATON_ASSERT_OK(client_->Rewind(id, "fixed"));
  EXPECT_NE(client_->GetState(id)->status, OrchestrationStatus::kFailed);  // Pending until a worker rewinds it
  InstanceState s = Await(id);
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted) << s.output << (s.failure ? s.failure->error_message : "");
  EXPECT_EQ(FromPayload(s.output), "p1!p2!bad-p4!slow-p3!");
  EXPECT_EQ(FromPayload(client_->GetState(id)->input), "the input");  // kept across the rewritten history
  // slow-p3 was scheduled anew; its first answer may still have been used if
  // it came with the rewind request, so its second run can end after the
  // instance did.
  EXPECT_TRUE(Eventually([&] {
    std::lock_guard lock(mu);
    return runs["slow-p3"] == 2;
  }));
  std::lock_guard lock(mu);
  EXPECT_EQ(runs["p1"], 1);
  EXPECT_EQ(runs["p2"], 1);
  EXPECT_EQ(runs["bad-p4"], 2);
  EXPECT_EQ(Count<events::ExecutionRewound>(History(id)), 1);
  EXPECT_EQ(client_->Rewind(id).code(), StatusCode::kFailedPrecondition);
}

// The rewind tests' family: "Mom" runs "Kid" as "<id>-kid" with its own
// input, two step names; Kid runs activity "Step" on each in turn, and the
// second fails until `healed`. `runs` counts each step's runs.
struct RewindFamily {
  static inline std::atomic<bool> healed{false};
  static inline std::mutex mu;
  static inline std::map<std::string, int> runs;

  static int Runs(const std::string& step) {
    std::lock_guard lock(mu);
    return runs[step];
  }
  static void Register(Registry& registry) {
    healed = false;
    {
      std::lock_guard lock(mu);
      runs.clear();
    }
    BATON_ASSERT_OK(registry.AddActivity("Step", [](ActivityContext& ctx) -> Json {
      Json in = ctx.GetInput();
      std::string step = in["step"];
      {
        std::lock_guard lock(mu);
        ++runs[step];
      }
      if (in["fails"].get<bool>() && !healed) throw std::runtime_error(step + " is broken");
      return step;
    }));
    BATON_ASSERT_OK(registry.AddOrchestrator("Kid", [](OrchestrationContext& ctx) -> Task<Json> {
      Json steps = ctx.GetInput();
      Json first = {{"step", steps[0]}, {"fails", false}};  // g++ 12: no braced lists inside co_await
      Json second = {{"step", steps[1]}, {"fails", true}};
      std::string a = co_await ctx.CallActivity<std::string>("Step", first);
      std::string b = co_await ctx.CallActivity<std::string>("Step", second);
      co_return a + b;
    }));
    BATON_ASSERT_OK(registry.AddOrchestrator("Mom", [](OrchestrationContext& ctx) -> Task<Json> {
      SubOrchestratorOptions child;
      child.instance_id = ctx.InstanceId() + "-kid";
      co_return co_await ctx.CallSubOrchestrator<std::string>("Kid", ctx.GetInput(), child);
    }));
  }
};

TEST_F(EngineTest, RewindOfAFailedChildIsRecursive) {
  RewindFamily::Register(registry_);
  Open();
  std::string id = Start("Mom", Json::array({"c1", "c2"}), {.instance_id = "rewind-2"});
  ASSERT_EQ(Await(id).status, OrchestrationStatus::kFailed);
  ASSERT_EQ(Await(id + "-kid").status, OrchestrationStatus::kFailed);
  RewindFamily::healed = true;
  BATON_ASSERT_OK(client_->Rewind(id));
  InstanceState s = Await(id);
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted) << s.output;
  EXPECT_EQ(FromPayload(s.output), "c1c2");
  EXPECT_EQ(Await(id + "-kid").status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(RewindFamily::Runs("c1"), 1);  // the child kept what had succeeded
}

// A failed child rewound on its own first: its answer reached the Failed
// parent and was dropped; rewinding the parent gives it again.
TEST_F(EngineTest, RewindOfAParentWhoseChildWasRewoundFirstUsesTheChildsAnswer) {
  RewindFamily::Register(registry_);
  Open();
  std::string id = Start("Mom", Json::array({"one", "two"}), {.instance_id = "rewind-4"});
  ASSERT_EQ(Await(id).status, OrchestrationStatus::kFailed);
  RewindFamily::healed = true;
  BATON_ASSERT_OK(client_->Rewind(id + "-kid"));
  ASSERT_EQ(Await(id + "-kid").status, OrchestrationStatus::kCompleted);
  ASSERT_EQ(Await(id).status, OrchestrationStatus::kFailed);  // its answer comes while it is Failed
  BATON_ASSERT_OK(client_->Rewind(id));
  InstanceState s = Await(id);
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted) << s.output << (s.failure ? s.failure->error_message : "");
  EXPECT_EQ(FromPayload(s.output), "onetwo");
  EXPECT_EQ(RewindFamily::Runs("one"), 1);  // the child was neither recreated nor run again
}

// A failed child that was purged before the parent is rewound is created
// anew by the rewound parent.
TEST_F(EngineTest, RewindCreatesAPurgedFailedChildAnew) {
  static std::atomic<bool> healed{false};
  static std::atomic<int> runs{0};
  healed = false;
  runs = 0;
  BATON_ASSERT_OK(registry_.AddActivity("Once", [](ActivityContext&) -> Json {
    ++runs;
    if (!healed) throw std::runtime_error("not yet");
    return "ok";
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Kid", [](OrchestrationContext& ctx) -> Task<Json> {
    co_return co_await ctx.CallActivity<std::string>("Once");
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Mom", [](OrchestrationContext& ctx) -> Task<Json> {
    SubOrchestratorOptions child;
    child.instance_id = ctx.InstanceId() + "-kid";
    co_return co_await ctx.CallSubOrchestrator<std::string>("Kid", nullptr, child);
  }));
  Open();
  std::string id = Start("Mom", nullptr, {.instance_id = "rewind-3"});
  ASSERT_EQ(Await(id).status, OrchestrationStatus::kFailed);
  ASSERT_TRUE(client_->Purge(id + "-kid").ok());
  healed = true;
  BATON_ASSERT_OK(client_->Rewind(id));
  InstanceState s = Await(id);
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted) << s.output;
  EXPECT_EQ(FromPayload(s.output), "ok");
  EXPECT_EQ(Await(id + "-kid").status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(runs, 2);
}

// The orchestration cache across nodes: worker A (no activity threads) runs
// an instance until it waits on an outstanding activity, and keeps it
// cached. Worker B takes over: the activity fails, the instance fails, is
// rewound and runs on until it waits for "go" — with a rewritten history of
// the same execution and exactly the size A cached (the rewind drops the
// failed task, its answer, ExecutionCompleted and the episodes' end
// markers; the rewound run adds some back). A then gets "go": its cached
// coroutine, still waiting for the activity, must not be taken for the
// current history (it would swallow "go" and never finish); A must replay.
TEST_F(EngineTest, ACachedOrchestrationIsNotRunOnAHistoryARewindElsewhereRewroteToTheSameSize) {
  static std::atomic<bool> healed{false};
  healed = false;
  constexpr int kTicks = 6;  // episodes while the task is outstanding: their end markers go
  BATON_ASSERT_OK(registry_.AddActivity("Flaky", [](ActivityContext& ctx) -> Json {
    if (!healed) throw std::runtime_error("not yet");
    return ctx.GetInput<int>() + 1;
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Aba", [](OrchestrationContext& ctx) -> Task<Json> {
    Task<int> flaky = ctx.CallActivity<int>("Flaky", 1);
    flaky.Start();
    for (int i = 0; i < kTicks; ++i) co_await ctx.WaitForExternalEvent<int>("tick");
    int r = co_await flaky;
    ctx.SetCustomStatus("go?");
    int g = co_await ctx.WaitForExternalEvent<int>("go");
    co_return r + g;
  }));
  WorkerOptions a_options;
  a_options.activity_threads = 0;  // the task stays outstanding while A runs
  Open(a_options);
  const std::string id = Start("Aba", nullptr, {.instance_id = "aba"});
  ASSERT_TRUE(Eventually([&] { return History(id).size() == 4; }));  // started, task scheduled
  for (int i = 1; i <= kTicks; ++i) {
    BATON_ASSERT_OK(client_->RaiseEvent(id, "tick", i));
    ASSERT_TRUE(Eventually([&] { return History(id).size() == 4u + 3u * i; }));
  }
  const size_t cached_size = History(id).size();
  worker_->Stop();  // A keeps its cache

  Worker b(*store_, registry_);
  BATON_ASSERT_OK(b.Start());
  ASSERT_EQ(Await(id).status, OrchestrationStatus::kFailed);
  healed = true;
  BATON_ASSERT_OK(client_->Rewind(id, "healed"));
  ASSERT_TRUE(AwaitCustomStatus(id, "go?"));
  b.Stop();
  // The construction: same execution, same size, another history.
  ASSERT_EQ(History(id).size(), cached_size) << "the rewound history no longer lands on A's size";
  EXPECT_EQ(Count<events::ExecutionRewound>(History(id)), 1);

  BATON_ASSERT_OK(worker_->Start());
  BATON_ASSERT_OK(client_->RaiseEvent(id, "go", 10));
  auto s = client_->WaitForCompletion(id, 20s);
  ASSERT_TRUE(s.ok()) << s.status().ToString() << " (A ran its stale coroutine?)";
  EXPECT_EQ(s->status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(FromPayload(s->output), 12);
}

TEST_F(EngineTest, CustomStatusIsVisibleWhileRunning) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Progress", [](OrchestrationContext& ctx) -> Task<Json> {
    ctx.SetCustomStatus(Json{{"step", 1}, {"of", 2}});
    co_await ctx.WaitForExternalEvent("next");
    ctx.SetCustomStatus(Json{{"step", 2}, {"of", 2}});
    co_return "done";
  }));
  Open();
  std::string id = Start("Progress");
  ASSERT_TRUE(AwaitCustomStatus(id, Json{{"step", 1}, {"of", 2}}));
  EXPECT_EQ(client_->GetState(id)->status, OrchestrationStatus::kRunning);
  BATON_ASSERT_OK(client_->RaiseEvent(id, "next"));
  InstanceState s = Await(id);
  EXPECT_EQ(FromPayload(s.custom_status), Json({{"step", 2}, {"of", 2}}));
}

TEST_F(EngineTest, TimeAndGuidsAreDeterministicAcrossReplay) {
  BATON_ASSERT_OK(registry_.AddActivity("Echo", [](ActivityContext& ctx) -> Json { return ctx.GetInput(); }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Ids", [](OrchestrationContext& ctx) -> Task<Json> {
    // Computed in the first episode, then recomputed by every replay.
    std::string guid = ctx.NewGuid();
    std::string time = FormatIso8601(ctx.CurrentUtcDateTime());
    std::string guid2 = ctx.NewGuid();
    Json ids = Json{guid, time, guid2};  // g++ 12: no braced list inside a co_await
    Json first = co_await ctx.CallActivity("Echo", ids);
    co_await ctx.CallActivity("Echo", 0);
    co_await ctx.CallActivity("Echo", 0);
    co_return Json{{"recorded", first}, {"replayed", Json{guid, time, guid2}},
                   {"replaying_at_end", ctx.IsReplaying()}};
  }));
  WorkerOptions no_cache;
  no_cache.cache_max_bytes = 0;  // every episode rebuilds the orchestrator by replay
  Open(no_cache);
  InstanceState s = Await(Start("Ids"));
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted);
  Json out = FromPayload(s.output);
  EXPECT_EQ(out["recorded"], out["replayed"]);
  EXPECT_NE(out["recorded"][0], out["recorded"][2]);  // successive GUIDs differ
  EXPECT_EQ(out["replaying_at_end"], false);
  EXPECT_GT(worker_->Stats().replayed_events, 0u);
  EXPECT_EQ(worker_->Stats().cache_hits, 0u);
}

// Which activity the "Evolving" orchestrator calls second: stands for a code
// change deployed while an instance is in flight.
std::atomic<int> g_code_version{1};

TEST_F(EngineTest, ChangedOrchestratorCodeFailsWithNamedNonDeterminismError) {
  BATON_ASSERT_OK(registry_.AddActivity("A", [](ActivityContext&) -> Json { return "a"; }));
  BATON_ASSERT_OK(registry_.AddActivity("B", [](ActivityContext&) -> Json { return "b"; }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Evolving", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CallActivity(g_code_version == 1 ? "A" : "B");
    co_await ctx.WaitForExternalEvent("continue");
    co_return "done";
  }));
  g_code_version = 1;
  Open();
  std::string id = Start("Evolving", nullptr, {.instance_id = "evolving-1"});
  ASSERT_TRUE(Eventually([&] { return Count<events::TaskCompleted>(History(id)) == 1; }));
  Close();
  g_code_version = 2;  // "deploy" new code; the cache is gone with the process
  Open();
  BATON_ASSERT_OK(client_->RaiseEvent(id, "continue"));
  InstanceState s = Await(id);
  ASSERT_EQ(s.status, OrchestrationStatus::kFailed);
  ASSERT_TRUE(s.failure.has_value());
  EXPECT_EQ(s.failure->error_type, "NonDeterminismError");
  const std::string& m = s.failure->error_message;
  EXPECT_NE(m.find("'evolving-1'"), std::string::npos) << m;
  EXPECT_NE(m.find("TaskScheduled, eventId 1"), std::string::npos) << m;
  EXPECT_NE(m.find("expected ScheduleTask 'A'"), std::string::npos) << m;
  EXPECT_NE(m.find("produced ScheduleTask 'B'"), std::string::npos) << m;
  // The recorded history is intact and ends with the failure.
  auto history = History(id);
  ASSERT_FALSE(history.empty());
  EXPECT_EQ(Count<events::TaskScheduled>(history), 1);
  EXPECT_EQ(std::get<events::TaskScheduled>(
                std::find_if(history.begin(), history.end(),
                             [](const HistoryEvent& e) { return std::holds_alternative<events::TaskScheduled>(e.body); })
                    ->body)
                .name,
            "A");
  EXPECT_EQ(Count<events::ExecutionCompleted>(history), 1);
}

TEST_F(EngineTest, UnknownOrchestratorAndActivityFailClearly) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("CallsMissing", [](OrchestrationContext& ctx) -> Task<Json> {
    co_return co_await ctx.CallActivity("NoSuchActivity");
  }));
  Open();
  InstanceState a = Await(Start("NoSuchOrchestrator"));
  ASSERT_EQ(a.status, OrchestrationStatus::kFailed);
  EXPECT_EQ(a.failure->error_type, "OrchestratorNotFound");
  InstanceState b = Await(Start("CallsMissing"));
  ASSERT_EQ(b.status, OrchestrationStatus::kFailed);
  EXPECT_EQ(b.failure->error_type, "ActivityNotFound");
}

TEST_F(EngineTest, CachedOrchestrationDoesNotReplayItsHistory) {
  BATON_ASSERT_OK(registry_.AddActivity("Id", [](ActivityContext& ctx) -> Json { return ctx.GetInput(); }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Big", [](OrchestrationContext& ctx) -> Task<Json> {
    std::vector<Task<Json>> tasks;
    for (int i = 0; i < 5000; ++i) tasks.push_back(ctx.CallActivity("Id", i));
    co_await WhenAll(std::move(tasks));
    ctx.SetCustomStatus("big");
    int sum = 0;
    for (int i = 0; i < 3; ++i) sum += co_await ctx.WaitForExternalEvent<int>("n");
    co_return sum;
  }));
  Open();
  std::string id = Start("Big");
  ASSERT_TRUE(AwaitCustomStatus(id, "big"));
  const size_t history_size = History(id).size();
  ASSERT_GE(history_size, 10000u);
  const uint64_t replayed_before = worker_->Stats().replayed_events;
  for (int i = 1; i <= 3; ++i) BATON_ASSERT_OK(client_->RaiseEvent(id, "n", i));
  InstanceState s = Await(id);
  EXPECT_EQ(FromPayload(s.output), 6);
  // Three more episodes, none of which re-applied the >10,000 recorded events.
  EXPECT_EQ(worker_->Stats().replayed_events, replayed_before);
  EXPECT_GT(worker_->Stats().cache_hits, 0u);
}

TEST_F(EngineTest, EvictedOrchestrationIsRebuiltByReplay) {
  BATON_ASSERT_OK(registry_.AddActivity("Add", [](ActivityContext& ctx) -> Json {
    return ctx.GetInput()[0].get<int>() + ctx.GetInput()[1].get<int>();
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Sum", [](OrchestrationContext& ctx) -> Task<Json> {
    int total = 0;
    for (int i = 1; i <= 20; ++i) {
      Json operands = Json{total, i};  // g++ 12: no braced list inside a co_await
      total = co_await ctx.CallActivity<int>("Add", operands);
    }
    co_return total;
  }));
  WorkerOptions tiny;
  tiny.cache_max_instances = 1;  // 8 instances compete for one slot
  Open(tiny);
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(Start("Sum"));
  for (const auto& id : ids) {
    InstanceState s = Await(id);
    ASSERT_EQ(s.status, OrchestrationStatus::kCompleted);
    EXPECT_EQ(FromPayload(s.output), 210);
  }
  WorkerStats stats = worker_->Stats();
  EXPECT_GT(stats.cache_evictions, 0u);
  EXPECT_GT(stats.replayed_events, 0u);
  EXPECT_LE(stats.cached_instances, 1u);
}

TEST_F(EngineTest, QueryByStatusPrefixAndPages) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Quick", [](OrchestrationContext& ctx) -> Task<Json> {
    co_return 1;
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Forever", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.WaitForExternalEvent("never");
    co_return nullptr;
  }));
  Open();
  for (int i = 0; i < 7; ++i) Await(Start("Quick", nullptr, {.instance_id = "job-" + std::to_string(i)}));
  std::string running = Start("Forever", nullptr, {.instance_id = "other-1"});
  ASSERT_TRUE(client_->WaitForStart(running, kWait).ok());

  InstanceQuery q;
  q.instance_id_prefix = "job-";
  q.page_size = 3;
  std::set<std::string> seen;
  int pages = 0;
  do {
    auto page = client_->Query(q);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& i : page->instances) seen.insert(i.instance_id);
    q.continuation_token = page->continuation_token;
    ++pages;
  } while (!q.continuation_token.empty() && pages < 10);
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(pages, 3);

  InstanceQuery by_status;
  by_status.statuses = {OrchestrationStatus::kRunning};
  auto page = client_->Query(by_status);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->instances.size(), 1u);
  EXPECT_EQ(page->instances[0].instance_id, "other-1");
}

TEST_F(EngineTest, DelayedStartStaysPendingUntilDue) {
  auto clock = std::make_shared<ManualClock>(std::chrono::system_clock::now());
  clock_ = clock;
  BATON_ASSERT_OK(registry_.AddOrchestrator("Quick", [](OrchestrationContext& ctx) -> Task<Json> {
    co_return "ran";
  }));
  Open();
  std::string id = Start("Quick", nullptr, {.start_at = clock->Now() + std::chrono::minutes(10)});
  EXPECT_EQ(client_->WaitForStart(id, 200ms).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_->GetState(id)->status, OrchestrationStatus::kPending);
  clock->Advance(std::chrono::minutes(10));
  EXPECT_EQ(FromPayload(Await(id).output), "ran");
}

TEST_F(EngineTest, OrchestrationsStayInsideTheirTaskHub) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Child", [](OrchestrationContext& ctx) -> Task<Json> {
    co_return ctx.InstanceId();
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Parent", [](OrchestrationContext& ctx) -> Task<Json> {
    Json derived = co_await ctx.CallSubOrchestrator("Child");
    Json named = co_await ctx.CallSubOrchestrator("Child", nullptr, SubOrchestratorOptions("kid"));
    // An id naming another hub is still taken inside this one.
    Json escaped = co_await ctx.CallSubOrchestrator("Child", nullptr, SubOrchestratorOptions("other::kid"));
    ctx.SendEvent("listener", "ping", 1);
    co_return Json{derived, named, escaped};
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Listener", [](OrchestrationContext& ctx) -> Task<Json> {
    co_return co_await ctx.WaitForExternalEvent("ping");
  }));
  Open();
  std::string listener = Start("Listener", nullptr, {.instance_id = "acme::listener"});
  std::string other = Start("Listener", nullptr, {.instance_id = "listener"});
  InstanceState s = Await(Start("Parent", nullptr, {.instance_id = "acme::parent"}));
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted) << s.output;
  Json out = FromPayload(s.output);
  EXPECT_EQ(HubOf(out[0].get<std::string>()), "acme");
  EXPECT_EQ(out[1], "acme::kid");
  EXPECT_EQ(out[2], "acme::other::kid");
  EXPECT_EQ(FromPayload(Await(listener).output), 1);
  EXPECT_EQ(client_->WaitForCompletion(other, 100ms).status().code(), StatusCode::kDeadlineExceeded);

  PurgeFilter in_acme;
  in_acme.instance_id_prefix = "acme::";
  auto purged = client_->Purge(in_acme);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 5);  // parent, three children, listener
  EXPECT_TRUE(client_->GetState(other).ok());
}

}  // namespace
}  // namespace baton
