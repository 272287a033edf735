// The capacity scheduler: a durable entity that decides which job runs when.
//
// One entity ("@scheduler@node") holds the node's capacity, each tenant's
// quota (CPU, memory, concurrent jobs) and weight, what runs, and the queue.
// A job orchestration asks for its job's resources with the operation
// "request"; it is granted at once when its tenant's quota and the node allow
// and nobody with a better claim is waiting, and otherwise queued. Each time
// resources free up ("release"), queued jobs are granted by weighted fair
// share: among tenants whose next job fits, the one with the lowest dominant
// share (its largest fraction of the node's CPU or memory in use, divided by
// its weight) goes first, so a tenant with a long backlog cannot starve a small
// one. Within a tenant, higher priority first, then arrival order. A job
// granted later is told by the event "QuotaGranted" raised on its
// orchestration.
//
// Operations (inputs and results are JSON):
//   setCapacity {cpu, memoryMb[, largestNode {cpu, memoryMb}, nodes]}
//               the machine's (or a cluster's: the sum over its nodes, which
//               grants are checked against, and its largest node, which a
//               submitted job is checked against: cluster_capacity.h)
//   setTenant   {tenant, cpu, memoryMb, jobs, weight}   quota; 0 = unlimited
//   request     {job, tenant, instance, cpu, memoryMb, priority}
//               -> {granted: bool, position: n}   (idempotent per job)
//   resize      {job, tenant, instance, cpu, memoryMb, priority}
//               -> {granted, position} | {granted: false, neverFits: true,
//               reason}: the job's new size (a retry with more memory after
//               an OOM kill); a size that can never fit keeps the old claim
//   release     {job}
//   position    {job} -> {granted, position}      (1-based place in the node's
//               queue, in arrival order; 0 when granted or unknown)
//   snapshot    -> the whole state (for status pages and tests)
#pragma once

#include <optional>
#include <string>

#include "baton/entity.h"
#include "baton/registry.h"

namespace baton::batch {

inline constexpr char kSchedulerEntity[] = "scheduler";
inline constexpr char kSchedulerKey[] = "node";
inline constexpr char kQuotaGrantedEvent[] = "QuotaGranted";

// The scheduler's code, to register as entity kSchedulerEntity.
Json SchedulerEntity(EntityContext& ctx);

// The admission rules on a state of the entity (as "snapshot" returns it),
// shared by the entity and the admission ETA (admission_eta.h), so that the
// estimate walks the queue in the order the scheduler really grants it. Each
// may add a default entry for a tenant the state does not know yet.
//
// The state with every member present (an empty or partial one filled in).
Json NormalizedSchedulerState(Json state);
// The index in state["queue"] of the job granted next: each tenant's next job
// (highest priority, then earliest), the one of the tenant with the lowest
// dominant share among those that fit its tenant's quota and the node;
// nullopt when none fits. REQUIRES: a normalized state.
std::optional<size_t> NextSchedulerGrant(Json& state);
// Moves state["queue"][index] to state["running"], charging its tenant;
// returns the entry.
Json GrantSchedulerJob(Json& state, size_t index);
// Frees a running job's resources and drops the job from the queue (no-op
// for a job the state does not hold). Returns the arrival number ("seq") of
// the claim taken back (its queue entry's when it had one), or nullopt.
std::optional<int64_t> ReleaseSchedulerJob(Json& state, const std::string& job);

}  // namespace baton::batch
