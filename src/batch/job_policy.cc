#include "batch/job_policy.h"

#include <algorithm>

namespace baton::batch {

bool ImageUnderPrefix(const std::string& image, const std::string& prefix) {
  if (prefix.empty() || image.size() <= prefix.size() || image.compare(0, prefix.size(), prefix) != 0) {
    return !prefix.empty() && image == prefix;
  }
  if (prefix.back() == '/') return true;
  const char next = image[prefix.size()];
  return next == ':' || next == '@';
}

Status CheckJobPolicy(const JobSpec& spec, const std::string& tenant, const std::string& platform_registry,
                      const JobGrants& grants) {
  const std::string own = platform_registry.empty() ? std::string() : platform_registry + "/" + tenant + "/";
  for (size_t i = 0; i < spec.containers.size(); ++i) {
    const JobContainer& c = spec.containers[i];
    const std::string path = i == 0 ? std::string() : "sidecars[" + std::to_string(i - 1) + "].";
    bool allowed = !own.empty() && ImageUnderPrefix(c.image, own);
    for (const std::string& p : grants.image_prefixes) allowed = allowed || ImageUnderPrefix(c.image, p);
    if (!allowed) {
      std::string where = own.empty() ? std::string("the prefixes an admin granted it")
                                      : "its own namespace " + own + " (or a prefix an admin granted it)";
      return PermissionDeniedError(path + "image: '" + c.image + "' is not an image tenant '" + tenant +
                                   "' may run: a tenant runs images under " + where);
    }
    for (size_t k = 0; k < c.capabilities.size(); ++k) {
      const std::string& cap = c.capabilities[k];
      if (std::find(grants.capabilities.begin(), grants.capabilities.end(), cap) == grants.capabilities.end()) {
        return PermissionDeniedError(path + "capabilities[" + std::to_string(k) + "]: capability " + cap +
                                     " is not granted to tenant '" + tenant + "' (an admin grants it in the "
                                     "tenant's settings)");
      }
    }
  }
  if (spec.network == runtime::NetworkMode::kHost && !grants.host_network) {
    return PermissionDeniedError("network: host networking is not granted to tenant '" + tenant +
                                 "' (an admin grants it in the tenant's settings); use \"bridge\" or \"none\"");
  }
  return Status::Ok();
}

}  // namespace baton::batch
