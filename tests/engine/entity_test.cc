// Durable entities end to end: operations one at a time, calls, signals,
// rollback, scheduled signals, critical sections and lock release.
#include <gtest/gtest.h>

#include <stdexcept>

#include <random>

#include "baton/client.h"
#include "baton/entity.h"
#include "baton/registry.h"
#include "baton/worker.h"
#include "testing/test_store.h"
#include "testing/test_util.h"

namespace baton {
namespace {

using namespace std::chrono_literals;
using testing::Eventually;

constexpr auto kWait = 120s;

// A counter in function form; "addThenFail" changes the state and throws.
Json Counter(EntityContext& ctx) {
  int64_t value = ctx.GetState<int64_t>(0);
  const std::string& op = ctx.OperationName();
  if (op == "add") {
    ctx.SetState(value + ctx.GetInput<int64_t>());
  } else if (op == "addThenFail") {
    ctx.SetState(value + ctx.GetInput<int64_t>());
    throw DurableError("Rejected", "addThenFail always fails", Json{{"value", value}});
  } else if (op == "get") {
    return value;
  } else if (op == "delete") {
    ctx.DeleteState();
  } else {
    throw DurableError("UnknownOperation", op);
  }
  return nullptr;
}

struct Account {
  int64_t balance = 0;
  void Deposit(int64_t amount) { balance += amount; }
  void Withdraw(int64_t amount) { balance -= amount; }
  int64_t Balance() const { return balance; }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Account, balance)

class EntityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BATON_ASSERT_OK(registry_.AddEntity("Counter", Counter));
    BATON_ASSERT_OK(registry_.AddEntity("Account", EntityClass<Account>()
                                                       .Operation("deposit", &Account::Deposit)
                                                       .Operation("withdraw", &Account::Withdraw)
                                                       .Operation("balance", &Account::Balance)));
  }
  void Open(std::shared_ptr<Clock> clock = nullptr) {
    auto store = testing::OpenTestStore(dir_.path(), clock);
    if (!store.ok()) {  // ends the test, not only this helper (its next line would use a null store)
      ADD_FAILURE() << store.status().ToString();
      throw std::runtime_error("no store: " + store.status().ToString());
    }
    store_ = std::move(*store);
    WorkerOptions worker_options;
    worker_options.clock = clock;
    worker_ = std::make_unique<Worker>(*store_, registry_, worker_options);
    BATON_ASSERT_OK(worker_->Start());
    client_ = std::make_unique<Client>(*store_, clock);
  }
  void TearDown() override {
    if (worker_) worker_->Stop();
    worker_.reset();
    client_.reset();
    store_.reset();
  }
  Json StateOf(const EntityId& id) {
    auto e = client_->GetEntity(id);
    return e.ok() && e->has_state ? FromPayload(e->state) : Json();
  }
  InstanceState Await(const std::string& id) {
    auto s = client_->WaitForCompletion(id, kWait);
    EXPECT_TRUE(s.ok()) << id << ": " << s.status().ToString();
    return s.ok() ? *s : InstanceState{};
  }

  testing::TempDir dir_;
  Registry registry_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Client> client_;
};

TEST_F(EntityTest, CounterSignalledTenThousandTimesByHundredOrchestrations) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Bump", [](OrchestrationContext& ctx) -> Task<Json> {
    for (int i = 0; i < 100; ++i) ctx.SignalEntity(EntityId("Counter", "shared"), "add", 1);
    co_return nullptr;
  }));
  Open();
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(*client_->ScheduleNewOrchestration("Bump"));
  for (const auto& id : ids) EXPECT_EQ(Await(id).status, OrchestrationStatus::kCompleted);
  EntityId counter("Counter", "shared");
  ASSERT_TRUE(Eventually([&] { return StateOf(counter) == 10000; }, kWait)) << StateOf(counter);
  // Nothing more arrives: exactly 10,000.
  auto entity = client_->GetEntity(counter);
  ASSERT_TRUE(entity.ok());
  EXPECT_EQ(FromPayload(entity->state), 10000);
  EXPECT_EQ(entity->backlog, 0);
  EXPECT_EQ(entity->instance_id, "@counter@shared");
}

TEST_F(EntityTest, CallsReturnResultsAndAThrowingOperationRollsBackOnlyItself) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Calls", [](OrchestrationContext& ctx) -> Task<Json> {
    EntityId c("Counter", "calls");
    co_await ctx.CallEntity(c, "add", 5);
    std::string failure;
    try {
      co_await ctx.CallEntity(c, "addThenFail", 100);
    } catch (const TaskFailedError& e) {
      failure = e.details().error_type + ": " + e.details().error_message;
    }
    co_await ctx.CallEntity(c, "add", 1);
    int64_t value = co_await ctx.CallEntity<int64_t>(c, "get");
    co_return Json{value, failure};
  }));
  Open();
  auto id = client_->ScheduleNewOrchestration("Calls");
  InstanceState s = Await(*id);
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted) << s.output;
  EXPECT_EQ(FromPayload(s.output), Json({6, "Rejected: addThenFail always fails"}));
}

TEST_F(EntityTest, ClassFormEntitiesAndClientSignals) {
  Open();
  EntityId acct("Account", "alice");
  BATON_ASSERT_OK(client_->SignalEntity(acct, "deposit", 70));
  BATON_ASSERT_OK(client_->SignalEntity(acct, "withdraw", 20));
  BATON_ASSERT_OK(client_->SignalEntity(acct, "nosuchop"));  // fails alone, changes nothing
  BATON_ASSERT_OK(client_->SignalEntity(acct, "DEPOSIT", 1));
  ASSERT_TRUE(Eventually([&] { return StateOf(acct) == Json({{"balance", 51}}); })) << StateOf(acct);
  EXPECT_EQ(client_->GetEntity(EntityId("Account", "nobody")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(client_->SignalEntity("not-an-entity", "x").code(), StatusCode::kInvalidArgument);

  BATON_ASSERT_OK(client_->SignalEntity(EntityId("Counter", "q1"), "add", 1));
  BATON_ASSERT_OK(client_->SignalEntity(EntityId("Counter", "q2"), "add", 2));
  // Two entities, two instances: their signals may be processed in either order.
  ASSERT_TRUE(Eventually([&] {
    return StateOf(EntityId("Counter", "q1")) == 1 && StateOf(EntityId("Counter", "q2")) == 2;
  }));
  EntityQuery q;
  q.name_prefix = "count";
  auto page = client_->QueryEntities(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entities.size(), 2u);
  EXPECT_EQ(page->entities[0].id.key, "q1");
}

TEST_F(EntityTest, ScheduledSignalsAreNotDeliveredEarly) {
  auto clock = std::make_shared<ManualClock>(std::chrono::system_clock::now());
  Open(clock);
  EntityId c("Counter", "later");
  BATON_ASSERT_OK(client_->SignalEntity(c, "add", 1));
  BATON_ASSERT_OK(client_->SignalEntity(c, "add", 10, clock->Now() + 1h));
  ASSERT_TRUE(Eventually([&] { return StateOf(c) == 1; }));
  // However long we wait in real time, the scheduled one waits for its time.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(StateOf(c), 1);
  clock->Advance(59min);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(StateOf(c), 1);
  clock->Advance(1min);
  ASSERT_TRUE(Eventually([&] { return StateOf(c) == 11; }));
}

TEST_F(EntityTest, EntitiesSignalEntitiesAndStartOrchestrations) {
  BATON_ASSERT_OK(registry_.AddEntity("Relay", [](EntityContext& ctx) -> Json {
    ctx.SignalEntity(EntityId("Counter", "relayed"), "add", ctx.GetInput<int>());
    return ctx.StartNewOrchestration("Echo", ctx.GetInput<int>(), "started-by-relay");
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("Echo", [](OrchestrationContext& ctx) -> Task<Json> {
    co_return ctx.GetInput();
  }));
  Open();
  BATON_ASSERT_OK(client_->SignalEntity(EntityId("Relay", "r"), "go", 7));
  ASSERT_TRUE(Eventually([&] { return StateOf(EntityId("Counter", "relayed")) == 7; }));
  ASSERT_TRUE(Eventually([&] { return client_->GetState("started-by-relay").ok(); }));
  EXPECT_EQ(FromPayload(Await("started-by-relay").output), 7);
}

// 50 orchestrations move money between 3 accounts, each locking two of them
// (in a random order) for a read-modify-write. Without mutual exclusion,
// interleaved read-modify-writes would lose updates and break the total;
// with lock ordering broken, they would deadlock and never complete.
TEST_F(EntityTest, CriticalSectionsNeverDeadlockNorInterleave) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Transfer", [](OrchestrationContext& ctx) -> Task<Json> {
    Json in = ctx.GetInput();
    EntityId from("Account", in["from"].get<std::string>());
    EntityId to("Account", in["to"].get<std::string>());
    int64_t amount = in["amount"].get<int64_t>();
    std::vector<EntityId> lock_set{from, to};  // in the caller's order, not sorted
    co_await ctx.LockEntities(std::move(lock_set));
    int64_t a = co_await ctx.CallEntity<int64_t>(from, "balance");
    int64_t b = co_await ctx.CallEntity<int64_t>(to, "balance");
    // Read, then write absolute values: only correct if nobody else wrote in between.
    co_await ctx.CallEntity(from, "withdraw", a - (a - amount));
    co_await ctx.CallEntity(to, "deposit", amount);
    int64_t a2 = co_await ctx.CallEntity<int64_t>(from, "balance");
    int64_t b2 = co_await ctx.CallEntity<int64_t>(to, "balance");
    ctx.UnlockEntities();
    co_return Json{{"consistent", a2 == a - amount && b2 == b + amount}};
  }));
  Open();
  const std::vector<std::string> names = {"x", "y", "z"};
  for (const auto& n : names) BATON_ASSERT_OK(client_->SignalEntity(EntityId("Account", n), "deposit", 1000));
  ASSERT_TRUE(Eventually([&] { return StateOf(EntityId("Account", "z")) == Json({{"balance", 1000}}); }));

  std::mt19937 rng(20261123);
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    int f = static_cast<int>(rng() % 3), t = static_cast<int>((f + 1 + rng() % 2) % 3);
    ids.push_back(*client_->ScheduleNewOrchestration(
        "Transfer", Json{{"from", names[f]}, {"to", names[t]}, {"amount", static_cast<int>(rng() % 50) + 1}}));
  }
  int consistent = 0;
  for (const auto& id : ids) {
    InstanceState s = Await(id);  // a deadlock would time out here
    ASSERT_EQ(s.status, OrchestrationStatus::kCompleted) << s.output;
    consistent += FromPayload(s.output)["consistent"].get<bool>() ? 1 : 0;
  }
  EXPECT_EQ(consistent, 50);
  // The last unlocks were sent with the last orchestration's completion.
  ASSERT_TRUE(Eventually([&] {
    for (const auto& n : names) {
      auto e = client_->GetEntity(EntityId("Account", n));
      if (!e.ok() || !e->locked_by.empty()) return false;
    }
    return true;
  }));
  int64_t total = 0;
  for (const auto& n : names) {
    auto e = client_->GetEntity(EntityId("Account", n));
    ASSERT_TRUE(e.ok());
    total += FromPayload(e->state)["balance"].get<int64_t>();
  }
  EXPECT_EQ(total, 3000);
}

TEST_F(EntityTest, LocksOfATerminatedOrchestrationAreReleased) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("HoldForever", [](OrchestrationContext& ctx) -> Task<Json> {
    std::vector<EntityId> set{EntityId("Counter", "held"), EntityId("Counter", "other")};
    co_await ctx.LockEntities(std::move(set));
    ctx.SetCustomStatus("locked");
    co_await ctx.WaitForExternalEvent("never");
    co_return nullptr;
  }));
  BATON_ASSERT_OK(registry_.AddOrchestrator("UseIt", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CallEntity(EntityId("Counter", "held"), "add", 1);
    co_return co_await ctx.CallEntity(EntityId("Counter", "held"), "get");
  }));
  Open();
  std::string holder = *client_->ScheduleNewOrchestration("HoldForever");
  ASSERT_TRUE(Eventually([&] { return FromPayload(client_->GetState(holder)->custom_status) == "locked"; }));
  // A second holder asks for the same locks and waits; it is terminated while waiting.
  std::string waiter = *client_->ScheduleNewOrchestration("HoldForever");
  std::string user = *client_->ScheduleNewOrchestration("UseIt");
  ASSERT_TRUE(Eventually([&] { return client_->GetEntity(EntityId("Counter", "held")).ok(); }));
  EXPECT_EQ(client_->WaitForCompletion(user, 300ms).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_->GetEntity(EntityId("Counter", "held"))->locked_by, holder);

  BATON_ASSERT_OK(client_->Terminate(waiter, "gave up"));
  BATON_ASSERT_OK(client_->Terminate(holder, "done"));
  // The waiter's lock is granted to a terminated orchestration and given back:
  // the user gets its turn, and in the end no entity stays locked.
  InstanceState used = Await(user);
  ASSERT_EQ(used.status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(FromPayload(used.output), 1);
  ASSERT_TRUE(Eventually([&] {
    auto a = client_->GetEntity(EntityId("Counter", "held"));
    auto b = client_->GetEntity(EntityId("Counter", "other"));
    return a.ok() && b.ok() && a->locked_by.empty() && b->locked_by.empty();
  }));
}

// A critical section left in the same episode as the orchestrator fails:
// the unlock still reaches the entity.
TEST_F(EntityTest, AnUnlockJustBeforeAFailureStillReleasesTheEntity) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("LockThenThrow", [](OrchestrationContext& ctx) -> Task<Json> {
    std::vector<EntityId> set{EntityId("Counter", "brief")};
    co_await ctx.LockEntities(std::move(set));
    ctx.UnlockEntities();
    throw std::runtime_error("after the section");
  }));
  Open();
  std::string id = *client_->ScheduleNewOrchestration("LockThenThrow");
  ASSERT_EQ(Await(id).status, OrchestrationStatus::kFailed);
  ASSERT_TRUE(Eventually([&] {
    auto e = client_->GetEntity(EntityId("Counter", "brief"));
    return e.ok() && e->locked_by.empty();
  }));
}

// DurableTaskConformance: the locks an orchestration holds are released in
// the commit that completes it, so a reader that has seen the completion
// never sees the owner still holding a lock (released in the code or not).
TEST_F(EntityTest, DurableTaskConformanceNoLockIsSeenAfterItsOwnerCompleted) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("LockAndAdd", [](OrchestrationContext& ctx) -> Task<Json> {
    Json input = ctx.GetInput();
    std::vector<EntityId> set{EntityId("Counter", input["key"].get<std::string>())};
    co_await ctx.LockEntities(std::move(set));
    co_await ctx.CallEntity(EntityId("Counter", input["key"].get<std::string>()), "add", 1);
    if (input["release"].get<bool>()) ctx.UnlockEntities();
    co_return nullptr;
  }));
  Open();
  for (int i = 0; i < 50; ++i) {
    const std::string key = "k" + std::to_string(i);
    std::string id = *client_->ScheduleNewOrchestration("LockAndAdd", Json{{"key", key}, {"release", i % 2 == 0}});
    ASSERT_EQ(Await(id).status, OrchestrationStatus::kCompleted);
    auto e = client_->GetEntity(EntityId("Counter", key));
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->locked_by, "") << "run " << i;
    EntityQuery q;
    q.name_prefix = "counter";
    auto page = client_->QueryEntities(q);
    ASSERT_TRUE(page.ok());
    for (const EntityState& s : page->entities) EXPECT_EQ(s.locked_by, "") << s.instance_id << " run " << i;
  }
  // The locks really went: the entities take new owners.
  std::string again = *client_->ScheduleNewOrchestration("LockAndAdd", Json{{"key", "k1"}, {"release", false}});
  ASSERT_EQ(Await(again).status, OrchestrationStatus::kCompleted);
  ASSERT_TRUE(Eventually([&] { return StateOf(EntityId("Counter", "k1")) == 2; }));
}

TEST_F(EntityTest, LockingRulesAreEnforced) {
  BATON_ASSERT_OK(registry_.AddOrchestrator("Nested", [](OrchestrationContext& ctx) -> Task<Json> {
    std::vector<EntityId> set{EntityId("Counter", "a")};
    co_await ctx.LockEntities(std::move(set));
    std::string error;
    try {
      co_await ctx.CallEntity(EntityId("Counter", "outside"), "get");
    } catch (const DurableError& e) {
      error = e.error_type();
    }
    co_return error;
  }));
  Open();
  InstanceState s = Await(*client_->ScheduleNewOrchestration("Nested"));
  ASSERT_EQ(s.status, OrchestrationStatus::kCompleted) << s.output;
  EXPECT_EQ(FromPayload(s.output), "LockingRulesViolation");
  // Released at the end of the orchestration although it never unlocked.
  ASSERT_TRUE(Eventually([&] {
    auto a = client_->GetEntity(EntityId("Counter", "a"));
    return a.ok() && a->locked_by.empty();
  }));
}

TEST_F(EntityTest, CleanupRemovesEmptyEntitiesAndReleasesOrphanedLocks) {
  Open();
  // A lock whose owner never existed (as if its instance had been purged).
  TimePoint now = std::chrono::system_clock::now();
  events::EntityLockRequested orphan{"cs-ghost", {"@counter@orphan"}, 0, "ghost-orchestration"};
  BATON_ASSERT_OK(store_->SendMessage(Message{0, "@counter@orphan", "", now, HistoryEvent{-1, now, orphan}}));
  BATON_ASSERT_OK(client_->SignalEntity(EntityId("Counter", "orphan"), "add", 3));  // waits for the lock
  BATON_ASSERT_OK(client_->SignalEntity(EntityId("Counter", "empty"), "delete"));
  BATON_ASSERT_OK(client_->SignalEntity(EntityId("Counter", "kept"), "add", 1));
  ASSERT_TRUE(Eventually([&] {
    auto o = client_->GetEntity(EntityId("Counter", "orphan"));
    return o.ok() && o->locked_by == "ghost-orchestration" && o->backlog == 1;
  }));
  // "empty" exists from its signal on, and leaves Pending once its batch (the delete) ran.
  ASSERT_TRUE(Eventually([&] {
    auto empty = store_->GetInstance("@counter@empty", false);
    return empty.ok() && empty->status != OrchestrationStatus::kPending && StateOf(EntityId("Counter", "kept")) == 1;
  }));

  auto cleaned = client_->CleanEntityStorage("", true, true);
  ASSERT_TRUE(cleaned.ok()) << cleaned.status().ToString();
  EXPECT_EQ(cleaned->orphaned_locks_released, 1);
  EXPECT_EQ(cleaned->empty_entities_removed, 1);
  EXPECT_EQ(client_->GetEntity(EntityId("Counter", "empty")).status().code(), StatusCode::kNotFound);
  // Released: the operation that waited runs.
  ASSERT_TRUE(Eventually([&] { return StateOf(EntityId("Counter", "orphan")) == 3; }));
  EXPECT_EQ(StateOf(EntityId("Counter", "kept")), 1);
}

}  // namespace
}  // namespace baton
