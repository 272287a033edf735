// Job tokens, job ids, the job view and the timeline: pure functions.
#include "batch/job_view.h"

#include <gtest/gtest.h>

#include "store/sqlite/sqlite_platform_stores.h"

#include <set>

#include "batch/job_token.h"
#include "testing/test_util.h"

namespace baton::batch {
namespace {

TEST(JobToken, VerifiesItsOwnAndRefusesForgeries) {
  JobTokens tokens(std::string(32, 'k'));
  const std::string token = tokens.Sign("job.acme.0123456789abcdef", 2);
  auto claims = tokens.Verify(token);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->instance, "job.acme.0123456789abcdef");
  EXPECT_EQ(claims->attempt, 2);
  EXPECT_EQ(tokens.Sign("job.acme.0123456789abcdef", 2), token);  // deterministic

  // Another key, a changed attempt, a changed job, a truncated MAC, garbage.
  EXPECT_FALSE(JobTokens(std::string(32, 'x')).Verify(token).ok());
  std::string other_attempt = token;
  other_attempt.replace(other_attempt.find("_2_"), 3, "_3_");
  EXPECT_FALSE(tokens.Verify(other_attempt).ok());
  std::string other_job = tokens.Sign("job.acme.fedcba9876543210", 2);
  other_job.replace(other_job.rfind('_') + 1, std::string::npos, token.substr(token.rfind('_') + 1));
  EXPECT_FALSE(tokens.Verify(other_job).ok());
  EXPECT_FALSE(tokens.Verify(token.substr(0, token.size() - 1)).ok());
  for (const char* bad : {"", "bjt_", "bjt_zz_1_00", "bk_123_456", "bjt_6a_x_00"}) {
    auto r = tokens.Verify(bad);
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated) << bad;
  }
}

TEST(JobToken, TheKeyIsCreatedOnceAndReused) {
  testing::TempDir dir;
  auto keys = store::OpenFileKeyStore(dir.path());
  auto first = JobTokens::FromKeyStore(*keys);
  ASSERT_TRUE(first.ok());
  auto again = JobTokens::FromKeyStore(*keys);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->Verify(first->Sign("job.a.b", 1)).ok());
  auto from_file = JobTokens::ReadKeyFile(dir.File("job-token.key"));
  ASSERT_TRUE(from_file.ok());
  EXPECT_TRUE(from_file->Verify(first->Sign("job.a.b", 1)).ok());
}

TEST(JobId, IsTimeOrderedHexAndUnique) {
  std::set<std::string> ids;
  std::string last;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewJobId();
    EXPECT_TRUE(IsJobId(id)) << id;
    EXPECT_GE(id.substr(0, 11), last.substr(0, std::min<size_t>(11, last.size())));
    last = id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_FALSE(IsJobId("0123456789ABCDEF"));
  EXPECT_FALSE(IsJobId("../../etc/passwd"));
}

InstanceState Running(const Json& custom) {
  InstanceState s;
  s.instance_id = "job.acme.0123456789abcdef";
  s.name = "baton.Job";
  s.status = OrchestrationStatus::kRunning;
  s.input = Json{{"id", "0123456789abcdef"}, {"spec", {{"name", "render"}}}}.dump();
  s.custom_status = custom.dump();
  return s;
}

TEST(JobView, SaysWhatTheJobWaitsOn) {
  Json scheduler = {{"queue", {{{"job", "job.other.1"}}, {{"job", "job.acme.0123456789abcdef"}}}}};
  Json queued = JobView(Running(Json{{"phase", "queued"}, {"position", 7}}), scheduler);
  EXPECT_EQ(queued["status"], "Queued");
  EXPECT_EQ(queued["waitingOn"], (Json{{"reason", "quota"}, {"position", 2}}));  // live, not the stale 7
  EXPECT_EQ(queued["name"], "render");
  EXPECT_EQ(queued["urls"]["logs"], "/api/v1/jobs/0123456789abcdef/logs");

  EXPECT_EQ(JobView(Running(Json{{"phase", "pulling"}, {"image", "r/x:1"}}), Json())["waitingOn"]["reason"],
            "imagePull");
  EXPECT_EQ(JobView(Running(Json{{"phase", "starting"}, {"attempt", 2}}), Json())["waitingOn"],
            (Json{{"reason", "container"}, {"attempt", 2}}));
  Json backoff = JobView(Running(Json{{"phase", "backoff"}, {"retryAt", "2026-01-01T00:00:00Z"}}), Json());
  EXPECT_EQ(backoff["status"], "BackingOff");
  EXPECT_EQ(backoff["waitingOn"]["retryAt"], "2026-01-01T00:00:00Z");
  Json running = JobView(Running(Json{{"phase", "running"}, {"attempt", 1}, {"progress", {{"pct", 5}}}}), Json());
  EXPECT_EQ(running["status"], "Running");
  EXPECT_TRUE(running["waitingOn"].is_null());
  EXPECT_EQ(running["progress"], (Json{{"pct", 5}}));

  InstanceState done = Running(Json{{"phase", "done"}});
  done.status = OrchestrationStatus::kCompleted;
  done.output = Json{{"status", "Canceled"}, {"attempts", 1}, {"attemptResults", Json::array()}}.dump();
  Json brief = JobView(done, Json(), /*brief=*/true);
  EXPECT_EQ(brief["status"], "Canceled");
  EXPECT_FALSE(brief.contains("spec"));
  EXPECT_FALSE(brief["result"].contains("attemptResults"));
  done.status = OrchestrationStatus::kTerminated;
  EXPECT_EQ(JobStatusOf(done), "Canceled");
}

TEST(JobTimeline, TellsTheJobsStoryFromItsHistory) {
  TimePoint t0 = std::chrono::system_clock::now();
  int id = 0;
  std::vector<HistoryEvent> h;
  auto add = [&](EventBody body, int event_id = -1) {
    h.push_back(HistoryEvent{event_id, t0 + std::chrono::milliseconds(++id), std::move(body)});
  };
  add(events::ExecutionStarted{"baton.Job", "", "{}", "job.acme.x", "e1", std::nullopt, std::nullopt, {}});
  add(events::TaskScheduled{"baton.ResolveImages", "", R"({"images":["r/x:1"]})"}, 0);
  add(events::TaskCompleted{0, R"({"images":["r/x@sha256:ab"]})"});
  add(events::EntityOperationCalled{"req1", "request", std::nullopt, "{}", "job.acme.x", "e1", "@scheduler@node"});
  add(events::EntityOperationCompleted{"req1", R"({"granted":false,"position":3})"});
  add(events::EventRaised{"QuotaGranted", "{}"});
  add(events::TaskScheduled{"baton.CreateGroup", "", R"({"attempt":1})"}, 1);
  add(events::TaskCompleted{1, "{}"});
  add(events::TaskScheduled{"baton.StartGroup", "", R"({"group":"g"})"}, 2);
  add(events::TaskCompleted{2, "{}"});
  add(events::TimerCreated{t0 + std::chrono::hours(1)}, 3);
  add(events::EventRaised{"Progress", R"({"attempt":1,"progress":{"pct":50}})"});
  add(events::EventRaised{"Failed", R"({"attempt":1,"exitCode":3,"source":"docker"})"});
  add(events::EventRaised{"Failed", R"({"attempt":1,"exitCode":3,"source":"docker"})"});  // a repeat
  add(events::TaskScheduled{"baton.CollectGroup", "", R"({"attempt":1})"}, 4);
  add(events::TaskCompleted{4, R"({"exitCode":3,"oomKilled":false})"});
  add(events::TimerCreated{t0 + std::chrono::seconds(10)}, 5);
  add(events::EventRaised{"Cancel", "{}"});
  add(events::ExecutionCompleted{OrchestrationStatus::kCompleted, R"({"status":"Canceled","attempts":1})", std::nullopt});
  Json timeline = JobTimeline(h);
  std::vector<std::string> types;
  for (const Json& e : timeline) types.push_back(e["type"]);
  EXPECT_EQ(types, (std::vector<std::string>{"Submitted", "ImageResolved", "Queued", "QuotaGranted", "AttemptStarted",
                                             "Progress", "Reported", "AttemptEnded", "BackoffStarted",
                                             "CancelRequested", "Canceled"}))
      << timeline.dump(1);
  EXPECT_EQ(timeline[1]["image"], "r/x@sha256:ab");
  EXPECT_EQ(timeline[2]["position"], 3);
  EXPECT_EQ(timeline[4]["attempt"], 1);
  EXPECT_EQ(timeline[7]["exitCode"], 3);
}

// ---- Transient faults (job_orchestration.cc): what the tenant sees ----

TEST(TransientFaultView, WaitingOnARuntimeOrRegistryFaultSaysWhichWithTheLastErrorAndTheNextTry) {
  const Json waiting = {{"reason", "registry"},
                        {"lastError", "RegistryUnavailable: pulling 'r/x:1': connection refused"},
                        {"retryAt", "2026-01-01T00:00:08Z"},
                        {"since", "2026-01-01T00:00:00Z"},
                        {"failures", 4}};
  Json pulling = JobView(Running(Json{{"phase", "pulling"}, {"image", "r/x:1"}, {"waitingOn", waiting}}), Json());
  EXPECT_EQ(pulling["status"], "Pending");
  EXPECT_EQ(pulling["waitingOn"], waiting);

  Json runtime = waiting;
  runtime["reason"] = "runtime";
  Json starting = JobView(Running(Json{{"phase", "starting"}, {"attempt", 1}, {"waitingOn", runtime}}), Json());
  EXPECT_EQ(starting["status"], "Starting");
  EXPECT_EQ(starting["waitingOn"]["reason"], "runtime");
  EXPECT_EQ(starting["waitingOn"]["retryAt"], "2026-01-01T00:00:08Z");
  // Collecting a finished attempt while dockerd is away: still Running, but waiting.
  Json finishing = JobView(Running(Json{{"phase", "finishing"}, {"attempt", 1}, {"waitingOn", runtime}}), Json());
  EXPECT_EQ(finishing["status"], "Running");
  EXPECT_EQ(finishing["waitingOn"]["reason"], "runtime");

  // A finished job waits on nothing, whatever its last custom status said.
  InstanceState done = Running(Json{{"phase", "starting"}, {"waitingOn", runtime}});
  done.status = OrchestrationStatus::kCompleted;
  done.output = Json{{"status", "Canceled"}}.dump();
  EXPECT_TRUE(JobView(done, Json())["waitingOn"].is_null());
}

TEST(TransientFaultView, ARunOfRetriesIsOneWaitingEntryAndRetryTimersAreNoBackoff) {
  TimePoint t0 = std::chrono::system_clock::now();
  int id = 0;
  std::vector<HistoryEvent> h;
  auto add = [&](EventBody body, int event_id = -1) {
    h.push_back(HistoryEvent{event_id, t0 + std::chrono::milliseconds(++id), std::move(body)});
  };
  auto failure = [](const std::string& type) {
    FailureDetails f;
    f.error_type = type;
    f.error_message = "cannot reach dockerd";
    return f;
  };
  add(events::ExecutionStarted{"baton.Job", "", "{}", "job.acme.x", "e1", std::nullopt, std::nullopt, {}});
  int next = 0;
  for (int i = 0; i < 3; ++i) {  // three tries while dockerd is away
    add(events::TaskScheduled{"baton.ResolveImages", "", R"({"images":["r/x@sha256:ab"]})"}, next);
    add(events::TaskFailed{next, failure("RuntimeUnavailable")});
    add(events::TimerCreated{t0 + std::chrono::seconds(1 << i)}, next + 1);
    add(events::TimerFired{t0 + std::chrono::seconds(1 << i), next + 1});
    next += 2;
  }
  add(events::TaskScheduled{"baton.ResolveImages", "", R"({"images":["r/x@sha256:ab"]})"}, next);
  add(events::TaskCompleted{next, R"({"images":["r/x@sha256:ab"],"sources":["node"]})"});
  ++next;
  add(events::TaskScheduled{"baton.CreateGroup", "", R"({"attempt":1})"}, next);
  add(events::TaskFailed{next, failure("RegistryUnavailable")});
  add(events::TimerCreated{t0 + std::chrono::seconds(20)}, next + 1);
  next += 2;
  add(events::TaskScheduled{"baton.CreateGroup", "", R"({"attempt":1})"}, next);
  FailureDetails fatal = failure("NotFound");
  fatal.is_non_retriable = true;
  add(events::TaskFailed{next, fatal});
  Json timeline = JobTimeline(h);
  std::vector<std::string> types;
  for (const Json& e : timeline) types.push_back(e["type"]);
  EXPECT_EQ(types, (std::vector<std::string>{"Submitted", "Waiting", "ImageResolved", "Waiting", "Error"}))
      << timeline.dump(1);
  EXPECT_EQ(timeline[1]["waitingOn"], "runtime");
  EXPECT_EQ(timeline[1]["failures"], 3);
  EXPECT_EQ(timeline[1]["activity"], "baton.ResolveImages");
  EXPECT_EQ(timeline[2]["source"], "node");
  EXPECT_EQ(timeline[3]["waitingOn"], "registry");
  EXPECT_EQ(timeline[3]["failures"], 1);
  EXPECT_EQ(timeline[4]["error"], "NotFound: cannot reach dockerd");
}

}  // namespace
}  // namespace baton::batch

namespace baton::batch {
namespace {

// One word and one line for each way a job ends (docs/http-api.md#why-a-job-ended).
TEST(JobEndReason, NamesEachWayAJobEnds) {
  struct Case {
    Json outcome;
    std::string status;
    std::string reason;
    std::string summary;
  };
  const std::vector<Case> cases = {
      {Json{{"exitCode", 0}}, "Completed", "Completed", "completed (exit code 0)"},
      {Json{{"exitCode", 3}}, "Failed", "ExitCode", "exit code 3"},
      {Json{{"exitCode", 137}, {"oomKilled", true}}, "Failed", "OOMKilled", "killed for lack of memory (OOM), exit code 137"},
      {Json{{"exitCode", 143}, {"timedOut", true}, {"timeoutSeconds", 60}}, "Failed", "TimedOut", "timed out after 60 s"},
      {Json{{"exitCode", 143}, {"canceled", true}, {"canceledBecause", "its parent orchestration was terminated"}},
       "Canceled", "Canceled", "canceled: its parent orchestration was terminated"},
      {Json{{"exitCode", 0}, {"reported", "Failed"}, {"message", "bad input"}}, "Failed", "ReportedFailed",
       "the job reported Failed: bad input (exit code 0)"},
      {Json{{"error", "NotFound: pulling 'x': manifest unknown"}, {"reason", "ImagePullFailed"}}, "Failed",
       "ImagePullFailed", "NotFound: pulling 'x': manifest unknown"},
      {Json{{"error", "ContainerLost: the attempt's container vanished"}}, "Failed", "ContainerLost",
       "the container was lost: ContainerLost: the attempt's container vanished"},
      {Json{{"error", "DependencyFailed: job 0123456789abcdef ended Failed (exit code 3)"}, {"reason", "DependencyFailed"}},
       "Failed", "DependencyFailed", "DependencyFailed: job 0123456789abcdef ended Failed (exit code 3)"},
      {Json{{"error", "RuntimeError: creating container group 'g': boom"}}, "Failed", "Error",
       "RuntimeError: creating container group 'g': boom"},
  };
  for (const Case& c : cases) {
    EndReason why = WhyEnded(c.outcome, c.status);
    EXPECT_EQ(why.reason, c.reason) << c.outcome.dump();
    EXPECT_EQ(why.summary, c.summary) << c.outcome.dump();
  }
}

}  // namespace
}  // namespace baton::batch
