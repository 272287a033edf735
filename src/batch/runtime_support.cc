#include "batch/runtime_support.h"

namespace baton::batch {

Status CheckRuntimeSupport(const JobSpec& spec, const runtime::RuntimeFeatures& f) {
  if (spec.containers.size() > 1 && !f.sidecars) {
    return FailedPreconditionError(
        "sidecars: this deployment's runtime places each job alone on a cluster node (one swarm task), where "
        "containers of a job cannot share a network namespace; run what the sidecar does in the main container");
  }
  if (spec.completion == CompletionMode::kCallback && !f.callback_socket) {
    return FailedPreconditionError(
        "completion: callback reaches Baton through a unix socket of Baton's machine, which a job on another "
        "cluster node cannot mount; use exitCode");
  }
  if (spec.completion == CompletionMode::kJobUrl && !f.loopback_reachable) {
    return FailedPreconditionError(
        "completion: jobUrl needs the job's port on Baton's own 127.0.0.1, and a job on another cluster node is "
        "not there; use exitCode");
  }
  if (spec.network == runtime::NetworkMode::kBridge && !f.bridge_network) {
    return FailedPreconditionError(
        "network: this deployment's runtime has no bridge network with ports on 127.0.0.1 (a cluster service "
        "publishes a port on every address of a node); use none, or host with the tenant's grant");
  }
  for (size_t i = 0; i < spec.containers.size(); ++i) {
    if (!spec.containers[i].ports.empty() && !f.bridge_network) {
      return FailedPreconditionError((i == 0 ? std::string("ports") : "sidecars[" + std::to_string(i - 1) + "].ports") +
                                     ": this deployment's runtime publishes no ports");
    }
  }
  return Status::Ok();
}

}  // namespace baton::batch
