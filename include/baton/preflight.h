// Deploy preflight: before a new build of the orchestrator code goes live,
// replay the histories of the live instances of a task hub against it and
// list every instance the new code would fail with a NonDeterminismError.
//
// Preflight reads through a StoreReader (baton/store_reader.h) and never
// writes: it runs each instance's orchestrator over the instance's committed
// history exactly as a worker does after a cache miss (the same replay
// executor, the same checks), then throws the executor away. Nothing is
// scheduled, committed or dispatched, and activities never run (a replay only
// resolves awaits from recorded results).
//
// An instance passes when the new code produces, in order, every action its
// history records. Code that changed only after the instance's current
// position (what it does once the activity or event it waits for arrives)
// passes: that code has not run yet and will run once, with the new build.
//
// Only C++ orchestrators can be replayed: an instance whose orchestrator the
// new registry does not hold (an SDK orchestrator run by a gRPC worker, or
// one removed in the new build) is reported as kNotRegistered, not as a pass.
// The Durable Task protocol has no replay-only mode for a connected worker,
// so SDK orchestrators are not checked (docs/preflight.md).
//
// Thread-safety: Preflight may run on any thread; the registry is only read.
// Orchestrator code runs on the calling thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "baton/instance.h"
#include "baton/registry.h"
#include "baton/status.h"
#include "baton/store_reader.h"

namespace baton {

enum class PreflightOutcome {
  kPasses,            // the new code replays the whole history
  kNonDeterministic,  // the new code diverges from history (see divergence)
  kFails,             // the new code throws or completes where the old code did not
  kNotRegistered,     // no orchestrator of that name in the new registry: not checked
  kUnreadable,        // the history could not be read (error)
};

// "passes", "non-deterministic", "fails", "not-registered", "unreadable".
const char* PreflightOutcomeName(PreflightOutcome outcome);

struct PreflightDivergence {
  int64_t event_index = 0;  // position in the history (0-based)
  std::string event_kind;   // the history event where the replay diverged
  int32_t event_id = 0;
  std::string expected;     // what history recorded
  std::string actual;       // what the new code produced
};

struct PreflightFinding {
  std::string instance_id;
  std::string name;  // orchestrator name
  OrchestrationStatus status = OrchestrationStatus::kRunning;
  PreflightOutcome outcome = PreflightOutcome::kPasses;
  int64_t events = 0;  // history events replayed
  std::optional<PreflightDivergence> divergence;  // kNonDeterministic
  std::string error;  // kFails, kUnreadable, kNotRegistered: why, in a sentence
};

struct PreflightReport {
  // One finding per live instance checked, ordered by instance id.
  std::vector<PreflightFinding> findings;
  int passes = 0;
  int non_deterministic = 0;
  int fails = 0;
  int not_registered = 0;
  int unreadable = 0;
  bool truncated = false;  // max_instances stopped the scan early

  // True when no checked instance would break (kNonDeterministic, kFails).
  // kNotRegistered and kUnreadable do not count here; callers decide.
  bool Safe() const { return non_deterministic == 0 && fails == 0; }
};

struct PreflightOptions {
  // Only instances whose id starts with this ("" = every instance, every hub).
  std::string instance_id_prefix;
  // Which statuses count as live. Default: Running and Suspended.
  std::vector<OrchestrationStatus> statuses = {OrchestrationStatus::kRunning,
                                               OrchestrationStatus::kSuspended};
  // Most instances checked (1..10,000,000); the report says when it stopped early.
  int64_t max_instances = 1'000'000;
  // Skip platform instances (orchestrators named "baton.…", e.g. the batch
  // job orchestration): they belong to the server binary, not to the build
  // under test. They are reported as kNotRegistered when not skipped and the
  // registry lacks them.
  bool skip_platform = true;
};

// Replays every live instance read from `reader` against `registry`.
// InvalidArgument: bad options. Errors of the reader's listing (Unavailable,
// DataLoss, …) end the run and are returned; an instance whose history cannot
// be read is a kUnreadable finding and the run goes on.
Result<PreflightReport> Preflight(StoreReader& reader, const Registry& registry,
                                  const PreflightOptions& options = {});

// Replays one history (the events of one execution, as Store::GetHistory
// returns them) of an instance named `instance_id`. Never fails as a call:
// the finding says what happened. `finding.status` is left as given.
PreflightFinding PreflightHistory(const std::string& instance_id,
                                  const std::vector<HistoryEvent>& history,
                                  const Registry& registry);

// The registration function a shared library of a new build exports for
// `baton preflight --registry-from lib.so`:
//
//   extern "C" void baton_register(baton::Registry& registry) { … }
//
// It adds the build's orchestrators (and, optionally, activities and
// entities; preflight never runs them) to `registry`.
using RegisterFn = void (*)(Registry& registry);
inline constexpr const char* kRegisterSymbol = "baton_register";

}  // namespace baton
