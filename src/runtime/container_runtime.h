// ContainerRuntime: container groups, the unit a batch job runs in.
//
// A container group is one or more containers that share a network namespace
// and a lifetime (like an ACI container group or a pod): the first container
// owns the namespace ("none", "host" or its own bridge network with ports
// published on 127.0.0.1 only) and the others join it, so they talk over
// localhost. Each container has its own CPU (fractional cores) and memory
// limits, env and secret env, command, working dir.
//
// Every object Baton creates carries labels ("baton.group", "baton.container"
// and the caller's, e.g. "baton.job", "baton.tenant", "baton.attempt"), so a
// reconciler can find what exists and remove what should not.
//
// Every container is sandboxed: no Linux capabilities but those its spec
// adds, no-new-privileges, a pids limit, the runtime's default seccomp
// profile. Host networking and added capabilities are the caller's to
// authorize (batch/job_policy.h): a runtime applies what the spec says.
//
// Secrets (secret env and secret files) are passed to the container and to
// nothing else: no method returns them, no error or log line contains them,
// and they are not part of the container's configuration that the runtime
// shows its operators (e.g. `docker inspect`): they live as files on a tmpfs
// of the node, mounted read-only at /run/baton/secrets, only while the group
// exists (DeleteGroup removes them). How each backend does it is in its
// header.
//
// Implementations: DockerRuntime (docker/docker_runtime.h), one node over
// the Docker Engine API; SwarmRuntime (swarm/swarm_runtime.h), a Docker Swarm
// cluster through a manager's Engine API, which cannot do everything a node
// can (Features()). Thread-safety: every method may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "baton/clock.h"
#include "baton/status.h"

namespace baton::runtime {

// kBridge: a bridge network on which a group reaches out (and its
// published ports are reached on 127.0.0.1), but never another group:
// DockerRuntime puts every such group on its network "baton-jobs", made with
// inter-container traffic off.
enum class NetworkMode { kNone, kHost, kBridge };

struct PortMapping {
  uint16_t container_port = 0;
  uint16_t host_port = 0;  // on 127.0.0.1; 0 = any free port
};

struct ContainerSpec {
  std::string name;  // unique within the group: [a-z0-9-]+
  std::string image;  // reference or digest ("127.0.0.1:5000/jobs/x@sha256:…")
  std::vector<std::string> command;  // replaces the image's entrypoint when not empty
  std::vector<std::string> args;     // replaces the image's cmd when not empty
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> secret_env;  // never echoed anywhere
  std::string working_dir;
  double cpus = 0;             // fractional cores; 0 = no limit
  int64_t memory_bytes = 0;    // 0 = no limit; no swap beyond it
  std::vector<PortMapping> ports;  // kBridge only
  // Files /run/baton/secrets/<name> (name: [A-Za-z0-9._-], not starting
  // with '.'), readable by the container's user.
  std::map<std::string, std::string> secret_files;
  // Sandbox.
  std::string user;                       // "UID" or "UID:GID"; "" = the image's user
  bool read_only_root_fs = false;         // then /tmp is a small tmpfs
  std::vector<std::string> capabilities;  // added back ("NET_BIND_SERVICE"); all others dropped
  int64_t pids_limit = 512;               // > 0
};

struct GroupSpec {
  std::string name;  // deterministic, unique per host: [a-z0-9][a-z0-9_.-]*
  std::map<std::string, std::string> labels;
  NetworkMode network = NetworkMode::kNone;
  bool scratch_volume = false;  // a volume mounted at /scratch in every container
  // A directory of the platform holding the job callback endpoint's unix
  // socket "callback.sock", mounted read-only at /run/baton/callback in
  // every container (BATON_CALLBACK_SOCKET=/run/baton/callback/callback.sock);
  // "" = none. The directory, not the socket, is mounted so that a socket
  // made anew by a restarted server is the one containers see. Never a path
  // a tenant chose.
  std::string callback_dir;
  std::vector<ContainerSpec> containers;  // at least one
};

struct ContainerState {
  std::string id;
  std::string name;       // the container spec's name
  // "created", "running", "exited", …; "removing": the container is gone and
  // the runtime lists the group only by objects it left (ListByLabels).
  std::string status;
  bool running = false;
  int exit_code = 0;
  bool oom_killed = false;
  std::optional<TimePoint> started_at;
  std::optional<TimePoint> finished_at;
  double cpus = 0;
  int64_t memory_bytes = 0;
  std::map<uint16_t, uint16_t> published_ports;  // container port -> 127.0.0.1 port
  std::map<std::string, std::string> labels;
  // Where it runs, when the runtime has more than one machine (a swarm
  // node's id); "" otherwise.
  std::string node;
  // Why a container that exists has not started yet, when the runtime says
  // (Swarm: "no suitable node (insufficient resources on 2 nodes)"); "" when
  // it is not waiting or the runtime does not say.
  std::string waiting;
  // The runtime's word when the container could not run, or when how it
  // ended is known only in part ("exit 137 under a memory limit of 64 MiB
  // …" where the OOM kill cannot be confirmed); "" otherwise. Callers treat
  // an attempt with an error as failed and show the text.
  std::string error;
};

struct GroupState {
  std::string name;
  std::vector<ContainerState> containers;  // in spec order
};

struct LogLine {
  enum class Stream { kStdout, kStderr };
  Stream stream = Stream::kStdout;
  TimePoint time;
  std::string text;  // without the trailing newline
};

// A change of one of Baton's containers, from the runtime's event stream.
struct ContainerEvent {
  std::string container_id;
  std::string action;  // "create", "start", "die", "oom", "destroy", …
  int exit_code = -1;  // for "die"
  std::map<std::string, std::string> labels;
  TimePoint time;
};

struct Usage {
  double cpu_seconds = 0;
  int64_t memory_bytes = 0;       // now
  int64_t memory_peak_bytes = 0;  // 0 when the kernel does not report it
};

// What a runtime can do beyond running one container with the sandbox and
// secrets every runtime provides. A job that needs what its runtime lacks is
// refused at submit (batch/runtime_support.h), never started to fail later.
struct RuntimeFeatures {
  bool sidecars = true;         // more than one container per group (one network namespace)
  bool callback_socket = true;  // GroupSpec::callback_dir (a directory of the platform's node)
  bool bridge_network = true;   // NetworkMode::kBridge, with ports published on the node's 127.0.0.1
  // A container's ports (host network, or published) are on the 127.0.0.1
  // of Baton's own machine, where Baton can call them (job-URL completion).
  bool loopback_reachable = true;
};

// The machines a cluster runtime places containers on, as its scheduler sees
// them (ready and active ones only).
struct ClusterCapacity {
  int nodes = 0;
  double cpus = 0;            // the sum over the nodes
  int64_t memory_bytes = 0;   // the sum over the nodes
  double largest_node_cpus = 0;         // of the node with the most CPU
  int64_t largest_node_memory_bytes = 0;  // of the node with the most memory
};

struct RegistryCredentials {
  std::string server;  // "127.0.0.1:5000"
  std::string username;
  std::string password;
};

class ContainerRuntime {
 public:
  virtual ~ContainerRuntime() = default;

  // What this runtime supports (RuntimeFeatures); all of it by default.
  virtual RuntimeFeatures Features() const { return RuntimeFeatures{}; }

  // The cluster's ready machines, read now. Unimplemented for a single-node
  // runtime, whose capacity the operator configures; Unavailable when the
  // cluster cannot be reached.
  virtual Result<ClusterCapacity> Capacity() { return UnimplementedError("a single-node runtime has no cluster"); }

  // OK when the runtime answers (Docker: GET /_ping) within `timeout`.
  // Unavailable otherwise: the daemon is down, restarting or unreachable.
  // Callers use it to tell "the runtime is away" (wait and retry) from an
  // error the runtime reported (act on it), and for readiness checks.
  virtual Status Ping(std::chrono::milliseconds timeout) = 0;

  // Creates the group's containers (not started). Idempotent: when a group of
  // that name exists, returns it unchanged. InvalidArgument: a bad spec.
  // NotFound: an image is not present (pull it first).
  virtual Result<GroupState> CreateGroup(const GroupSpec& spec) = 0;
  // Starts every container of the group that was never started (state
  // "created"), the namespace owner first; a container already started
  // (running or exited) is left as it is. So a call that is repeated — after
  // a lost answer, a crash or an outage of the runtime — finishes what an
  // earlier one began and never starts a container twice. NotFound.
  // ResourceExhausted: a cluster runtime has no machine to place it on yet
  // (the message says why); the group stays, and a later call succeeds once
  // it is placed. (Swarm starts a group's service when it is created: there,
  // StartGroup waits for the placement.)
  virtual Status StartGroup(const std::string& group) = 0;
  // Stops every container: SIGTERM, then SIGKILL after `grace`. NotFound.
  virtual Status StopGroup(const std::string& group, std::chrono::seconds grace) = 0;
  // Stops every container (as StopGroup) and starts them all again.
  virtual Status RestartGroup(const std::string& group, std::chrono::seconds grace) = 0;
  // Removes the containers (killing them) and the scratch volume. OK when
  // nothing is left, including when the group did not exist.
  virtual Status DeleteGroup(const std::string& group) = 0;
  // NotFound when no container of the group exists.
  virtual Result<GroupState> InspectGroup(const std::string& group) = 0;

  // Blocks until the container exits (or `timeout`); returns its exit code.
  // DeadlineExceeded on timeout.
  virtual Result<int> WaitContainer(const std::string& container_id, std::chrono::milliseconds timeout) = 0;
  // The container's output so far, stdout and stderr kept apart, oldest first.
  // All of it, in memory: for output of bounded size (tests, small jobs);
  // a job's output is read with LogsTail / LogsRange.
  virtual Result<std::vector<LogLine>> Logs(const std::string& container_id) = 0;
  // The last `lines` lines of the output, oldest first. A runtime should
  // not read more than that into memory (the default reads all of it).
  virtual Result<std::vector<LogLine>> LogsTail(const std::string& container_id, size_t lines) {
    auto all = Logs(container_id);
    if (!all.ok() || all->size() <= lines) return all;
    return std::vector<LogLine>(all->end() - static_cast<std::ptrdiff_t>(lines), all->end());
  }
  // Lines [skip, skip + limit) of the output, oldest first; the same
  // remark on memory (the default reads all of it).
  virtual Result<std::vector<LogLine>> LogsRange(const std::string& container_id, size_t skip, size_t limit) {
    auto all = Logs(container_id);
    if (!all.ok()) return all;
    std::vector<LogLine> out;
    for (size_t i = skip; i < all->size() && out.size() < limit; ++i) out.push_back(std::move((*all)[i]));
    return out;
  }
  virtual Result<Usage> Stats(const std::string& container_id) = 0;
  // Streams the container's output as it comes (past lines first) to
  // `on_line` until it returns false, the container stops, or `timeout`.
  virtual Status FollowLogs(const std::string& container_id, const std::function<bool(const LogLine&)>& on_line,
                            std::chrono::milliseconds timeout) = 0;
  // Streams events of the containers whose labels include all of
  // `selector` — from `since` (past events are replayed) or from now — until
  // `on_event` returns false or `timeout`.
  virtual Status WatchEvents(const std::map<std::string, std::string>& selector,
                             const std::function<bool(const ContainerEvent&)>& on_event,
                             std::chrono::milliseconds timeout, std::optional<TimePoint> since = std::nullopt) = 0;

  // Every container Baton created whose labels include all of `selector`.
  // A container removed while the list is read is left out; any other error
  // (Unavailable: the runtime went away meanwhile) fails the whole call, so
  // an answer is never a partial list.
  virtual Result<std::vector<ContainerState>> ListByLabels(const std::map<std::string, std::string>& selector) = 0;

  // Pulls `image` with the platform's credentials and returns its digest
  // reference ("repo@sha256:…"). NotFound: no such image or tag.
  // Unauthenticated: the registry refused the credentials. Unavailable: the
  // registry (or dockerd) cannot be reached. Never hangs past `timeout`.
  // `progress`, when given, receives each progress line of the pull
  // ("Pulling fs layer", "Downloading 1.2MB/3.4MB", …) as it happens.
  virtual Result<std::string> PullImage(const std::string& image, const RegistryCredentials& credentials,
                                        std::chrono::milliseconds timeout,
                                        const std::function<void(const std::string&)>& progress = nullptr) = 0;

  // The digest reference ("repo@sha256:…") under which this node already
  // holds `image`, found without contacting any registry:
  //   - for a digest reference, that same reference when the node has it;
  //   - for a tag ("repo:tag", "repo" meaning "repo:latest"), the digest the
  //     node recorded for that repository when the image was pulled or pushed
  //     (its RepoDigests); the tag may have moved in the registry since.
  // NotFound: the node does not hold the image, or holds the tag without a
  // digest for its repository (built here, never pushed or pulled: it cannot
  // be pinned). Unavailable: the runtime cannot be reached.
  virtual Result<std::string> LocalImageDigest(const std::string& image) = 0;

  // Whether the runtime can reach `credentials.server` and log in to it with
  // those credentials (Docker: POST /auth, which dockerd does against the
  // registry itself, the way it pulls). OK; Unauthenticated: the registry
  // refused the credentials; Unavailable: the registry (or the runtime)
  // cannot be reached. Never hangs past `timeout`.
  virtual Status CheckRegistry(const RegistryCredentials& credentials, std::chrono::milliseconds timeout) = 0;

  // Pushes an image this node holds (`source`: a reference or an image id)
  // to a registry as `target` ("host/repo:tag") with `credentials`, and
  // returns the digest reference pushed ("host/repo@sha256:…"). Before
  // anything is tagged or pushed, every name the node knows the image by
  // (its tags and digests) is shown to `may_take`: PermissionDenied naming
  // the first it refuses (an image pulled for another tenant stays that
  // tenant's). NotFound: no such image on the node. Unauthenticated /
  // Unavailable: as PullImage. Unimplemented: this runtime cannot (the
  // default; a cluster has no one node the tenant builds on).
  virtual Result<std::string> PushNodeImage(const std::string& source, const std::string& target,
                                            const RegistryCredentials& credentials,
                                            const std::function<bool(const std::string&)>& may_take,
                                            std::chrono::milliseconds timeout) {
    return UnimplementedError("this container runtime cannot push an image of the node");
  }
  // The names (tags "repo:tag" and digests "repo@sha256:…") of the images
  // this node holds that start with `prefix`. Unimplemented: as above.
  virtual Result<std::vector<std::string>> NodeImageNames(const std::string& prefix) {
    return UnimplementedError("this container runtime cannot list the node's images");
  }
};

// The reconciler primitive: removes every Baton group (label "baton.group",
// plus `selector`) for which `keep(group name)` is false. Returns the names
// of the groups removed.
Result<std::vector<std::string>> RemoveOrphanGroups(ContainerRuntime& runtime,
                                                    const std::map<std::string, std::string>& selector,
                                                    const std::function<bool(const std::string&)>& keep);

}  // namespace baton::runtime
