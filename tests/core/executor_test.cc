// The replay executor on hand-built histories: actions, replay, and the
// non-determinism checks.
#include "core/executor.h"

#include <gtest/gtest.h>

namespace baton::core {
namespace {

using namespace std::chrono_literals;

const TimePoint kT0 = FromUnixMicros(1'700'000'000'000'000);

HistoryEvent Ev(EventBody body, int32_t id = -1, TimePoint t = kT0) { return HistoryEvent{id, t, std::move(body)}; }

HistoryEvent Started(const std::string& name) {
  events::ExecutionStarted s;
  s.name = name;
  s.instance_id = "i1";
  s.execution_id = "e1";
  s.input = "\"in\"";
  return Ev(s);
}

// Calls `first` then `second`, returns both results.
OrchestratorFn TwoSteps(std::string first, std::string second) {
  return [first, second](OrchestrationContext& ctx) -> Task<Json> {
    Json a = co_await ctx.CallActivity(first, 1);
    Json b = co_await ctx.CallActivity(second, 2);
    co_return Json{a, b};
  };
}

OrchestratorLookup LookupOf(const std::map<std::string, OrchestratorFn>* fns) {
  return [fns](std::string_view name) -> const OrchestratorFn* {
    auto it = fns->find(std::string(name));
    return it == fns->end() ? nullptr : &it->second;
  };
}

// The history the engine records for TwoSteps("A", "B") completing.
std::vector<HistoryEvent> RecordedTwoSteps() {
  return {
      Ev(events::OrchestratorStarted{}),
      Started("Two"),
      Ev(events::TaskScheduled{"A", "", "1"}, 1),
      Ev(events::OrchestratorCompleted{}),
      Ev(events::OrchestratorStarted{}, -1, kT0 + 1s),
      Ev(events::TaskCompleted{1, "\"a\""}),
      Ev(events::TaskScheduled{"B", "", "2"}, 2),
      Ev(events::OrchestratorCompleted{}),
  };
}

TEST(ExecutorTest, ProducesActionsEpisodeByEpisode) {
  std::map<std::string, OrchestratorFn> fns{{"Two", TwoSteps("A", "B")}};
  Executor ex(LookupOf(&fns), "i1");
  ex.Apply(Ev(events::OrchestratorStarted{}), false);
  ex.Apply(Started("Two"), false);
  Episode e1 = ex.TakeEpisode();
  ASSERT_EQ(e1.actions.size(), 1u);
  EXPECT_EQ(e1.actions[0].id, 1);
  EXPECT_EQ(std::get<actions::ScheduleTask>(e1.actions[0].body).name, "A");
  EXPECT_FALSE(e1.completion);

  ex.Apply(Ev(events::OrchestratorStarted{}), false);
  ex.Apply(Ev(events::TaskCompleted{1, "\"a\""}), false);
  Episode e2 = ex.TakeEpisode();
  ASSERT_EQ(e2.actions.size(), 1u);
  EXPECT_EQ(e2.actions[0].id, 2);

  ex.Apply(Ev(events::OrchestratorStarted{}), false);
  ex.Apply(Ev(events::TaskCompleted{2, "\"b\""}), false);
  Episode e3 = ex.TakeEpisode();
  EXPECT_TRUE(e3.actions.empty());
  ASSERT_TRUE(e3.completion);
  EXPECT_EQ(e3.completion->status, OrchestrationStatus::kCompleted);
  EXPECT_EQ(FromPayload(e3.completion->result), Json({"a", "b"}));
}

TEST(ExecutorTest, ReplayAnswersFromHistoryAndContinues) {
  std::map<std::string, OrchestratorFn> fns{{"Two", TwoSteps("A", "B")}};
  Executor ex(LookupOf(&fns), "i1");
  for (const auto& e : RecordedTwoSteps()) ex.Apply(e, true);
  Episode replayed = ex.TakeEpisode();
  EXPECT_TRUE(replayed.actions.empty());  // everything was already recorded
  EXPECT_FALSE(replayed.completion);
  ex.Apply(Ev(events::OrchestratorStarted{}), false);
  ex.Apply(Ev(events::TaskCompleted{2, "\"b\""}), false);
  Episode last = ex.TakeEpisode();
  ASSERT_TRUE(last.completion);
  EXPECT_EQ(FromPayload(last.completion->result), Json({"a", "b"}));
}

TEST(ExecutorTest, DifferentActivityNameIsNonDeterminism) {
  std::map<std::string, OrchestratorFn> fns{{"Two", TwoSteps("A", "C")}};
  Executor ex(LookupOf(&fns), "i1");
  for (const auto& e : RecordedTwoSteps()) ex.Apply(e, true);
  Episode ep = ex.TakeEpisode();
  ASSERT_TRUE(ep.completion);
  EXPECT_EQ(ep.completion->status, OrchestrationStatus::kFailed);
  EXPECT_EQ(ep.completion->failure->error_type, "NonDeterminismError");
  const std::string& m = ep.completion->failure->error_message;
  EXPECT_NE(m.find("instance 'i1'"), std::string::npos) << m;
  EXPECT_NE(m.find("history event #6 (TaskScheduled, eventId 2)"), std::string::npos) << m;
  EXPECT_NE(m.find("expected ScheduleTask 'B'"), std::string::npos) << m;
  EXPECT_NE(m.find("produced ScheduleTask 'C'"), std::string::npos) << m;
  EXPECT_TRUE(ep.actions.empty());  // nothing from the mismatching code escapes
}

TEST(ExecutorTest, AnExtraActionInAReplayedEpisodeIsNonDeterminism) {
  // The new code schedules two activities at once where the old one scheduled one.
  std::map<std::string, OrchestratorFn> fns{{"Two", [](OrchestrationContext& ctx) -> Task<Json> {
                                               std::vector<Task<Json>> t;
                                               t.push_back(ctx.CallActivity("A", 1));
                                               t.push_back(ctx.CallActivity("X", 1));
                                               co_await WhenAll(std::move(t));
                                               co_return nullptr;
                                             }}};
  Executor ex(LookupOf(&fns), "i1");
  for (const auto& e : RecordedTwoSteps()) ex.Apply(e, true);
  Episode ep = ex.TakeEpisode();
  ASSERT_TRUE(ep.completion);
  EXPECT_EQ(ep.completion->failure->error_type, "NonDeterminismError");
  EXPECT_NE(ep.completion->failure->error_message.find("ScheduleTask 'X'"), std::string::npos)
      << ep.completion->failure->error_message;
}

TEST(ExecutorTest, CompletionForAnUnknownActionIsNonDeterminism) {
  std::map<std::string, OrchestratorFn> fns{{"Two", TwoSteps("A", "B")}};
  Executor ex(LookupOf(&fns), "i1");
  ex.Apply(Ev(events::OrchestratorStarted{}), true);
  ex.Apply(Started("Two"), true);
  ex.Apply(Ev(events::TaskScheduled{"A", "", "1"}, 1), true);
  ex.Apply(Ev(events::OrchestratorCompleted{}), true);
  ex.Apply(Ev(events::OrchestratorStarted{}), false);
  ex.Apply(Ev(events::TaskCompleted{7, "1"}), false);
  Episode ep = ex.TakeEpisode();
  ASSERT_TRUE(ep.completion);
  EXPECT_EQ(ep.completion->failure->error_type, "NonDeterminismError");
}

TEST(ExecutorTest, UnknownOrchestratorFails) {
  std::map<std::string, OrchestratorFn> fns;
  Executor ex(LookupOf(&fns), "i1");
  ex.Apply(Ev(events::OrchestratorStarted{}), false);
  ex.Apply(Started("Nope"), false);
  Episode ep = ex.TakeEpisode();
  ASSERT_TRUE(ep.completion);
  EXPECT_EQ(ep.completion->failure->error_type, "OrchestratorNotFound");
}

TEST(ExecutorTest, GuidsAndTimeComeFromHistory) {
  std::map<std::string, OrchestratorFn> fns{{"G", [](OrchestrationContext& ctx) -> Task<Json> {
                                               co_return Json{ctx.NewGuid(), ctx.NewGuid(),
                                                              FormatIso8601(ctx.CurrentUtcDateTime())};
                                             }}};
  auto run = [&] {
    Executor ex(LookupOf(&fns), "i1");
    ex.Apply(Ev(events::OrchestratorStarted{}, -1, kT0 + 5s), false);
    ex.Apply(Started("G"), false);
    return FromPayload(ex.TakeEpisode().completion->result);
  };
  Json a = run(), b = run();
  EXPECT_EQ(a, b);
  EXPECT_NE(a[0], a[1]);
  EXPECT_EQ(a[2], FormatIso8601(kT0 + 5s));
  EXPECT_EQ(a[0].get<std::string>()[14], '5');  // a version 5 UUID
}

}  // namespace
}  // namespace baton::core
