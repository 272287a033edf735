// The admission ETA against a real `baton serve`, dockerd and registry
// (docs/eta.md):
//
//   - A synthetic workload: a tenant may run two jobs at once; one job of the
//     name runs first (the history), then six more of the same name are
//     submitted together. Each job that is queued has its ETA read as soon as
//     it is queued, and after they all ran it is checked against when the
//     job really started (its result's durations.granted).
//
//     The stated error: |actual start - estimated start| <= 0.35 x D x W,
//     where D is the median hold time (grant to release) of the seven jobs
//     measured in this same run, and W the number of holds the job waited
//     for (its queue position over the quota of two, rounded up). So the
//     bound scales with the jobs, never with the machine's absolute speed;
//     the test also checks that naive estimates ("it starts now", or "after
//     one hold" whatever its place in the queue) would have been outside it
//     for the last job in the queue, so the test can fail.
//   - Tenant isolation: a job queued behind another tenant's job of a name
//     never run before gets a lower bound that counts that job and shows
//     nothing of it (no tenant, no id, no name), in the job view and in
//     `why`; another tenant's job is not found.
#include <cmath>

#include "e2e/job_fixture.h"
#include "testing/run_command.h"

namespace baton::e2e {
namespace {

class AdmissionEtaE2eTest : public JobServerTest {
 protected:
  // Seconds from `from` to `to` (ISO 8601 strings); NaN when either is malformed.
  static double Between(const Json& from, const Json& to) {
    TimePoint a, b;
    if (!from.is_string() || !to.is_string() || !ParseIso8601(from.get<std::string>(), &a) ||
        !ParseIso8601(to.get<std::string>(), &b)) {
      return std::nan("");
    }
    return std::chrono::duration<double>(b - a).count();
  }
  static double Median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? std::nan("") : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  }
  std::string Cli(const std::string& args, const std::string& key) {
    testing::CommandRun run = testing::RunCommand(std::string(BATON_BINARY) + " " + args + " --key " + key +
                                                  " --server http://127.0.0.1:" + std::to_string(server_->port()));
    EXPECT_EQ(run.exit_code, 0) << run.out;
    return run.out;
  }
};

TEST_F(AdmissionEtaE2eTest, QueuedJobsStartWithinTheStatedErrorOfTheirEta) {
  StartServer(4, 2048);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 4}, {"jobs", 2}});
  const Json spec = Spec("eta-sleep", {"sleep", "6"}, Json{{"cpu", 0.5}});

  // The history: one run of the name.
  const std::string first = Submit(acme, spec);
  ASSERT_FALSE(first.empty());
  Json done = AwaitEnd(acme, first);
  ASSERT_EQ(done.value("status", ""), "Completed") << done.dump(2);

  // Six more at once: two run, four queue.
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(Submit(acme, spec));
  for (const std::string& id : ids) ASSERT_FALSE(id.empty());
  struct Seen {
    Json eta;  // the first ETA it was given, when queued
    int position = 0;
  };
  std::map<std::string, Seen> queued;
  std::set<std::string> settled;  // granted or queued with an ETA
  Json example_view;
  ASSERT_TRUE(PollUntil(
      [&] {
        for (const std::string& id : ids) {
          if (settled.count(id)) continue;
          Json v = GetJob(acme, id);
          if (!v.is_object()) continue;
          const std::string status = v.value("status", "");
          if (status == "Queued" && v.contains("eta") && v["eta"].is_object()) {
            queued[id] = {v["eta"], v["waitingOn"].value("position", 0)};
            if (example_view.is_null()) example_view = v;
            settled.insert(id);
          } else if (status != "Pending" && status != "Queued") {
            settled.insert(id);  // granted at once
          }
        }
        return settled.size() == ids.size();
      },
      120s, 100ms));
  ASSERT_EQ(queued.size(), 4u) << "with a quota of two jobs, four of six queue";

  // While they wait: the CLI and `why` say the same estimate.
  std::string last;  // the last in the queue: it waits two holds
  for (const auto& [id, seen] : queued) {
    if (last.empty() || seen.position > queued[last].position) last = id;
  }
  ASSERT_EQ(GetJob(acme, last).value("status", ""), "Queued");
  const std::string cli_get = Cli("job get " + last, acme);
  const std::string cli_why = Cli("why " + last, acme);
  HttpResult w = Call(acme, "GET", "/api/v1/jobs/" + last + "/why");
  ASSERT_EQ(w.status, 200) << w.body;
  const Json why = ParseOrNull(w.body);

  std::map<std::string, std::string> keys = {{"acme", acme}};
  std::vector<Submitted> all;
  for (const std::string& id : ids) all.push_back({"acme", id});
  std::map<std::string, Json> ended = AwaitAllEnded(all, keys, 180s);
  ASSERT_EQ(ended.size(), ids.size());

  // D: the median hold of the seven runs, measured here.
  std::vector<double> holds;
  ended[first] = done;
  for (const auto& [id, v] : ended) {
    ASSERT_EQ(v.value("status", ""), "Completed") << v.dump(2);
    const Json& d = v["result"]["durations"];
    holds.push_back(Between(d["granted"], d["finished"]));
  }
  const double hold = Median(holds);
  ASSERT_GT(hold, 0) << "holds measured: " << Json(holds).dump();

  std::string head;  // the first in the queue: it waits one hold
  for (const auto& [id, seen] : queued) {
    if (head.empty() || seen.position < queued[head].position) head = id;
  }
  std::string report;
  for (const auto& [id, seen] : queued) {
    const Json& eta = seen.eta;
    ASSERT_EQ(eta.value("basis", ""), "history") << eta.dump(2);
    ASSERT_TRUE(eta["startAt"].is_string()) << eta.dump(2);
    ASSERT_TRUE(eta["startBy"].is_string()) << eta.dump(2);
    EXPECT_GE(Between(eta["startAt"], eta["startBy"]), 0) << eta.dump(2);
    EXPECT_EQ(eta["runTime"]["runs"], 1) << "one run of the name ended before they were queued";
    ASSERT_GE(seen.position, 1);
    const Json& d = ended[id]["result"]["durations"];
    const double error = Between(eta["startAt"], d["granted"]);  // > 0: started later than estimated
    const double waves = std::ceil(seen.position / 2.0);
    const double bound = 0.35 * hold * waves;
    // What the job really waited from when its estimate was made: a naive
    // "it starts now" would be off by this much.
    const double waited = Between(eta["estimatedAt"], d["granted"]);
    report += "job " + id + " position " + std::to_string(seen.position) + ": estimated in " + eta["inSeconds"].dump() +
              " s, waited " + std::to_string(waited) + " s, error " + std::to_string(error) + " s, bound " +
              std::to_string(bound) + " s\n";
    EXPECT_LE(std::abs(error), bound) << eta.dump(2);
    // The last in the queue waited about two holds: "it starts now", or the
    // start of the first in the queue, would have been outside its bound.
    if (id == last) {
      EXPECT_GE(seen.position, 3);
      EXPECT_GT(waited, bound) << "'it starts now' would pass: the test would prove nothing";
      EXPECT_GT(std::abs(Between(queued[head].eta["startAt"], d["granted"])), bound)
          << "'after one hold' would pass: the test would prove nothing";
    }
  }
  std::printf("median hold D = %.2f s (%zu runs)\n%s", hold, holds.size(), report.c_str());

  const Json& quota = why["rootCause"];
  EXPECT_EQ(quota.value("layer", ""), "quota") << why.dump(2);
  EXPECT_TRUE(quota["details"]["eta"].is_object()) << why.dump(2);
  EXPECT_NE(quota.value("summary", "").find("expected to start at"), std::string::npos) << why.dump(2);
  EXPECT_NE(cli_get.find("Expected start"), std::string::npos) << cli_get;
  EXPECT_NE(cli_why.find("expected to start at"), std::string::npos) << cli_why;
  if (const char* keep = std::getenv("BATON_EXAMPLE_DIR")) {  // the outputs docs/eta.md shows
    std::ofstream(std::string(keep) + "/eta-view.json") << example_view.dump(2);
    std::ofstream(std::string(keep) + "/eta-job-get.txt") << cli_get;
    std::ofstream(std::string(keep) + "/eta-why.txt") << cli_why;
    std::ofstream(std::string(keep) + "/eta-why.json") << why.dump(2);
    std::ofstream(std::string(keep) + "/eta-report.txt") << "median hold D = " << hold << " s\n" << report;
  }
}

TEST_F(AdmissionEtaE2eTest, ATenantSeesOtherTenantsJobsOnlyAsCounts) {
  StartServer(1, 1024);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 4}});
  const std::string globex = CreateTenant("globex", Json{{"cpu", 4}});
  // globex takes the only core with a job of a name never run before.
  const std::string hog = Submit(globex, Spec("globex-secret-name", {"sleep", "300"}, Json{{"cpu", 1}}));
  ASSERT_FALSE(hog.empty());
  ASSERT_EQ(AwaitStatus(globex, hog, "Running").value("status", ""), "Running");
  const std::string waiting = Submit(acme, Spec("acme-report", {"sleep", "1"}, Json{{"cpu", 1}}));
  ASSERT_FALSE(waiting.empty());
  Json v = AwaitJob(
      acme, waiting, [](const Json& j) { return j.value("status", "") == "Queued" && j["eta"].is_object(); }, 60s);
  ASSERT_TRUE(v["eta"].is_object()) << v.dump(2);
  const Json& eta = v["eta"];
  EXPECT_EQ(eta["basis"], "lowerBound") << eta.dump(2);
  EXPECT_EQ(eta["withoutHistory"]["otherTenantsJobs"], 1) << eta.dump(2);
  EXPECT_EQ(eta["withoutHistory"]["ownJobs"], 0) << eta.dump(2);
  EXPECT_TRUE(eta["startBy"].is_null());
  EXPECT_NE(eta["summary"].get<std::string>().find("no start estimate"), std::string::npos) << eta.dump(2);
  HttpResult w = Call(acme, "GET", "/api/v1/jobs/" + waiting + "/why");
  ASSERT_EQ(w.status, 200) << w.body;
  Json why = ParseOrNull(w.body);
  EXPECT_TRUE(why["rootCause"]["details"]["eta"].is_object()) << why.dump(2);
  for (const std::string& text : {v.dump(), why.dump()}) {
    for (const std::string& secret : {std::string("globex"), hog, std::string("secret-name")}) {
      EXPECT_EQ(text.find(secret), std::string::npos) << secret << " in " << text;
    }
  }
  // The other tenant's job: not found, not estimated.
  EXPECT_EQ(Call(acme, "GET", "/api/v1/jobs/" + hog).status, 404);
  EXPECT_EQ(Call(acme, "GET", "/api/v1/jobs/" + hog + "/why").status, 404);
  if (const char* keep = std::getenv("BATON_EXAMPLE_DIR")) {
    std::ofstream(std::string(keep) + "/eta-lower-bound.json") << eta.dump(2);
  }
  ASSERT_EQ(Call(globex, "POST", "/api/v1/jobs/" + hog + "/cancel").status / 100, 2);
  ASSERT_EQ(Call(acme, "POST", "/api/v1/jobs/" + waiting + "/cancel").status / 100, 2);
}

}  // namespace
}  // namespace baton::e2e
