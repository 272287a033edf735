#include "app/job_runtime.h"

#include <cstdio>
#include <filesystem>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include "runtime/docker/docker_client.h"
#include "runtime/docker/docker_runtime.h"
#include "runtime/swarm/swarm_runtime.h"

namespace baton::app {

Result<std::unique_ptr<runtime::ContainerRuntime>> MakeJobRuntime(const JobRuntimeOptions& o) {
  if (o.kind == "swarm") {
    runtime::swarm::SwarmOptions swarm;
    if (Status valid = runtime::docker::DockerClient::ValidEndpoint(o.swarm_manager); !valid.ok()) {
      return InvalidArgumentError("--swarm-manager " + valid.message());
    }
    swarm.manager = o.swarm_manager;
    for (const std::string& entry : o.swarm_nodes) {
      const size_t eq = entry.find('=');
      if (eq == 0 || eq == std::string::npos) {
        return InvalidArgumentError("--swarm-node '" + entry + "': expected <node id or hostname>=<endpoint>");
      }
      const std::string endpoint = entry.substr(eq + 1);
      if (Status valid = runtime::docker::DockerClient::ValidEndpoint(endpoint); !valid.ok()) {
        return InvalidArgumentError("--swarm-node " + valid.message());
      }
      swarm.node_endpoints[entry.substr(0, eq)] = endpoint;
    }
    swarm.registries = o.registries;
    auto runtime = std::make_unique<runtime::swarm::SwarmRuntime>(std::move(swarm));
    Status manager = runtime->CheckManager();
    if (manager.code() == StatusCode::kFailedPrecondition) {
      return FailedPreconditionError("--swarm-manager: " + manager.message());
    }
    if (!manager.ok()) {
      std::fprintf(stderr,
                   "baton: warning: --swarm-manager %s: %s (jobs wait for it; a deployment that never read the "
                   "cluster's nodes answers submits 503 until it does)\n",
                   o.swarm_manager.c_str(), manager.ToString().c_str());
    }
    return std::unique_ptr<runtime::ContainerRuntime>(std::move(runtime));
  }
  if (o.kind != "docker") return InvalidArgumentError("--runtime '" + o.kind + "': expected docker or swarm");
  BATON_RETURN_IF_ERROR(runtime::docker::DockerClient::ValidEndpoint(o.docker_socket));
  const std::filesystem::path secrets(o.secrets_dir);
  if (!std::filesystem::exists(secrets) && !std::filesystem::exists(secrets.parent_path())) {
    return InvalidArgumentError("--secrets-dir " + o.secrets_dir + ": its parent directory does not exist");
  }
  if (!runtime::docker::DockerRuntime::IsOnTmpfs(std::filesystem::exists(secrets) ? o.secrets_dir
                                                                                : secrets.parent_path().string())) {
    std::fprintf(stderr, "baton: warning: --secrets-dir %s is not on a tmpfs: job secrets will touch the disk\n",
                 o.secrets_dir.c_str());
  }
  if (struct stat st {}; ::lstat(o.secrets_dir.c_str(), &st) == 0 && (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid())) {
    // Another local user may have created it first (/dev/shm is everyone's):
    // the runtime would refuse to write secrets there, so say it now.
    return FailedPreconditionError("--secrets-dir " + o.secrets_dir + " is " +
                                   (S_ISDIR(st.st_mode) ? "owned by uid " + std::to_string(st.st_uid) : "not a directory") +
                                   ", not this server's; remove it or choose another");
  }
  auto runtime = std::make_unique<runtime::docker::DockerRuntime>(o.docker_socket, o.secrets_dir);
  if (Status ping = runtime->Ping(); !ping.ok()) {
    std::fprintf(stderr, "baton: warning: %s (jobs will wait for it; scripts/docker-up starts one)\n",
                 ping.ToString().c_str());
  }
  return std::unique_ptr<runtime::ContainerRuntime>(std::move(runtime));
}

}  // namespace baton::app
