// The entity batch planner: which operations run, what the lock protocol
// sends, and how a batch whose operations ran elsewhere (an SDK worker) is
// finished from their results.
#include <gtest/gtest.h>

#include "engine/entity_executor.h"

namespace baton::engine {
namespace {

const TimePoint kNow = TimePoint{} + std::chrono::hours(1000);
const std::string kEntity = "@tally@k";

Message Msg(EventBody body) { return Message{0, kEntity, "", kNow, HistoryEvent{-1, kNow, std::move(body)}}; }

Message Signal(const std::string& op, const std::string& input) {
  return Msg(events::EntityOperationSignaled{"s-" + op + input, op, std::nullopt, input, kEntity});
}

Message Call(const std::string& caller, const std::string& op, const std::string& input) {
  return Msg(events::EntityOperationCalled{"c-" + caller + op + input, op, std::nullopt, input, caller, "exec-" + caller,
                                           kEntity});
}

Message Lock(const std::string& owner) {
  return Msg(events::EntityLockRequested{"cs-" + owner, {kEntity}, 0, owner});
}

Message Unlock(const std::string& owner) { return Msg(events::EntityUnlockSent{"cs-" + owner, owner, kEntity}); }

std::vector<std::string> Ops(const EntityBatchPlan& plan) {
  std::vector<std::string> out;
  for (const auto& op : plan.operations) out.push_back(op.operation + op.input);
  return out;
}

EntityOperationResult Ok(const std::string& output) { return EntityOperationResult{output, std::nullopt, {}}; }

TEST(EntityBatchPlan, WhileLockedOnlyTheOwnersCallsRunAndTheRestWaitInOrder) {
  EntityBatchPlan plan = PlanEntityBatch(
      kEntity, "", {Lock("A"), Signal("add", "1"), Call("B", "get", ""), Call("A", "add", "2")}, kNow);
  EXPECT_EQ(Ops(plan), (std::vector<std::string>{"add2"}));
  EXPECT_EQ(plan.lock_owner, "A");
  ASSERT_EQ(plan.lock_messages.size(), 1u);
  EXPECT_EQ(plan.lock_messages[0].instance_id, "A");
  EXPECT_TRUE(std::holds_alternative<events::EntityLockGranted>(plan.lock_messages[0].event.body));
  EXPECT_EQ(plan.queue.size(), 2u);

  EntityBatch done = FinishEntityBatch(std::move(plan), true, Json(2), {Ok("2")}, kNow);
  // The unlock releases the waiting signal and call, in their order.
  EntityBatchPlan next = PlanEntityBatch(kEntity, done.state, {Unlock("A"), Signal("add", "3")}, kNow);
  EXPECT_EQ(Ops(next), (std::vector<std::string>{"add1", "get", "add3"}));
  EXPECT_TRUE(next.lock_owner.empty());
  EXPECT_EQ(next.state, Json(2));
}

TEST(EntityBatchPlan, OperationsAWorkerDidNotReachRunFirstInTheNextBatch) {
  EntityBatchPlan plan =
      PlanEntityBatch(kEntity, "", {Signal("add", "1"), Call("B", "add", "2"), Signal("add", "3")}, kNow);
  ASSERT_EQ(plan.operations.size(), 3u);
  EntityBatch done = FinishEntityBatch(std::move(plan), true, Json(1), {Ok("1")}, kNow);
  EXPECT_EQ(done.operations_run, 1);
  EXPECT_TRUE(done.outbox.empty());  // the call was not answered: it did not run
  EntityBatchPlan next = PlanEntityBatch(kEntity, done.state, {Signal("add", "4")}, kNow);
  EXPECT_EQ(Ops(next), (std::vector<std::string>{"add2", "add3", "add4"}));
}

TEST(EntityBatchPlan, AnOperationNotReachedKeepsItsPlaceAheadOfALaterLockRequest) {
  // Unlocked: Q's call arrived before P's lock request. The worker ran nothing.
  EntityBatchPlan plan = PlanEntityBatch(kEntity, "", {Call("Q", "get", ""), Lock("P")}, kNow);
  EXPECT_EQ(plan.lock_owner, "P");
  EntityBatch done = FinishEntityBatch(std::move(plan), false, Json(), {}, kNow);
  EXPECT_TRUE(done.outbox.empty());  // no grant yet: P's request comes after Q's call
  EXPECT_EQ(ViewEntityState(done.state).locked_by, "");
  EntityBatchPlan next = PlanEntityBatch(kEntity, done.state, {}, kNow);
  EXPECT_EQ(Ops(next), (std::vector<std::string>{"get"}));
  EXPECT_EQ(next.lock_owner, "P");
}

TEST(EntityBatchPlan, CallsAreAnsweredAndAFailedOperationSendsNothing) {
  EntityBatchPlan plan = PlanEntityBatch(kEntity, "", {Call("B", "add", "1"), Call("C", "boom", "")}, kNow);
  EntityOperationResult failed;
  failed.failure = FailureDetails{"Boom", "no"};
  failed.sends.push_back(Message{0, "@other@x", "", kNow, HistoryEvent{-1, kNow, events::EventRaised{"x", ""}}});
  EntityOperationResult ok = Ok("1");
  ok.sends.push_back(Message{0, "@other@y", "", kNow, HistoryEvent{-1, kNow, events::EventRaised{"y", ""}}});
  EntityBatch done = FinishEntityBatch(std::move(plan), true, Json(1), {ok, failed}, kNow);
  std::vector<std::string> targets;
  for (const Message& m : done.outbox) targets.push_back(m.instance_id);
  EXPECT_EQ(targets, (std::vector<std::string>{"@other@y", "B", "C"}));
  const auto* completed = std::get_if<events::EntityOperationCompleted>(&done.outbox[1].event.body);
  ASSERT_NE(completed, nullptr);
  EXPECT_EQ(completed->output, "1");
  EXPECT_EQ(done.outbox[1].execution_id, "exec-B");
  const auto* fail = std::get_if<events::EntityOperationFailed>(&done.outbox[2].event.body);
  ASSERT_NE(fail, nullptr);
  EXPECT_EQ(fail->failure.error_type, "Boom");
}

TEST(EntityBatchPlan, ADeletedStateIsGoneAndALockSetIsForwarded) {
  Message lock = Msg(events::EntityLockRequested{"cs", {kEntity, "@z@z"}, 0, "A"});
  EntityBatchPlan plan = PlanEntityBatch(kEntity, R"({"state":5})", {lock}, kNow);
  EXPECT_TRUE(plan.has_state);
  ASSERT_EQ(plan.lock_messages.size(), 1u);
  EXPECT_EQ(plan.lock_messages[0].instance_id, "@z@z");
  EntityBatch done = FinishEntityBatch(std::move(plan), false, Json(), {}, kNow);
  EntityView view = ViewEntityState(done.state);
  EXPECT_FALSE(view.has_state);
  EXPECT_EQ(view.locked_by, "A");
}

}  // namespace
}  // namespace baton::engine
