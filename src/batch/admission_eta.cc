#include "batch/admission_eta.h"

#include <algorithm>
#include <cmath>

#include "batch/scheduler.h"

namespace baton::batch {
namespace {

using Clock = std::chrono::system_clock;

TimePoint Plus(TimePoint t, Seconds d) { return t + std::chrono::duration_cast<Clock::duration>(d); }

// Whether a job has an expected release: its name's holds, and for a
// running job when it was granted.
bool HoldKnown(const EtaSnapshot& snap, const std::string& key, bool running) {
  auto it = snap.jobs.find(key);
  return it != snap.jobs.end() && it->second.durations && (!running || it->second.granted_at);
}

struct Release {
  TimePoint at;
  std::string job;
  bool known;        // from an expected hold, not taken to end at once
  bool was_running;  // running at the snapshot
};

struct Run {
  std::optional<TimePoint> start;
  int running_first = 0;
  int queued_first = 0;
  std::vector<std::string> unknown;  // jobs without an expected hold released before the start
};

// What a job without an expected hold does in a replay.
enum class Unknown { kEndsAtOnce, kNeverEnds };

// One forward replay of the scheduler, holds from `hold_of`.
template <typename HoldOf>
Run Simulate(const EtaSnapshot& snap, const std::string& job, const EtaOptions& o, HoldOf hold_of, Unknown unknown) {
  Run run;
  Json state = NormalizedSchedulerState(snap.scheduler);
  std::vector<Release> releases;  // pending; the earliest is taken first (ties: in order)
  auto schedule = [&](const std::string& key, TimePoint from, bool running) {
    if (!HoldKnown(snap, key, running)) {
      if (unknown == Unknown::kEndsAtOnce) releases.push_back({Plus(from, o.floor), key, false, running});
      return;
    }
    const EtaJobInfo* info = &snap.jobs.at(key);
    const Seconds hold = std::max(hold_of(*info->durations), o.floor);
    // A running job past its expected hold is expected to end soon, not in the past.
    const TimePoint at = running ? std::max(Plus(*info->granted_at, hold), Plus(snap.now, o.floor)) : Plus(from, hold);
    releases.push_back({at, key, true, running});
  };
  for (const auto& [key, entry] : state["running"].items()) schedule(key, snap.now, true);
  TimePoint t = snap.now;
  for (int step = 0; step < o.max_steps; ++step) {
    if (std::optional<size_t> pick = NextSchedulerGrant(state)) {
      const Json entry = GrantSchedulerJob(state, *pick);
      const std::string key = entry.value("job", "");
      if (key == job) {
        run.start = t;
        return run;
      }
      ++run.queued_first;
      schedule(key, t, false);
      continue;
    }
    if (releases.empty()) return run;  // nothing left that frees capacity
    auto next = std::min_element(releases.begin(), releases.end(),
                                 [](const Release& a, const Release& b) { return a.at < b.at; });
    const Release r = *next;
    releases.erase(next);
    t = std::max(t, r.at);
    ReleaseSchedulerJob(state, r.job);
    if (r.was_running) ++run.running_first;
    if (!r.known) run.unknown.push_back(r.job);
  }
  return run;
}

}  // namespace

std::optional<RunDurations> SummarizeRunDurations(std::vector<Seconds> holds) {
  std::erase_if(holds, [](Seconds s) { return !(s.count() >= 0); });
  if (holds.empty()) return std::nullopt;
  std::sort(holds.begin(), holds.end());
  // Nearest rank: the smallest value with at least p of the samples at or below it.
  auto rank = [&](double p) { return holds[static_cast<size_t>(std::max(1.0, std::ceil(p * holds.size()))) - 1]; };
  RunDurations d;
  d.samples = static_cast<int>(holds.size());
  d.p50 = rank(0.5);
  d.p90 = rank(0.9);
  return d;
}

EtaEstimate EstimateStart(const EtaSnapshot& snap, const std::string& job, const EtaOptions& o) {
  EtaEstimate e;
  bool queued = false;
  if (snap.scheduler.is_object() && snap.scheduler.contains("queue") && snap.scheduler["queue"].is_array()) {
    for (const Json& entry : snap.scheduler["queue"]) {
      if (entry.is_object() && entry.value("job", "") == job) queued = true;
    }
  }
  if (!queued) {
    e.basis = EtaEstimate::Basis::kNotQueued;
    return e;
  }
  auto p50 = [](const RunDurations& d) { return d.p50; };
  auto p90 = [](const RunDurations& d) { return d.p90; };
  // Jobs without an expected hold taken to end at once give the earliest
  // start; taken never to end, the start without them. When both agree the
  // start does not depend on them.
  // (With every hold known the two are the same replay: run it once.)
  bool all_known = true;
  const Json state = NormalizedSchedulerState(snap.scheduler);
  for (const auto& [key, entry] : state["running"].items()) all_known = all_known && HoldKnown(snap, key, true);
  for (const Json& entry : state["queue"]) all_known = all_known && HoldKnown(snap, entry.value("job", ""), false);
  const Run without = Simulate(snap, job, o, p50, Unknown::kNeverEnds);
  const Run early = all_known ? without : Simulate(snap, job, o, p50, Unknown::kEndsAtOnce);
  if (!early.start && !without.start) {
    e.basis = EtaEstimate::Basis::kNever;
    return e;
  }
  if (without.start && (!early.start || *without.start == *early.start)) {
    e.basis = EtaEstimate::Basis::kHistory;
    e.start_at = without.start;
    e.running_first = without.running_first;
    e.queued_first = without.queued_first;
    const Run slow = Simulate(snap, job, o, p90, Unknown::kNeverEnds);
    // Fair share may reorder grants under other holds; "by" is never before "at".
    if (slow.start) e.start_by = std::max(*slow.start, *without.start);
    return e;
  }
  e.basis = EtaEstimate::Basis::kLowerBound;
  e.start_at = early.start;
  if (without.start && *without.start < *early.start) e.start_at = without.start;
  e.running_first = early.running_first;
  e.queued_first = early.queued_first;
  e.unknown = early.unknown;
  return e;
}

const char* EtaBasisName(EtaEstimate::Basis basis) {
  switch (basis) {
    case EtaEstimate::Basis::kHistory:
      return "history";
    case EtaEstimate::Basis::kLowerBound:
      return "lowerBound";
    case EtaEstimate::Basis::kNotQueued:
      return "notQueued";
    case EtaEstimate::Basis::kNever:
      return "never";
  }
  return "never";
}

}  // namespace baton::batch
