// Registry: the named orchestrators, activities and entities a worker can run.
//
// Names are case-sensitive and unique per kind. Register everything before
// handing the registry to a Worker; after that the registry is read-only and
// may be shared by any number of threads.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "baton/activity.h"
#include "baton/entity.h"
#include "baton/orchestration.h"
#include "baton/status.h"

namespace baton {

class Registry {
 public:
  // InvalidArgument: empty name or empty function. AlreadyExists: name taken.
  Status AddOrchestrator(std::string name, OrchestratorFn fn);
  Status AddActivity(std::string name, ActivityFn fn);
  // Entity names are case-insensitive (kept lower-cased, like EntityId).
  Status AddEntity(std::string name, EntityFn fn);

  // Null when not registered. The pointer lives as long as the registry.
  const OrchestratorFn* FindOrchestrator(std::string_view name) const;
  const ActivityFn* FindActivity(std::string_view name) const;
  const EntityFn* FindEntity(std::string_view name) const;

  // Platform functions: orchestrators and activities whose names start with
  // "baton." (kPlatformPrefix) belong to the deployment itself, e.g. the
  // batch platform's job orchestration, which runs whatever spec its input
  // holds with the secrets of whatever job it names. They run only for
  // instances of the default task hub. For an instance of a tenant's hub
  // ("<hub>::…") the lookups below do not see them, exactly as if they were
  // not registered: a tenant can neither start one nor call one from its
  // orchestrations or SDK workers, whatever input it would give. A worker
  // uses these lookups, never the name-only ones above, to decide what runs.
  static constexpr std::string_view kPlatformPrefix = "baton.";
  static bool IsPlatformName(std::string_view name);
  // As FindOrchestrator / FindActivity, for work of `instance_id`.
  const OrchestratorFn* FindOrchestratorFor(std::string_view name, std::string_view instance_id) const;
  const ActivityFn* FindActivityFor(std::string_view name, std::string_view instance_id) const;

  // Tenant entry points: the few platform functions a tenant's hub may reach,
  // each a function of its own written for tenant input (never the default
  // hub's function of the same name). For an instance of a tenant's hub,
  // FindOrchestratorFor / FindActivityFor return these, and only these,
  // under a platform name. The batch platform registers "baton.Job" (a job
  // started from a tenant's orchestration, with every check of a submit) and
  // the one activity it calls. InvalidArgument: not a platform name, or no
  // function. AlreadyExists: name taken.
  Status AddTenantOrchestrator(std::string name, OrchestratorFn fn);
  Status AddTenantActivity(std::string name, ActivityFn fn);

  std::vector<std::string> OrchestratorNames() const;
  std::vector<std::string> ActivityNames() const;

 private:
  std::map<std::string, OrchestratorFn, std::less<>> orchestrators_;
  std::map<std::string, ActivityFn, std::less<>> activities_;
  std::map<std::string, EntityFn, std::less<>> entities_;
  std::map<std::string, OrchestratorFn, std::less<>> tenant_orchestrators_;
  std::map<std::string, ActivityFn, std::less<>> tenant_activities_;
};

}  // namespace baton
