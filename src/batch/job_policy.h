// JobPolicy: what a tenant's job may ask of the platform beyond the sandbox,
// decided at submit from the tenant's grants (tenant settings, admin-set).
//
//   - images: only under the tenant's own namespace on the platform registry
//     ("<registry>/<tenant>/…"), or under a granted prefix;
//   - network "host": only with the hostNetwork grant;
//   - capabilities: only those granted.
//
// Thread-safety: values; CheckJobPolicy is pure.
#pragma once

#include <string>
#include <vector>

#include "baton/status.h"
#include "batch/job_spec.h"

namespace baton::batch {

struct JobGrants {
  bool host_network = false;
  std::vector<std::string> capabilities;    // without "CAP_"
  std::vector<std::string> image_prefixes;  // "host:port/path/" (a namespace) or a repository
};

// Whether `image` lies under `prefix`: a prefix ending in '/' is a
// namespace (every repository below it); otherwise it names one repository,
// with any tag or digest.
bool ImageUnderPrefix(const std::string& image, const std::string& prefix);

// OK, or PermissionDenied whose message starts with the field
// ("sidecars[0].image: …", "network: …", "capabilities[1]: …"; FieldOf()
// reads it), naming what is refused and why. `platform_registry` is the
// registry's "host:port" ("" = no own namespace: only granted prefixes).
Status CheckJobPolicy(const JobSpec& spec, const std::string& tenant, const std::string& platform_registry,
                      const JobGrants& grants);

}  // namespace baton::batch
