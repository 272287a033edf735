// Turning an orchestration episode into the store update that commits it:
// each action's history event and the message or activity task it sends, and
// the episode's end (completion, what it tells the parent and children,
// status, custom status). Shared by the in-process Worker and the gRPC
// sidecar, whose external SDK workers send the same kind of actions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "baton/store.h"
#include "core/executor.h"

namespace baton::engine {

// Turns each new action into its history event and the message or task it sends.
void AddActions(const std::vector<core::Action>& actions, const std::string& instance_id,
                const std::string& execution_id, const std::string& orchestrator_name, TimePoint now,
                OrchestrationUpdate& update);

// Closes the episode: completion (and what it tells parent and children),
// status, custom status.
void FinishEpisode(const core::Episode& episode, const std::optional<ParentInstance>& parent,
                   const std::string& instance_id, TimePoint now, bool sync_every_episode,
                   OrchestrationUpdate& update);

}  // namespace baton::engine
