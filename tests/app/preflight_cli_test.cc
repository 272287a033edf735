// `baton preflight` end to end: a store holds a live v1 instance (and stays
// open, as a running server's would); the binary loads the v2 and v3 builds
// from shared libraries and reads the store read-only.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <memory>

#include "baton/client.h"
#include "baton/sqlite_store.h"
#include "baton/worker.h"
#include "engine/preflight_versions.h"
#include "testing/run_command.h"
#include "testing/test_util.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

using CliRun = testing::CommandRun;

CliRun RunBaton(const std::string& args) { return testing::RunCommand(std::string(BATON_BINARY) + " " + args); }

TEST(PreflightCliTest, FlagsTheBrokenBuildAndPassesTheSafeOne) {
  testing::TempDir dir;
  const std::string db = dir.path() + "/baton.db";
  SqliteStoreOptions o;
  o.path = db;
  auto store = OpenSqliteStore(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Registry v1;
  testing::preflight::RegisterV1(v1);
  Worker worker(**store, v1, WorkerOptions{});
  BATON_ASSERT_OK(worker.Start());
  Client client(**store);
  ScheduleOptions so;
  so.instance_id = "release-42";
  ASSERT_TRUE(client.ScheduleNewOrchestration("Release", nullptr, so).ok());
  ASSERT_TRUE(testing::Eventually([&] {
    auto s = client.GetState("release-42");
    return s.ok() && FromPayload(s->custom_status) == Json("awaiting approval");
  }));

  CliRun broken = RunBaton(std::string("preflight --registry-from ") + PREFLIGHT_V2 + " --store sqlite:" + db);
  EXPECT_EQ(broken.exit_code, 1) << broken.out;
  EXPECT_NE(broken.out.find("non-deterministic  release-42 (Release, Running"), std::string::npos) << broken.out;
  EXPECT_NE(broken.out.find("expected: ScheduleTask 'Build'"), std::string::npos) << broken.out;
  EXPECT_NE(broken.out.find("actual:   ScheduleTask 'Test'"), std::string::npos) << broken.out;
  EXPECT_NE(broken.out.find("NOT SAFE"), std::string::npos) << broken.out;

  CliRun safe = RunBaton(std::string("preflight --json --registry-from ") + PREFLIGHT_V3 + " --store sqlite:" + db);
  EXPECT_EQ(safe.exit_code, 0) << safe.out;
  Json report = Json::parse(safe.out, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << safe.out;
  EXPECT_EQ(report["safe"], true);
  EXPECT_EQ(report["passes"], 1);
  EXPECT_EQ(report["instances"][0]["instanceId"], "release-42");

  // Bad input: a bare library name, a library without baton_register, a bad store.
  CliRun bare = RunBaton("preflight --registry-from libm.so.6 --store sqlite:" + db);
  EXPECT_EQ(bare.exit_code, 2) << bare.out;
  CliRun nosym = RunBaton("preflight --registry-from /lib/x86_64-linux-gnu/libm.so.6 --store sqlite:" + db);
  EXPECT_EQ(nosym.exit_code, 2) << nosym.out;
  EXPECT_NE(nosym.out.find("baton_register"), std::string::npos) << nosym.out;
  CliRun nostore = RunBaton(std::string("preflight --registry-from ") + PREFLIGHT_V3 + " --store sqlite:" +
                         dir.path() + "/missing.db");
  EXPECT_EQ(nostore.exit_code, 2) << nostore.out;

  // The live instance is untouched and still finishes on v1.
  BATON_ASSERT_OK(client.RaiseEvent("release-42", "Approve", true));
  auto end = client.WaitForCompletion("release-42", 60s);
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(FromPayload(end->output), Json("shipped"));
  worker.Stop();
}

}  // namespace
}  // namespace baton
