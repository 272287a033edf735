// Store::ListNodes and SetNodeReporter, what GET /api/v1/admin/nodes shows,
// on every backend (a case of the store conformance suite: the
// instantiations are in store_conformance_test.cc): the node reports what
// its reporter says, and the leases it holds are counted and listed from
// the work items it has fetched, until they are completed.
#include <thread>

#include "store/store_conformance.h"

namespace baton::testing {
namespace {

// This store's node, once it reports `version` (a shared store publishes
// the report from a background thread: wait for that state, bounded).
std::optional<NodeInfo> NodeReporting(Store& store, const std::string& version) {
  for (int i = 0; i < 1000; ++i) {
    auto nodes = store.ListNodes();
    EXPECT_TRUE(nodes.ok()) << nodes.status().ToString();
    if (!nodes.ok()) return std::nullopt;
    for (const NodeInfo& n : *nodes) {
      if (n.version == version) return n;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "no node reports version " << version;
  return std::nullopt;
}

TEST_P(StoreConformanceTest, ListNodesReportsThisNodeAndTheLeasesItHolds) {
  store().SetNodeReporter([] { return NodeReport{"9.9.9", R"({"roles":["test"]})"}; });
  std::optional<NodeInfo> node = NodeReporting(store(), "9.9.9");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->state, NodeState::kUp);
  EXPECT_EQ(node->details, R"({"roles":["test"]})");
  ASSERT_TRUE(node->started_at.has_value());
  ASSERT_TRUE(node->heartbeat_at.has_value());
  EXPECT_LE(*node->started_at, *node->heartbeat_at);
  EXPECT_FALSE(node->stopped_at.has_value());
  EXPECT_EQ(node->instance_leases, 0);
  EXPECT_EQ(node->task_leases, 0);

  // A fetched instance is leased to this node until its episode commits,
  // and so is a fetched activity task until its result does.
  ASSERT_TRUE(Create("acme::held").ok());
  std::optional<OrchestrationWorkItem> item = FetchNow();
  ASSERT_TRUE(item.has_value());
  node = NodeReporting(store(), "9.9.9");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->instance_leases, 1);
  EXPECT_EQ(node->leased_instances, std::vector<std::string>{"acme::held"});
  OrchestrationUpdate u = Running(*item, {Event(events::TaskScheduled{"Act", "", ""}, 0)});
  ActivityTask task;
  task.instance_id = "acme::held";
  task.execution_id = item->instance.execution_id;
  task.task_id = 0;
  task.name = "Act";
  task.visible_at = Now();
  u.tasks.push_back(task);
  ASSERT_TRUE(Commit(*item, std::move(u)).ok());
  std::optional<ActivityWorkItem> activity = FetchActivityNow();
  ASSERT_TRUE(activity.has_value());
  node = NodeReporting(store(), "9.9.9");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->instance_leases, 0);
  EXPECT_EQ(node->task_leases, 1);
  ASSERT_EQ(node->leased_tasks.size(), 1u);
  EXPECT_EQ(node->leased_tasks[0].seq, activity->task.seq);
  EXPECT_EQ(node->leased_tasks[0].instance_id, "acme::held");
  EXPECT_EQ(node->leased_tasks[0].name, "Act");

  // The result releases the task's lease.
  Message result = To("acme::held", events::TaskCompleted{0, "\"ok\""}, activity->task.execution_id);
  ASSERT_TRUE(CommitActivity(*activity, std::move(result)).ok());
  node = NodeReporting(store(), "9.9.9");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->task_leases, 0);
  EXPECT_TRUE(node->leased_tasks.empty());
  store().SetNodeReporter(nullptr);
}

TEST_P(StoreConformanceTest, ListNodesListsAtMostTwentyLeasesOfAKindButCountsThemAll) {
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(Create("n" + std::to_string(100 + i)).ok());
  std::vector<OrchestrationWorkItem> items;
  while (auto item = FetchNow()) items.push_back(std::move(*item));
  ASSERT_EQ(items.size(), 25u);
  auto nodes = store().ListNodes();
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  int64_t counted = 0;
  for (const NodeInfo& n : *nodes) {
    counted += n.instance_leases;
    EXPECT_LE(n.leased_instances.size(), static_cast<size_t>(kMaxListedLeases));
    if (n.instance_leases == 25) {
      ASSERT_EQ(n.leased_instances.size(), static_cast<size_t>(kMaxListedLeases));
      EXPECT_EQ(n.leased_instances.front(), "n100");  // by id
      EXPECT_EQ(n.leased_instances.back(), "n119");
    }
  }
  EXPECT_EQ(counted, 25);
}

}  // namespace
}  // namespace baton::testing
