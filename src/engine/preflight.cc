// Deploy preflight (baton/preflight.h): the worker's cache-miss replay, run
// against a new registry over a read-only view of the task hub.
#include "baton/preflight.h"

#include <algorithm>
#include <variant>

#include "core/executor.h"

namespace baton {
namespace {

// True when the history already records the end of the execution: the
// instance finished between the listing and the read of its history.
bool HistoryEnds(const std::vector<HistoryEvent>& history) {
  for (const HistoryEvent& e : history) {
    if (std::holds_alternative<events::ExecutionCompleted>(e.body) ||
        std::holds_alternative<events::ExecutionTerminated>(e.body)) {
      return true;
    }
  }
  return false;
}

}  // namespace

const char* PreflightOutcomeName(PreflightOutcome outcome) {
  switch (outcome) {
    case PreflightOutcome::kPasses: return "passes";
    case PreflightOutcome::kNonDeterministic: return "non-deterministic";
    case PreflightOutcome::kFails: return "fails";
    case PreflightOutcome::kNotRegistered: return "not-registered";
    case PreflightOutcome::kUnreadable: return "unreadable";
  }
  return "unknown";
}

PreflightFinding PreflightHistory(const std::string& instance_id,
                                  const std::vector<HistoryEvent>& history,
                                  const Registry& registry) {
  PreflightFinding f;
  f.instance_id = instance_id;
  for (const HistoryEvent& e : history) {
    if (const auto* s = std::get_if<events::ExecutionStarted>(&e.body)) {
      f.name = s->name;
      break;
    }
  }
  if (f.name.empty()) return f;  // not started yet: nothing recorded, nothing to diverge from
  if (registry.FindOrchestratorFor(f.name, instance_id) == nullptr) {
    f.outcome = PreflightOutcome::kNotRegistered;
    f.error = "the new registry has no orchestrator named '" + f.name +
              "' (an SDK orchestrator, a platform one, or one removed in the new build)";
    return f;
  }
  core::Executor executor(
      [&registry, &instance_id](std::string_view name) {
        return registry.FindOrchestratorFor(name, instance_id);
      },
      instance_id);
  // Orchestrator code may throw anywhere; the executor turns that into a
  // failed completion, as in a worker.
  for (const HistoryEvent& e : history) executor.Apply(e, /*replaying=*/true);
  f.events = static_cast<int64_t>(history.size());
  core::Episode episode = executor.TakeEpisode();
  if (const auto& d = executor.FirstDivergence()) {
    f.outcome = PreflightOutcome::kNonDeterministic;
    f.divergence = PreflightDivergence{d->event_index, d->event_kind, d->event_id, d->expected,
                                       d->actual};
    return f;
  }
  if (episode.completion && !HistoryEnds(history)) {
    f.outcome = PreflightOutcome::kFails;
    if (episode.completion->status == OrchestrationStatus::kFailed && episode.completion->failure) {
      f.error = "the new code fails while replaying: " + episode.completion->failure->error_type +
                ": " + episode.completion->failure->error_message;
    } else {
      f.error = std::string("the new code ends the execution (") +
                std::string(OrchestrationStatusName(episode.completion->status)) +
                ") within the recorded history, where the running code goes on";
    }
  }
  return f;
}

Result<PreflightReport> Preflight(StoreReader& reader, const Registry& registry,
                                  const PreflightOptions& options) {
  if (options.max_instances < 1 || options.max_instances > 10'000'000) {
    return InvalidArgumentError("PreflightOptions.max_instances must be within 1..10000000");
  }
  if (options.statuses.empty()) return InvalidArgumentError("PreflightOptions.statuses is empty");
  PreflightReport report;
  InstanceQuery query;
  query.statuses = options.statuses;
  query.instance_id_prefix = options.instance_id_prefix;
  query.page_size = 500;
  for (;;) {
    BATON_ASSIGN_OR_RETURN(QueryPage page, reader.QueryInstances(query));
    for (const InstanceState& state : page.instances) {
      if (IsEntityInstanceId(state.instance_id)) continue;
      if (options.skip_platform && Registry::IsPlatformName(state.name)) continue;
      if (static_cast<int64_t>(report.findings.size()) >= options.max_instances) {
        report.truncated = true;
        break;
      }
      PreflightFinding f;
      Result<std::vector<HistoryEvent>> history = reader.GetHistory(state.instance_id);
      if (!history.ok()) {
        f.instance_id = state.instance_id;
        f.name = state.name;
        f.outcome = PreflightOutcome::kUnreadable;
        f.error = history.status().ToString();
      } else {
        f = PreflightHistory(state.instance_id, *history, registry);
        if (f.name.empty()) f.name = state.name;
      }
      f.status = state.status;
      switch (f.outcome) {
        case PreflightOutcome::kPasses: ++report.passes; break;
        case PreflightOutcome::kNonDeterministic: ++report.non_deterministic; break;
        case PreflightOutcome::kFails: ++report.fails; break;
        case PreflightOutcome::kNotRegistered: ++report.not_registered; break;
        case PreflightOutcome::kUnreadable: ++report.unreadable; break;
      }
      report.findings.push_back(std::move(f));
    }
    if (report.truncated || page.continuation_token.empty()) break;
    query.continuation_token = page.continuation_token;
  }
  return report;
}

}  // namespace baton
