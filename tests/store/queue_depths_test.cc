// Store::QueueDepths, what /metrics shows of each task hub's queues, on
// every backend (a case of the store conformance suite: the instantiations
// are in store_conformance_test.cc): messages and activity tasks counted by
// hub (an entity of the default hub in "", one inside a tenant's hub in
// that hub), the oldest visible one's time, and messages not yet visible
// counted but not aged.
#include "store/store_conformance.h"

namespace baton::testing {
namespace {

const QueueDepth* HubNamed(const std::vector<QueueDepth>& depths, const std::string& hub) {
  for (const QueueDepth& d : depths) {
    if (d.hub == hub) return &d;
  }
  return nullptr;
}

TEST_P(StoreConformanceTest, MetricsQueueDepthsCountEachHubAndTheOldestVisible) {
  auto empty = store().QueueDepths(Now());
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->empty());

  const TimePoint t0 = Now();
  ASSERT_TRUE(Create("acme::a").ok());  // its ExecutionStarted: visible now
  ASSERT_TRUE(store().SendMessage(To("acme::a", events::EventRaised{"later", ""}, "", t0 + std::chrono::hours(1))).ok());
  ASSERT_TRUE(Create("b").ok());
  ASSERT_TRUE(store().SendMessage(To("@counter@x", events::EventRaised{"op", ""})).ok());
  ASSERT_TRUE(store().SendMessage(To("globex::@counter@y", events::EventRaised{"op", ""})).ok());
  clock_->Advance(std::chrono::seconds(10));

  auto depths = store().QueueDepths(Now());
  ASSERT_TRUE(depths.ok()) << depths.status().ToString();
  ASSERT_EQ(depths->size(), 3u);
  const QueueDepth* acme = HubNamed(*depths, "acme");
  const QueueDepth* def = HubNamed(*depths, "");
  const QueueDepth* globex = HubNamed(*depths, "globex");
  ASSERT_TRUE(acme && def && globex);
  EXPECT_EQ(acme->orchestration_messages, 2);
  EXPECT_EQ(acme->activity_tasks, 0);
  ASSERT_TRUE(acme->oldest_visible.has_value());
  EXPECT_EQ(*acme->oldest_visible, t0);
  EXPECT_EQ(def->orchestration_messages, 2);  // "b" and the entity "@counter@x"
  EXPECT_EQ(globex->orchestration_messages, 1);

  // The episode of acme::a consumes what was visible and schedules two
  // activities; the message of an hour later stays, not yet visible.
  std::optional<OrchestrationWorkItem> item;
  std::vector<OrchestrationWorkItem> others;
  while ((item = FetchNow()) && item->instance_id != "acme::a") others.push_back(std::move(*item));
  ASSERT_TRUE(item.has_value());
  for (const auto& o : others) store().AbandonOrchestrationWorkItem(o, std::chrono::milliseconds(0));
  OrchestrationUpdate u = Running(*item, {Event(events::TaskScheduled{"Act", "", ""}, 0),
                                          Event(events::TaskScheduled{"Act", "", ""}, 1)});
  for (int32_t id : {0, 1}) {
    ActivityTask task;
    task.instance_id = "acme::a";
    task.execution_id = item->instance.execution_id;
    task.task_id = id;
    task.name = "Act";
    task.visible_at = Now();
    u.tasks.push_back(task);
  }
  ASSERT_TRUE(Commit(*item, std::move(u)).ok());
  clock_->Advance(std::chrono::seconds(5));
  depths = store().QueueDepths(Now());
  ASSERT_TRUE(depths.ok());
  acme = HubNamed(*depths, "acme");
  ASSERT_NE(acme, nullptr);
  EXPECT_EQ(acme->orchestration_messages, 1);
  EXPECT_EQ(acme->activity_tasks, 2);
  ASSERT_TRUE(acme->oldest_visible.has_value());
  EXPECT_EQ(*acme->oldest_visible, t0 + std::chrono::seconds(10));  // the tasks' time; the event is not visible

  // Seen from before anything was visible: counted, but nothing has waited.
  depths = store().QueueDepths(t0 - std::chrono::seconds(1));
  ASSERT_TRUE(depths.ok());
  EXPECT_FALSE(HubNamed(*depths, "acme")->oldest_visible.has_value());
}

}  // namespace
}  // namespace baton::testing
