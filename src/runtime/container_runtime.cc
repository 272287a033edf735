#include "runtime/container_runtime.h"

#include <algorithm>

namespace baton::runtime {

Result<std::vector<std::string>> RemoveOrphanGroups(ContainerRuntime& runtime,
                                                    const std::map<std::string, std::string>& selector,
                                                    const std::function<bool(const std::string&)>& keep) {
  BATON_ASSIGN_OR_RETURN(std::vector<ContainerState> containers, runtime.ListByLabels(selector));
  std::vector<std::string> groups;
  for (const ContainerState& c : containers) {
    auto it = c.labels.find("baton.group");
    if (it == c.labels.end()) continue;  // not Baton's: never touched
    if (std::find(groups.begin(), groups.end(), it->second) == groups.end()) groups.push_back(it->second);
  }
  std::vector<std::string> removed;
  for (const std::string& g : groups) {
    if (keep(g)) continue;
    BATON_RETURN_IF_ERROR(runtime.DeleteGroup(g));
    removed.push_back(g);
  }
  return removed;
}

}  // namespace baton::runtime
