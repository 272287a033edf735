// --default-quota: the job quota a new tenant starts with.
//
//   "cpu=2,memory=4096,jobs=10"  cores, MiB and concurrent jobs (each > 0),
//                                optionally weight=W (>= 1; default 1)
//   "none"                       no quota: unlimited until an admin sets one
#pragma once

#include <string>

#include "baton/json.h"
#include "baton/status.h"

namespace baton::app {

inline constexpr char kDefaultTenantQuota[] = "cpu=2,memory=4096,jobs=10";

// The scheduler's setTenant body without "tenant" ({"cpu", "memoryMb",
// "jobs", "weight"}), or null for "none". InvalidArgument naming the part
// that is wrong.
Result<Json> ParseDefaultQuota(const std::string& text);

}  // namespace baton::app
