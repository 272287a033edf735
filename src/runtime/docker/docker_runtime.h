// DockerRuntime: ContainerRuntime on the Docker Engine API (v1.41, what
// Debian's docker.io serves; Podman's compatible API too) over
// /var/run/docker.sock. It never runs the `docker` CLI.
//
// A group maps to containers named "<group>.<container>", all labelled
// baton.group=<group>; the first owns the network namespace and the others
// use NetworkMode "container:<first>". The scratch volume is "<group>.scratch".
//
// Sandbox: CapDrop ALL (+ the spec's CapAdd), SecurityOpt no-new-privileges,
// PidsLimit, dockerd's default seccomp profile (never unconfined), optional
// ReadonlyRootfs (with a tmpfs /tmp) and User.
//
// Secrets: dockerd 20.10 writes an archive upload (PUT .../archive) under a
// tmpfs mount point onto the container's disk layer, so secrets are not put
// through it. They are written instead, before the container is created, to
// <secrets_dir>/<group>/<container>/ (files 0444, directories 0555, under a
// 0700 root) on a tmpfs of the node, and that directory is bind-mounted
// read-only at /run/baton/secrets: the container's config and `docker
// inspect` name the directory, never a value. Secret env becomes the files
// .env/<NAME>; the container then starts as /run/baton/exec (the embedded
// baton-exec, exec_shim/) followed by its command, and baton-exec sets the
// variables and execs the command in its place (the image's entrypoint and
// cmd are read from the image when the spec gives none). DeleteGroup
// removes the group's secret directory.
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <memory>
#include <string>

#include "runtime/container_runtime.h"
#include "runtime/docker/docker_client.h"

namespace baton::runtime::docker {

// Where secrets go by default: a tmpfs every Linux host has.
inline constexpr char kDefaultSecretsDir[] = "/dev/shm/baton-secrets";
// Each container's log files (json-file): at most kLogFiles of kLogFileSize,
// so a job's output cannot fill the node's disk.
inline constexpr char kLogFileSize[] = "10m";
inline constexpr char kLogFiles[] = "3";
// The network of bridge-mode groups: jobs on it reach out, not each other.
inline constexpr char kJobsNetwork[] = "baton-jobs";

class DockerRuntime final : public ContainerRuntime {
 public:
  // `secrets_dir` should be on a tmpfs (Open warns otherwise, it does not
  // refuse: a tmpfs may not exist); it is created 0700 when missing.
  explicit DockerRuntime(std::string socket_path = "/var/run/docker.sock",
                         std::string secrets_dir = kDefaultSecretsDir);

  // Whether `secrets_dir` is on a tmpfs (false also when it cannot be read).
  static bool IsOnTmpfs(const std::string& dir);
  const std::string& secrets_dir() const { return secrets_dir_; }

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
  // Docker's own tail: only those lines cross the socket.
  Result<std::vector<LogLine>> LogsTail(const std::string& container_id, size_t lines) override;
  // Streamed: lines before `skip` are counted and dropped, the read stops at `limit`.
  Result<std::vector<LogLine>> LogsRange(const std::string& container_id, size_t skip, size_t limit) override;
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
  Result<std::string> PushNodeImage(const std::string& source, const std::string& target,
                                    const RegistryCredentials& credentials,
                                    const std::function<bool(const std::string&)>& may_take,
                                    std::chrono::milliseconds timeout) override;
  Result<std::vector<std::string>> NodeImageNames(const std::string& prefix) override;

  // ---- Images (platform operations; tests build their images with these) ----

  // Builds `tag` from a tar build context (with its Dockerfile at the root).
  Status BuildImage(const std::string& tag, const std::string& tar_context);
  // Pushes `image` to its registry with `credentials`.
  Status PushImage(const std::string& image, const RegistryCredentials& credentials,
                   std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Removes a local image reference (OK when absent); the image itself goes
  // when no other reference or container uses it.
  Status RemoveImage(const std::string& image);

  // ---- One container (the Swarm backend inspects its tasks' containers on
  // their nodes with these) ----

  // The container's state; an exit 137 under a memory limit is watched a
  // moment for a late OOM report (cgroup v1). NotFound: no such container.
  Result<ContainerState> InspectContainer(const std::string& id_or_name);
  // The command the container would run: the spec's command and args, else
  // the image's entrypoint and cmd (the image must be on this node:
  // NotFound otherwise). InvalidArgument: neither names a command.
  Result<std::vector<std::string>> EffectiveCommand(const ContainerSpec& c);
  // Stops one container (SIGTERM, SIGKILL after `grace`); OK when it was
  // stopped already. NotFound.
  Status StopContainer(const std::string& id, std::chrono::seconds grace);
  // Removes one container (killing it) and its anonymous volumes. NotFound.
  Status RemoveContainer(const std::string& id);

 private:
  Result<std::vector<ContainerState>> GroupContainers(const std::string& group);
  // Writes the container's secrets under <secrets_dir>/<group>/<container>;
  // returns the directory ("" when it has none).
  Result<std::string> WriteSecrets(const std::string& group, const ContainerSpec& c);
  // The embedded baton-exec, written once to <secrets_dir>/.bin/baton-exec.
  Result<std::string> ExecShimPath();
  // The bridge network of every kBridge group (kJobsNetwork), created on
  // first use with inter-container traffic off; FailedPrecondition when a
  // network of that name exists with it on.
  Status EnsureJobsNetwork();

  DockerClient client_;
  std::string secrets_dir_;
};

// A tar archive holding `files` (path -> content, mode 0755 for names given
// in `executables`), for BuildImage.
std::string MakeTar(const std::map<std::string, std::string>& files, const std::vector<std::string>& executables = {});

}  // namespace baton::runtime::docker
