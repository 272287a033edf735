// Memory-aware retries and right-sizing against a real `baton serve`, dockerd
// and registry:
//   - a job OOM-killed under "onOomKilled" completes on its second attempt
//     with double the memory, the new size and why in its attempts and
//     events, and both attempts' receipts carry resource peaks;
//   - a larger size that can never fit the tenant's memory quota fails the
//     job with that reason;
//   - `baton job rightsize` / GET /api/v1/rightsize recommends from measured
//     runs, says when there is too little history, shows another tenant
//     nothing, and refuses hostile input; a hostile onOomKilled is a 400 that
//     stores nothing.
#include "e2e/job_fixture.h"
#include "testing/postgres_test_db.h"
#include "testing/run_command.h"

namespace baton::e2e {
namespace {

constexpr int64_t kMiB = 1 << 20;

class RightsizeOomE2eTest : public JobServerTest {
 protected:
  testing::CommandRun Baton(const std::string& args) {
    return testing::RunCommand(std::string(BATON_BINARY) + " " + args);
  }
  std::string Server() const { return "--server http://127.0.0.1:" + std::to_string(server_->port()); }

  Json Events(const std::string& key, const std::string& id) {
    return ParseOrNull(Call(key, "GET", "/api/v1/jobs/" + id + "/events").body)["events"];
  }
  // On the started server: an OOM-killed job under onOomKilled completes on
  // its second attempt with double the memory, measured, visible, durable.
  void ExpectOomRetryWithDoubleMemory();
};

// The store's URL for a fresh PostgreSQL database of this test ("" and a
// failure without BATON_TEST_POSTGRES_URL).
std::string PostgresStoreUrl() {
  const std::string conninfo = testing::CreateTestDatabase();
  const size_t at = conninfo.find("dbname='");
  if (at == std::string::npos) return "";
  const std::string dbname = conninfo.substr(at + 8, conninfo.find('\'', at + 8) - at - 8);
  std::string url = testing::PostgresAdminUrl();
  const size_t slash = url.find("/postgres?");
  if (slash == std::string::npos) return "";
  return url.replace(slash, 10, "/" + dbname + "?");
}

TEST_F(RightsizeOomE2eTest, AnOomKilledJobCompletesOnItsSecondAttemptWithDoubleMemory) {
  StartServer(2, 1024);
  ExpectOomRetryWithDoubleMemory();
}

// The same on PostgreSQL: the figures live in the job's history and result
// there too, and survive a restart of the node.
TEST_F(RightsizeOomE2eTest, AnOomKilledJobCompletesOnItsSecondAttemptWithDoubleMemoryOnPostgres) {
  const std::string url = PostgresStoreUrl();
  ASSERT_FALSE(url.empty());
  StartServer(2, 1024, {"--store", url});
  ExpectOomRetryWithDoubleMemory();
}

void RightsizeOomE2eTest::ExpectOomRetryWithDoubleMemory() {
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}, {"memoryMb", 512}});
  // 48 MiB under a 32 MiB limit: killed; under 64 MiB it fits, held 2.5 s so
  // that the sampler sees it.
  const Json spec = Spec("grow", {"alloc", "48", "300", "2500"},
                         Json{{"memoryMb", 32}, {"onOomKilled", {{"increaseMemory", 2.0}, {"maxMemoryMb", 128}}}});
  const std::string id = Submit(key, spec);
  ASSERT_FALSE(id.empty());
  Json v = AwaitEnd(key, id);
  ASSERT_EQ(v.value("status", ""), "Completed") << v.dump(2);
  const Json& result = v["result"];
  EXPECT_EQ(result.value("attempts", 0), 2) << result.dump(2);
  EXPECT_EQ(result.value("memoryMb", 0), 64);
  EXPECT_EQ(v["spec"]["onOomKilled"]["maxMemoryMb"], 128) << v["spec"].dump();
  const Json& attempts = result["attemptResults"];
  ASSERT_EQ(attempts.size(), 2u) << result.dump(2);
  // Attempt 1: OOM-killed at 32 MiB; its peak is its limit; the retry's size and why.
  EXPECT_TRUE(attempts[0].value("oomKilled", false)) << attempts[0].dump();
  EXPECT_EQ(attempts[0].value("reason", ""), "OOMKilled");
  EXPECT_EQ(attempts[0].value("memoryMb", 0), 32);
  EXPECT_EQ(attempts[0]["oomRetry"].value("memoryMb", 0), 64) << attempts[0].dump();
  EXPECT_EQ(attempts[0].value("memoryLimitBytes", int64_t{0}), 32 * kMiB);
  EXPECT_EQ(attempts[0].value("peakMemoryBytes", int64_t{0}), 32 * kMiB);
  // Attempt 2: double the memory, completed, measured.
  EXPECT_EQ(attempts[1].value("memoryMb", 0), 64);
  EXPECT_EQ(attempts[1].value("exitCode", -1), 0);
  EXPECT_FALSE(attempts[1].value("oomKilled", true));
  EXPECT_EQ(attempts[1].value("memoryLimitBytes", int64_t{0}), 64 * kMiB);
  ASSERT_TRUE(attempts[1]["peakMemoryBytes"].is_number_integer()) << attempts[1].dump();
  const int64_t peak = attempts[1]["peakMemoryBytes"].get<int64_t>();
  EXPECT_GE(peak, 48 * kMiB) << attempts[1].dump();
  EXPECT_LE(peak, 64 * kMiB) << attempts[1].dump();
  ASSERT_TRUE(attempts[1]["cpuSeconds"].is_number()) << attempts[1].dump();
  EXPECT_GT(attempts[1]["cpuSeconds"].get<double>(), 0);
  EXPECT_TRUE(attempts[1]["avgCores"].is_number()) << attempts[1].dump();
  std::printf("oom retry: attempt 1 %s; attempt 2 %s\n", attempts[0].dump().c_str(), attempts[1].dump().c_str());

  // The events say when and why the memory grew.
  const Json events = Events(key, id);
  int increased = 0;
  for (const Json& e : events) {
    if (e.value("type", "") != "MemoryIncreased") continue;
    ++increased;
    EXPECT_EQ(e.value("attempt", 0), 2) << e.dump();
    EXPECT_EQ(e.value("fromMemoryMb", 0), 32) << e.dump();
    EXPECT_EQ(e.value("memoryMb", 0), 64) << e.dump();
    EXPECT_EQ(e.value("reason", ""), "OOMKilled") << e.dump();
  }
  EXPECT_EQ(increased, 1) << events.dump(2);
  for (const Json& e : events) {  // the retry waited for no backoff
    EXPECT_NE(e.value("type", ""), "BackoffStarted") << events.dump(2);
  }
  // `baton job get` shows each attempt's size, peak and the retry.
  testing::CommandRun get = Baton("job get " + id + " --key " + key + " " + Server());
  ASSERT_EQ(get.exit_code, 0) << get.out;
  EXPECT_NE(get.out.find("attempt 1: limit 32 MiB, peak 32.0 MiB"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("OOM-killed: retried with 64 MiB"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("attempt 2: limit 64 MiB, peak "), std::string::npos) << get.out;

  // Both receipts carry peaks (attempt 1: the limit it was killed at).
  HttpResult r = Call(key, "GET", "/api/v1/jobs/" + id + "/receipts");
  ASSERT_EQ(r.status, 200) << r.body;
  const Json receipts = ParseOrNull(r.body)["receipts"];
  ASSERT_EQ(receipts.size(), 2u) << r.body;
  const Json& r1 = receipts[0]["receipt"]["resources"];
  const Json& r2 = receipts[1]["receipt"]["resources"];
  EXPECT_EQ(r1.value("memoryLimitBytes", int64_t{0}), 32 * kMiB);
  EXPECT_EQ(r1.value("peakMemoryBytes", int64_t{0}), 32 * kMiB) << r1.dump();
  EXPECT_EQ(r2.value("memoryLimitBytes", int64_t{0}), 64 * kMiB);
  EXPECT_EQ(r2.value("peakMemoryBytes", int64_t{0}), peak) << r2.dump();
  EXPECT_TRUE(r2["cpuTimeMs"].is_number_integer()) << r2.dump();
  // Durable: the same figures after the node is SIGKILLed and started again.
  KillAndRestart();
  const Json again = GetJob(key, id);
  ASSERT_TRUE(again.is_object());
  EXPECT_EQ(again["result"]["attemptResults"], attempts) << again.dump(2);
  if (const char* keep = std::getenv("BATON_EXAMPLE_DIR")) {  // what docs/receipts.md and docs/job-spec.md show
    std::ofstream(std::string(keep) + "/oom-receipt.json") << receipts[1].dump(2);
    std::ofstream(std::string(keep) + "/oom-job.json") << v.dump(2);
    std::ofstream(std::string(keep) + "/oom-events.json") << events.dump(2);
    std::ofstream(std::string(keep) + "/oom-get.txt") << get.out;
  }
}

TEST_F(RightsizeOomE2eTest, ALargerSizeThatCanNeverFitTheQuotaFailsWithTheReason) {
  StartServer(2, 1024);
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}, {"memoryMb", 48}});
  const std::string id = Submit(key, Spec("capped", {"alloc", "48", "300"},
                                          Json{{"memoryMb", 32},
                                               {"onOomKilled", {{"increaseMemory", 2.0}, {"maxMemoryMb", 128}}}}));
  ASSERT_FALSE(id.empty());
  Json v = AwaitEnd(key, id);
  EXPECT_EQ(v.value("status", ""), "Failed") << v.dump(2);
  const Json& result = v["result"];
  EXPECT_EQ(result.value("attempts", 0), 1) << result.dump(2);
  EXPECT_EQ(result.value("reason", ""), "OOMKilled") << result.dump(2);
  const std::string summary = result.value("summary", "");
  EXPECT_NE(summary.find("no retry with more memory"), std::string::npos) << summary;
  EXPECT_NE(summary.find("64 MiB"), std::string::npos) << summary;
  EXPECT_NE(summary.find("memory quota is 48 MiB"), std::string::npos) << summary;
  EXPECT_EQ(result["attemptResults"][0]["oomRetry"].value("refused", "").empty(), false) << result.dump(2);
  // The scheduler holds nothing for it any more.
  HttpResult s = Call(admin_, "GET", "/api/v1/admin/scheduler");
  ASSERT_EQ(s.status, 200) << s.body;
  EXPECT_EQ(s.body.find(id), std::string::npos) << s.body;
}

TEST_F(RightsizeOomE2eTest, RightsizeRecommendsFromMeasuredRunsForItsOwnTenantOnly) {
  StartServer(2, 1024);
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  const std::string other = CreateTenant("globex", Json{{"cpu", 2}});
  const Json spec = Spec("steady", {"alloc", "20", "0", "2500"}, Json{{"memoryMb", 96}, {"cpu", 0.5}});

  // One run: too little history, said plainly.
  const std::string first = Submit(key, spec);
  ASSERT_FALSE(first.empty());
  ASSERT_EQ(AwaitEnd(key, first).value("status", ""), "Completed");
  HttpResult one = Call(key, "GET", "/api/v1/rightsize?name=steady");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_FALSE(ParseOrNull(one.body).value("enough", true)) << one.body;
  testing::CommandRun little = Baton("job rightsize steady --key " + key + " " + Server());
  EXPECT_EQ(little.exit_code, 0) << little.out;
  EXPECT_NE(little.out.find("too little history"), std::string::npos) << little.out;

  // Two more runs: a recommendation.
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) ids.push_back(Submit(key, spec));
  for (const std::string& id : ids) ASSERT_EQ(AwaitEnd(key, id).value("status", ""), "Completed");
  HttpResult r = Call(key, "GET", "/api/v1/rightsize?name=steady");
  ASSERT_EQ(r.status, 200) << r.body;
  const Json a = ParseOrNull(r.body);
  ASSERT_TRUE(a.value("enough", false)) << a.dump(2);
  EXPECT_EQ(a.value("runs", 0), 3);
  EXPECT_EQ(a["requested"].value("memoryMb", 0), 96);
  const int64_t memory = a["recommended"].value("memoryMb", int64_t{0});
  EXPECT_GE(memory, 24) << a.dump(2);  // 20 MiB held, + 20 %
  EXPECT_LT(memory, 96) << a.dump(2);
  EXPECT_EQ(a["saving"].value("memoryMb", int64_t{0}), 96 - memory);
  EXPECT_GE(a["recommended"].value("cpu", 0.0), 0.01);
  EXPECT_LT(a["recommended"].value("cpu", 1.0), 0.5) << a.dump(2);  // it sleeps most of the time
  testing::CommandRun cli = Baton("job rightsize steady --key " + key + " " + Server());
  ASSERT_EQ(cli.exit_code, 0) << cli.out;
  EXPECT_NE(cli.out.find("recommended"), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find("memoryMb  96"), std::string::npos) << cli.out;
  std::printf("rightsize:\n%s\n", cli.out.c_str());
  if (const char* keep = std::getenv("BATON_EXAMPLE_DIR")) {  // what docs/cli.md shows
    std::ofstream(std::string(keep) + "/rightsize.txt") << cli.out;
    std::ofstream(std::string(keep) + "/rightsize.json") << a.dump(2);
  }

  // Another tenant: its own (empty) history, nothing of acme's.
  HttpResult foreign = Call(other, "GET", "/api/v1/rightsize?name=steady");
  EXPECT_EQ(foreign.status, 404) << foreign.body;
  EXPECT_EQ(foreign.body.find("recommended"), std::string::npos);
  testing::CommandRun foreign_cli = Baton("job rightsize steady --key " + other + " " + Server());
  EXPECT_NE(foreign_cli.exit_code, 0) << foreign_cli.out;
  // An admin key is not a tenant; no key is refused.
  EXPECT_EQ(Call(admin_, "GET", "/api/v1/rightsize?name=steady").status, 403);
  EXPECT_EQ(Call("", "GET", "/api/v1/rightsize?name=steady").status, 401);
  // Hostile queries: 400, naming the parameter.
  for (const std::string& q : {std::string("name=..%2Fsteady"), std::string("name=%00steady"),
                               std::string("name=Steady"), std::string("name=") + std::string(5000, 'a'),
                               std::string(""), std::string("name=steady&runs=0"),
                               std::string("name=steady&runs=1000"), std::string("name=steady&runs=abc"),
                               std::string("name=steady&runs=1e2")}) {
    HttpResult h = Call(key, "GET", "/api/v1/rightsize?" + q);
    EXPECT_EQ(h.status, 400) << q << ": " << h.body;
  }

  // A hostile onOomKilled: 400 naming the field, and no job is stored.
  const int before = static_cast<int>(ParseOrNull(Call(key, "GET", "/api/v1/jobs").body)["jobs"].size());
  for (const Json& hostile :
       {Json{{"increaseMemory", 100}, {"maxMemoryMb", 128}}, Json{{"increaseMemory", 1}, {"maxMemoryMb", 128}},
        Json{{"increaseMemory", 2}, {"maxMemoryMb", 8}}, Json{{"increaseMemory", 2}, {"maxMemoryMb", "all"}},
        Json{{"increaseMemory", 2}}, Json("double")}) {
    Json bad = spec;
    bad["onOomKilled"] = hostile;
    HttpResult h = Call(key, "POST", "/api/v1/jobs", bad.dump());
    EXPECT_EQ(h.status, 400) << hostile.dump() << ": " << h.body;
    EXPECT_EQ(ErrorField(h).rfind("onOomKilled", 0), 0u) << h.body;
  }
  EXPECT_EQ(static_cast<int>(ParseOrNull(Call(key, "GET", "/api/v1/jobs").body)["jobs"].size()), before);
}

}  // namespace
}  // namespace baton::e2e
