// The id of this process as a node of a task hub: "<hostname>:<pid>". What
// a store's leases record (locked_by) by default and what ListNodes names
// it (include/baton/store.h): a restarted process is a new node.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

namespace baton::util {

inline std::string ProcessNodeId() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "node");
  return std::string(host) + ":" + std::to_string(getpid());
}

}  // namespace baton::util
