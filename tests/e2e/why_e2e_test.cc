// `baton why` for jobs against a real `baton serve`, dockerd and registry:
// a job queued behind another tenant's capacity (quota link, holders shown
// without the other tenant's name or job ids), a running job down to its
// container, a job in retry backoff, the CLI, and hostile or foreign ids.
#include <sys/wait.h>

#include <array>

#include "e2e/job_fixture.h"
#include "testing/run_command.h"

namespace baton::e2e {
namespace {

class WhyE2eTest : public JobServerTest {
 protected:
  Json Why(const std::string& key, const std::string& id) {
    HttpResult r = Call(key, "GET", "/api/v1/jobs/" + id + "/why");
    EXPECT_EQ(r.status, 200) << r.body;
    return ParseOrNull(r.body);
  }
  static std::vector<std::string> Layers(const Json& why) {
    std::vector<std::string> out;
    if (why.is_object()) {
      for (const Json& l : why["chain"]) out.push_back(l.value("layer", ""));
    }
    return out;
  }
};

TEST_F(WhyE2eTest, QueuedBehindAnotherTenantRunningDownToItsContainerAndBackoff) {
  StartServer(1, 1024);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 4}});
  const std::string globex = CreateTenant("globex", Json{{"cpu", 4}});
  // globex takes the node's only core.
  std::string big = Submit(globex, Spec("hog", {"sleep", "300"}, Json{{"cpu", 1}}));
  ASSERT_FALSE(big.empty());
  ASSERT_EQ(AwaitStatus(globex, big, "Running").value("status", ""), "Running");
  std::string waiting = Submit(acme, Spec("small", {"sleep", "1"}, Json{{"cpu", 1}}));
  ASSERT_FALSE(waiting.empty());
  ASSERT_EQ(AwaitStatus(acme, waiting, "Queued").value("status", ""), "Queued");

  Json q;
  ASSERT_TRUE(PollUntil([&] {
    q = Why(acme, waiting);
    return Layers(q) == std::vector<std::string>({"queued", "quota"});
  }, 30s)) << q.dump(2);
  const Json& quota = q["rootCause"];
  EXPECT_EQ(quota["details"]["position"], 1);
  EXPECT_NE(quota["summary"].get<std::string>().find("the node's CPU"), std::string::npos) << quota.dump(2);
  ASSERT_EQ(quota["details"]["holders"].size(), 1u) << quota.dump(2);
  EXPECT_EQ(quota["details"]["holders"][0]["tenant"], "other tenants");
  EXPECT_EQ(quota["details"]["holders"][0]["jobs"], 1);
  // Nothing of the other tenant's but counts: no name, no job id.
  EXPECT_EQ(q.dump().find("globex"), std::string::npos) << q.dump(2);
  EXPECT_EQ(q.dump().find(big), std::string::npos) << q.dump(2);

  // The running job: down to its container.
  Json r = Why(globex, big);
  ASSERT_EQ(Layers(r), std::vector<std::string>({"running", "container"})) << r.dump(2);
  EXPECT_EQ(r["rootCause"]["details"]["state"], "running");
  EXPECT_EQ(r["rootCause"]["details"]["running"], true);

  // The CLI prints the same chain.
  testing::CommandRun run = testing::RunCommand(std::string(BATON_BINARY) + " why " + waiting + " --key " + acme +
                                                 " --server http://127.0.0.1:" + std::to_string(server_->port()));
  ASSERT_NE(run.exit_code, -1);
  const std::string& out = run.out;
  EXPECT_TRUE(run.exit_code == 0) << out;
  EXPECT_NE(out.find("root cause: [quota]"), std::string::npos) << out;
  if (const char* keep = std::getenv("BATON_EXAMPLE_DIR")) {  // the outputs docs/why.md shows
    std::ofstream(std::string(keep) + "/why-queued.txt") << out;
    std::ofstream(std::string(keep) + "/why-queued.json") << q.dump(2);
    std::ofstream(std::string(keep) + "/why-running.json") << r.dump(2);
  }

  // Foreign and hostile ids: 4xx, nothing shown.
  HttpResult foreign = Call(acme, "GET", "/api/v1/jobs/" + big + "/why");
  EXPECT_EQ(foreign.status, 404) << foreign.body;
  EXPECT_EQ(Call(admin_, "GET", "/api/v1/jobs/" + big + "/why").status, 403);
  EXPECT_EQ(Call("", "GET", "/api/v1/jobs/" + big + "/why").status, 401);
  for (const std::string& hostile :
       {std::string("..%2F") + big, std::string("job.globex.") + big, std::string("%00"), std::string(3000, 'f')}) {
    HttpResult h = Call(acme, "GET", "/api/v1/jobs/" + hostile + "/why");
    EXPECT_GE(h.status, 400) << hostile;
    EXPECT_LT(h.status, 500) << hostile << ": " << h.body;
  }
  for (const std::string& hostile : {std::string("globex::x"), std::string("a%01b"), std::string(300, 'x')}) {
    HttpResult h = Call(acme, "GET", "/api/v1/instances/" + hostile + "/why");
    EXPECT_GE(h.status, 400) << hostile;
    EXPECT_LT(h.status, 500) << hostile << ": " << h.body;
  }
  // The platform's own job instance is not reachable as an instance of acme's hub.
  EXPECT_EQ(Call(acme, "GET", "/api/v1/instances/job.acme." + waiting + "/why").status, 404);

  // Cancel the hog: the queued job runs. Then a job in retry backoff.
  ASSERT_EQ(Call(globex, "POST", "/api/v1/jobs/" + big + "/cancel").status / 100, 2);
  std::string flaky = Submit(acme, Spec("flaky", {"exit", "3"},
                                        Json{{"cpu", 0.5},
                                             {"restartPolicy",
                                              {{"policy", "OnFailure"}, {"maxAttempts", 2}, {"backoffSeconds", 600}}}}));
  Json b;
  ASSERT_TRUE(PollUntil([&] {
    b = Why(acme, flaky);
    return Layers(b) == std::vector<std::string>({"retry"});
  }, 120s)) << b.dump(2);
  EXPECT_EQ(b["rootCause"]["details"]["lastExitCode"], 3);
  EXPECT_EQ(b["rootCause"]["details"]["attempt"], 1);
  EXPECT_TRUE(b["rootCause"]["details"]["nextAttemptAt"].is_string());
  if (const char* keep = std::getenv("BATON_EXAMPLE_DIR")) std::ofstream(std::string(keep) + "/why-backoff.json") << b.dump(2);
  ASSERT_EQ(Call(acme, "POST", "/api/v1/jobs/" + flaky + "/cancel").status / 100, 2);
}


// A tenant's own ids may contain "<tenant>::": the why answer takes the hub's
// prefix off ids only, so an entity key "zzacme::q" is shown whole.
TEST_F(WhyE2eTest, ATenantsOwnIdContainingItsHubPrefixIsShownWhole) {
  StartServer(1, 512);
  const std::string key = CreateTenant("acme", Json{{"jobs", 1}});
  const std::string df = "/runtime/webhooks/durabletask/orchestrators/LockAndWait/";
  ASSERT_EQ(Call(key, "POST", df + "lk1", Json("zzacme::q").dump()).status, 202);
  // lk1 holds the lock (it waits for "release"); lk2 waits for the lock.
  ASSERT_TRUE(PollUntil([&] {
    Json s = ParseOrNull(Call(key, "GET", "/runtime/webhooks/durabletask/instances/lk1").body);
    return s.is_object() && s.value("customStatus", Json()) == Json("locked");
  }, 60s, 250ms));
  ASSERT_EQ(Call(key, "POST", df + "lk2", Json("zzacme::q").dump()).status, 202);
  std::string body;
  EXPECT_TRUE(PollUntil([&] {
    HttpResult r = Call(key, "GET", "/api/v1/instances/lk2/why");
    body = r.body;
    return r.status == 200 && body.find("entity-lock") != std::string::npos;
  }, 60s, 250ms)) << body;
  EXPECT_NE(body.find("@counter@zzacme::q"), std::string::npos) << body;
  EXPECT_EQ(body.find("@counter@zzq"), std::string::npos) << body;
  EXPECT_EQ(body.find("\"acme::"), std::string::npos) << body;  // the hub's own prefix never shows
  EXPECT_EQ(body.find(" acme::"), std::string::npos) << body;
}

}  // namespace
}  // namespace baton::e2e
