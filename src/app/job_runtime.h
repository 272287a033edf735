// The container runtime `baton serve` runs batch jobs on, chosen per
// deployment (--runtime): "docker", this machine's dockerd (DockerRuntime), or
// "swarm", a Docker Swarm cluster through a manager's Engine API
// (SwarmRuntime; docs/cluster.md). The only place besides main.cc that names
// the concrete runtimes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "baton/status.h"
#include "runtime/container_runtime.h"

namespace baton::app {

struct JobRuntimeOptions {
  std::string kind = "docker";  // "docker" | "swarm"
  // docker
  std::string docker_socket;
  std::string secrets_dir;
  // swarm
  std::string swarm_manager;             // the manager's Engine API endpoint
  std::vector<std::string> swarm_nodes;  // "<node id or hostname>=<endpoint>"
  std::vector<runtime::RegistryCredentials> registries;
};

// The runtime, after checks that print warnings (a secrets dir off tmpfs, a
// daemon not answering yet: jobs wait for it). InvalidArgument for options
// that can never work (an unknown kind, a malformed endpoint or node entry);
// FailedPrecondition when the swarm manager answers but is not one.
Result<std::unique_ptr<runtime::ContainerRuntime>> MakeJobRuntime(const JobRuntimeOptions& options);

}  // namespace baton::app
