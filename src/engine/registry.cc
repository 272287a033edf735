#include "baton/registry.h"

#include "baton/instance.h"

namespace baton {

Status Registry::AddOrchestrator(std::string name, OrchestratorFn fn) {
  if (name.empty()) return InvalidArgumentError("orchestrator name must not be empty");
  if (!fn) return InvalidArgumentError("orchestrator '" + name + "' has no function");
  auto [it, inserted] = orchestrators_.emplace(std::move(name), std::move(fn));
  if (!inserted) return AlreadyExistsError("orchestrator '" + it->first + "' is already registered");
  return Status::Ok();
}

Status Registry::AddActivity(std::string name, ActivityFn fn) {
  if (name.empty()) return InvalidArgumentError("activity name must not be empty");
  if (!fn) return InvalidArgumentError("activity '" + name + "' has no function");
  auto [it, inserted] = activities_.emplace(std::move(name), std::move(fn));
  if (!inserted) return AlreadyExistsError("activity '" + it->first + "' is already registered");
  return Status::Ok();
}

Status Registry::AddEntity(std::string name, EntityFn fn) {
  if (name.empty() || name.find('@') != std::string::npos) {
    return InvalidArgumentError("entity name must be non-empty and contain no '@'");
  }
  if (!fn) return InvalidArgumentError("entity '" + name + "' has no function");
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto [it, inserted] = entities_.emplace(std::move(name), std::move(fn));
  if (!inserted) return AlreadyExistsError("entity '" + it->first + "' is already registered");
  return Status::Ok();
}

const EntityFn* Registry::FindEntity(std::string_view name) const {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = entities_.find(lower);
  return it == entities_.end() ? nullptr : &it->second;
}

const OrchestratorFn* Registry::FindOrchestrator(std::string_view name) const {
  auto it = orchestrators_.find(name);
  return it == orchestrators_.end() ? nullptr : &it->second;
}

const ActivityFn* Registry::FindActivity(std::string_view name) const {
  auto it = activities_.find(name);
  return it == activities_.end() ? nullptr : &it->second;
}

bool Registry::IsPlatformName(std::string_view name) { return name.substr(0, kPlatformPrefix.size()) == kPlatformPrefix; }

const OrchestratorFn* Registry::FindOrchestratorFor(std::string_view name, std::string_view instance_id) const {
  if (IsPlatformName(name) && !HubOf(instance_id).empty()) {
    auto it = tenant_orchestrators_.find(name);
    return it == tenant_orchestrators_.end() ? nullptr : &it->second;
  }
  return FindOrchestrator(name);
}

const ActivityFn* Registry::FindActivityFor(std::string_view name, std::string_view instance_id) const {
  if (IsPlatformName(name) && !HubOf(instance_id).empty()) {
    auto it = tenant_activities_.find(name);
    return it == tenant_activities_.end() ? nullptr : &it->second;
  }
  return FindActivity(name);
}

Status Registry::AddTenantOrchestrator(std::string name, OrchestratorFn fn) {
  if (!IsPlatformName(name)) return InvalidArgumentError("a tenant entry point has a platform name: '" + name + "'");
  if (!fn) return InvalidArgumentError("orchestrator '" + name + "' has no function");
  auto [it, inserted] = tenant_orchestrators_.emplace(std::move(name), std::move(fn));
  if (!inserted) return AlreadyExistsError("tenant orchestrator '" + it->first + "' is already registered");
  return Status::Ok();
}

Status Registry::AddTenantActivity(std::string name, ActivityFn fn) {
  if (!IsPlatformName(name)) return InvalidArgumentError("a tenant entry point has a platform name: '" + name + "'");
  if (!fn) return InvalidArgumentError("activity '" + name + "' has no function");
  auto [it, inserted] = tenant_activities_.emplace(std::move(name), std::move(fn));
  if (!inserted) return AlreadyExistsError("tenant activity '" + it->first + "' is already registered");
  return Status::Ok();
}

std::vector<std::string> Registry::OrchestratorNames() const {
  std::vector<std::string> out;
  for (const auto& [name, fn] : orchestrators_) out.push_back(name);
  return out;
}

std::vector<std::string> Registry::ActivityNames() const {
  std::vector<std::string> out;
  for (const auto& [name, fn] : activities_) out.push_back(name);
  return out;
}

}  // namespace baton
