#include "engine/rewind_plan.h"

#include <algorithm>
#include <set>

#include "core/rewind.h"

namespace baton::engine {

namespace {
constexpr int kMaxDepth = 16;
}

Result<RewindPlan> PlanRewind(Store& store, const std::string& instance_id, const std::string& execution_id,
                              TimePoint now, int depth) {
  BATON_ASSIGN_OR_RETURN(std::vector<HistoryEvent> history, store.GetHistory(instance_id));
  RewindPlan plan;
  plan.ended = std::any_of(history.begin(), history.end(), [](const HistoryEvent& e) {
    return std::holds_alternative<events::ExecutionCompleted>(e.body);
  });
  if (!plan.ended) return plan;
  core::RewoundHistory rewound = core::RewindHistory(history);
  if (!rewound.refusal.empty()) {
    plan.refusal = rewound.refusal;
    return plan;
  }
  std::set<std::string> recreate;
  auto consider = [&](const core::ChildRef& c) -> Status {
    auto s = store.GetInstance(c.instance_id, /*include_payloads=*/true);
    if (!s.ok() && s.status().code() != StatusCode::kNotFound) return s.status();
    if (!s.ok() || s->parent_instance_id != instance_id) {
      recreate.insert(c.instance_id);  // gone, or the id is someone else's
      return Status::Ok();
    }
    switch (s->status) {
      case OrchestrationStatus::kFailed:
      case OrchestrationStatus::kPending: {  // Pending with a history: already being rewound
        if (depth < kMaxDepth) {
          BATON_ASSIGN_OR_RETURN(RewindPlan child, PlanRewind(store, c.instance_id, s->execution_id, now, depth + 1));
          if (!child.refusal.empty() && plan.refusal.empty()) {
            plan.refusal = "sub-orchestration '" + c.instance_id + "': " + child.refusal;
          }
        }
        plan.rewind_children.push_back(c.instance_id);
        return Status::Ok();
      }
      case OrchestrationStatus::kCompleted:
        plan.answers.push_back(Message{0, instance_id, execution_id, now,
                                       HistoryEvent{-1, now, events::SubOrchestrationInstanceCompleted{c.task_id, s->output}}});
        return Status::Ok();
      default:
        if (IsTerminal(s->status)) {
          FailureDetails f = s->failure.value_or(FailureDetails{
              "SubOrchestrationEnded",
              "the sub-orchestration ended as " + std::string(OrchestrationStatusName(s->status)), "", "", true, {}});
          plan.answers.push_back(Message{0, instance_id, execution_id, now,
                                         HistoryEvent{-1, now, events::SubOrchestrationInstanceFailed{c.task_id, f}}});
        }
        return Status::Ok();  // still running: it answers the rewound run itself
    }
  };
  for (const core::ChildRef& c : rewound.failed_children) BATON_RETURN_IF_ERROR(consider(c));
  for (const core::ChildRef& c : rewound.unanswered_children) BATON_RETURN_IF_ERROR(consider(c));
  if (!plan.refusal.empty()) return plan;
  if (!recreate.empty()) rewound = core::RewindHistory(history, recreate);
  plan.events = std::move(rewound.events);
  plan.recreated = recreate.size();
  return plan;
}

bool IsAnswer(const EventBody& body) {
  return std::holds_alternative<events::TaskCompleted>(body) || std::holds_alternative<events::TaskFailed>(body) ||
         std::holds_alternative<events::TimerFired>(body) ||
         std::holds_alternative<events::SubOrchestrationInstanceCompleted>(body) ||
         std::holds_alternative<events::SubOrchestrationInstanceFailed>(body);
}

}  // namespace baton::engine
