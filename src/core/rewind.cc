#include "core/rewind.h"

#include <map>
#include <set>

namespace baton::core {

RewoundHistory RewindHistory(const std::vector<HistoryEvent>& history) {
  std::set<int32_t> failed_tasks;
  std::set<int32_t> failed_children;
  std::set<int32_t> answered;  // tasks that completed, timers that fired
  for (const HistoryEvent& e : history) {
    if (const auto* f = std::get_if<events::TaskFailed>(&e.body)) failed_tasks.insert(f->task_scheduled_id);
    if (const auto* c = std::get_if<events::TaskCompleted>(&e.body)) answered.insert(c->task_scheduled_id);
    if (const auto* t = std::get_if<events::TimerFired>(&e.body)) answered.insert(t->timer_id);
    if (const auto* f = std::get_if<events::SubOrchestrationInstanceFailed>(&e.body)) {
      failed_children.insert(f->task_scheduled_id);
    }
  }
  RewoundHistory out;
  bool removed_action = false;
  for (const HistoryEvent& e : history) {
    if (std::holds_alternative<events::TaskFailed>(e.body) ||
        std::holds_alternative<events::SubOrchestrationInstanceFailed>(e.body) ||
        std::holds_alternative<events::ExecutionCompleted>(e.body)) {
      continue;
    }
    // Failed tasks, and tasks and timers still outstanding when the run
    // failed: their answers, if they come at all, reach a Failed instance and
    // are dropped, so the rewound run schedules them anew.
    const bool task = std::holds_alternative<events::TaskScheduled>(e.body);
    const bool timer = std::holds_alternative<events::TimerCreated>(e.body);
    if ((task && (failed_tasks.contains(e.event_id) || !answered.contains(e.event_id))) ||
        (timer && !answered.contains(e.event_id))) {
      removed_action = true;
      continue;
    }
    // From the first removed action on, the episodes' end markers go too: the
    // replay produces that action again and it stays pending until the
    // rewound run's first episode, which schedules it anew.
    if (removed_action && std::holds_alternative<events::OrchestratorCompleted>(e.body)) continue;
    if (const auto* c = std::get_if<events::SubOrchestrationInstanceCreated>(&e.body);
        c != nullptr && failed_children.contains(e.event_id)) {
      out.failed_children.push_back(c->instance_id);
    }
    out.events.push_back(e);
  }
  return out;
}

}  // namespace baton::core
