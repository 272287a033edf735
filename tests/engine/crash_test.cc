// Crash safety: a worker process running 500 orchestrations of 5 activities
// is SIGKILLed at random moments, restarted each time, and in the end every
// orchestration has completed exactly once with the right output and a
// well-formed history.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "baton/client.h"
#include "baton/sqlite_store.h"
#include "testing/test_util.h"

namespace baton {
namespace {

constexpr int kInstances = 500;
constexpr int kKills = 4;

pid_t SpawnWorker(const std::string& db, const std::string& log, bool exit_when_idle) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<const char*> args = {BATON_CRASH_WORKER, "--db", db.c_str(), "--log", log.c_str()};
    if (exit_when_idle) args.push_back("--exit-when-idle");
    args.push_back(nullptr);
    execv(BATON_CRASH_WORKER, const_cast<char* const*>(args.data()));
    _exit(127);
  }
  return pid;
}

// Checks one instance's history; returns "" when well formed, else why not.
std::string CheckHistory(const std::vector<HistoryEvent>& history) {
  int started = 0, completed = 0;
  std::map<int, int> scheduled, done;
  for (size_t i = 0; i < history.size(); ++i) {
    const auto& body = history[i].body;
    if (std::holds_alternative<events::ExecutionStarted>(body)) ++started;
    if (std::holds_alternative<events::ExecutionCompleted>(body)) {
      ++completed;
      if (i + 2 < history.size()) return "events after ExecutionCompleted";
    }
    if (std::holds_alternative<events::TaskScheduled>(body)) ++scheduled[history[i].event_id];
    if (auto* c = std::get_if<events::TaskCompleted>(&body)) {
      if (!scheduled.count(c->task_scheduled_id)) return "TaskCompleted before its TaskScheduled";
      ++done[c->task_scheduled_id];
    }
  }
  if (started != 1) return "ExecutionStarted x" + std::to_string(started);
  if (completed != 1) return "ExecutionCompleted x" + std::to_string(completed);
  if (scheduled.size() != 5 || done.size() != 5) return "not 5 tasks scheduled and completed";
  for (int id = 1; id <= 5; ++id) {
    if (scheduled[id] != 1 || done[id] != 1) return "task " + std::to_string(id) + " recorded twice";
  }
  return "";
}

TEST(CrashTest, EveryOrchestrationCompletesExactlyOnceAcrossSigkills) {
  testing::TempDir dir;
  const std::string db = dir.File("hub.db");
  const std::string log = dir.File("activities.log");
  {
    SqliteStoreOptions options;
    options.path = db;
    auto store = OpenSqliteStore(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    Client client(**store);
    for (int i = 0; i < kInstances; ++i) {
      ScheduleOptions o;
      o.instance_id = "crash-" + std::to_string(i);
      ASSERT_TRUE(client.ScheduleNewOrchestration("Five", i * 10, o).ok());
    }
  }

  std::random_device rd;
  const unsigned seed = rd();
  std::mt19937 rng(seed);
  // Each kill lands mid-run: after the worker has executed a random number of
  // further activities (read from the size of the activity log).
  std::uniform_int_distribution<int> more_activities(100, 500);
  std::printf("crash test: seed %u\n", seed);
  auto logged = [&] {
    std::ifstream progress(log);
    int lines = 0;
    for (std::string l; std::getline(progress, l);) ++lines;
    return lines;
  };
  for (int k = 0; k < kKills; ++k) {
    const int target = logged() + more_activities(rng);
    pid_t pid = SpawnWorker(db, log, /*exit_when_idle=*/false);
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(testing::Eventually([&] { return logged() >= target; }, std::chrono::seconds(60)))
        << "the worker made no progress";
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the worker exited before it was killed (status " << status << ")";
    std::printf("crash test: SIGKILL #%d after %d activity executions in all\n", k + 1, logged());
  }
  pid_t pid = SpawnWorker(db, log, /*exit_when_idle=*/true);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "final worker status " << status;

  SqliteStoreOptions options;
  options.path = db;
  auto store = OpenSqliteStore(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Client client(**store);
  int completed = 0;
  for (int i = 0; i < kInstances; ++i) {
    std::string id = "crash-" + std::to_string(i);
    auto state = client.GetState(id);
    ASSERT_TRUE(state.ok()) << id;
    ASSERT_EQ(state->status, OrchestrationStatus::kCompleted) << id;
    EXPECT_EQ(FromPayload(state->output), i * 10 + 5) << id;
    auto history = client.GetHistory(id);
    ASSERT_TRUE(history.ok());
    EXPECT_EQ(CheckHistory(*history), "") << id;
    ++completed;
  }

  std::ifstream in(log);
  std::map<std::string, int> executions;
  std::string line;
  while (std::getline(in, line)) ++executions[line];
  int repeated = 0;
  for (const auto& [key, n] : executions) repeated += n - 1;
  EXPECT_EQ(executions.size(), static_cast<size_t>(kInstances * 5));
  std::printf("crash test: %d kills, %d/%d orchestrations completed once, %zu activity calls, "
              "%d executions repeated after a kill\n",
              kKills, completed, kInstances, executions.size(), repeated);
}

}  // namespace
}  // namespace baton
