// The rewind rewrite of a failed history (core/rewind.h).
#include <gtest/gtest.h>

#include "core/rewind.h"

namespace baton::core {
namespace {

std::vector<std::string> Kinds(const std::vector<HistoryEvent>& h) {
  std::vector<std::string> out;
  for (const HistoryEvent& e : h) out.emplace_back(EventKindName(e.body));
  return out;
}

TEST(RewindHistory, DropsFailuresTheirSchedulesAndTheEndButKeepsWhatSucceeded) {
  const TimePoint t{};
  const FailureDetails boom{"Boom", "no", "", "", false, {}};
  std::vector<HistoryEvent> h = {
      {-1, t, events::OrchestratorStarted{}},
      {-1, t, events::ExecutionStarted{}},
      {1, t, events::TaskScheduled{"A", "", ""}},
      {2, t, events::SubOrchestrationInstanceCreated{"kid", "Kid", "", ""}},
      {-1, t, events::OrchestratorCompleted{}},
      {-1, t, events::OrchestratorStarted{}},
      {-1, t, events::TaskCompleted{1, "1"}},
      {3, t, events::TaskScheduled{"B", "", ""}},
      {-1, t, events::OrchestratorCompleted{}},
      {-1, t, events::OrchestratorStarted{}},
      {-1, t, events::TaskFailed{3, boom}},
      {-1, t, events::SubOrchestrationInstanceFailed{2, boom}},
      {-1, t, events::ExecutionCompleted{OrchestrationStatus::kFailed, "", boom}},
      {-1, t, events::OrchestratorCompleted{}},
  };
  RewoundHistory r = RewindHistory(h);
  EXPECT_EQ(Kinds(r.events),
            (std::vector<std::string>{"OrchestratorStarted", "ExecutionStarted", "TaskScheduled",
                                      "SubOrchestrationInstanceCreated", "OrchestratorCompleted",
                                      "OrchestratorStarted", "TaskCompleted", "OrchestratorStarted"}));
  ASSERT_EQ(r.failed_children.size(), 1u);
  EXPECT_EQ(r.failed_children[0].instance_id, "kid");
  EXPECT_EQ(r.failed_children[0].task_id, 2);
  EXPECT_TRUE(r.unanswered_children.empty());
  EXPECT_TRUE(r.refusal.empty());

  // A child that is gone (or not this parent's) is created anew instead.
  RewoundHistory recreated = RewindHistory(h, {"kid"});
  EXPECT_TRUE(recreated.failed_children.empty());
  for (const HistoryEvent& e : recreated.events) {
    EXPECT_FALSE(std::holds_alternative<events::SubOrchestrationInstanceCreated>(e.body));
  }
}

TEST(RewindHistory, ARunThatFailedInsideACriticalSectionOrWaitingForAnEntityIsRefused) {
  const TimePoint t{};
  const FailureDetails boom{"Boom", "no", "", "", false, {}};
  std::vector<HistoryEvent> locked = {
      {-1, t, events::OrchestratorStarted{}},
      {-1, t, events::ExecutionStarted{}},
      {1, t, events::EntityLockRequested{"cs", {"@a@1"}, 0, "me"}},
      {-1, t, events::OrchestratorCompleted{}},
      {-1, t, events::OrchestratorStarted{}},
      {-1, t, events::EntityLockGranted{"cs"}},
      {2, t, events::EntityUnlockSent{"cs", "me", "@a@1"}},
      {-1, t, events::ExecutionCompleted{OrchestrationStatus::kFailed, "", boom}},
      {-1, t, events::OrchestratorCompleted{}},
  };
  EXPECT_NE(RewindHistory(locked).refusal.find("critical section"), std::string::npos);
  std::vector<HistoryEvent> waiting = {
      {-1, t, events::OrchestratorStarted{}},
      {-1, t, events::ExecutionStarted{}},
      {1, t, events::EntityOperationCalled{"r1", "get", std::nullopt, "", "me", "x", "@a@1"}},
      {-1, t, events::ExecutionCompleted{OrchestrationStatus::kFailed, "", boom}},
      {-1, t, events::OrchestratorCompleted{}},
  };
  EXPECT_NE(RewindHistory(waiting).refusal.find("@a@1"), std::string::npos);
}

TEST(RewindHistory, AChildIdThatWasTakenIsCreatedAnewAndAnUnansweredChildIsReported) {
  const TimePoint t{};
  const FailureDetails taken{"InstanceAlreadyExists", "taken", "", "", true, {}};
  std::vector<HistoryEvent> h = {
      {-1, t, events::OrchestratorStarted{}},
      {-1, t, events::ExecutionStarted{}},
      {1, t, events::SubOrchestrationInstanceCreated{"taken", "Kid", "", ""}},
      {2, t, events::SubOrchestrationInstanceCreated{"slow", "Kid", "", ""}},
      {-1, t, events::OrchestratorCompleted{}},
      {-1, t, events::OrchestratorStarted{}},
      {-1, t, events::SubOrchestrationInstanceFailed{1, taken}},
      {-1, t, events::ExecutionCompleted{OrchestrationStatus::kFailed, "", taken}},
      {-1, t, events::OrchestratorCompleted{}},
  };
  RewoundHistory r = RewindHistory(h);
  EXPECT_TRUE(r.failed_children.empty());
  ASSERT_EQ(r.unanswered_children.size(), 1u);
  EXPECT_EQ(r.unanswered_children[0].instance_id, "slow");
  EXPECT_EQ(Kinds(r.events), (std::vector<std::string>{"OrchestratorStarted", "ExecutionStarted",
                                                       "SubOrchestrationInstanceCreated", "OrchestratorStarted"}));
}

TEST(RewindHistory, TasksAndTimersStillOutstandingWhenTheRunFailedAreScheduledAnew) {
  const TimePoint t{};
  const FailureDetails boom{"Boom", "no", "", "", false, {}};
  std::vector<HistoryEvent> h = {
      {-1, t, events::OrchestratorStarted{}},
      {-1, t, events::ExecutionStarted{}},
      {1, t, events::TaskScheduled{"Slow", "", ""}},
      {2, t, events::TaskScheduled{"Bad", "", ""}},
      {3, t, events::TimerCreated{t}},
      {4, t, events::TimerCreated{t}},
      {-1, t, events::OrchestratorCompleted{}},
      {-1, t, events::OrchestratorStarted{}},
      {-1, t, events::TimerFired{t, 4}},
      {-1, t, events::TaskFailed{2, boom}},
      {-1, t, events::ExecutionCompleted{OrchestrationStatus::kFailed, "", boom}},
      {-1, t, events::OrchestratorCompleted{}},
  };
  RewoundHistory r = RewindHistory(h);
  EXPECT_EQ(Kinds(r.events), (std::vector<std::string>{"OrchestratorStarted", "ExecutionStarted", "TimerCreated",
                                                       "OrchestratorStarted", "TimerFired"}));
  EXPECT_EQ(r.events[2].event_id, 4);
}

// The failing episode's actions were discarded when the run failed: its end
// marker goes, so the replay may produce them again.
TEST(RewindHistory, AHistoryWithoutFailedTasksLosesItsEndAndTheFailingEpisodesMarker) {
  const TimePoint t{};
  std::vector<HistoryEvent> h = {
      {-1, t, events::OrchestratorStarted{}},
      {-1, t, events::ExecutionStarted{}},
      {-1, t, events::ExecutionCompleted{OrchestrationStatus::kFailed, "", FailureDetails{"X", "y", "", "", false, {}}}},
      {-1, t, events::OrchestratorCompleted{}},
  };
  RewoundHistory r = RewindHistory(h);
  EXPECT_EQ(Kinds(r.events), (std::vector<std::string>{"OrchestratorStarted", "ExecutionStarted"}));
  EXPECT_TRUE(r.failed_children.empty());
}

}  // namespace
}  // namespace baton::core
