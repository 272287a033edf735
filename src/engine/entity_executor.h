// Runs one batch of a durable entity's messages: its operations, one at a
// time, and the lock protocol of critical sections.
//
// An entity's durable state (kept in its instance row's output, as JSON) is
// its user state plus the scheduler's: who holds its lock, and the messages
// that had to wait for that lock to be released. A batch takes that state and
// the new messages, and returns the new state and every message to send
// (answers to callers, forwarded lock requests, signals, orchestration
// starts), which the worker commits in one transaction.
//
// Pure logic but for the entity code it calls. Thread-safety: none needed.
#pragma once

#include <string>
#include <vector>

#include "baton/registry.h"
#include "baton/store.h"

namespace baton::engine {

struct EntityBatch {
  std::string state;            // the new durable state (JSON text)
  std::vector<Message> outbox;  // to send in the same commit
  int operations_run = 0;
};

// `persisted` is the entity's durable state ("" for a new entity).
EntityBatch RunEntityBatch(const Registry& registry, const std::string& instance_id,
                           const std::string& persisted, const std::vector<Message>& messages,
                           TimePoint now);

// What clients see of an entity's durable state.
struct EntityView {
  bool has_state = false;
  std::string state;       // JSON text ("" without state)
  std::string locked_by;   // owner instance id, "" when unlocked
  std::string critical_section;  // the lock's critical section id
  int backlog = 0;         // messages waiting for the lock
};
EntityView ViewEntityState(const std::string& persisted);

}  // namespace baton::engine
