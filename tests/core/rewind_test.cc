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
  EXPECT_EQ(r.failed_children, (std::vector<std::string>{"kid"}));
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

TEST(RewindHistory, AHistoryWithoutFailuresOnlyLosesItsEnd) {
  const TimePoint t{};
  std::vector<HistoryEvent> h = {
      {-1, t, events::OrchestratorStarted{}},
      {-1, t, events::ExecutionStarted{}},
      {-1, t, events::ExecutionCompleted{OrchestrationStatus::kFailed, "", FailureDetails{"X", "y", "", "", false, {}}}},
      {-1, t, events::OrchestratorCompleted{}},
  };
  RewoundHistory r = RewindHistory(h);
  EXPECT_EQ(Kinds(r.events),
            (std::vector<std::string>{"OrchestratorStarted", "ExecutionStarted", "OrchestratorCompleted"}));
  EXPECT_TRUE(r.failed_children.empty());
}

}  // namespace
}  // namespace baton::core
