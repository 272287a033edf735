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

#include <cstdint>
#include <string>
#include <vector>

#include "baton/registry.h"
#include "baton/store.h"
#include "baton/worker.h"

namespace baton::engine {

struct EntityBatch {
  std::string state;            // the new durable state (JSON text)
  std::vector<Message> outbox;  // to send in the same commit
  int operations_run = 0;
};

// A batch decided but not yet run: which operations run, in which order,
// and what the lock protocol sends. Operations cannot take or release
// locks, so the plan does not depend on what they do.
struct EntityBatchPlan {
  std::string instance_id;
  bool has_state = false;
  Json state;                                   // the user state before the batch
  std::vector<EntityOperationRequest> operations;
  std::vector<HistoryEvent> sources;            // the message of each operation
  std::vector<Message> lock_messages;           // grants and forwarded lock requests
  std::string lock_owner;                       // after the batch
  std::string lock_section;
  std::vector<HistoryEvent> queue;              // waiting for the lock after the batch
  std::string persisted;                        // what it was planned from
  std::vector<Message> messages;
};

// `persisted` is the entity's durable state ("" for a new entity). With
// `max_operations`, planning stops before the operation past that many: it
// and every message after it wait, in order, for the next batch.
EntityBatchPlan PlanEntityBatch(const std::string& instance_id, const std::string& persisted,
                                const std::vector<Message>& messages, TimePoint now,
                                size_t max_operations = SIZE_MAX);

// The batch's durable state and outbox from the operations' results
// (index-aligned with plan.operations). With fewer results than operations,
// the batch is planned again up to the last operation that ran, so that what
// was not reached, and everything after it, waits in arrival order.
EntityBatch FinishEntityBatch(EntityBatchPlan plan, bool has_state, Json state,
                              std::vector<EntityOperationResult> results, TimePoint now);

// Plans, runs the operations with the registry's entity, and finishes.
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
