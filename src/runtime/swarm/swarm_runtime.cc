#include "runtime/swarm/swarm_runtime.h"

#include <openssl/evp.h>

#include <algorithm>
#include <deque>
#include <set>
#include <thread>

#include "baton/json.h"
#include "runtime/docker/engine_api.h"
#include "runtime/exec_shim/exec_shim.h"
#include "util/hex.h"

namespace baton::runtime::swarm {

using docker::DockerResponse;
using docker::FromDocker;
using docker::ParseAnswer;
using docker::QueryEscape;

namespace {

constexpr char kGroupLabel[] = "baton.group";
constexpr char kContainerLabel[] = "baton.container";
constexpr char kIndexLabel[] = "baton.index";
constexpr char kMainIndex[] = "1000";  // as DockerRuntime labels a group's first container
constexpr char kSecretsMount[] = "/run/baton/secrets";
constexpr char kExecMount[] = "/run/baton/exec";
// What a swarm config or secret may hold (swarmkit's MaxConfigSize).
constexpr size_t kMaxSwarmObjectBytes = 500 * 1024;
// A task's log files on its node (json-file): at most kLogFiles of
// kLogFileSize, as DockerRuntime's containers, so a job cannot fill a disk.
constexpr char kLogFileSize[] = "10m";
constexpr char kLogFiles[] = "3";
// The lines of a task kept in memory when Swarm removes it (StopGroup): the
// 10,000 a job attempt keeps (batch::JobLogs) and one more to show a cut.
constexpr size_t kStoppedLogLines = 10001;

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return util::HexEncode(std::string_view(reinterpret_cast<const char*>(digest), len));
}

std::string Base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Task states (swarmkit's TaskState, lower-case as the API writes them).
bool IsEnded(const std::string& state) {
  return state == "complete" || state == "failed" || state == "shutdown" || state == "rejected" ||
         state == "orphaned" || state == "remove";
}
bool IsPlaced(const std::string& state) {
  return state == "assigned" || state == "accepted" || state == "preparing" || state == "ready" ||
         state == "starting" || state == "running" || IsEnded(state);
}

std::string Str(const Json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

const Json& Member(const Json& j, const char* key) {
  static const Json kNull;
  return j.is_object() && j.contains(key) ? j[key] : kNull;
}

std::map<std::string, std::string> LabelsOf(const Json& labels) {
  std::map<std::string, std::string> out;
  if (!labels.is_object()) return out;
  for (const auto& [k, v] : labels.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

Json FilterOf(const std::map<std::string, std::string>& labels) {
  Json l = Json::array();
  for (const auto& [k, v] : labels) l.push_back(k + "=" + v);
  return Json{{"label", l}};
}

bool LabelsInclude(const std::map<std::string, std::string>& labels, const std::map<std::string, std::string>& sel) {
  for (const auto& [k, v] : sel) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

// Swarm's answer to a request on an object that is being changed by another
// (an "update out of sequence", a name taken by a concurrent create) and the
// like come as 409 / 500 with text; the manager being elected or away as 503.
Status FromSwarm(const DockerResponse& r, const std::string& what, const std::vector<std::string>& secrets = {}) {
  if (r.status == 503) return UnavailableError(what + ": " + docker::Scrub(docker::MessageOf(r), secrets));
  return FromDocker(r, what, secrets);
}

}  // namespace

struct SwarmRuntime::Service {
  std::string id;
  std::string name;
  std::map<std::string, std::string> labels;
  double cpus = 0;
  int64_t memory_bytes = 0;
  bool retired = false;  // its job asks for no completion any more (Retire)
  int64_t version = 0;   // Version.Index, for updates
  Json spec;
};

struct SwarmRuntime::Task {
  std::string id;
  std::string service_id;
  std::string node_id;
  std::string state;     // Status.State
  std::string message;   // Status.Message
  std::string err;       // Status.Err
  std::string container_id;
  int exit_code = 0;
  std::optional<TimePoint> status_time;  // Status.Timestamp: when it entered `state`
  std::optional<TimePoint> created_at;
};

// What StopGroup saw of a group whose service it had to remove.
struct SwarmRuntime::Stopped {
  ContainerState state;
  std::vector<LogLine> logs;
};

SwarmRuntime::SwarmRuntime(SwarmOptions options)
    : options_(std::move(options)), client_(options_.manager), manager_(options_.manager) {}

SwarmRuntime::~SwarmRuntime() = default;

std::string SwarmRuntime::ServiceName(const std::string& group) {
  std::string clean;
  for (char c : group) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    clean.push_back(ok ? c : '-');
  }
  const bool valid = !clean.empty() && clean == group && clean.size() <= 63 && clean.front() != '-' &&
                     clean.back() != '-';
  if (valid) return group;
  std::string prefix = clean.substr(0, 46);
  while (!prefix.empty() && prefix.back() == '-') prefix.pop_back();
  while (!prefix.empty() && prefix.front() == '-') prefix.erase(0, 1);
  return (prefix.empty() ? "g" : prefix) + "-" + Sha256Hex(group).substr(0, 16);
}

RuntimeFeatures SwarmRuntime::Features() const {
  RuntimeFeatures f;
  f.sidecars = false;
  f.callback_socket = false;
  f.bridge_network = false;
  f.loopback_reachable = false;
  return f;
}

Status SwarmRuntime::Ping(std::chrono::milliseconds timeout) { return manager_.Ping(timeout); }

Status SwarmRuntime::CheckManager(std::chrono::milliseconds timeout) {
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/info", "", {}, timeout));
  if (r.status != 200) return FromSwarm(r, "GET /info of the swarm manager");
  const Json info = ParseAnswer(r.body);
  const Json& swarm = Member(info, "Swarm");
  if (Str(swarm, "LocalNodeState") != "active" || !Member(swarm, "ControlAvailable").is_boolean() ||
      !swarm["ControlAvailable"].get<bool>()) {
    return FailedPreconditionError("the dockerd at " + options_.manager +
                                   " is not a manager of an active swarm (docker swarm init, or scripts/swarm-up)");
  }
  return Status::Ok();
}

Result<ClusterCapacity> SwarmRuntime::Capacity() {
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/nodes"));
  if (r.status != 200) return FromSwarm(r, "list the swarm's nodes");
  const Json nodes = ParseAnswer(r.body);
  if (!nodes.is_array()) return InternalError("the manager sent an unreadable node list");
  ClusterCapacity c;
  for (const Json& n : nodes) {
    if (Str(Member(n, "Status"), "State") != "ready" || Str(Member(n, "Spec"), "Availability") != "active") continue;
    const Json& res = Member(Member(n, "Description"), "Resources");
    const double cpus = static_cast<double>(res.value("NanoCPUs", int64_t{0})) / 1e9;
    const int64_t memory = res.value("MemoryBytes", int64_t{0});
    ++c.nodes;
    c.cpus += cpus;
    c.memory_bytes += memory;
    c.largest_node_cpus = std::max(c.largest_node_cpus, cpus);
    c.largest_node_memory_bytes = std::max(c.largest_node_memory_bytes, memory);
  }
  return c;
}

Result<std::string> SwarmRuntime::ManagerNodeId() {
  {
    std::lock_guard lock(mu_);
    if (!manager_node_id_.empty()) return manager_node_id_;
  }
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/info"));
  if (r.status != 200) return FromSwarm(r, "GET /info of the swarm manager");
  const std::string id = Str(Member(ParseAnswer(r.body), "Swarm"), "NodeID");
  if (id.empty()) return FailedPreconditionError("the dockerd at " + options_.manager + " is not in a swarm");
  std::lock_guard lock(mu_);
  manager_node_id_ = id;
  return id;
}

docker::DockerRuntime* SwarmRuntime::NodeRuntime(const std::string& node_id) {
  if (node_id.empty()) return nullptr;
  auto manager_node = ManagerNodeId();
  if (manager_node.ok() && *manager_node == node_id) return &manager_;
  std::string endpoint;
  {
    std::lock_guard lock(mu_);
    auto it = options_.node_endpoints.find(node_id);
    if (it != options_.node_endpoints.end()) endpoint = it->second;
  }
  if (endpoint.empty()) {
    // By hostname: read once per node.
    std::string hostname;
    {
      std::lock_guard lock(mu_);
      auto h = hostnames_.find(node_id);
      if (h != hostnames_.end()) hostname = h->second;
    }
    if (hostname.empty()) {
      auto r = client_.Request("GET", "/nodes/" + QueryEscape(node_id));
      if (!r.ok() || r->status != 200) return nullptr;
      hostname = Str(Member(ParseAnswer(r->body), "Description"), "Hostname");
      std::lock_guard lock(mu_);
      hostnames_[node_id] = hostname;
    }
    std::lock_guard lock(mu_);
    auto it = options_.node_endpoints.find(hostname);
    if (hostname.empty() || it == options_.node_endpoints.end()) return nullptr;
    endpoint = it->second;
  }
  std::lock_guard lock(mu_);
  std::unique_ptr<docker::DockerRuntime>& runtime = nodes_[endpoint];
  if (!runtime) runtime = std::make_unique<docker::DockerRuntime>(endpoint);
  return runtime.get();
}

RegistryCredentials SwarmRuntime::CredentialsFor(const std::string& image) const {
  const size_t slash = image.find('/');
  const std::string host = slash == std::string::npos ? "" : image.substr(0, slash);
  for (const RegistryCredentials& c : options_.registries) {
    if (c.server == host) return c;
  }
  return RegistryCredentials{host, "", ""};
}

// ---- Objects of an attempt: the baton-exec config, secrets ----

Result<std::string> SwarmRuntime::EnsureShimConfig() {
  {
    std::lock_guard lock(mu_);
    if (!shim_config_id_.empty()) return shim_config_id_;
  }
  const std::string_view program = ExecShimProgram();
  if (program.size() > kMaxSwarmObjectBytes) {
    return FailedPreconditionError("the embedded baton-exec is " + std::to_string(program.size()) +
                                   " bytes, more than a swarm config holds (500 KiB): build Baton with musl-gcc "
                                   "(apt-get install musl-tools)");
  }
  // One config per program version, shared by every service (it is not a
  // secret, and it is never removed: a few dozen KiB per Baton version).
  const std::string name = "baton-exec-" + Sha256Hex(program).substr(0, 16);
  Json body = {{"Name", name}, {"Labels", {{"baton.shim", "1"}}}, {"Data", Base64(program)}};
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("POST", "/configs/create", body.dump()));
  std::string id;
  if (r.status == 201) {
    id = Str(ParseAnswer(r.body), "ID");
  } else if (r.status == 409) {
    BATON_ASSIGN_OR_RETURN(DockerResponse found, client_.Request("GET", "/configs/" + QueryEscape(name)));
    if (found.status != 200) return FromSwarm(found, "find the swarm config " + name);
    id = Str(ParseAnswer(found.body), "ID");
  } else {
    return FromSwarm(r, "create the swarm config " + name);
  }
  if (id.empty()) return InternalError("the manager did not say the id of the config " + name);
  std::lock_guard lock(mu_);
  shim_config_id_ = id;
  return id;
}

Result<std::string> SwarmRuntime::EnsureSecret(const std::string& name, const std::string& value,
                                               const std::map<std::string, std::string>& labels) {
  Json body = {{"Name", name}, {"Labels", labels}, {"Data", Base64(value)}};
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("POST", "/secrets/create", body.dump()));
  if (r.status == 201) return Str(ParseAnswer(r.body), "ID");
  if (r.status != 409) return FromSwarm(r, "create the swarm secret " + name, {value});
  // Made by an earlier try of this attempt (the same value: secrets are read
  // from the vault by job and name, and an attempt's never change).
  BATON_ASSIGN_OR_RETURN(DockerResponse found, client_.Request("GET", "/secrets/" + QueryEscape(name)));
  if (found.status != 200) return FromSwarm(found, "find the swarm secret " + name);
  return Str(ParseAnswer(found.body), "ID");
}

Result<std::vector<std::string>> SwarmRuntime::CommandOf(const ContainerSpec& c) {
  auto argv = manager_.EffectiveCommand(c);
  if (argv.ok() || argv.status().code() != StatusCode::kNotFound) return argv;
  // Not on the manager (pruned since it was resolved): pull it there.
  BATON_RETURN_IF_ERROR(manager_.PullImage(c.image, CredentialsFor(c.image), std::chrono::minutes(10)).status());
  return manager_.EffectiveCommand(c);
}

// ---- Services and their tasks ----

SwarmRuntime::Service SwarmRuntime::ServiceOf(const Json& j) {
  Service s;
  s.id = Str(j, "ID");
  s.version = Member(j, "Version").value("Index", int64_t{0});
  s.spec = Member(j, "Spec");
  s.name = Str(s.spec, "Name");
  s.labels = LabelsOf(Member(s.spec, "Labels"));
  const Json& limits = Member(Member(Member(s.spec, "TaskTemplate"), "Resources"), "Limits");
  s.cpus = static_cast<double>(limits.value("NanoCPUs", int64_t{0})) / 1e9;
  s.memory_bytes = limits.value("MemoryBytes", int64_t{0});
  s.retired = Member(Member(s.spec, "Mode"), "ReplicatedJob").value("TotalCompletions", int64_t{1}) == 0;
  return s;
}

Result<SwarmRuntime::Service> SwarmRuntime::GetService(const std::string& name) {
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/services/" + QueryEscape(name)));
  if (r.status == 404) return NotFoundError("service '" + name + "' does not exist");
  if (r.status != 200) return FromSwarm(r, "inspect service '" + name + "'");
  return ServiceOf(ParseAnswer(r.body));
}

// A job service whose spec changes starts a new job iteration, and Swarm
// removes the tasks of the earlier one that have not ended yet (stopping
// them: SIGTERM, SIGKILL after the grace) — container, logs and all. Retiring
// a group's service is such an update, to an iteration of no completion:
// nothing runs again.
Status SwarmRuntime::Retire(const Service& service) {
  Service s = service;
  for (int tries = 0;; ++tries) {
    if (s.retired) return Status::Ok();
    Json spec = s.spec;
    spec["Mode"] = {{"ReplicatedJob", {{"MaxConcurrent", 1}, {"TotalCompletions", 0}}}};
    BATON_ASSIGN_OR_RETURN(DockerResponse r,
                           client_.Request("POST", "/services/" + s.id + "/update?version=" + std::to_string(s.version),
                                           spec.dump()));
    if (r.status == 200) return Status::Ok();
    if (r.status == 404) return Status::Ok();  // gone already
    // "update out of sequence": changed meanwhile (another retire); read it again.
    if (tries >= 5) return FromSwarm(r, "retire service '" + s.name + "'");
    auto again = GetService(s.name);
    if (!again.ok()) return again.status().code() == StatusCode::kNotFound ? Status::Ok() : again.status();
    s = std::move(*again);
  }
}

Result<std::vector<SwarmRuntime::Task>> SwarmRuntime::TasksOf(const std::vector<std::string>& service_ids) {
  std::vector<Task> out;
  // A bounded filter per request; an answer is never partial (an error fails the call).
  for (size_t i = 0; i < service_ids.size(); i += 50) {
    Json ids = Json::array();
    for (size_t k = i; k < std::min(service_ids.size(), i + 50); ++k) ids.push_back(service_ids[k]);
    BATON_ASSIGN_OR_RETURN(DockerResponse r,
                           client_.Request("GET", "/tasks?filters=" + QueryEscape(Json{{"service", ids}}.dump())));
    if (r.status != 200) return FromSwarm(r, "list tasks");
    const Json list = ParseAnswer(r.body);
    if (!list.is_array()) return InternalError("the manager sent an unreadable task list");
    for (const Json& j : list) {
      Task t;
      t.id = Str(j, "ID");
      t.service_id = Str(j, "ServiceID");
      t.node_id = Str(j, "NodeID");
      const Json& status = Member(j, "Status");
      t.state = Str(status, "State");
      t.message = Str(status, "Message");
      t.err = Str(status, "Err");
      const Json& cs = Member(status, "ContainerStatus");
      t.container_id = Str(cs, "ContainerID");
      t.exit_code = cs.is_object() ? cs.value("ExitCode", 0) : 0;
      t.status_time = docker::DockerTime(status, "Timestamp");
      t.created_at = docker::DockerTime(j, "CreatedAt");
      out.push_back(std::move(t));
    }
  }
  // Oldest first: a group's task is the first its service got.
  std::sort(out.begin(), out.end(), [](const Task& a, const Task& b) {
    return a.created_at.value_or(TimePoint{}) < b.created_at.value_or(TimePoint{});
  });
  return out;
}

ContainerState SwarmRuntime::StateOf(const Service& s, const Task* t, bool ask_node) {
  ContainerState c;
  c.labels = s.labels;
  c.name = c.labels.count(kContainerLabel) ? c.labels[kContainerLabel] : "main";
  c.cpus = s.cpus;
  c.memory_bytes = s.memory_bytes;
  if (t == nullptr && s.retired) {
    // Stopped by Retire (StopGroup), whose memory of the outcome this
    // process does not have (Baton restarted in between).
    c.status = "exited";
    c.exit_code = -1;
    c.error = "stopped by Swarm removing its task; what it printed and how it ended were not kept";
    return c;
  }
  if (t == nullptr) {  // the orchestrator has not made it yet (milliseconds after the create)
    c.status = "created";
    return c;
  }
  c.id = t->id;
  c.node = t->node_id;
  if (t->state == "running") {
    c.status = "running";
    c.running = true;
    c.started_at = t->status_time;
    return c;
  }
  if (!IsEnded(t->state)) {
    c.status = "created";
    if (t->state == "pending" || t->state == "new") c.waiting = t->err;
    return c;
  }
  c.status = "exited";
  c.finished_at = t->status_time;
  if (t->container_id.empty()) {
    // It never ran: rejected (its image could not be pulled, its network not
    // joined, …), or shut down before it started.
    c.exit_code = -1;
    c.error = "the swarm task was " + t->state + " before it ran" + (t->err.empty() ? "" : ": " + t->err);
    return c;
  }
  c.exit_code = t->exit_code;
  if (!ask_node) return c;
  docker::DockerRuntime* node = NodeRuntime(t->node_id);
  Result<ContainerState> local =
      node != nullptr ? node->InspectContainer(t->container_id) : Result<ContainerState>(NotFoundError(""));
  if (local.ok()) {
    c.oom_killed = local->oom_killed;
    c.started_at = local->started_at;
    c.finished_at = local->finished_at;
    c.exit_code = local->exit_code;
  } else if (c.exit_code == 137 && c.memory_bytes > 0) {
    // SIGKILL under a memory limit: the kernel's OOM killer is the likely
    // cause, but only the node knows, and it cannot be asked.
    c.error = "exit 137 (SIGKILL) under a memory limit of " + std::to_string(c.memory_bytes >> 20) +
              " MiB: most likely killed for memory, but node " + t->node_id +
              " cannot be asked to confirm it (its Engine API is not among the swarm node endpoints)";
  }
  return c;
}

// ---- ContainerRuntime ----

Result<GroupState> SwarmRuntime::CreateGroup(const GroupSpec& spec) {
  if (spec.containers.size() != 1) {
    return InvalidArgumentError("the swarm runtime runs one container per group (a service's task); '" + spec.name +
                                "' has " + std::to_string(spec.containers.size()));
  }
  if (spec.network == NetworkMode::kBridge) {
    return InvalidArgumentError("the swarm runtime has no bridge network with ports on 127.0.0.1");
  }
  if (!spec.callback_dir.empty()) return InvalidArgumentError("the swarm runtime cannot mount a callback directory");
  if (spec.scratch_volume) return InvalidArgumentError("the swarm runtime has no scratch volume");
  const ContainerSpec& c = spec.containers[0];
  if (c.image.empty()) return InvalidArgumentError("container '" + c.name + "' has no image");
  if (!c.ports.empty()) return InvalidArgumentError("the swarm runtime publishes no ports");
  if (c.cpus < 0 || c.memory_bytes < 0) return InvalidArgumentError("container '" + c.name + "': negative limits");
  if (c.memory_bytes > 0 && c.memory_bytes < 6 * 1024 * 1024) {
    return InvalidArgumentError("container '" + c.name + "': memory must be at least 6 MiB");
  }
  if (c.pids_limit <= 0) return InvalidArgumentError("container '" + c.name + "': the pids limit must be positive");
  std::vector<std::string> secret_values;
  for (const auto& [k, v] : c.secret_env) secret_values.push_back(v);
  for (const auto& [k, v] : c.secret_files) secret_values.push_back(v);
  for (const auto& [name, value] : c.secret_files) {
    if (name.empty() || name[0] == '.' || name.find('/') != std::string::npos) {
      return InvalidArgumentError("container '" + c.name + "': secret file name '" + name + "' is not allowed");
    }
    if (value.size() > kMaxSwarmObjectBytes) return InvalidArgumentError("secret file '" + name + "' is too large");
  }

  const std::string service = ServiceName(spec.name);
  // Idempotent: a service that exists (an earlier try of this call) is kept.
  auto existing = GetService(service);
  if (existing.ok()) return InspectGroup(spec.name);
  if (existing.status().code() != StatusCode::kNotFound) return existing.status();

  std::map<std::string, std::string> labels = spec.labels;
  labels[kGroupLabel] = spec.name;
  labels[kContainerLabel] = c.name;
  labels[kIndexLabel] = kMainIndex;

  // Secrets: one swarm secret per value, named after the group and the
  // secret's name (never its value).
  Json secrets = Json::array();
  auto add_secret = [&](const std::string& kind, const std::string& name, const std::string& value,
                        const std::string& target) -> Status {
    const std::string secret_name = "baton-" + Sha256Hex(spec.name + "\n" + kind + "\n" + name).substr(0, 32);
    BATON_ASSIGN_OR_RETURN(const std::string id, EnsureSecret(secret_name, value, labels));
    secrets.push_back({{"SecretID", id},
                       {"SecretName", secret_name},
                       {"File", {{"Name", target}, {"UID", "0"}, {"GID", "0"}, {"Mode", 0444}}}});
    return Status::Ok();
  };
  for (const auto& [name, value] : c.secret_files) {
    BATON_RETURN_IF_ERROR(add_secret("file", name, value, std::string(kSecretsMount) + "/" + name));
  }
  for (const auto& [name, value] : c.secret_env) {
    BATON_RETURN_IF_ERROR(add_secret("env", name, value, std::string(kSecretsMount) + "/.env/" + name));
  }

  BATON_ASSIGN_OR_RETURN(const std::string shim, EnsureShimConfig());
  Json configs = Json::array({{{"ConfigID", shim},
                               {"ConfigName", "baton-exec-" + Sha256Hex(ExecShimProgram()).substr(0, 16)},
                               {"File", {{"Name", kExecMount}, {"UID", "0"}, {"GID", "0"}, {"Mode", 0555}}}}});
  BATON_ASSIGN_OR_RETURN(std::vector<std::string> argv, CommandOf(c));

  // "host": the node's. "none": no network attached, which on a node whose
  // dockerd has no default bridge is loopback only; baton-exec refuses to
  // run the job on a node that gives it more (docs/cluster.md).
  Json networks = Json::array();
  if (spec.network == NetworkMode::kHost) networks.push_back({{"Target", "host"}});

  Json env = Json::array();
  for (const auto& [k, v] : c.env) env.push_back(k + "=" + v);
  if (spec.network == NetworkMode::kNone) env.push_back("BATON_EXEC_REQUIRE_NO_NETWORK=1");
  if (!secrets.empty()) env.push_back(std::string("BATON_SECRETS_DIR=") + kSecretsMount);
  Json container = {{"Image", c.image},
                    {"Command", Json::array({kExecMount})},
                    {"Args", argv},
                    {"Env", env},
                    {"Labels", labels},
                    {"CapabilityDrop", Json::array({"ALL"})},
                    {"StopGracePeriod", std::chrono::nanoseconds(options_.stop_grace).count()},
                    {"Secrets", secrets},
                    {"Configs", configs}};
  if (!c.capabilities.empty()) container["CapabilityAdd"] = c.capabilities;
  if (!c.user.empty()) container["User"] = c.user;
  if (!c.working_dir.empty()) container["Dir"] = c.working_dir;
  if (c.read_only_root_fs) {
    container["ReadOnly"] = true;
    container["Mounts"] = Json::array(
        {{{"Type", "tmpfs"}, {"Target", "/tmp"}, {"TmpfsOptions", {{"SizeBytes", 64 << 20}, {"Mode", 01777}}}}});
  }
  Json resources = {{"NanoCPUs", static_cast<int64_t>(c.cpus * 1e9)}, {"MemoryBytes", c.memory_bytes}};
  Json limits = resources;
  limits["Pids"] = c.pids_limit;
  Json body = {
      {"Name", service},
      {"Labels", labels},
      {"TaskTemplate",
       {{"ContainerSpec", container},
        {"Resources", {{"Limits", limits}, {"Reservations", resources}}},
        {"RestartPolicy", {{"Condition", "none"}, {"MaxAttempts", 0}}},
        {"LogDriver", {{"Name", "json-file"}, {"Options", {{"max-size", kLogFileSize}, {"max-file", kLogFiles}}}}},
        {"Networks", networks}}},
      {"Mode", {{"ReplicatedJob", {{"MaxConcurrent", 1}, {"TotalCompletions", 1}}}}}};
  std::map<std::string, std::string> headers;
  const RegistryCredentials credentials = CredentialsFor(c.image);
  if (!credentials.username.empty()) headers["X-Registry-Auth"] = docker::RegistryAuthHeader(credentials);
  secret_values.push_back(credentials.password);
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("POST", "/services/create", body.dump(), headers));
  if (r.status != 201 && r.status != 409) return FromSwarm(r, "create service '" + service + "'", secret_values);
  // 409: created meanwhile by another try of this call; kept.
  return InspectGroup(spec.name);
}

Result<GroupState> SwarmRuntime::InspectGroup(const std::string& group) {
  {
    std::lock_guard lock(mu_);
    auto it = stopped_.find(group);
    if (it != stopped_.end()) return GroupState{group, {it->second->state}};
  }
  auto service = GetService(ServiceName(group));
  if (!service.ok() && service.status().code() == StatusCode::kNotFound) {
    return NotFoundError("container group '" + group + "' (service '" + ServiceName(group) + "') does not exist");
  }
  if (!service.ok()) return service.status();
  BATON_ASSIGN_OR_RETURN(std::vector<Task> tasks, TasksOf({service->id}));
  return GroupState{group, {StateOf(*service, tasks.empty() ? nullptr : &tasks[0], /*ask_node=*/true)}};
}

Status SwarmRuntime::StartGroup(const std::string& group) {
  // Swarm started the task when the service was made: wait (briefly) until
  // its container runs, as DockerRuntime's start means (the job then shows
  // "Running" when its process does, not when a node merely took it); a task
  // no node can take says why. A placed task whose node is still preparing
  // (pulling the image) when the bound passes counts as started: it is not
  // waiting on placement.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    BATON_ASSIGN_OR_RETURN(Service service, GetService(ServiceName(group)));
    BATON_ASSIGN_OR_RETURN(std::vector<Task> tasks, TasksOf({service.id}));
    const bool over = std::chrono::steady_clock::now() >= deadline;
    if (!tasks.empty()) {
      const Task& t = tasks[0];
      if (t.state == "running" || IsEnded(t.state) || (over && IsPlaced(t.state))) return Status::Ok();
      if (!IsPlaced(t.state) && !t.err.empty()) return ResourceExhaustedError(t.err);
    }
    if (over) {
      return ResourceExhaustedError("the swarm task is not placed yet (" +
                                    (tasks.empty() ? std::string("no task yet") : tasks[0].state) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Status SwarmRuntime::StopGroup(const std::string& group, std::chrono::seconds grace) {
  const std::string name = ServiceName(group);
  {
    std::lock_guard lock(mu_);
    if (stopped_.count(group)) return Status::Ok();
  }
  auto service = GetService(name);
  if (!service.ok() && service.status().code() == StatusCode::kNotFound) {
    return NotFoundError("container group '" + group + "' does not exist");
  }
  if (!service.ok()) return service.status();
  if (service->retired) return Status::Ok();  // stopped before
  BATON_ASSIGN_OR_RETURN(std::vector<Task> tasks, TasksOf({service->id}));
  const Task* task = tasks.empty() ? nullptr : &tasks[0];
  if (task != nullptr && IsEnded(task->state)) return Status::Ok();
  docker::DockerRuntime* node = task != nullptr && !task->container_id.empty() ? NodeRuntime(task->node_id) : nullptr;
  if (node != nullptr) {
    // Stopped on its node: the task ends ("failed", exit 143 for a job that
    // honours SIGTERM) and keeps its exit code and logs.
    Status stopped = node->StopContainer(task->container_id, grace);
    if (!stopped.ok() && stopped.code() != StatusCode::kNotFound) return stopped;
    const auto deadline = std::chrono::steady_clock::now() + grace + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      BATON_ASSIGN_OR_RETURN(std::vector<Task> now, TasksOf({service->id}));
      if (now.empty() || IsEnded(now[0].state)) return Status::Ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return DeadlineExceededError("the task of '" + group + "' was stopped on its node but Swarm still shows it running");
  }
  // Swarm can only remove a job's task (its container and logs with it):
  // keep what can be read now, then retire the service (SIGTERM, SIGKILL
  // after stop_grace).
  auto stopped = std::make_unique<Stopped>();
  stopped->state = StateOf(*service, task, /*ask_node=*/false);
  if (task != nullptr) {
    auto logs = LogsTail(task->id, kStoppedLogLines);
    if (logs.ok()) stopped->logs = std::move(*logs);
  }
  stopped->state.status = "exited";
  stopped->state.running = false;
  stopped->state.exit_code = -1;
  stopped->state.finished_at = std::chrono::system_clock::now();
  stopped->state.error =
      task == nullptr || task->container_id.empty()
          ? "stopped before it ran (Swarm removed its task)"
          : "stopped by Swarm removing its task (node " + task->node_id +
                " cannot be asked to stop the container and keep its exit code; the logs are those read before)";
  BATON_RETURN_IF_ERROR(Retire(*service));
  std::lock_guard lock(mu_);
  stopped_[group] = std::move(stopped);
  return Status::Ok();
}

Status SwarmRuntime::RestartGroup(const std::string& group, std::chrono::seconds) {
  return UnimplementedError("a swarm job's task runs once; '" + group + "' cannot be restarted");
}

Status SwarmRuntime::RemoveLabelled(const std::string& kind, const std::string& group) {
  const std::string filter = QueryEscape(FilterOf({{kGroupLabel, group}}).dump());
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/" + kind + "?filters=" + filter));
  if (r.status != 200) return FromSwarm(r, "list " + kind + " of '" + group + "'");
  const Json list = ParseAnswer(r.body);
  if (!list.is_array()) return InternalError("the manager sent an unreadable list of " + kind);
  for (const Json& o : list) {
    const std::string id = o.contains("ID") ? Str(o, "ID") : Str(o, "Id");
    // An object still in use (by a service being removed meanwhile) is tried
    // again for a while.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      BATON_ASSIGN_OR_RETURN(DockerResponse d, client_.Request("DELETE", "/" + kind + "/" + QueryEscape(id)));
      if (d.status == 204 || d.status == 200 || d.status == 404) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        // Unavailable: the caller tries again later (the job orchestration
        // waits it out; the reconciler finishes it otherwise).
        return UnavailableError("remove " + kind + " " + id + " of '" + group + "': " + docker::MessageOf(d));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  return Status::Ok();
}

// Swarm 20.10 never removes the task of a job that ended, not even when its
// service is deleted (its jobs orchestrator ignores deletions, and the task
// reaper skips job services): the task stays in the manager's store and its
// exited container on its node. So: a task still running or waiting is
// removed by retiring the service; an ended task's container is removed on
// its node when the node can be asked (else it stays there: docs/cluster.md);
// then the service and the secrets go.
Status SwarmRuntime::DeleteGroup(const std::string& group) {
  const std::string name = ServiceName(group);
  auto service = GetService(name);
  if (!service.ok() && service.status().code() != StatusCode::kNotFound) return service.status();
  if (service.ok()) {
    BATON_ASSIGN_OR_RETURN(std::vector<Task> tasks, TasksOf({service->id}));
    const auto live = [](const std::vector<Task>& ts) {
      return std::any_of(ts.begin(), ts.end(), [](const Task& t) { return !IsEnded(t.state); });
    };
    if (live(tasks)) {
      BATON_RETURN_IF_ERROR(Retire(*service));
      // A node that is down never confirms: after a while the service goes
      // anyway (its task goes when the node is back).
      const auto deadline = std::chrono::steady_clock::now() + options_.stop_grace + std::chrono::seconds(20);
      while (live(tasks) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        BATON_ASSIGN_OR_RETURN(tasks, TasksOf({service->id}));
      }
    }
    for (const Task& t : tasks) {
      if (t.container_id.empty() || !IsEnded(t.state)) continue;
      if (docker::DockerRuntime* node = NodeRuntime(t.node_id)) {
        Status removed = node->RemoveContainer(t.container_id);
        if (!removed.ok() && removed.code() != StatusCode::kNotFound) return removed;
      }
    }
    BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("DELETE", "/services/" + QueryEscape(service->id)));
    if (r.status != 200 && r.status != 404) return FromSwarm(r, "remove service '" + name + "'");
  } else {
    BATON_RETURN_IF_ERROR(RemoveOrphanTasks(group));
  }
  BATON_RETURN_IF_ERROR(RemoveLabelled("secrets", group));
  std::lock_guard lock(mu_);
  stopped_.erase(group);
  return Status::Ok();
}

// A job service removed outside Baton (`docker service rm`) leaves its task
// running: Swarm 20.10 neither stops nor removes the tasks of a deleted job
// service. The tasks still carry the service's labels (GET /tasks filters
// on them), so their containers are removed, killed if running, on the nodes
// that can be asked; on others they run to their end (docs/cluster.md).
Status SwarmRuntime::RemoveOrphanTasks(const std::string& group) {
  const std::string filter = QueryEscape(FilterOf({{kGroupLabel, group}}).dump());
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/tasks?filters=" + filter));
  if (r.status != 200) return FromSwarm(r, "list the tasks of '" + group + "'");
  const Json list = ParseAnswer(r.body);
  for (const Json& t : list.is_array() ? list : Json::array()) {
    const std::string container = Str(Member(Member(t, "Status"), "ContainerStatus"), "ContainerID");
    if (container.empty()) continue;
    if (docker::DockerRuntime* node = NodeRuntime(Str(t, "NodeID"))) {
      Status removed = node->RemoveContainer(container);
      if (!removed.ok() && removed.code() != StatusCode::kNotFound) return removed;
    }
  }
  return Status::Ok();
}

Result<int> SwarmRuntime::WaitContainer(const std::string& task_id, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/tasks/" + QueryEscape(task_id)));
    if (r.status != 200) return FromSwarm(r, "inspect task " + task_id);
    const Json j = ParseAnswer(r.body);
    const Json& status = Member(j, "Status");
    if (IsEnded(Str(status, "State"))) {
      const Json& cs = Member(status, "ContainerStatus");
      return Str(cs, "ContainerID").empty() ? -1 : cs.value("ExitCode", -1);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceededError("task " + task_id + " still runs");
    }
    std::this_thread::sleep_for(options_.poll_interval);
  }
}

Result<std::vector<LogLine>> SwarmRuntime::Logs(const std::string& task_id) {
  {
    std::lock_guard lock(mu_);
    for (const auto& [group, s] : stopped_) {
      if (!task_id.empty() && s->state.id == task_id) return s->logs;
    }
  }
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/tasks/" + QueryEscape(task_id) +
                                                                     "/logs?stdout=1&stderr=1&timestamps=1"));
  if (r.status != 200) return FromSwarm(r, "logs of task " + task_id);
  std::vector<LogLine> lines;
  docker::LogDemuxer demux([&](LogLine line) {
    lines.push_back(std::move(line));
    return true;
  });
  demux.Feed(r.body);
  demux.Finish();
  return lines;
}

Status SwarmRuntime::StreamTaskLogs(const std::string& task_id, const std::string& query,
                                    docker::LogDemuxer& demux) {
  BATON_ASSIGN_OR_RETURN(int status, client_.Stream("GET",
                                                    "/tasks/" + QueryEscape(task_id) +
                                                        "/logs?stdout=1&stderr=1&timestamps=1" + query,
                                                    [&](std::string_view data) { return demux.Feed(data); },
                                                    std::chrono::seconds(60)));
  if (status == 404) return NotFoundError("task " + task_id + " does not exist");
  if (status != 200) return InternalError("logs of task " + task_id + ": HTTP " + std::to_string(status));
  return Status::Ok();
}

Result<std::vector<LogLine>> SwarmRuntime::LogsTail(const std::string& task_id, size_t lines) {
  {
    std::lock_guard lock(mu_);
    for (const auto& [group, s] : stopped_) {
      if (!task_id.empty() && s->state.id == task_id) {
        const size_t from = s->logs.size() > lines ? s->logs.size() - lines : 0;
        return std::vector<LogLine>(s->logs.begin() + static_cast<std::ptrdiff_t>(from), s->logs.end());
      }
    }
  }
  if (lines == 0) return std::vector<LogLine>{};
  std::deque<LogLine> kept;
  docker::LogDemuxer demux([&](LogLine line) {
    kept.push_back(std::move(line));
    if (kept.size() > lines) kept.pop_front();
    return true;
  });
  BATON_RETURN_IF_ERROR(StreamTaskLogs(task_id, "&tail=" + std::to_string(lines), demux));
  demux.Finish();
  if (kept.size() > lines) kept.pop_front();
  return std::vector<LogLine>(std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()));
}

Result<std::vector<LogLine>> SwarmRuntime::LogsRange(const std::string& task_id, size_t skip, size_t limit) {
  std::vector<LogLine> out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [group, s] : stopped_) {
      if (!task_id.empty() && s->state.id == task_id) {
        for (size_t i = skip; i < s->logs.size() && out.size() < limit; ++i) out.push_back(s->logs[i]);
        return out;
      }
    }
  }
  if (limit == 0) return out;
  size_t seen = 0;
  bool full = false;
  docker::LogDemuxer demux([&](LogLine line) {
    if (seen++ >= skip) out.push_back(std::move(line));
    full = out.size() >= limit;
    return !full;
  });
  BATON_RETURN_IF_ERROR(StreamTaskLogs(task_id, "", demux));
  if (!full) demux.Finish();
  return out;
}

Status SwarmRuntime::FollowLogs(const std::string& task_id, const std::function<bool(const LogLine&)>& on_line,
                                std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t passed = 0;
  for (;;) {
    // Whether it had ended is read before its log: the last read then holds
    // every line it wrote.
    BATON_ASSIGN_OR_RETURN(DockerResponse t, client_.Request("GET", "/tasks/" + QueryEscape(task_id)));
    if (t.status == 404) return NotFoundError("task " + task_id + " does not exist");
    if (t.status != 200) return FromSwarm(t, "inspect task " + task_id);
    const bool ended = IsEnded(Str(Member(ParseAnswer(t.body), "Status"), "State"));
    // A page at a time: what was passed before is counted, not held.
    constexpr size_t kPage = 5000;
    size_t got = 0;
    do {
      BATON_ASSIGN_OR_RETURN(std::vector<LogLine> lines, LogsRange(task_id, passed, kPage));
      got = lines.size();
      for (const LogLine& line : lines) {
        ++passed;
        if (!on_line(line)) return Status::Ok();
      }
    } while (got == kPage && std::chrono::steady_clock::now() < deadline);
    if (ended || std::chrono::steady_clock::now() >= deadline) return Status::Ok();
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(
        options_.poll_interval, deadline - std::chrono::steady_clock::now()));
  }
}

Result<Usage> SwarmRuntime::Stats(const std::string& task_id) {
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/tasks/" + QueryEscape(task_id)));
  if (r.status != 200) return FromSwarm(r, "inspect task " + task_id);
  const Json j = ParseAnswer(r.body);
  const std::string container = Str(Member(Member(j, "Status"), "ContainerStatus"), "ContainerID");
  docker::DockerRuntime* node = container.empty() ? nullptr : NodeRuntime(Str(j, "NodeID"));
  if (node == nullptr) return UnimplementedError("the node of task " + task_id + " cannot be asked for its usage");
  return node->Stats(container);
}

Status SwarmRuntime::WatchEvents(const std::map<std::string, std::string>& selector,
                                 const std::function<bool(const ContainerEvent&)>& on_event,
                                 std::chrono::milliseconds timeout, std::optional<TimePoint> since) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const TimePoint from = since.value_or(std::chrono::system_clock::now());
  std::set<std::string> reported;  // within this call
  const std::string filter = QueryEscape(FilterOf(selector).dump());
  for (;;) {
    BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/services?filters=" + filter));
    if (r.status != 200) return FromSwarm(r, "list services");
    const Json list = ParseAnswer(r.body);
    std::map<std::string, std::map<std::string, std::string>> labels;  // service id -> labels
    std::vector<std::string> ids;
    for (const Json& s : list.is_array() ? list : Json::array()) {
      ids.push_back(Str(s, "ID"));
      labels[ids.back()] = LabelsOf(Member(Member(s, "Spec"), "Labels"));
    }
    BATON_ASSIGN_OR_RETURN(std::vector<Task> tasks, TasksOf(ids));
    std::vector<ContainerEvent> events;
    for (const Task& t : tasks) {
      if (!IsEnded(t.state) || !t.status_time || *t.status_time < from || reported.count(t.id)) continue;
      ContainerEvent e;
      e.container_id = t.id;
      e.action = "die";
      e.exit_code = t.container_id.empty() ? -1 : t.exit_code;
      e.labels = labels[t.service_id];
      e.time = *t.status_time;
      events.push_back(std::move(e));
    }
    std::sort(events.begin(), events.end(), [](const ContainerEvent& a, const ContainerEvent& b) { return a.time < b.time; });
    for (const ContainerEvent& e : events) {
      reported.insert(e.container_id);
      if (!on_event(e)) return Status::Ok();
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return Status::Ok();
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(options_.poll_interval, deadline - now));
  }
}

Result<std::vector<ContainerState>> SwarmRuntime::ListByLabels(const std::map<std::string, std::string>& selector) {
  const std::string filter = QueryEscape(FilterOf(selector).dump());
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/services?filters=" + filter));
  if (r.status != 200) return FromSwarm(r, "list services");
  const Json list = ParseAnswer(r.body);
  if (!list.is_array()) return InternalError("the manager sent an unreadable service list");
  std::vector<Service> services;
  std::vector<std::string> ids;
  for (const Json& j : list) {
    services.push_back(ServiceOf(j));
    ids.push_back(services.back().id);
  }
  BATON_ASSIGN_OR_RETURN(std::vector<Task> tasks, TasksOf(ids));
  std::vector<ContainerState> out;
  std::set<std::string> groups;
  for (const Service& s : services) {
    const Task* first = nullptr;
    for (const Task& t : tasks) {
      if (t.service_id == s.id) {
        first = &t;
        break;
      }
    }
    out.push_back(StateOf(s, first, /*ask_node=*/false));
    if (s.labels.count(kGroupLabel)) groups.insert(s.labels.at(kGroupLabel));
  }
  // What a group leaves when its service is gone and its secrets are not
  // (they carry the group's labels too): a create or a delete that stopped
  // between the two.
  BATON_ASSIGN_OR_RETURN(DockerResponse o, client_.Request("GET", "/secrets?filters=" + filter));
  if (o.status != 200) return FromSwarm(o, "list secrets");
  const Json secrets = ParseAnswer(o.body);
  for (const Json& j : secrets.is_array() ? secrets : Json::array()) {
    std::map<std::string, std::string> l = LabelsOf(Member(Member(j, "Spec"), "Labels"));
    auto group = l.find(kGroupLabel);
    if (group == l.end() || !LabelsInclude(l, selector) || !groups.insert(group->second).second) continue;
    ContainerState left;
    left.name = l.count(kContainerLabel) ? l[kContainerLabel] : "main";
    left.status = "removing";
    left.labels = std::move(l);
    out.push_back(std::move(left));
  }
  return out;
}

Result<std::string> SwarmRuntime::PullImage(const std::string& image, const RegistryCredentials& credentials,
                                            std::chrono::milliseconds timeout,
                                            const std::function<void(const std::string&)>& progress) {
  return manager_.PullImage(image, credentials, timeout, progress);
}

Result<std::string> SwarmRuntime::LocalImageDigest(const std::string& image) {
  return manager_.LocalImageDigest(image);
}

Status SwarmRuntime::CheckRegistry(const RegistryCredentials& credentials, std::chrono::milliseconds timeout) {
  return manager_.CheckRegistry(credentials, timeout);
}

}  // namespace baton::runtime::swarm
