#include "engine/episode_update.h"

#include "util/overloaded.h"
#include "util/uuid.h"

namespace baton::engine {

using util::Overloaded;

// Turns each new action into its history event and the message or task it sends.
void AddActions(const std::vector<core::Action>& actions, const std::string& instance_id,
                const std::string& execution_id, const std::string& orchestrator_name, TimePoint now,
                OrchestrationUpdate& update) {
  for (const core::Action& action : actions) {
    HistoryEvent recorded;
    recorded.event_id = action.id;
    recorded.timestamp = now;
    std::visit(
        Overloaded{
            [&](const core::actions::ScheduleTask& a) {
              recorded.body = events::TaskScheduled{a.name, a.version, a.input};
              update.tasks.push_back(ActivityTask{0, instance_id, execution_id, action.id, a.name,
                                                  a.version, a.input, now});
            },
            [&](const core::actions::CreateTimer& a) {
              recorded.body = events::TimerCreated{a.fire_at};
              update.outbox.push_back(
                  Message{0, instance_id, execution_id, a.fire_at,
                          HistoryEvent{-1, a.fire_at, events::TimerFired{a.fire_at, action.id}}});
            },
            [&](const core::actions::CreateSubOrchestration& a) {
              recorded.body =
                  events::SubOrchestrationInstanceCreated{a.instance_id, a.name, a.version, a.input};
              events::ExecutionStarted started;
              started.name = a.name;
              started.version = a.version;
              started.input = a.input;
              started.instance_id = a.instance_id;
              started.execution_id = util::NewExecutionId();
              started.parent = ParentInstance{action.id, orchestrator_name, instance_id, execution_id};
              std::string child_execution = started.execution_id;
              update.outbox.push_back(Message{0, a.instance_id, std::move(child_execution), now,
                                              HistoryEvent{-1, now, std::move(started)}});
            },
            [&](const core::actions::SendEvent& a) {
              recorded.body = events::EventSent{a.instance_id, a.name, a.input};
              update.outbox.push_back(
                  Message{0, a.instance_id, "", now,
                          HistoryEvent{-1, now, events::EventRaised{a.name, a.input}}});
            },
            [&](const core::actions::SignalEntity& a) {
              events::EntityOperationSignaled e{a.request_id, a.operation, a.scheduled_time, a.input,
                                                a.target_instance_id};
              recorded.body = e;
              update.outbox.push_back(Message{0, a.target_instance_id, "", a.scheduled_time.value_or(now),
                                              HistoryEvent{-1, now, std::move(e)}});
            },
            [&](const core::actions::CallEntity& a) {
              events::EntityOperationCalled e{a.request_id, a.operation,  std::nullopt,
                                              a.input,      instance_id,  execution_id,
                                              a.target_instance_id};
              recorded.body = e;
              update.outbox.push_back(
                  Message{0, a.target_instance_id, "", now, HistoryEvent{-1, now, std::move(e)}});
            },
            [&](const core::actions::LockEntities& a) {
              events::EntityLockRequested e{a.critical_section_id, a.lock_set, 0, instance_id};
              recorded.body = e;
              update.outbox.push_back(
                  Message{0, a.lock_set.front(), "", now, HistoryEvent{-1, now, std::move(e)}});
            },
            [&](const core::actions::UnlockEntity& a) {
              events::EntityUnlockSent e{a.critical_section_id, instance_id, a.target_instance_id};
              recorded.body = e;
              update.outbox.push_back(
                  Message{0, a.target_instance_id, "", now, HistoryEvent{-1, now, std::move(e)}});
            },
        },
        action.body);
    update.new_events.push_back(std::move(recorded));
  }
}

// Closes the episode: completion (and what it tells parent and children),
// status, custom status.
void FinishEpisode(const core::Episode& episode, const std::optional<ParentInstance>& parent,
                   const std::string& instance_id, TimePoint now, bool sync_every_episode,
                   OrchestrationUpdate& update) {
  if (episode.completion) {
    const core::Completion& c = *episode.completion;
    update.new_events.push_back(
        HistoryEvent{-1, now, events::ExecutionCompleted{c.status, c.result, c.failure}});
    update.status = c.status;
    update.output = c.result;
    update.failure = c.failure;
    update.sync = true;
    if (parent) {
      HistoryEvent note{-1, now, events::OrchestratorStarted{}};
      if (c.status == OrchestrationStatus::kCompleted) {
        note.body = events::SubOrchestrationInstanceCompleted{parent->task_scheduled_id, c.result};
      } else {
        FailureDetails failure =
            c.failure ? *c.failure
                      : FailureDetails{"OrchestrationTerminated",
                                       "sub-orchestration '" + instance_id + "' was terminated"};
        note.body = events::SubOrchestrationInstanceFailed{parent->task_scheduled_id, std::move(failure)};
      }
      update.outbox.push_back(Message{0, parent->instance_id, parent->execution_id, now, std::move(note)});
    }
    for (const std::string& child : c.terminate_children) {
      update.outbox.push_back(Message{0, child, "", now,
                                      HistoryEvent{-1, now, events::ExecutionTerminated{c.result, true}}});
    }
  } else {
    update.status = episode.suspended ? OrchestrationStatus::kSuspended : OrchestrationStatus::kRunning;
    update.sync = sync_every_episode;
  }
  update.custom_status = episode.custom_status;
  update.new_events.push_back(HistoryEvent{-1, now, events::OrchestratorCompleted{}});
}

}  // namespace baton::engine
