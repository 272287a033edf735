#include "core/rewind.h"

#include <map>
#include <set>

namespace baton::core {

RewoundHistory RewindHistory(const std::vector<HistoryEvent>& history) {
  std::set<int32_t> failed_tasks;
  std::set<int32_t> failed_children;
  for (const HistoryEvent& e : history) {
    if (const auto* f = std::get_if<events::TaskFailed>(&e.body)) failed_tasks.insert(f->task_scheduled_id);
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
    if (std::holds_alternative<events::TaskScheduled>(e.body) && failed_tasks.contains(e.event_id)) {
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
