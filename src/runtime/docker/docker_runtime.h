// DockerRuntime: ContainerRuntime on the Docker Engine API (v1.41, what
// Debian's docker.io serves; Podman's compatible API too) over
// /var/run/docker.sock. It never runs the `docker` CLI.
//
// A group maps to containers named "<group>.<container>", all labelled
// baton.group=<group>; the first owns the network namespace and the others
// use NetworkMode "container:<first>". The scratch volume is "<group>.scratch".
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <memory>
#include <string>

#include "runtime/container_runtime.h"
#include "runtime/docker/docker_client.h"

namespace baton::runtime::docker {

class DockerRuntime final : public ContainerRuntime {
 public:
  explicit DockerRuntime(std::string socket_path = "/var/run/docker.sock");

  Status Ping(std::chrono::milliseconds timeout = std::chrono::seconds(5)) override;
  // Whether dockerd reported an "oom" event for the container between the
  // times (InspectContainer falls back on it: cgroup v1 dockerd can leave
  // State.OOMKilled false when the event races the exit).
  Result<bool> SawOomEvent(const std::string& id, TimePoint from, TimePoint to);

  Result<GroupState> CreateGroup(const GroupSpec& spec) override;
  Status StartGroup(const std::string& group) override;
  Status StopGroup(const std::string& group, std::chrono::seconds grace) override;
  Status RestartGroup(const std::string& group, std::chrono::seconds grace) override;
  Status DeleteGroup(const std::string& group) override;
  Result<GroupState> InspectGroup(const std::string& group) override;
  Result<int> WaitContainer(const std::string& container_id, std::chrono::milliseconds timeout) override;
  Result<std::vector<LogLine>> Logs(const std::string& container_id) override;
  Result<Usage> Stats(const std::string& container_id) override;
  Status FollowLogs(const std::string& container_id, const std::function<bool(const LogLine&)>& on_line,
                    std::chrono::milliseconds timeout) override;
  Status WatchEvents(const std::map<std::string, std::string>& selector,
                     const std::function<bool(const ContainerEvent&)>& on_event,
                     std::chrono::milliseconds timeout, std::optional<TimePoint> since = std::nullopt) override;
  Result<std::vector<ContainerState>> ListByLabels(const std::map<std::string, std::string>& selector) override;
  Result<std::string> PullImage(const std::string& image, const RegistryCredentials& credentials,
                                std::chrono::milliseconds timeout,
                                const std::function<void(const std::string&)>& progress = nullptr) override;
  Result<std::string> LocalImageDigest(const std::string& image) override;
  Status CheckRegistry(const RegistryCredentials& credentials, std::chrono::milliseconds timeout) override;

  // ---- Images (platform operations; tests build their images with these) ----

  // Builds `tag` from a tar build context (with its Dockerfile at the root).
  Status BuildImage(const std::string& tag, const std::string& tar_context);
  // Pushes `image` to its registry with `credentials`.
  Status PushImage(const std::string& image, const RegistryCredentials& credentials,
                   std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Removes a local image reference (OK when absent); the image itself goes
  // when no other reference or container uses it.
  Status RemoveImage(const std::string& image);

 private:
  Result<std::vector<ContainerState>> GroupContainers(const std::string& group);
  Result<ContainerState> InspectContainer(const std::string& id_or_name);

  DockerClient client_;
};

// A tar archive holding `files` (path -> content, mode 0755 for names given
// in `executables`), for BuildImage.
std::string MakeTar(const std::map<std::string, std::string>& files, const std::vector<std::string>& executables = {});

}  // namespace baton::runtime::docker
