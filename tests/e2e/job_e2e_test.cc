// Batch jobs end to end: a real `baton serve` child process (HTTP API, worker,
// capacity scheduler, job monitor), the real dockerd and the local registry
// (scripts/docker-up; scripts/test runs it). Each test has its own data dir and
// its own server. What the tests claim about containers they read from Docker
// itself (by the "baton.node" label of the test's server), not from Baton.
//
// No assertion is about timing: every wait is a liveness bound, and the
// figures a test measures are printed for the ctest log.
#include "e2e/job_fixture.h"

namespace baton {
namespace {

using namespace std::chrono_literals;
using namespace e2e;
using testing::HttpResult;
using SteadyClock = std::chrono::steady_clock;

class JobE2eTest : public JobServerTest {};

// ---- Quotas and fair share ----

TEST_F(JobE2eTest, ThirtyJobsFromThreeTenantsRespectQuotasAndFairShare) {
  constexpr double kNodeCpu = 2;
  StartServer(kNodeCpu, 2048);
  struct Plan {
    std::string tenant;
    double quota;
    int jobs;
  };
  const std::vector<Plan> plan = {{"big", 1.5, 18}, {"mid", 1.0, 8}, {"small", 0.5, 4}};
  std::map<std::string, std::string> keys;
  for (const Plan& p : plan)
    keys[p.tenant] = CreateTenant(p.tenant, Json{{"cpu", p.quota}, {"weight", 1}});

  // The sampler: what Docker runs, every ~100 ms, by tenant.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, double> max_cpu;
  std::map<std::string, int> max_running;
  double max_node_cpu = 0;
  int samples = 0;
  int sample_errors = 0;
  std::thread sampler([&] {
    const auto deadline = SteadyClock::now() + 300s;
    while (!stop && SteadyClock::now() < deadline) {
      auto list = suite_.docker->ListByLabels({{"baton.node", node_}});
      std::map<std::string, double> cpu;
      std::map<std::string, int> running;
      double node_cpu = 0;
      if (list.ok()) {
        for (const runtime::ContainerState& c : *list) {
          if (!c.running || Label(c, "baton.index") != kMainIndex) continue;
          cpu[Label(c, "baton.tenant")] += c.cpus;
          running[Label(c, "baton.tenant")] += 1;
          node_cpu += c.cpus;
        }
      }
      {
        std::lock_guard lock(mu);
        if (!list.ok()) {
          ++sample_errors;
        } else {
          ++samples;
          for (const auto& [t, v] : cpu) max_cpu[t] = std::max(max_cpu[t], v);
          for (const auto& [t, n] : running) max_running[t] = std::max(max_running[t], n);
          max_node_cpu = std::max(max_node_cpu, node_cpu);
        }
      }
      std::this_thread::sleep_for(100ms);
    }
  });

  std::vector<Submitted> jobs;
  for (const Plan& p : plan) {
    for (int i = 0; i < p.jobs; ++i) {
      std::string id =
          Submit(keys[p.tenant], Spec(p.tenant + "-" + std::to_string(i), {"sleep", "1"}));
      if (!id.empty()) jobs.push_back({p.tenant, id});
    }
  }
  ASSERT_EQ(jobs.size(), 30u);

  std::map<std::string, Json> ended = AwaitAllEnded(jobs, keys, 240s);  // by job id
  stop = true;
  sampler.join();
  ASSERT_EQ(ended.size(), jobs.size()) << "not every job ended within the bound";

  // Times are relative to the first job's creation (the server's clock).
  TimePoint first_created = TimePoint::max();
  for (const auto& [id, v] : ended) {
    TimePoint t;
    if (ParseIso8601(v.value("createdAt", ""), &t)) first_created = std::min(first_created, t);
  }
  std::map<std::string, double> last_finish;
  std::map<std::string, double> first_finish;
  for (const Submitted& j : jobs) {
    const Json& v = ended[j.id];
    EXPECT_EQ(v.value("status", ""), "Completed") << j.tenant << " " << j.id << ": " << v.dump();
    double finished = SecondsBetween(first_created, v.value("finishedAt", Json()));
    EXPECT_GE(finished, 0) << "no finishedAt: " << v.dump();
    last_finish[j.tenant] = std::max(last_finish[j.tenant], finished);
    first_finish[j.tenant] =
        first_finish.count(j.tenant) ? std::min(first_finish[j.tenant], finished) : finished;
  }

  std::lock_guard lock(mu);
  std::printf("fair share: %d Docker samples (%d failed); node max %.2f cpu (capacity %.2f)\n",
              samples, sample_errors, max_node_cpu, kNodeCpu);
  for (const Plan& p : plan) {
    std::printf(
        "  %-5s quota %.1f cpu, %2d jobs: max %d running = %.2f cpu; finished %.2f s .. %.2f s "
        "after the first submit\n",
        p.tenant.c_str(), p.quota, p.jobs, max_running[p.tenant], max_cpu[p.tenant],
        first_finish[p.tenant], last_finish[p.tenant]);
  }
  EXPECT_GT(samples, 0);
  EXPECT_GT(max_node_cpu, 0) << "the sampler never saw a running job: it proves nothing";
  for (const Plan& p : plan) {
    EXPECT_LE(max_cpu[p.tenant], p.quota + 1e-6) << p.tenant << " ran beyond its quota";
  }
  EXPECT_LE(max_node_cpu, kNodeCpu + 1e-6) << "the node ran beyond its capacity";
  // Weighted fair share: the small tenant is not starved behind big's backlog.
  EXPECT_LT(last_finish["small"], last_finish["big"]);
}

// ---- Crash safety ----

TEST_F(JobE2eTest, SurvivesThreeSigkillsWithEachAttemptStartedOnce) {
  const auto test_start = SteadyClock::now();
  const TimePoint since = std::chrono::system_clock::now() - 1s;
  StartServer(2, 2048);
  const std::vector<std::string> tenants = {"alpha", "beta", "gamma"};
  std::map<std::string, std::string> keys;
  for (const std::string& t : tenants) keys[t] = CreateTenant(t, Json{{"cpu", 1}, {"weight", 1}});

  // The watcher: Docker's "start" events of this node's containers, by
  // container id. It reconnects every second from the last event seen
  // (replays are told apart by their exact time), so it can stop promptly.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, int> starts;
  std::set<std::string> seen;
  int watch_errors = 0;
  std::thread watcher([&] {
    const auto deadline = SteadyClock::now() + 400s;
    TimePoint from = since;
    while (!stop && SteadyClock::now() < deadline) {
      Status s = suite_.docker->WatchEvents(
          {{"baton.node", node_}},
          [&](const runtime::ContainerEvent& e) {
            std::lock_guard lock(mu);
            const std::string key =
                e.container_id + "/" + e.action + "/" + std::to_string(ToUnixMicros(e.time));
            if (seen.insert(key).second && e.action == "start") ++starts[e.container_id];
            from = std::max(from, e.time);
            return true;
          },
          1s, from);
      if (!s.ok()) {
        std::lock_guard lock(mu);
        ++watch_errors;
        std::this_thread::sleep_for(100ms);
      }
    }
  });

  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> sleep_seconds(1, 2);
  std::vector<Submitted> jobs;
  for (int i = 0; i < 8; ++i) {
    for (const std::string& t : tenants) {
      std::string id = Submit(keys[t], Spec(t + "-" + std::to_string(i),
                                            {"sleep", std::to_string(sleep_seconds(rng))}));
      if (!id.empty()) jobs.push_back({t, id});
    }
  }
  ASSERT_EQ(jobs.size(), 24u);

  // Three SIGKILLs at random moments, 0.5-3 s apart.
  std::uniform_int_distribution<int> gap_ms(500, 3000);
  int kills = 0;
  std::vector<double> kill_times;
  std::vector<std::string> kill_clock;  // to read beside the jobs' timelines
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms(rng)));
    kill_times.push_back(SecondsSince(test_start));
    kill_clock.push_back(FormatIso8601(std::chrono::system_clock::now()));
    KillAndRestart();
    ++kills;
  }

  std::map<std::string, Json> ended = AwaitAllEnded(jobs, keys, 300s);  // by job id
  const double all_ended = SecondsSince(test_start);
  const bool no_leftovers = PollUntil([&] { return NodeContainers() == 0; }, 60s, 500ms);
  const size_t leftovers = NodeContainers();
  stop = true;
  watcher.join();

  int attempts = 0;
  int completed = 0;
  for (const Submitted& j : jobs) {
    const Json& v = ended[j.id];
    // A kill can cut any activity short; each is safe to run again (the
    // group is collected before it is deleted, and a create that dockerd
    // was still carrying out for the dead server is found, not failed).
    EXPECT_EQ(v.value("status", ""), "Completed")
        << j.tenant << " " << j.id << ": " << v.dump()
        << "\ntimeline: " << Call(keys[j.tenant], "GET", "/api/v1/jobs/" + j.id + "/events").body;
    completed += v.value("status", "") == "Completed";
    if (v.contains("result") && v["result"].is_object())
      attempts += v["result"].value("attempts", 0);
  }
  std::lock_guard lock(mu);
  int container_starts = 0;
  int duplicates = 0;
  for (const auto& [id, n] : starts) {
    container_starts += n;
    if (n > 1) {
      ++duplicates;
      ADD_FAILURE() << "container " << id << " was started " << n << " times";
    }
  }
  std::printf(
      "sigkill: %zu jobs, %d completed, %d attempts; %zu containers started %d times, %d started "
      "more than "
      "once; %zu left over; %d kills at",
      jobs.size(), completed, attempts, starts.size(), container_starts, duplicates, leftovers,
      kills);
  for (size_t i = 0; i < kill_times.size(); ++i)
    std::printf(" %.1f s (%s)", kill_times[i], kill_clock[i].c_str());
  std::printf("; all ended at %.1f s; %d watch errors\n", all_ended, watch_errors);
  EXPECT_EQ(ended.size(), jobs.size()) << "not every job ended within the bound";
  EXPECT_EQ(kills, 3);
  EXPECT_EQ(duplicates, 0);
  // Each attempt's (one) container was started, once.
  EXPECT_EQ(static_cast<int>(starts.size()), attempts);
  EXPECT_TRUE(no_leftovers) << leftovers << " containers of this node remain";
}

// ---- Restart policies ----

TEST_F(JobE2eTest, OnFailureRunsTheConfiguredAttemptsAndAlwaysRestartsUntilCanceled) {
  StartServer(2, 1024);
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});

  const auto start = SteadyClock::now();
  std::string failing = Submit(
      key, Spec("on-failure", {"exit", "3"},
                Json{{"restartPolicy",
                      {{"policy", "OnFailure"}, {"maxAttempts", 3}, {"backoffSeconds", 0}}}}));
  std::string always = Submit(
      key, Spec("always", {"exit", "0"},
                Json{{"restartPolicy",
                      {{"policy", "Always"}, {"maxAttempts", 100}, {"backoffSeconds", 0}}}}));
  ASSERT_FALSE(failing.empty());
  ASSERT_FALSE(always.empty());

  Json f = AwaitEnd(key, failing);
  const double failing_s = SecondsSince(start);
  ASSERT_TRUE(f.is_object());
  EXPECT_EQ(f.value("status", ""), "Failed") << f.dump();
  ASSERT_TRUE(f["result"].is_object()) << f.dump();
  EXPECT_EQ(f["result"].value("exitCode", Json()), 3) << f.dump();
  EXPECT_EQ(f["result"].value("attempts", 0), 3) << f.dump();
  EXPECT_EQ(f["result"]["attemptResults"].size(), 3u) << f.dump();

  Json running = AwaitJob(key, always, [](const Json& v) { return v.value("attempt", 0) >= 3; });
  ASSERT_GE(running.value("attempt", 0), 3) << running.dump();
  HttpResult cancel = Call(key, "POST", "/api/v1/jobs/" + always + "/cancel");
  EXPECT_EQ(cancel.status, 202) << cancel.body;
  Json a = AwaitEnd(key, always);
  const double always_s = SecondsSince(start);
  EXPECT_EQ(a.value("status", ""), "Canceled") << a.dump();
  ASSERT_TRUE(a["result"].is_object()) << a.dump();
  EXPECT_GE(a["result"].value("attempts", 0), 3) << a.dump();
  EXPECT_EQ(Call(key, "POST", "/api/v1/jobs/" + always + "/cancel").status, 409);
  EXPECT_TRUE(PollUntil([&] { return NodeContainers() == 0; }, 30s, 250ms));
  std::printf(
      "restart policies: OnFailure ended Failed after %d attempts (%.1f s); Always was canceled "
      "after %d "
      "attempts (%.1f s)\n",
      f["result"].value("attempts", 0), failing_s, a["result"].value("attempts", 0), always_s);
}

// ---- Timeout and cancel ----

TEST_F(JobE2eTest, TimeoutAndCancelStopTheContainerWithinSeconds) {
  StartServer(2, 1024);
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});

  auto start = SteadyClock::now();
  std::string timed = Submit(key, Spec("timeout", {"sleep", "300"}, Json{{"timeoutSeconds", 2}}));
  ASSERT_FALSE(timed.empty());
  Json t = AwaitEnd(key, timed, 90s);
  const double timeout_s = SecondsSince(start);
  EXPECT_EQ(t.value("status", ""), "Failed") << t.dump();
  ASSERT_TRUE(t["result"].is_object()) << t.dump();
  ASSERT_GE(t["result"]["attemptResults"].size(), 1u) << t.dump();
  EXPECT_EQ(t["result"]["attemptResults"][0].value("timedOut", false), true) << t.dump();
  EXPECT_TRUE(PollUntil([&] { return JobContainers("acme", timed) == 0; }, 30s, 100ms));
  const double timeout_gone_s = SecondsSince(start);

  std::string canceled = Submit(key, Spec("cancel", {"sleep", "300"}));
  ASSERT_FALSE(canceled.empty());
  Json r = AwaitStatus(key, canceled, "Running", 90s);
  ASSERT_EQ(r.value("status", ""), "Running") << r.dump();
  EXPECT_EQ(JobContainers("acme", canceled), 1u);
  start = SteadyClock::now();
  HttpResult c = Call(key, "POST", "/api/v1/jobs/" + canceled + "/cancel");
  EXPECT_EQ(c.status, 202) << c.body;
  Json v = AwaitEnd(key, canceled, 90s);
  const double cancel_s = SecondsSince(start);
  EXPECT_EQ(v.value("status", ""), "Canceled") << v.dump();
  EXPECT_TRUE(PollUntil([&] { return JobContainers("acme", canceled) == 0; }, 30s, 100ms));
  const double cancel_gone_s = SecondsSince(start);
  std::printf(
      "timeout 2 s: Failed %.1f s after submit, its container gone at %.1f s; cancel: Canceled "
      "%.1f s after "
      "the request, its container gone at %.1f s\n",
      timeout_s, timeout_gone_s, cancel_s, cancel_gone_s);
}

// ---- Callbacks ----

TEST_F(JobE2eTest, CallbackProgressShowsAndForeignTokensAreRefused) {
  StartServer(2, 1024);
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});

  // A job that reports three steps of progress and its completion, with no
  // network at all: the callback socket is mounted into its container.
  std::string reporter = Submit(key, Spec("reporter", {"callback", "3"},
                                          Json{{"network", "none"}, {"completion", "callback"}}));
  ASSERT_FALSE(reporter.empty());
  Json done = AwaitEnd(key, reporter);
  EXPECT_EQ(done.value("status", ""), "Completed") << done.dump();
  EXPECT_EQ(done.value("progress", Json()), (Json{{"step", 3}, {"of", 3}})) << done.dump();
  HttpResult events = Call(key, "GET", "/api/v1/jobs/" + reporter + "/events");
  ASSERT_EQ(events.status, 200) << events.body;
  int progress_events = 0;
  const Json reporter_events = ParseOrNull(events.body);
  for (const Json& e : reporter_events.value("events", Json::array())) {
    progress_events += e.value("type", "") == "Progress";
  }
  EXPECT_GE(progress_events, 1) << events.body;

  // Two jobs that stay running; the test plays their containers.
  const Json waits = {{"completion", "callback"}};
  std::string a = Submit(key, Spec("job-a", {"sleep", "300"}, waits));
  std::string b = Submit(key, Spec("job-b", {"sleep", "300"}, waits));
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  ASSERT_EQ(AwaitStatus(key, a, "Running").value("status", ""), "Running");
  ASSERT_EQ(AwaitStatus(key, b, "Running").value("status", ""), "Running");
  auto tokens = batch::JobTokens::ReadKeyFile(DataDir() + "/job-token.key");
  ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
  const std::string callback_a = "/api/v1/jobs/" + a + "/callback";
  const std::string progress = R"({"progress":{"pct":50}})";

  HttpResult forged = Call("bjt_forged", "POST", callback_a, progress);
  EXPECT_EQ(forged.status, 401) << forged.body;
  HttpResult foreign =
      Call(tokens->Sign(batch::JobInstanceId("acme", b), 1), "POST", callback_a, progress);
  EXPECT_EQ(foreign.status, 403) << foreign.body;
  HttpResult other_attempt =
      Call(tokens->Sign(batch::JobInstanceId("acme", a), 2), "POST", callback_a, progress);
  EXPECT_EQ(other_attempt.status, 409) << other_attempt.body;
  const std::string token_a = tokens->Sign(batch::JobInstanceId("acme", a), 1);
  HttpResult accepted = Call(token_a, "POST", callback_a, progress);
  EXPECT_EQ(accepted.status, 202) << accepted.body;
  Json shown = AwaitJob(
      key, a,
      [](const Json& v) {
        return v.value("progress", Json()) == Json{{"pct", 50}};
      },
      30s);
  EXPECT_EQ(shown.value("progress", Json()), (Json{{"pct", 50}})) << shown.dump();
  // Nothing the refused calls carried reached the job.
  HttpResult timeline = Call(key, "GET", "/api/v1/jobs/" + a + "/events");
  int a_progress = 0;
  const Json a_events = ParseOrNull(timeline.body);
  for (const Json& e : a_events.value("events", Json::array()))
    a_progress += e.value("type", "") == "Progress";
  EXPECT_EQ(a_progress, 1) << timeline.body;

  const auto verdict = SteadyClock::now();
  HttpResult failed = Call(token_a, "POST", callback_a, R"({"status":"Failed","exitCode":4})");
  EXPECT_EQ(failed.status, 202) << failed.body;
  EXPECT_EQ(Call(key, "POST", "/api/v1/jobs/" + b + "/cancel").status, 202);
  Json end_a = AwaitEnd(key, a, 90s);
  const double a_s = SecondsSince(verdict);
  EXPECT_EQ(end_a.value("status", ""), "Failed") << end_a.dump();
  EXPECT_EQ(end_a["result"].value("exitCode", -1), 4) << "the job's own word, not how Baton stopped it";
  Json end_b = AwaitEnd(key, b, 90s);
  EXPECT_EQ(end_b.value("status", ""), "Canceled") << end_b.dump();
  // The attempt is over: its token is good for nothing now.
  EXPECT_EQ(Call(token_a, "POST", callback_a, progress).status, 409);
  EXPECT_TRUE(PollUntil([&] { return NodeContainers() == 0; }, 30s, 250ms));
  std::printf(
      "callback: reporter Completed with %d Progress events, progress %s; A Failed %.1f s after "
      "its verdict "
      "(result exitCode %s); B %s\n",
      progress_events, done.value("progress", Json()).dump().c_str(), a_s,
      end_a["result"].is_object() ? end_a["result"].value("exitCode", Json()).dump().c_str() : "?",
      end_b.value("status", "").c_str());
}

// ---- OOM ----

TEST_F(JobE2eTest, AnOomKilledJobReportsIt) {
  StartServer(2, 1024);
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  std::string id = Submit(key, Spec("oom", {"alloc", "256", "300"}, Json{{"memoryMb", 32}}));
  ASSERT_FALSE(id.empty());
  Json v = AwaitEnd(key, id);
  EXPECT_EQ(v.value("status", ""), "Failed") << v.dump();
  ASSERT_TRUE(v["result"].is_object()) << v.dump();
  EXPECT_EQ(v["result"].value("oomKilled", false), true) << v.dump();
  std::printf("oom: %s, exitCode %s, oomKilled %s\n", v.value("status", "").c_str(),
              v["result"].value("exitCode", Json()).dump().c_str(),
              v["result"].value("oomKilled", Json()).dump().c_str());
}

// ---- Job URL ----

TEST_F(JobE2eTest, AJobUrlIsStartedPolledForProgressAndEndsTheAttempt) {
  StartServer(2, 1024);
  const std::string key = CreateTenant("acme", Json{{"cpu", 2}});
  // testjob `serve` answers POST /start, then GET /status with progress for
  // 2 s and "Completed"; Baton reaches it on the port it publishes on 127.0.0.1.
  std::string id = Submit(key, Spec("joburl", {"serve", "8080"},
                                    Json{{"network", "bridge"},
                                         {"ports", {8080}},
                                         {"completion", {{"mode", "jobUrl"}, {"port", 8080}}}}));
  ASSERT_FALSE(id.empty());
  Json v = AwaitEnd(key, id);
  EXPECT_EQ(v.value("status", ""), "Completed") << v.dump();
  ASSERT_TRUE(v["result"].is_object()) << v.dump();
  EXPECT_EQ(v["result"]["attemptResults"][0].value("source", ""), "jobUrl") << v.dump();
  EXPECT_EQ(v["result"]["attemptResults"][0].value("reported", ""), "Completed") << v.dump();
  Json events = Json::parse(Call(key, "GET", "/api/v1/jobs/" + id + "/events").body, nullptr, false);
  int progress_events = 0;
  for (const Json& e : events.value("events", Json::array())) progress_events += e.value("type", "") == "Progress";
  EXPECT_GE(progress_events, 1) << events.dump();
  EXPECT_EQ(v["progress"], (Json{{"pct", 100}})) << v.dump();
  EXPECT_TRUE(PollUntil([&] { return NodeContainers() == 0; }, 30s, 250ms));
  std::printf("job URL: %s with %d Progress events, final progress %s\n", v.value("status", "").c_str(),
              progress_events, v["progress"].dump().c_str());
}

// ---- Validation and isolation at the API ----

TEST_F(JobE2eTest, NeverFittingAndInvalidJobsAreRejectedAtSubmit) {
  StartServer(2, 1024);
  const std::string acme = CreateTenant("acme", Json{{"cpu", 1}, {"memoryMb", 256}});
  const std::string globex = CreateTenant("globex", Json{{"cpu", 1}});

  HttpResult too_many_cores =
      Call(acme, "POST", "/api/v1/jobs", Spec("big", {"exit", "0"}, Json{{"cpu", 64}}).dump());
  EXPECT_EQ(too_many_cores.status, 422) << too_many_cores.body;
  EXPECT_EQ(ErrorCode(too_many_cores), "NeverFits");
  EXPECT_EQ(ErrorField(too_many_cores), "cpu");

  HttpResult too_much_memory = Call(acme, "POST", "/api/v1/jobs",
                                    Spec("fat", {"exit", "0"}, Json{{"memoryMb", 512}}).dump());
  EXPECT_EQ(too_much_memory.status, 422) << too_much_memory.body;
  EXPECT_EQ(ErrorCode(too_much_memory), "NeverFits");
  EXPECT_EQ(ErrorField(too_much_memory), "memoryMb");

  HttpResult nameless = Call(acme, "POST", "/api/v1/jobs", R"({"image":"x"})");
  EXPECT_EQ(nameless.status, 400) << nameless.body;
  EXPECT_EQ(ErrorField(nameless), "name");

  // Nothing was created by the refused submissions.
  HttpResult none = Call(acme, "GET", "/api/v1/jobs");
  ASSERT_EQ(none.status, 200) << none.body;
  EXPECT_EQ(ParseOrNull(none.body)["jobs"].size(), 0u) << none.body;

  std::string id = Submit(acme, Spec("mine", {"exit", "0"}));
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Call(acme, "GET", "/api/v1/jobs/" + id).status, 200);
  EXPECT_EQ(Call(globex, "GET", "/api/v1/jobs/" + id).status, 404);
  EXPECT_EQ(Call(globex, "POST", "/api/v1/jobs/" + id + "/cancel").status, 404);
  EXPECT_EQ(ParseOrNull(Call(globex, "GET", "/api/v1/jobs").body)["jobs"].size(), 0u);

  HttpResult admin_list = Call(admin_, "GET", "/api/v1/jobs");
  EXPECT_EQ(admin_list.status, 403) << admin_list.body;
  EXPECT_EQ(Call(admin_, "POST", "/api/v1/jobs", Spec("admin", {"exit", "0"}).dump()).status, 403);

  HttpResult bad_status = Call(acme, "GET", "/api/v1/jobs?status=Nope");
  EXPECT_EQ(bad_status.status, 400) << bad_status.body;
  EXPECT_EQ(ErrorField(bad_status), "status");

  EXPECT_EQ(AwaitEnd(acme, id).value("status", ""), "Completed");
}

// ---- Lists and kept logs ----

TEST_F(JobE2eTest, ListFiltersAndPagesAndKeptLogsEnd) {
  StartServer(2, 1024);
  const std::string key = CreateTenant("acme", Json{{"cpu", 1}});
  std::string printer = Submit(key, Spec("printer", {"print", "5"}));
  std::string failer = Submit(key, Spec("failer", {"exit", "1"}));
  std::vector<std::string> ids = {printer, failer};
  for (int i = 0; i < 3; ++i)
    ids.push_back(Submit(key, Spec("ok-" + std::to_string(i), {"exit", "0"})));
  for (const std::string& id : ids) ASSERT_FALSE(id.empty());
  for (const std::string& id : ids) ASSERT_TRUE(IsEnded(AwaitEnd(key, id).value("status", "")));

  auto ids_of = [](const Json& page) {
    std::set<std::string> out;
    for (const Json& j : page.value("jobs", Json::array())) out.insert(j.value("id", ""));
    return out;
  };
  HttpResult failed = Call(key, "GET", "/api/v1/jobs?status=Failed");
  ASSERT_EQ(failed.status, 200) << failed.body;
  EXPECT_EQ(ids_of(ParseOrNull(failed.body)), std::set<std::string>{failer});
  HttpResult completed = Call(key, "GET", "/api/v1/jobs?status=Completed,Canceled");
  ASSERT_EQ(completed.status, 200) << completed.body;
  EXPECT_EQ(ids_of(ParseOrNull(completed.body)).size(), 4u) << completed.body;
  HttpResult active = Call(key, "GET", "/api/v1/jobs?status=Running,Queued");
  EXPECT_EQ(ids_of(ParseOrNull(active.body)).size(), 0u) << active.body;
  HttpResult by_name = Call(key, "GET", "/api/v1/jobs?name=printer");
  EXPECT_EQ(ids_of(ParseOrNull(by_name.body)), std::set<std::string>{printer});

  // Pages of 2 over 5 jobs: the continuation tokens lead through all of them.
  std::set<std::string> paged;
  std::string token;
  int pages = 0;
  for (; pages < 10; ++pages) {
    HttpResult r =
        Call(key, "GET",
             "/api/v1/jobs?pageSize=2" + (token.empty() ? "" : "&continuationToken=" + token));
    ASSERT_EQ(r.status, 200) << r.body;
    Json page = ParseOrNull(r.body);
    EXPECT_LE(page["jobs"].size(), 2u);
    for (const std::string& id : ids_of(page))
      EXPECT_TRUE(paged.insert(id).second) << id << " shown twice";
    token = page.value("continuationToken", "");
    if (token.empty()) break;
  }
  EXPECT_EQ(paged, std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_TRUE(token.empty()) << "still a continuation token after " << pages << " pages";

  // The kept logs of a finished job, then the end.
  HttpResult logs = Call(key, "GET", "/api/v1/jobs/" + printer + "/logs");
  ASSERT_EQ(logs.status, 200) << logs.body;
  Json l = ParseOrNull(logs.body);
  ASSERT_EQ(l["lines"].size(), 10u) << logs.body;
  // Each stream in its order (Docker does not order lines across the two).
  std::vector<std::string> stdout_lines;
  std::vector<std::string> stderr_lines;
  for (const Json& line : l["lines"]) {
    (line.value("stream", "") == "stdout" ? stdout_lines : stderr_lines)
        .push_back(line.value("text", ""));
  }
  const int out = static_cast<int>(stdout_lines.size());
  EXPECT_EQ(stdout_lines, (std::vector<std::string>{"progress 1/5", "progress 2/5", "progress 3/5",
                                                    "progress 4/5", "progress 5/5"}));
  EXPECT_EQ(stderr_lines, (std::vector<std::string>{"warning 1/5", "warning 2/5", "warning 3/5",
                                                    "warning 4/5", "warning 5/5"}));
  EXPECT_EQ(l.value("attempt", 0), 1);
  EXPECT_EQ(l.value("next", 0), 10);
  HttpResult rest = Call(
      key, "GET", "/api/v1/jobs/" + printer + "/logs?after=" + std::to_string(l.value("next", 0)));
  ASSERT_EQ(rest.status, 200) << rest.body;
  Json r = ParseOrNull(rest.body);
  EXPECT_EQ(r["lines"].size(), 0u) << rest.body;
  EXPECT_EQ(r.value("done", false), true) << rest.body;
  std::printf(
      "lists: %d pages of 2 showed %zu of 5 jobs; logs: %zu lines (%d stdout), then done=%s\n",
      pages + 1, paged.size(), l["lines"].size(), out, r.value("done", false) ? "true" : "false");
}

// ---- Deleting a job ----

// baton job delete: the job, its history and its kept logs go; a job that has
// not ended, and another tenant's job, stay (409, 404).
TEST_F(JobE2eTest, RetentionJobDeleteRemovesTheEndedJobAndItsLogsOnly) {
  StartServer(2, 1024);
  const std::string key = CreateTenant("acme", Json{{"cpu", 1}});
  const std::string other = CreateTenant("other", Json{{"cpu", 1}});
  const std::string printer = Submit(key, Spec("printer", {"print", "3"}));
  const std::string kept = Submit(key, Spec("kept", {"print", "2"}));
  const std::string sleeper = Submit(key, Spec("sleeper", {"sleep", "60"}));
  ASSERT_FALSE(printer.empty() || kept.empty() || sleeper.empty());
  ASSERT_TRUE(IsEnded(AwaitEnd(key, printer).value("status", "")));
  ASSERT_TRUE(IsEnded(AwaitEnd(key, kept).value("status", "")));
  ASSERT_EQ(Call(key, "GET", "/api/v1/jobs/" + printer + "/logs").status, 200);

  EXPECT_EQ(Call(other, "DELETE", "/api/v1/jobs/" + printer).status, 404);
  EXPECT_EQ(Call(key, "GET", "/api/v1/jobs/" + printer).status, 200) << "another tenant deleted it";
  HttpResult running = Call(key, "DELETE", "/api/v1/jobs/" + sleeper);
  EXPECT_EQ(running.status, 409) << running.body;
  EXPECT_EQ(Call(key, "GET", "/api/v1/jobs/" + sleeper).status, 200);

  HttpResult deleted = Call(key, "DELETE", "/api/v1/jobs/" + printer);
  EXPECT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(Call(key, "GET", "/api/v1/jobs/" + printer).status, 404);
  EXPECT_EQ(Call(key, "GET", "/api/v1/jobs/" + printer + "/logs").status, 404);
  EXPECT_EQ(Call(key, "DELETE", "/api/v1/jobs/" + printer).status, 404);
  // The other ended job keeps its logs.
  HttpResult logs = Call(key, "GET", "/api/v1/jobs/" + kept + "/logs");
  ASSERT_EQ(logs.status, 200) << logs.body;
  EXPECT_EQ(ParseOrNull(logs.body)["lines"].size(), 4u) << logs.body;
  EXPECT_EQ(Call(key, "POST", "/api/v1/jobs/" + sleeper + "/cancel").status, 202);
  EXPECT_TRUE(IsEnded(AwaitEnd(key, sleeper).value("status", "")));
}

}  // namespace
}  // namespace baton
