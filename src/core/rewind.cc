#include "core/rewind.h"

#include <set>

namespace baton::core {

RewoundHistory RewindHistory(const std::vector<HistoryEvent>& history, const std::set<std::string>& recreate) {
  std::set<int32_t> failed_tasks;
  std::set<int32_t> answered;  // tasks that completed, timers that fired, children that answered
  std::set<int32_t> failed_children;
  std::set<int32_t> taken_children;  // failed as InstanceAlreadyExists: the id was someone else's
  std::set<std::string> entity_answers;
  std::set<std::string> granted;
  size_t last_episode = 0;
  for (size_t i = 0; i < history.size(); ++i) {
    const HistoryEvent& e = history[i];
    if (std::holds_alternative<events::OrchestratorStarted>(e.body)) last_episode = i;
    if (const auto* f = std::get_if<events::TaskFailed>(&e.body)) failed_tasks.insert(f->task_scheduled_id);
    if (const auto* c = std::get_if<events::TaskCompleted>(&e.body)) answered.insert(c->task_scheduled_id);
    if (const auto* t = std::get_if<events::TimerFired>(&e.body)) answered.insert(t->timer_id);
    if (const auto* c = std::get_if<events::SubOrchestrationInstanceCompleted>(&e.body)) {
      answered.insert(c->task_scheduled_id);
    }
    if (const auto* f = std::get_if<events::SubOrchestrationInstanceFailed>(&e.body)) {
      answered.insert(f->task_scheduled_id);
      (f->failure.error_type == "InstanceAlreadyExists" ? taken_children : failed_children)
          .insert(f->task_scheduled_id);
    }
    if (const auto* a = std::get_if<events::EntityOperationCompleted>(&e.body)) entity_answers.insert(a->request_id);
    if (const auto* a = std::get_if<events::EntityOperationFailed>(&e.body)) entity_answers.insert(a->request_id);
    if (const auto* g = std::get_if<events::EntityLockGranted>(&e.body)) granted.insert(g->critical_section_id);
  }
  RewoundHistory out;
  for (size_t i = 0; i < history.size(); ++i) {
    const HistoryEvent& e = history[i];
    if (i > last_episode && std::holds_alternative<events::EntityUnlockSent>(e.body)) {
      out.refusal = "it failed inside a critical section, whose locks were released as it failed";
    }
    if (const auto* c = std::get_if<events::EntityOperationCalled>(&e.body); c && !entity_answers.contains(c->request_id)) {
      out.refusal = "it failed while waiting for entity '" + c->target_instance_id + "' to answer";
    }
    if (const auto* l = std::get_if<events::EntityLockRequested>(&e.body);
        l && !granted.contains(l->critical_section_id)) {
      out.refusal = "it failed while waiting for entity locks";
    }
  }
  if (!out.refusal.empty()) {
    out.refusal = "cannot rewind: " + out.refusal + "; restart it instead";
    return out;
  }
  std::set<int32_t> recreated;  // Created events dropped: their Failed events go too
  for (const HistoryEvent& e : history) {
    if (const auto* c = std::get_if<events::SubOrchestrationInstanceCreated>(&e.body);
        c && (taken_children.contains(e.event_id) || recreate.contains(c->instance_id))) {
      recreated.insert(e.event_id);
    }
  }
  bool removed_action = false;
  for (size_t index = 0; index < history.size(); ++index) {
    const HistoryEvent& e = history[index];
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
    const bool child = std::holds_alternative<events::SubOrchestrationInstanceCreated>(e.body);
    if ((task && (failed_tasks.contains(e.event_id) || !answered.contains(e.event_id))) ||
        (timer && !answered.contains(e.event_id)) || (child && recreated.contains(e.event_id))) {
      removed_action = true;
      continue;
    }
    // From the first removed action on, the episodes' end markers go too: the
    // replay produces that action again and it stays pending until the
    // rewound run's first episode, which schedules it anew.
    // So does the failing episode's: its actions were discarded when the
    // run failed, and the replay produces them again.
    if ((removed_action || index >= last_episode) && std::holds_alternative<events::OrchestratorCompleted>(e.body)) {
      continue;
    }
    if (const auto* c = std::get_if<events::SubOrchestrationInstanceCreated>(&e.body)) {
      if (failed_children.contains(e.event_id)) out.failed_children.push_back(ChildRef{c->instance_id, e.event_id});
      if (!answered.contains(e.event_id)) out.unanswered_children.push_back(ChildRef{c->instance_id, e.event_id});
    }
    out.events.push_back(e);
  }
  return out;
}

}  // namespace baton::core
