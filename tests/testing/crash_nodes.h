// Helpers of the crash tests (tests/engine/crash_test.cc): node processes
// (tests/engine/crash_worker_main.cc)
// started and SIGKILLed by PID, their activity log, the check that a finished
// orchestration's history is well formed, and the longest gap in a series of
// times.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "baton/history.h"

namespace baton::testing {

// A child process running `args[0]` with `args`. Killed (SIGKILL) and reaped
// when destroyed unless Wait() reaped it first. Only this PID is ever signaled.
class NodeProcess {
 public:
  explicit NodeProcess(std::vector<std::string> args) {
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~NodeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Sends `sig` and reaps the process; its wait status (-1 if none).
  int KillAndWait(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    return Wait();
  }
  int Wait() {
    int status = -1;
    if (pid_ > 0 && waitpid(pid_, &status, 0) == pid_) pid_ = -1;
    return status;
  }
  // True while the child has not exited (reaps it if it has).
  bool Running() {
    if (pid_ <= 0) return false;
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

 private:
  pid_t pid_ = -1;
};

// One line of a node's activity log: "<instance> <task id> <unix micros>".
struct ActivityRun {
  std::string key;  // "<instance> <task id>"
  int64_t micros = 0;
};

inline std::vector<ActivityRun> ReadActivityLog(const std::string& path) {
  std::vector<ActivityRun> runs;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string instance, task;
    ActivityRun run;
    if (!(fields >> instance >> task >> run.micros)) continue;  // a line cut by SIGKILL
    run.key = instance + " " + task;
    runs.push_back(std::move(run));
  }
  return runs;
}

inline size_t CountLines(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

// The longest gap between consecutive times (any order): its length and
// where it began, in milliseconds after the first time; and how many times
// came before it.
struct Gap {
  int64_t ms = 0;
  int64_t at_ms = 0;
  size_t after = 0;
  int64_t begin_micros = 0;  // the time before the gap
};
inline Gap LongestGap(std::vector<int64_t> micros) {
  std::sort(micros.begin(), micros.end());
  Gap gap;
  for (size_t i = 1; i < micros.size(); ++i) {
    if (micros[i] - micros[i - 1] > gap.ms * 1000) {
      gap = Gap{(micros[i] - micros[i - 1]) / 1000, (micros[i - 1] - micros[0]) / 1000, i,
                micros[i - 1]};
    }
  }
  return gap;
}

// "" when the history of a finished orchestration is well formed, else the
// first thing wrong: every event id used once; one ExecutionStarted; one
// ExecutionCompleted, followed by nothing but its episode's end marker;
// every TaskScheduled answered exactly once and no answer without it; every
// entity call answered exactly once; every lock request granted once.
inline std::string HistoryProblem(const std::vector<HistoryEvent>& history) {
  std::set<int32_t> ids;
  std::map<int32_t, int> scheduled, answered;
  std::map<std::string, int> calls, call_answers, locks, grants;
  int started = 0, completed = 0;
  for (size_t i = 0; i < history.size(); ++i) {
    const HistoryEvent& e = history[i];
    if (e.event_id >= 0 && !ids.insert(e.event_id).second) {
      return "event id " + std::to_string(e.event_id) + " used twice";
    }
    const EventBody& body = e.body;
    if (std::holds_alternative<events::ExecutionStarted>(body)) ++started;
    if (std::holds_alternative<events::ExecutionCompleted>(body)) {
      ++completed;
      for (size_t j = i + 1; j < history.size(); ++j) {
        if (!std::holds_alternative<events::OrchestratorCompleted>(history[j].body)) {
          return "events after ExecutionCompleted";
        }
      }
    }
    if (std::holds_alternative<events::TaskScheduled>(body)) ++scheduled[e.event_id];
    if (const auto* c = std::get_if<events::TaskCompleted>(&body)) ++answered[c->task_scheduled_id];
    if (const auto* f = std::get_if<events::TaskFailed>(&body)) ++answered[f->task_scheduled_id];
    if (const auto* c = std::get_if<events::EntityOperationCalled>(&body)) ++calls[c->request_id];
    if (const auto* c = std::get_if<events::EntityOperationCompleted>(&body)) ++call_answers[c->request_id];
    if (const auto* f = std::get_if<events::EntityOperationFailed>(&body)) ++call_answers[f->request_id];
    if (const auto* l = std::get_if<events::EntityLockRequested>(&body)) ++locks[l->critical_section_id];
    if (const auto* g = std::get_if<events::EntityLockGranted>(&body)) ++grants[g->critical_section_id];
  }
  if (started != 1) return "ExecutionStarted x" + std::to_string(started);
  if (completed != 1) return "ExecutionCompleted x" + std::to_string(completed);
  for (const auto& [id, n] : scheduled) {
    auto it = answered.find(id);
    const int times = it == answered.end() ? 0 : it->second;
    if (times != 1) return "task " + std::to_string(id) + " answered " + std::to_string(times) + " times";
  }
  for (const auto& [id, n] : answered) {
    if (!scheduled.contains(id)) return "an answer to task " + std::to_string(id) + ", never scheduled";
  }
  if (calls != call_answers ||
      std::any_of(calls.begin(), calls.end(), [](const auto& c) { return c.second != 1; })) {
    return "an entity call not answered exactly once";
  }
  if (locks != grants ||
      std::any_of(locks.begin(), locks.end(), [](const auto& l) { return l.second != 1; })) {
    return "a lock request not granted exactly once";
  }
  return "";
}

}  // namespace baton::testing
