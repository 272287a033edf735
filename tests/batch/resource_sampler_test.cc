// The resource sampler (batch/resource_sampler.h) against the real dockerd:
// a container followed from its start, one found by listing, and one never
// seen running; figures taken once.
#include "batch/resource_sampler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <thread>

#include "testing/test_image.h"

namespace baton::batch {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kMiB = 1 << 20;

class RightsizeSamplerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { suite_.Prepare(BATON_TESTJOB, BATON_RUN_DIR); }
  static void TearDownTestSuite() { suite_.Release(); }
  void SetUp() override { ASSERT_TRUE(suite_.setup->ok()) << suite_.setup->ToString(); }
  void TearDown() override {
    for (const std::string& g : groups_) (void)suite_.docker->DeleteGroup(g);
  }

  // A started group running the test image with `args` under 64 MiB; its
  // main container's id.
  std::string Run(const std::string& what, const std::vector<std::string>& args) {
    runtime::GroupSpec spec;
    spec.name = "t" + std::to_string(getpid()) + "-sampler-" + what;
    spec.labels = {{"baton.deployment", Deployment()}};
    runtime::ContainerSpec c;
    c.name = "main";
    c.image = suite_.image->digest;
    c.args = args;
    c.memory_bytes = 64 * kMiB;
    c.cpus = 0.5;
    spec.containers = {c};
    auto created = suite_.docker->CreateGroup(spec);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    if (!created.ok()) return "";
    groups_.push_back(spec.name);
    EXPECT_TRUE(suite_.docker->StartGroup(spec.name).ok());
    return created->containers[0].id;
  }
  static std::string Deployment() { return "sampler" + std::to_string(getpid()); }

  static testing::SuiteImage suite_;
  std::vector<std::string> groups_;
};
testing::SuiteImage RightsizeSamplerTest::suite_;

// A runtime whose only answer is Stats, which counts its calls by container
// (every container "runs", using 1 MiB): what the sampler asks, not what
// Docker answers, is under test here.
class StatsCountingRuntime final : public runtime::ContainerRuntime {
 public:
  int calls(const std::string& id) {
    std::lock_guard lock(mu_);
    return calls_[id];
  }
  Result<runtime::Usage> Stats(const std::string& id) override {
    std::lock_guard lock(mu_);
    ++calls_[id];
    return runtime::Usage{0.1, kMiB, kMiB};
  }
  Result<std::vector<runtime::ContainerState>> ListByLabels(const std::map<std::string, std::string>&) override {
    return std::vector<runtime::ContainerState>{};
  }
  Status Ping(std::chrono::milliseconds) override { return None(); }
  Result<runtime::GroupState> CreateGroup(const runtime::GroupSpec&) override { return None(); }
  Status StartGroup(const std::string&) override { return None(); }
  Status StopGroup(const std::string&, std::chrono::seconds) override { return None(); }
  Status RestartGroup(const std::string&, std::chrono::seconds) override { return None(); }
  Status DeleteGroup(const std::string&) override { return None(); }
  Result<runtime::GroupState> InspectGroup(const std::string&) override { return None(); }
  Result<int> WaitContainer(const std::string&, std::chrono::milliseconds) override { return None(); }
  Result<std::vector<runtime::LogLine>> Logs(const std::string&) override { return None(); }
  Status FollowLogs(const std::string&, const std::function<bool(const runtime::LogLine&)>&,
                    std::chrono::milliseconds) override {
    return None();
  }
  Status WatchEvents(const std::map<std::string, std::string>&, const std::function<bool(const runtime::ContainerEvent&)>&,
                     std::chrono::milliseconds, std::optional<TimePoint>) override {
    return None();
  }
  Result<std::string> PullImage(const std::string&, const runtime::RegistryCredentials&, std::chrono::milliseconds,
                                const std::function<void(const std::string&)>&) override {
    return None();
  }
  Result<std::string> LocalImageDigest(const std::string&) override { return None(); }
  Status CheckRegistry(const runtime::RegistryCredentials&, std::chrono::milliseconds) override { return None(); }

 private:
  static Status None() { return UnimplementedError("not used by the sampler"); }
  std::mutex mu_;
  std::map<std::string, int> calls_;
};

// Watch wakes the loop for the new container only: between interval passes
// (an hour apart here) a start samples what was added since, never every
// followed container again.
TEST(ResourceSamplerWakeTest, AWatchSamplesOnlyTheNewContainerBetweenPasses) {
  StatsCountingRuntime runtime;
  ResourceSamplerOptions options;
  options.interval = std::chrono::hours(1);
  options.discover_interval = std::chrono::hours(1);
  ResourceSampler sampler(runtime, options);
  sampler.Start();  // its first pass finds nothing to sample
  auto sampled = [&](const std::string& id) {
    for (int i = 0; i < 30000 && runtime.calls(id) == 0; ++i) std::this_thread::sleep_for(1ms);
    return runtime.calls(id);
  };
  sampler.Watch("a");
  EXPECT_EQ(sampled("a"), 1);
  sampler.Watch("b");
  EXPECT_EQ(sampled("b"), 1);
  sampler.Watch("c");
  EXPECT_EQ(sampled("c"), 1);
  sampler.Stop();
  EXPECT_EQ(runtime.calls("a"), 1) << "a start sampled every followed container";
  EXPECT_EQ(runtime.calls("b"), 1);
  // Take samples once more and hands the figures over.
  auto a = sampler.Take("a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->samples, 2);
  EXPECT_EQ(a->peak_memory_bytes, kMiB);
}

TEST_F(RightsizeSamplerTest, FollowsContainersWhileTheyRunAndHandsTheirFiguresOverOnce) {
  ResourceSamplerOptions options;
  options.selector = {{"baton.deployment", Deployment()}};
  options.interval = 200ms;
  options.discover_interval = 200ms;
  ResourceSampler sampler(*suite_.docker, options);
  sampler.Start();

  // Followed from its start (as the start activity does): 24 MiB held 5 s
  // (long enough for a sample while held when a loaded machine makes each
  // stats call take a second or more).
  const std::string watched = Run("watched", {"alloc", "24", "0", "5000"});
  ASSERT_FALSE(watched.empty());
  sampler.Watch(watched);
  // Never announced: found by listing the deployment's running containers.
  const std::string listed = Run("listed", {"alloc", "16", "0", "5000"});
  ASSERT_FALSE(listed.empty());
  ASSERT_TRUE(suite_.docker->WaitContainer(watched, 60s).ok());
  ASSERT_TRUE(suite_.docker->WaitContainer(listed, 60s).ok());

  // Read after the exit: the figures seen while it ran (the cgroup is gone by now).
  auto w = sampler.Take(watched);
  ASSERT_TRUE(w.has_value());
  EXPECT_GE(w->peak_memory_bytes, 24 * kMiB);
  EXPECT_LE(w->peak_memory_bytes, 64 * kMiB);
  EXPECT_GT(w->cpu_seconds, 0);
  EXPECT_GE(w->samples, 1);  // the loop's (Watch takes none: the start must not wait for a stats call)
  EXPECT_FALSE(sampler.Take(watched).has_value());  // handed over once

  auto l = sampler.Take(listed);
  ASSERT_TRUE(l.has_value());
  EXPECT_GE(l->peak_memory_bytes, 16 * kMiB);
  EXPECT_LE(l->peak_memory_bytes, 64 * kMiB);

  // Never seen running: nothing to say (an exited container has no figures).
  sampler.Stop();
  const std::string quick = Run("quick", {"exit", "0"});
  ASSERT_FALSE(quick.empty());
  ASSERT_TRUE(suite_.docker->WaitContainer(quick, 60s).ok());
  EXPECT_FALSE(sampler.Take(quick).has_value());
  EXPECT_FALSE(sampler.Take("no-such-container").has_value());
}

}  // namespace
}  // namespace baton::batch
