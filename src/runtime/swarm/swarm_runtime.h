// SwarmRuntime: ContainerRuntime on a Docker Swarm cluster, through one
// manager's Engine API (v1.41, Debian's docker.io 20.10): Swarm places each
// job attempt on a node by its CPU and memory reservations. It never runs the
// `docker` CLI. docs/cluster.md says how to deploy it and what differs from
// the single-node DockerRuntime.
//
// A group is one swarm service, Mode.ReplicatedJob {MaxConcurrent 1,
// TotalCompletions 1} with RestartPolicy.Condition "none": Swarm runs its one
// task once and never again (Baton's job orchestration owns retries; each
// attempt is a service of its own). The service is named after the group
// (ServiceName), labelled with the group's labels on the service and on its
// task's container, and pinned to the image's digest; the nodes pull it with
// the platform's credentials (X-Registry-Auth, kept by Swarm with the service,
// never shown by its inspect). CPU and memory are both Limits and
// Reservations; the pids limit is Limits.Pids. A create that finds the
// service (409, or a repeat after a crash) adopts it: a group's service is
// created once.
//
// Swarm starts a service's task as soon as the service exists: there is no
// "created, not started" state. CreateGroup therefore starts the group, and
// StartGroup waits (up to 5 s) until the task's container runs, or at least
// for its placement: ResourceExhausted with Swarm's reason ("no suitable node
// (insufficient resources on 2 nodes)") while no node can take it.
//
// Sandbox — the same walls as DockerRuntime, expressed as Swarm allows:
//   - ContainerSpec.CapabilityDrop ["ALL"] and CapabilityAdd (the spec's);
//     ReadOnly (+ a 64 MiB tmpfs /tmp); User; Limits.Pids; dockerd's default
//     seccomp profile (a service cannot ask for another).
//   - no-new-privileges: a swarm service cannot ask for it (API 1.41 has no
//     such field). Every container therefore starts as /run/baton/exec (the
//     embedded baton-exec, shipped as a swarm config, mode 0555), which sets
//     PR_SET_NO_NEW_PRIVS before it execs the job's command — the same bit
//     dockerd's option sets, inherited by everything the job runs.
//   - network "none": a service cannot ask for it either (Swarm's predefined
//     networks are "host" and "bridge"), and a service attached to no network
//     gets the node's default one. Job nodes therefore run dockerd without a
//     default bridge ("bridge": "none"), where that is loopback only; and
//     baton-exec (told by BATON_EXEC_REQUIRE_NO_NETWORK=1) checks it in the
//     container and refuses to start the job (exit 125, saying why) on a node
//     that gives it any other interface. (Not an overlay network per attempt:
//     Swarm 20.10 never removes an ended job task, and each would leave its
//     network's namespaces on the node.) "host" is the node's host network
//     (the tenant's grant, checked at submit).
//   - "bridge" (ports published on 127.0.0.1), sidecars, the callback socket
//     and job-URL completion are not offered (Features()): a published
//     swarm port binds every address of the node, containers of one group
//     cannot share a network namespace, and a node is not Baton's machine.
//
// Secrets: each secret file and secret env value is a swarm secret of its
// own, created for the attempt and removed with it (DeleteGroup), mounted
// read-only (0444) at /run/baton/secrets/<name> or
// /run/baton/secrets/.env/<NAME>; baton-exec sets the env from the latter.
// Swarm keeps secrets in its Raft log, encrypted, and never shows their data
// (GET /secrets answers without it); the service's and task's inspect name
// the secret, never the value.
//
// What only a node can tell or do — confirm an OOM kill (the task says "exit
// 137"), stop a running container and keep its exit code and logs (Swarm can
// only remove a job's task, logs and all) — is done through the Engine API
// of the task's node: the manager's own node always, others when
// SwarmOptions::node_endpoints names them. Without it: an exit 137 under a
// memory limit is reported as such in ContainerState::error, never as a
// certain OOM; and StopGroup keeps the logs read so far, has Swarm remove the
// task (SIGTERM, SIGKILL after stop_grace) and remembers the outcome in this
// process until DeleteGroup (a restart of Baton in between forgets it: the
// group then reads as exited with an error saying so).
//
// Deleting: Swarm 20.10 never removes an ended job task, not even with its
// service: the task stays in the manager's store and its exited container on
// its node. DeleteGroup removes that container where the node can be asked
// (a task still running or waiting is removed by Swarm itself: the service
// is first updated to a job iteration of no completion), then the service
// and the attempt's secrets.
//
// Ids: a ContainerState's id is its task's id (Logs, FollowLogs,
// WaitContainer and Stats take it).
//
// Events: Swarm's event stream has no task events, so WatchEvents polls the
// tasks (every SwarmOptions::poll_interval) and reports each one that ended
// as a "die" event (exit code; -1 when it never ran) stamped with the time
// Swarm recorded.
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "baton/json.h"
#include "runtime/container_runtime.h"
#include "runtime/docker/docker_client.h"
#include "runtime/docker/docker_runtime.h"

namespace baton::runtime::docker {
class LogDemuxer;
}  // namespace baton::runtime::docker

namespace baton::runtime::swarm {

struct SwarmOptions {
  // A manager's Engine API: a unix socket path ("/var/run/docker.sock",
  // "unix:///…") or a loopback TCP address ("tcp://127.0.0.1:2375").
  std::string manager = "/var/run/docker.sock";
  // Engine API endpoints of other nodes, by node id or hostname (see the
  // header comment: OOM confirmation and stops that keep the exit code).
  std::map<std::string, std::string> node_endpoints;
  // Credentials by registry host ("registry.example.com:5000"), sent with
  // each service for its nodes' pulls, and used by the manager's own pulls.
  std::vector<RegistryCredentials> registries;
  // How often WatchEvents, FollowLogs and WaitContainer read the tasks.
  std::chrono::milliseconds poll_interval{500};
  // SIGTERM to SIGKILL when a service is removed (ContainerSpec.StopGracePeriod).
  std::chrono::seconds stop_grace{10};
};

class SwarmRuntime final : public ContainerRuntime {
 public:
  explicit SwarmRuntime(SwarmOptions options);
  ~SwarmRuntime() override;

  // The service of `group`: the group's name when it is a valid service name
  // (a DNS label: [a-z0-9-], at most 63), else a readable prefix and 16 hex
  // digits of its SHA-256. Deterministic, so a repeated create finds it.
  static std::string ServiceName(const std::string& group);

  // OK when the manager answers and is a swarm manager; Unavailable when it
  // cannot be reached; FailedPrecondition when it is not a manager of an
  // active swarm.
  Status CheckManager(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  RuntimeFeatures Features() const override;
  // From GET /nodes: the nodes whose Status.State is "ready" and whose
  // Spec.Availability is "active".
  Result<ClusterCapacity> Capacity() override;

  Status Ping(std::chrono::milliseconds timeout = std::chrono::seconds(5)) override;
  // InvalidArgument (nothing created): more than one container, a bridge
  // network, ports, a callback directory or a scratch volume.
  Result<GroupState> CreateGroup(const GroupSpec& spec) override;
  Status StartGroup(const std::string& group) override;
  Status StopGroup(const std::string& group, std::chrono::seconds grace) override;
  // Unimplemented: a swarm job's task runs once.
  Status RestartGroup(const std::string& group, std::chrono::seconds grace) override;
  // Removes the task's container (stopped by Swarm if it still runs; an
  // ended one on its node, when the node can be asked), the service and the
  // attempt's secrets. When the service is gone already (removed outside
  // Baton, whose task Swarm leaves running), the task's container is
  // removed, killed if running, where its node can be asked. Unavailable when the manager cannot be reached, or a
  // secret stays in use (tried again later).
  Status DeleteGroup(const std::string& group) override;
  Result<GroupState> InspectGroup(const std::string& group) override;
  Result<int> WaitContainer(const std::string& task_id, std::chrono::milliseconds timeout) override;
  Result<std::vector<LogLine>> Logs(const std::string& task_id) override;
  // Streamed from the manager: only the lines asked for are held.
  Result<std::vector<LogLine>> LogsTail(const std::string& task_id, size_t lines) override;
  Result<std::vector<LogLine>> LogsRange(const std::string& task_id, size_t skip, size_t limit) override;
  // Unimplemented when the task's node is not reachable.
  Result<Usage> Stats(const std::string& task_id) override;
  // Reads the task's log every poll_interval and passes on what is new,
  // until the task has ended (and its last lines were passed), `on_line`
  // returns false, or `timeout`. (The log stream with follow=1 does not end
  // when a job's task does.)
  Status FollowLogs(const std::string& task_id, const std::function<bool(const LogLine&)>& on_line,
                    std::chrono::milliseconds timeout) override;
  Status WatchEvents(const std::map<std::string, std::string>& selector,
                     const std::function<bool(const ContainerEvent&)>& on_event, std::chrono::milliseconds timeout,
                     std::optional<TimePoint> since = std::nullopt) override;
  // One entry per service whose labels include `selector` (its task's
  // state), plus one (status "removing") per group whose service is gone but
  // whose secrets are left (a create that stopped half-way), so that the
  // reconciler's DeleteGroup finishes them.
  Result<std::vector<ContainerState>> ListByLabels(const std::map<std::string, std::string>& selector) override;
  // Images go through the manager's dockerd: it pulls (so the image's
  // entrypoint and cmd can be read for baton-exec) and says the digest; the
  // nodes pull the digest themselves when their task starts.
  Result<std::string> PullImage(const std::string& image, const RegistryCredentials& credentials,
                                std::chrono::milliseconds timeout,
                                const std::function<void(const std::string&)>& progress = nullptr) override;
  Result<std::string> LocalImageDigest(const std::string& image) override;
  Status CheckRegistry(const RegistryCredentials& credentials, std::chrono::milliseconds timeout) override;

 private:
  struct Task;
  struct Service;
  struct Stopped;

  static Service ServiceOf(const Json& service);
  Result<Service> GetService(const std::string& name);
  Status Retire(const Service& service);
  Result<std::vector<Task>> TasksOf(const std::vector<std::string>& service_ids);
  // The service's state through its first task; with `ask_node`, an ended
  // task's container is inspected on its node when reachable (OOM, times).
  ContainerState StateOf(const Service& s, const Task* t, bool ask_node);
  // The node's dockerd, or null when it is not reachable (not the manager's
  // node and not in node_endpoints).
  docker::DockerRuntime* NodeRuntime(const std::string& node_id);
  Result<std::string> ManagerNodeId();
  Result<std::string> EnsureShimConfig();
  Result<std::string> EnsureSecret(const std::string& name, const std::string& value,
                                   const std::map<std::string, std::string>& labels);
  Result<std::vector<std::string>> CommandOf(const ContainerSpec& c);
  RegistryCredentials CredentialsFor(const std::string& image) const;
  // Streams the task's log ("/tasks/<id>/logs?stdout=1&stderr=1&timestamps=1"
  // + `query`) into `demux`, which may stop it.
  Status StreamTaskLogs(const std::string& task_id, const std::string& query, docker::LogDemuxer& demux);
  // Removes the objects of kind ("secrets") labelled baton.group=`group`.
  Status RemoveLabelled(const std::string& kind, const std::string& group);
  // Removes the containers of the tasks labelled baton.group=`group` whose
  // service is gone (removed outside Baton), where their node can be asked.
  Status RemoveOrphanTasks(const std::string& group);

  SwarmOptions options_;
  docker::DockerClient client_;
  docker::DockerRuntime manager_;  // the manager's own dockerd (images, its node's containers)
  std::mutex mu_;
  std::string manager_node_id_;                                   // guarded by mu_
  std::map<std::string, std::string> hostnames_;                  // node id -> hostname; mu_
  std::map<std::string, std::unique_ptr<docker::DockerRuntime>> nodes_;  // endpoint -> its runtime; mu_
  std::string shim_config_id_;                                    // mu_
  std::map<std::string, std::unique_ptr<Stopped>> stopped_;       // group -> outcome; mu_
};

}  // namespace baton::runtime::swarm
