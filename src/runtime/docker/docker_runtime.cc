#include "runtime/docker/docker_runtime.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <thread>

#include "runtime/docker/engine_api.h"
#include "runtime/exec_shim/exec_shim.h"

#include "baton/json.h"

namespace baton::runtime::docker {
namespace {

constexpr char kSecretsMount[] = "/run/baton/secrets";
constexpr char kExecMount[] = "/run/baton/exec";
constexpr char kCallbackMount[] = "/run/baton/callback";

// Creates `dir` if missing and sets its mode. An existing one must be a
// directory of this process's user, not a link: the secrets dir's default
// parent (/dev/shm) is writable by every local user, who could otherwise
// create it first, keep it (chmod does not change its owner) and plant the
// exec shim that receives every job's secret env.
Status EnsureDir(const std::string& dir, mode_t mode) {
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
    return InternalError("cannot create " + dir + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return InternalError("cannot stat " + dir + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
    return FailedPreconditionError(dir + " is " + (S_ISDIR(st.st_mode) ? "a directory of uid " + std::to_string(st.st_uid)
                                                                       : std::string("not a directory")) +
                                   ", not this server's: secrets are never written there (remove it, or choose "
                                   "another --secrets-dir)");
  }
  if (::chmod(dir.c_str(), mode) != 0) return InternalError("cannot chmod " + dir + ": " + std::strerror(errno));
  return Status::Ok();
}

// Writes a new file (never through a link) with `content` and `mode`.
Status WriteNewFile(const std::string& path, std::string_view content, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return InternalError("cannot create " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return InternalError("cannot write " + path + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0 || ::close(fd) != 0) return InternalError("cannot finish " + path);
  return Status::Ok();
}

// Removes a tree whose directories may be read-only to their owner.
void RemoveTree(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec))) return;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
  }
  ::chmod(path.c_str(), 0700);
  std::filesystem::remove_all(path, ec);
}

constexpr char kGroupLabel[] = "baton.group";
constexpr char kContainerLabel[] = "baton.container";

bool ValidName(std::string_view s, bool allow_dots) {
  if (s.empty() || s.size() > 100) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '-' || c == '_')) ||
              (allow_dots && i > 0 && c == '.');
    if (!ok) return false;
  }
  return true;
}


// Scans a JSON-lines progress stream (pull, push, build) for an error.
std::optional<std::string> StreamError(const std::string& body) {
  size_t i = 0;
  while (i < body.size()) {
    size_t j = body.find('\n', i);
    if (j == std::string::npos) j = body.size();
    Json line = ParseAnswer(body.substr(i, j - i));
    if (line.is_object() && line.contains("error")) {
      return line["error"].is_string() ? line["error"].get<std::string>() : line["error"].dump();
    }
    i = j + 1;
  }
  return std::nullopt;
}

// Maps a registry error text to a status, so callers can tell wrong
// credentials from a missing image from an unreachable registry.
Status RegistryStatus(const std::string& what, const std::string& error) {
  std::string lower = error;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  std::string message = what + ": " + error;
  if (lower.find("unauthorized") != std::string::npos || lower.find("authentication required") != std::string::npos ||
      lower.find("no basic auth") != std::string::npos || lower.find("denied") != std::string::npos) {
    return Status(StatusCode::kUnauthenticated, message);
  }
  if (lower.find("not found") != std::string::npos || lower.find("manifest unknown") != std::string::npos ||
      lower.find("does not exist") != std::string::npos) {
    return NotFoundError(message);
  }
  // The registry is away (down, restarting, overloaded or unreachable): worth
  // trying again later, unlike the answers above.
  for (const char* transient :
       {"connection refused", "connection reset", "dial tcp", "no such host", "no route to host", "network is unreachable",
        "timeout", "eof", "502 bad gateway", "503 service unavailable", "504 gateway timeout"}) {
    if (lower.find(transient) != std::string::npos) return UnavailableError(message);
  }
  return InternalError(message);
}


ContainerState StateFromInspect(const Json& j) {
  ContainerState s;
  s.id = j.value("Id", "");
  const Json& state = j.contains("State") ? j["State"] : Json::object();
  s.status = state.value("Status", "");
  s.running = state.value("Running", false);
  s.exit_code = state.value("ExitCode", 0);
  s.oom_killed = state.value("OOMKilled", false);
  s.started_at = DockerTime(state, "StartedAt");
  s.finished_at = DockerTime(state, "FinishedAt");
  if (j.contains("HostConfig")) {
    s.cpus = static_cast<double>(j["HostConfig"].value("NanoCpus", int64_t{0})) / 1e9;
    s.memory_bytes = j["HostConfig"].value("Memory", int64_t{0});
  }
  if (j.contains("Config") && j["Config"].contains("Labels") && j["Config"]["Labels"].is_object()) {
    for (const auto& [k, v] : j["Config"]["Labels"].items()) {
      if (v.is_string()) s.labels[k] = v.get<std::string>();
    }
  }
  s.name = s.labels.count(kContainerLabel) ? s.labels[kContainerLabel] : "";
  if (j.contains("NetworkSettings") && j["NetworkSettings"].contains("Ports") &&
      j["NetworkSettings"]["Ports"].is_object()) {
    for (const auto& [port, bindings] : j["NetworkSettings"]["Ports"].items()) {
      if (!bindings.is_array() || bindings.empty()) continue;
      uint16_t container_port = static_cast<uint16_t>(std::atoi(port.c_str()));
      uint16_t host_port = static_cast<uint16_t>(std::atoi(bindings[0].value("HostPort", "0").c_str()));
      s.published_ports[container_port] = host_port;
    }
  }
  return s;
}

}  // namespace

DockerRuntime::DockerRuntime(std::string socket_path, std::string secrets_dir)
    : client_(std::move(socket_path)), secrets_dir_(std::move(secrets_dir)) {}

bool DockerRuntime::IsOnTmpfs(const std::string& dir) {
  struct statfs fs {};
  constexpr long kTmpfsMagic = 0x01021994;
  return ::statfs(dir.c_str(), &fs) == 0 && static_cast<long>(fs.f_type) == kTmpfsMagic;
}

Result<std::string> DockerRuntime::ExecShimPath() {
  BATON_RETURN_IF_ERROR(EnsureDir(secrets_dir_, 0700));
  const std::string bin = secrets_dir_ + "/.bin";
  BATON_RETURN_IF_ERROR(EnsureDir(bin, 0755));
  const std::string_view program = ExecShimProgram();
  const std::string path = bin + "/baton-exec-" + std::to_string(program.size());
  // Kept only when it is this server's own file and the very program (the
  // directories above are this server's too, EnsureDir).
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::geteuid() &&
      static_cast<size_t>(st.st_size) == program.size()) {
    std::ifstream in(path, std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (content == program) return path;
  }
  // Written aside, then renamed: a concurrent writer or reader never sees half a program.
  const std::string tmp = path + ".tmp" + std::to_string(::getpid()) + "-" +
                          std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  ::unlink(tmp.c_str());
  BATON_RETURN_IF_ERROR(WriteNewFile(tmp, program, 0555));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return InternalError("cannot install " + path + ": " + std::strerror(errno));
  }
  return path;
}

Result<std::string> DockerRuntime::WriteSecrets(const std::string& group, const ContainerSpec& c) {
  if (c.secret_env.empty() && c.secret_files.empty()) return std::string();
  BATON_RETURN_IF_ERROR(EnsureDir(secrets_dir_, 0700));
  const std::string group_dir = secrets_dir_ + "/" + group;
  const std::string dir = group_dir + "/" + c.name;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return dir;  // written by an earlier call
  BATON_RETURN_IF_ERROR(EnsureDir(group_dir, 0700));
  // Built aside and renamed into place, so a crash never leaves half of it.
  const std::string tmp = dir + ".tmp";
  RemoveTree(tmp);
  BATON_RETURN_IF_ERROR(EnsureDir(tmp, 0700));
  for (const auto& [name, content] : c.secret_files) {
    if (name.empty() || name[0] == '.' || name.find('/') != std::string::npos) {
      RemoveTree(tmp);
      return InvalidArgumentError("container '" + c.name + "': secret file name '" + name + "' is not allowed");
    }
    if (Status s = WriteNewFile(tmp + "/" + name, content, 0444); !s.ok()) {
      RemoveTree(tmp);
      return s;
    }
  }
  if (!c.secret_env.empty()) {
    BATON_RETURN_IF_ERROR(EnsureDir(tmp + "/.env", 0700));
    for (const auto& [name, value] : c.secret_env) {
      if (Status s = WriteNewFile(tmp + "/.env/" + name, value, 0444); !s.ok()) {
        RemoveTree(tmp);
        return s;
      }
    }
    BATON_RETURN_IF_ERROR(EnsureDir(tmp + "/.env", 0555));
  }
  BATON_RETURN_IF_ERROR(EnsureDir(tmp, 0555));
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    RemoveTree(tmp);
    return InternalError("cannot place the secrets of '" + group + "': " + std::strerror(errno));
  }
  return dir;
}

Result<std::vector<std::string>> DockerRuntime::EffectiveCommand(const ContainerSpec& c) {
  std::vector<std::string> argv = c.command;
  if (c.command.empty()) {
    BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/images/" + c.image + "/json"));
    if (r.status == 404) return NotFoundError("image '" + c.image + "' is not present (pull it first)");
    if (r.status != 200) return FromDocker(r, "inspect image '" + c.image + "'");
    Json image = ParseAnswer(r.body);
    const Json config = image.is_object() && image.contains("Config") && image["Config"].is_object() ? image["Config"]
                                                                                                      : Json::object();
    auto strings = [](const Json& j) {
      std::vector<std::string> out;
      if (j.is_array()) {
        for (const Json& v : j) {
          if (v.is_string()) out.push_back(v.get<std::string>());
        }
      }
      return out;
    };
    argv = strings(config.value("Entrypoint", Json()));
    if (c.args.empty()) {
      for (std::string& a : strings(config.value("Cmd", Json()))) argv.push_back(std::move(a));
    }
  }
  for (const std::string& a : c.args) argv.push_back(a);
  if (argv.empty()) {
    return InvalidArgumentError("container '" + c.name + "': neither the spec nor the image '" + c.image +
                                "' names a command to run");
  }
  return argv;
}

Status DockerRuntime::Ping(std::chrono::milliseconds timeout) {
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/_ping", "", {}, timeout));
  if (r.status != 200) return UnavailableError("dockerd answered /_ping with HTTP " + std::to_string(r.status));
  return Status::Ok();
}

Result<ContainerState> DockerRuntime::InspectContainer(const std::string& id_or_name) {
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/containers/" + QueryEscape(id_or_name) + "/json"));
  if (r.status != 200) return FromDocker(r, "inspect container '" + id_or_name + "'");
  Json j = ParseAnswer(r.body);
  if (!j.is_object()) return InternalError("dockerd sent an unreadable inspect answer");
  ContainerState state = StateFromInspect(j);
  // With cgroup v1, containerd reports an OOM kill and the exit on separate
  // paths: dockerd may process the exit first, answer State.OOMKilled false,
  // and only afterwards set it and log its "oom" event. A container with a
  // memory limit that died of SIGKILL moments ago is therefore watched for a
  // little while (kOomGrace after it finished) before it is called not OOM.
  if (!state.running && state.exit_code == 137 && !state.oom_killed && state.memory_bytes > 0 && state.started_at &&
      state.finished_at) {
    constexpr auto kOomGrace = std::chrono::milliseconds(1500);
    const TimePoint deadline = *state.finished_at + kOomGrace;
    for (;;) {
      auto oom = SawOomEvent(state.id, *state.started_at, deadline);
      if (oom.ok() && *oom) {
        state.oom_killed = true;
        break;
      }
      if (std::chrono::system_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      auto again = client_.Request("GET", "/containers/" + QueryEscape(id_or_name) + "/json");
      if (!again.ok() || again->status != 200) break;  // removed meanwhile, or an error: keep the first answer
      Json k = ParseAnswer(again->body);
      if (k.is_object() && k.contains("State") && k["State"].value("OOMKilled", false)) {
        state.oom_killed = true;
        break;
      }
    }
  }
  return state;
}

Result<bool> DockerRuntime::SawOomEvent(const std::string& id, TimePoint from, TimePoint to) {
  Json filters = {{"type", {"container"}}, {"container", {id}}, {"event", {"oom"}}};
  // With `until` not in the future the daemon answers at once with what it has.
  to = std::min(to, std::chrono::system_clock::now());
  BATON_ASSIGN_OR_RETURN(DockerResponse r,
                         client_.Request("GET", "/events?filters=" + QueryEscape(filters.dump()) + "&since=" +
                                                    EventTime(from - std::chrono::seconds(1)) + "&until=" + EventTime(to)));
  if (r.status != 200) return FromDocker(r, "read the events of container " + id);
  return r.body.find("\"oom\"") != std::string::npos;
}

Result<std::vector<ContainerState>> DockerRuntime::ListByLabels(const std::map<std::string, std::string>& selector) {
  std::map<std::string, std::string> labels = selector;
  BATON_ASSIGN_OR_RETURN(DockerResponse r,
                         client_.Request("GET", "/containers/json?all=1&filters=" + FilterJson(labels)));
  if (r.status != 200) return FromDocker(r, "list containers");
  Json list = ParseAnswer(r.body);
  std::vector<ContainerState> out;
  if (!list.is_array()) return out;
  for (const Json& c : list) {
    auto state = InspectContainer(c.value("Id", ""));
    if (state.ok()) {
      out.push_back(std::move(*state));
    } else if (state.status().code() != StatusCode::kNotFound) {
      return state.status();  // never a partial list: a caller could take it for containers gone
    }  // else removed meanwhile: skipped
  }
  return out;
}

Result<std::vector<ContainerState>> DockerRuntime::GroupContainers(const std::string& group) {
  std::map<std::string, std::string> selector{{kGroupLabel, group}};
  BATON_ASSIGN_OR_RETURN(std::vector<ContainerState> all, ListByLabels(selector));
  // Spec order: the namespace owner was created first.
  std::sort(all.begin(), all.end(), [](const ContainerState& a, const ContainerState& b) {
    return a.labels.at("baton.index") < b.labels.at("baton.index");
  });
  return all;
}

Status DockerRuntime::EnsureJobsNetwork() {
  constexpr char kIcc[] = "com.docker.network.bridge.enable_icc";
  for (int attempt = 0; attempt < 2; ++attempt) {
    BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", std::string("/networks/") + kJobsNetwork));
    if (r.status == 200) {
      Json j = ParseAnswer(r.body);
      const Json options = j.is_object() && j.contains("Options") && j["Options"].is_object() ? j["Options"] : Json::object();
      if (options.value(kIcc, "true") != "false") {
        return FailedPreconditionError(std::string("docker network '") + kJobsNetwork +
                                       "' lets containers talk to each other (" + kIcc +
                                       " is not false): remove it, Baton makes its own");
      }
      return Status::Ok();
    }
    if (r.status != 404) return FromDocker(r, std::string("inspect network '") + kJobsNetwork + "'");
    Json body = {{"Name", kJobsNetwork},
                 {"Driver", "bridge"},
                 {"CheckDuplicate", true},
                 {"Options", {{kIcc, "false"}}},
                 {"Labels", {{"baton.network", "jobs"}}}};
    BATON_ASSIGN_OR_RETURN(DockerResponse created, client_.Request("POST", "/networks/create", body.dump()));
    // 409: made meanwhile by another server of this node; inspected again.
    if (created.status != 201 && created.status != 409) {
      return FromDocker(created, std::string("create network '") + kJobsNetwork + "'");
    }
  }
  return Status::Ok();
}

Result<GroupState> DockerRuntime::CreateGroup(const GroupSpec& spec) {
  if (!ValidName(spec.name, /*allow_dots=*/true)) {
    return InvalidArgumentError("group name '" + spec.name + "' must be [a-z0-9][a-z0-9_.-]*, at most 100 characters");
  }
  if (spec.containers.empty()) return InvalidArgumentError("a group has at least one container");
  std::vector<std::string> secrets;
  for (const ContainerSpec& c : spec.containers) {
    if (!ValidName(c.name, false)) return InvalidArgumentError("container name '" + c.name + "' must be [a-z0-9-]+");
    if (c.image.empty()) return InvalidArgumentError("container '" + c.name + "' has no image");
    if (c.cpus < 0 || c.memory_bytes < 0) return InvalidArgumentError("container '" + c.name + "': negative limits");
    if (c.memory_bytes > 0 && c.memory_bytes < 6 * 1024 * 1024) {
      return InvalidArgumentError("container '" + c.name + "': memory must be at least 6 MiB");
    }
    if (!c.ports.empty() && spec.network != NetworkMode::kBridge) {
      return InvalidArgumentError("container '" + c.name + "': ports need the bridge network mode");
    }
    if (c.pids_limit <= 0) return InvalidArgumentError("container '" + c.name + "': the pids limit must be positive");
    for (const auto& [k, v] : c.secret_env) secrets.push_back(v);
    for (const auto& [k, v] : c.secret_files) secrets.push_back(v);
  }

  if (spec.network == NetworkMode::kBridge) BATON_RETURN_IF_ERROR(EnsureJobsNetwork());
  std::string owner_id;
  for (size_t i = 0; i < spec.containers.size(); ++i) {
    const ContainerSpec& c = spec.containers[i];
    const std::string name = spec.name + "." + c.name;
    // Idempotent: a container that exists (an earlier attempt) is kept.
    auto existing = InspectContainer(name);
    if (existing.ok()) {
      if (i == 0) owner_id = existing->id;
      // Its secrets stay as written; rewritten only if they vanished (a
      // reboot emptied the tmpfs) while the container was never started.
      if (existing->status == "created") BATON_RETURN_IF_ERROR(WriteSecrets(spec.name, c).status());
      continue;
    }
    if (existing.status().code() != StatusCode::kNotFound) return existing.status();
    BATON_ASSIGN_OR_RETURN(const std::string secrets_dir, WriteSecrets(spec.name, c));

    Json labels = Json::object();
    for (const auto& [k, v] : spec.labels) labels[k] = v;
    labels[kGroupLabel] = spec.name;
    labels[kContainerLabel] = c.name;
    labels["baton.index"] = std::to_string(1000 + i);  // sortable
    Json env = Json::array();
    for (const auto& [k, v] : c.env) env.push_back(k + "=" + v);
    // Platform files, bound by the Mounts API (a path may hold ':').
    Json mounts = Json::array();
    auto bind = [&](const std::string& source, const char* target, bool read_only) {
      mounts.push_back({{"Type", "bind"}, {"Source", source}, {"Target", target}, {"ReadOnly", read_only}});
    };
    std::vector<std::string> entrypoint = c.command, cmd = c.args;
    if (!secrets_dir.empty()) {
      env.push_back(std::string("BATON_SECRETS_DIR=") + kSecretsMount);
      bind(secrets_dir, kSecretsMount, true);
    }
    if (!c.secret_env.empty()) {
      // Secret env reaches the process through baton-exec, never the config.
      BATON_ASSIGN_OR_RETURN(const std::string shim, ExecShimPath());
      BATON_ASSIGN_OR_RETURN(cmd, EffectiveCommand(c));
      entrypoint = {kExecMount};
      bind(shim, kExecMount, true);
    }
    if (!spec.callback_dir.empty()) {
      env.push_back(std::string("BATON_CALLBACK_SOCKET=") + kCallbackMount + "/callback.sock");
      bind(spec.callback_dir, kCallbackMount, true);
    }
    Json binds = Json::array();
    if (spec.scratch_volume) binds.push_back(spec.name + ".scratch:/scratch");
    Json host = {{"NanoCpus", static_cast<int64_t>(c.cpus * 1e9)},
                 {"Init", false},
                 // The sandbox: nothing privileged unless the spec adds it.
                 {"CapDrop", Json::array({"ALL"})},
                 {"SecurityOpt", Json::array({"no-new-privileges"})},
                 {"PidsLimit", c.pids_limit}};
    if (!c.capabilities.empty()) host["CapAdd"] = c.capabilities;
    host["LogConfig"] = {{"Type", "json-file"}, {"Config", {{"max-size", kLogFileSize}, {"max-file", kLogFiles}}}};
    if (c.read_only_root_fs) {
      host["ReadonlyRootfs"] = true;
      host["Tmpfs"] = {{"/tmp", "rw,nosuid,nodev,size=64m"}};
    }
    if (c.memory_bytes > 0) {
      host["Memory"] = c.memory_bytes;
      host["MemorySwap"] = c.memory_bytes;  // no swap beyond the limit
    }
    if (i == 0) {
      host["NetworkMode"] = spec.network == NetworkMode::kHost ? "host"
                            : spec.network == NetworkMode::kBridge ? kJobsNetwork
                                                                  : "none";
    } else {
      host["NetworkMode"] = "container:" + owner_id;
    }
    Json exposed = Json::object();
    Json bindings = Json::object();
    for (const PortMapping& p : c.ports) {
      std::string key = std::to_string(p.container_port) + "/tcp";
      exposed[key] = Json::object();
      bindings[key] = Json::array({{{"HostIp", "127.0.0.1"}, {"HostPort", p.host_port ? std::to_string(p.host_port) : ""}}});
    }
    if (!bindings.empty()) host["PortBindings"] = bindings;
    if (!binds.empty()) host["Binds"] = binds;
    if (!mounts.empty()) host["Mounts"] = mounts;
    Json body = {{"Image", c.image}, {"Env", env}, {"Labels", labels}, {"HostConfig", host}, {"Tty", false}};
    if (!entrypoint.empty()) body["Entrypoint"] = entrypoint;
    if (!cmd.empty()) body["Cmd"] = cmd;
    if (!c.user.empty()) body["User"] = c.user;
    if (!c.working_dir.empty()) body["WorkingDir"] = c.working_dir;
    if (!exposed.empty()) body["ExposedPorts"] = exposed;

    BATON_ASSIGN_OR_RETURN(DockerResponse r,
                           client_.Request("POST", "/containers/create?name=" + QueryEscape(name), body.dump()));
    if (r.status == 409) {
      // Created concurrently — e.g. by a request of a process that died, which
      // dockerd is still carrying out: the name is taken before the container
      // can be inspected, so wait (bounded) for it to appear, and keep it.
      Result<ContainerState> s = InspectContainer(name);
      for (int tries = 0; !s.ok() && s.status().code() == StatusCode::kNotFound && tries < 100; ++tries) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        s = InspectContainer(name);
      }
      if (!s.ok() && s.status().code() == StatusCode::kNotFound) {
        return UnavailableError("container '" + name + "' is being created by another request; try again");
      }
      if (!s.ok()) return s.status();
      if (i == 0) owner_id = s->id;
      continue;
    }
    if (r.status != 201) return FromDocker(r, "create container '" + name + "'", secrets);
    Json created = ParseAnswer(r.body);
    if (i == 0) owner_id = created.value("Id", "");
  }
  return InspectGroup(spec.name);
}

Result<GroupState> DockerRuntime::InspectGroup(const std::string& group) {
  BATON_ASSIGN_OR_RETURN(std::vector<ContainerState> containers, GroupContainers(group));
  if (containers.empty()) return NotFoundError("container group '" + group + "' does not exist");
  return GroupState{group, std::move(containers)};
}

Status DockerRuntime::StartGroup(const std::string& group) {
  BATON_ASSIGN_OR_RETURN(GroupState g, InspectGroup(group));
  for (const ContainerState& c : g.containers) {
    // Only containers never started: POST /start on an exited one would run it again.
    if (c.status != "created") continue;
    BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("POST", "/containers/" + c.id + "/start"));
    if (r.status != 204 && r.status != 304) return FromDocker(r, "start container '" + c.name + "' of '" + group + "'");
  }
  return Status::Ok();
}

Status DockerRuntime::StopContainer(const std::string& id, std::chrono::seconds grace) {
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(grace) + std::chrono::seconds(30);
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("POST", "/containers/" + QueryEscape(id) + "/stop?t=" +
                                                                       std::to_string(grace.count()),
                                                                   "", {}, timeout));
  if (r.status != 204 && r.status != 304) return FromDocker(r, "stop container " + id);
  return Status::Ok();
}

Status DockerRuntime::RemoveContainer(const std::string& id) {
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("DELETE", "/containers/" + QueryEscape(id) + "?force=1&v=1"));
  if (r.status != 204) return FromDocker(r, "remove container " + id);
  return Status::Ok();
}

Status DockerRuntime::StopGroup(const std::string& group, std::chrono::seconds grace) {
  BATON_ASSIGN_OR_RETURN(GroupState g, InspectGroup(group));
  for (auto it = g.containers.rbegin(); it != g.containers.rend(); ++it) {
    Status stopped = StopContainer(it->id, grace);
    if (!stopped.ok()) return Status(stopped.code(), "'" + it->name + "' of '" + group + "': " + stopped.message());
  }
  return Status::Ok();
}

Status DockerRuntime::RestartGroup(const std::string& group, std::chrono::seconds grace) {
  BATON_RETURN_IF_ERROR(StopGroup(group, grace));
  BATON_ASSIGN_OR_RETURN(GroupState g, InspectGroup(group));
  for (const ContainerState& c : g.containers) {
    BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("POST", "/containers/" + c.id + "/start"));
    if (r.status != 204 && r.status != 304) return FromDocker(r, "restart container '" + c.name + "' of '" + group + "'");
  }
  return Status::Ok();
}

Status DockerRuntime::DeleteGroup(const std::string& group) {
  BATON_ASSIGN_OR_RETURN(std::vector<ContainerState> containers, GroupContainers(group));
  for (auto it = containers.rbegin(); it != containers.rend(); ++it) {
    BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("DELETE", "/containers/" + it->id + "?force=1&v=1"));
    if (r.status == 409) {
      // "removal already in progress" (a request of a process that died):
      // done once the container is gone.
      for (int tries = 0; tries < 300 && r.status != 404; ++tries) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        BATON_ASSIGN_OR_RETURN(r, client_.Request("GET", "/containers/" + it->id + "/json"));
      }
    }
    if (r.status != 204 && r.status != 404) return FromDocker(r, "remove container '" + it->name + "' of '" + group + "'");
  }
  BATON_ASSIGN_OR_RETURN(DockerResponse v, client_.Request("DELETE", "/volumes/" + QueryEscape(group + ".scratch")));
  if (v.status != 204 && v.status != 404) return FromDocker(v, "remove the scratch volume of '" + group + "'");
  // The containers are gone, so nothing mounts the secrets any more.
  if (ValidName(group, /*allow_dots=*/true)) RemoveTree(secrets_dir_ + "/" + group);
  return Status::Ok();
}

Result<int> DockerRuntime::WaitContainer(const std::string& container_id, std::chrono::milliseconds timeout) {
  BATON_ASSIGN_OR_RETURN(DockerResponse r,
                         client_.Request("POST", "/containers/" + container_id + "/wait", "", {}, timeout));
  if (r.status != 200) return FromDocker(r, "wait for container " + container_id);
  Json j = ParseAnswer(r.body);
  return j.is_object() ? j.value("StatusCode", -1) : -1;
}

Result<std::vector<LogLine>> DockerRuntime::Logs(const std::string& container_id) {
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/containers/" + container_id +
                                                                     "/logs?stdout=1&stderr=1&timestamps=1"));
  if (r.status != 200) return FromDocker(r, "logs of container " + container_id);
  std::vector<LogLine> lines;
  LogDemuxer demux([&](LogLine line) {
    lines.push_back(std::move(line));
    return true;
  });
  demux.Feed(r.body);
  demux.Finish();
  return lines;
}

Result<std::vector<LogLine>> DockerRuntime::LogsTail(const std::string& container_id, size_t lines) {
  std::deque<LogLine> kept;
  LogDemuxer demux([&](LogLine line) {
    kept.push_back(std::move(line));
    if (kept.size() > lines) kept.pop_front();  // a line cut by the demuxer counts as more
    return true;
  });
  if (lines == 0) return std::vector<LogLine>{};
  BATON_ASSIGN_OR_RETURN(int status, client_.Stream("GET",
                                                    "/containers/" + container_id +
                                                        "/logs?stdout=1&stderr=1&timestamps=1&tail=" + std::to_string(lines),
                                                    [&](std::string_view data) { return demux.Feed(data); },
                                                    std::chrono::seconds(60)));
  if (status == 404) return NotFoundError("container " + container_id + " does not exist");
  if (status != 200) return InternalError("logs of container " + container_id + ": HTTP " + std::to_string(status));
  demux.Finish();
  if (kept.size() > lines) kept.pop_front();
  return std::vector<LogLine>(std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()));
}

Result<std::vector<LogLine>> DockerRuntime::LogsRange(const std::string& container_id, size_t skip, size_t limit) {
  std::vector<LogLine> out;
  size_t seen = 0;
  bool full = limit == 0;
  LogDemuxer demux([&](LogLine line) {
    if (seen++ >= skip) out.push_back(std::move(line));
    full = out.size() >= limit;
    return !full;
  });
  if (full) return out;
  BATON_ASSIGN_OR_RETURN(int status,
                         client_.Stream("GET", "/containers/" + container_id + "/logs?stdout=1&stderr=1&timestamps=1",
                                        [&](std::string_view data) { return demux.Feed(data); }, std::chrono::seconds(60)));
  if (status == 404) return NotFoundError("container " + container_id + " does not exist");
  if (status != 200) return InternalError("logs of container " + container_id + ": HTTP " + std::to_string(status));
  if (!full) demux.Finish();
  return out;
}

Status DockerRuntime::FollowLogs(const std::string& container_id, const std::function<bool(const LogLine&)>& on_line,
                                 std::chrono::milliseconds timeout) {
  bool stopped = false;
  LogDemuxer demux([&](LogLine line) {
    if (!on_line(line)) stopped = true;
    return !stopped;
  });
  BATON_ASSIGN_OR_RETURN(
      int status, client_.Stream("GET", "/containers/" + container_id + "/logs?stdout=1&stderr=1&timestamps=1&follow=1",
                                 [&](std::string_view data) { return demux.Feed(data); }, timeout));
  if (status == 404) return NotFoundError("container " + container_id + " does not exist");
  if (status != 200) return InternalError("following the logs of " + container_id + ": HTTP " + std::to_string(status));
  if (!stopped) demux.Finish();
  return Status::Ok();
}

Status DockerRuntime::WatchEvents(const std::map<std::string, std::string>& selector,
                                  const std::function<bool(const ContainerEvent&)>& on_event,
                                  std::chrono::milliseconds timeout, std::optional<TimePoint> since) {
  Json labels = Json::array();
  for (const auto& [k, v] : selector) labels.push_back(k + "=" + v);
  Json filters = {{"type", {"container"}}};
  if (!labels.empty()) filters["label"] = labels;
  std::string path = "/events?filters=" + QueryEscape(filters.dump());
  if (since) path += "&since=" + EventTime(*since);
  std::string pending;
  BATON_ASSIGN_OR_RETURN(int status, client_.Stream("GET", path,
                                                    [&](std::string_view data) {
                                                      pending.append(data);
                                                      for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
                                                        Json j = ParseAnswer(pending.substr(0, nl));
                                                        pending.erase(0, nl + 1);
                                                        if (!j.is_object()) continue;
                                                        ContainerEvent e;
                                                        e.container_id = j.value("id", "");
                                                        e.action = j.value("Action", j.value("status", ""));
                                                        if (j.contains("Actor") && j["Actor"].contains("Attributes")) {
                                                          for (const auto& [k, v] : j["Actor"]["Attributes"].items()) {
                                                            if (!v.is_string()) continue;
                                                            if (k == "exitCode") {
                                                              e.exit_code = std::atoi(v.get<std::string>().c_str());
                                                            } else {
                                                              e.labels[k] = v.get<std::string>();
                                                            }
                                                          }
                                                        }
                                                        e.time = FromUnixMicros(j.value("timeNano", int64_t{0}) / 1000);
                                                        if (!on_event(e)) return false;
                                                      }
                                                      return true;
                                                    },
                                                    timeout));
  if (status != 200) return InternalError("watching events: HTTP " + std::to_string(status));
  return Status::Ok();
}

// One sample, read at once ("one-shot": API 1.41; an older daemon ignores it
// and waits for a second sample, about 1 s). cgroup v1 reports the memory
// high-water mark (max_usage); cgroup v2 does not (memory_peak_bytes 0).
Result<Usage> DockerRuntime::Stats(const std::string& container_id) {
  BATON_ASSIGN_OR_RETURN(DockerResponse r,
                         client_.Request("GET", "/containers/" + container_id + "/stats?stream=false&one-shot=true"));
  if (r.status != 200) return FromDocker(r, "stats of container " + container_id);
  Json j = ParseAnswer(r.body);
  Usage u;
  if (!j.is_object()) return u;
  if (j.contains("cpu_stats") && j["cpu_stats"].contains("cpu_usage")) {
    u.cpu_seconds = static_cast<double>(j["cpu_stats"]["cpu_usage"].value("total_usage", int64_t{0})) / 1e9;
  }
  if (j.contains("memory_stats")) {
    u.memory_bytes = j["memory_stats"].value("usage", int64_t{0});
    u.memory_peak_bytes = j["memory_stats"].value("max_usage", int64_t{0});
  }
  return u;
}

Result<std::string> DockerRuntime::PullImage(const std::string& image, const RegistryCredentials& credentials,
                                             std::chrono::milliseconds timeout,
                                             const std::function<void(const std::string&)>& progress) {
  auto [repo, tag] = SplitReference(image);
  // A digest reference goes whole in fromImage; a tag goes apart.
  std::string path = image.find('@') != std::string::npos
                         ? "/images/create?fromImage=" + QueryEscape(image)
                         : "/images/create?fromImage=" + QueryEscape(repo) + "&tag=" + QueryEscape(tag);
  // The answer is a stream of JSON progress lines, the last of which may be
  // an error; an HTTP error status carries one JSON message instead.
  std::string pending, body;
  std::optional<std::string> error;
  const auto started = std::chrono::steady_clock::now();
  BATON_ASSIGN_OR_RETURN(
      int status, client_.Stream(
                      "POST", path,
                      [&](std::string_view data) {
                        body.append(data.substr(0, std::min<size_t>(data.size(), 64 * 1024 - std::min<size_t>(body.size(), 64 * 1024))));
                        pending.append(data);
                        for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
                          Json line = ParseAnswer(pending.substr(0, nl));
                          pending.erase(0, nl + 1);
                          if (!line.is_object()) continue;
                          if (line.contains("error")) {
                            error = line["error"].is_string() ? line["error"].get<std::string>() : line["error"].dump();
                          } else if (progress && line.contains("status")) {
                            std::string text = line.value("status", "");
                            if (line.contains("progress") && line["progress"].is_string()) {
                              text += " " + line["progress"].get<std::string>();
                            }
                            if (line.contains("id") && line["id"].is_string()) text = line["id"].get<std::string>() + ": " + text;
                            progress(text);
                          }
                        }
                        return true;
                      },
                      timeout, {{"X-Registry-Auth", RegistryAuthHeader(credentials)}}));
  if (status != 200) return RegistryStatus("image '" + image + "'", MessageOf(DockerResponse{status, body}));
  if (error) return RegistryStatus("image '" + image + "'", *error);
  if (std::chrono::steady_clock::now() - started >= timeout) {
    return DeadlineExceededError("pulling image '" + image + "' took longer than " +
                                 std::to_string(timeout.count()) + " ms");
  }
  BATON_ASSIGN_OR_RETURN(DockerResponse inspect, client_.Request("GET", "/images/" + image + "/json"));
  if (inspect.status != 200) return FromDocker(inspect, "inspect image '" + image + "'");
  Json j = ParseAnswer(inspect.body);
  if (j.is_object() && j.contains("RepoDigests")) {
    for (const Json& d : j["RepoDigests"]) {
      std::string digest = d.get<std::string>();
      if (digest.rfind(repo + "@", 0) == 0) return digest;
    }
  }
  return InternalError("image '" + image + "' was pulled but has no digest for " + repo);
}

Result<std::string> DockerRuntime::LocalImageDigest(const std::string& image) {
  auto [repo, tag] = SplitReference(image);
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/images/" + image + "/json"));
  if (r.status == 404) return NotFoundError("image '" + image + "' is not on this node");
  if (r.status != 200) return FromDocker(r, "inspect image '" + image + "'");
  Json j = ParseAnswer(r.body);
  if (j.is_object() && j.contains("RepoDigests") && j["RepoDigests"].is_array()) {
    for (const Json& d : j["RepoDigests"]) {
      if (!d.is_string()) continue;
      const std::string& digest = d.get_ref<const std::string&>();
      // A digest reference must be exactly one of the image's own digests;
      // a tag takes the digest recorded for its repository.
      if (image.find('@') != std::string::npos ? digest == image : digest.rfind(repo + "@", 0) == 0) return digest;
    }
  }
  return NotFoundError("image '" + image + "' is on this node without a digest for " + repo);
}

Status DockerRuntime::CheckRegistry(const RegistryCredentials& credentials, std::chrono::milliseconds timeout) {
  Json body = {{"username", credentials.username},
               {"password", credentials.password},
               {"serveraddress", credentials.server}};
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("POST", "/auth", body.dump(), {}, timeout));
  if (r.status == 200) return Status::Ok();
  // dockerd answers 401 or 500 with the registry's error; a password is never in it.
  return RegistryStatus("registry " + credentials.server, Scrub(MessageOf(r), {credentials.password}));
}

Status DockerRuntime::BuildImage(const std::string& tag, const std::string& tar_context) {
  BATON_ASSIGN_OR_RETURN(DockerResponse r,
                         // nocache: the classic builder's cache probe walks other builds' images and
                         // fails ("unable to find image") when one is removed meanwhile.
                         client_.Request("POST", "/build?rm=1&forcerm=1&nocache=1&t=" + QueryEscape(tag), tar_context,
                                         {{"Content-Type", "application/x-tar"}}, std::chrono::minutes(5)));
  if (r.status != 200) return FromDocker(r, "build image '" + tag + "'");
  if (auto error = StreamError(r.body)) return InvalidArgumentError("build image '" + tag + "': " + *error);
  return Status::Ok();
}

Status DockerRuntime::PushImage(const std::string& image, const RegistryCredentials& credentials,
                                std::chrono::milliseconds timeout) {
  auto [repo, tag] = SplitReference(image);
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("POST", "/images/" + repo + "/push?tag=" + QueryEscape(tag),
                                                           "", {{"X-Registry-Auth", RegistryAuthHeader(credentials)}},
                                                           timeout));
  if (r.status != 200) return RegistryStatus("image '" + image + "'", MessageOf(r));
  if (auto error = StreamError(r.body)) return RegistryStatus("image '" + image + "'", *error);
  return Status::Ok();
}

Result<std::string> DockerRuntime::PushNodeImage(const std::string& source, const std::string& target,
                                                 const RegistryCredentials& credentials,
                                                 const std::function<bool(const std::string&)>& may_take,
                                                 std::chrono::milliseconds timeout) {
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/images/" + source + "/json"));
  if (r.status == 404) return NotFoundError("image: this node has no image '" + source + "'");
  if (r.status != 200) return FromDocker(r, "inspect image '" + source + "'");
  Json image = Json::parse(r.body, nullptr, false);
  if (!image.is_object() || !image.value("Id", Json()).is_string()) return InternalError("dockerd answered no image id");
  for (const char* list : {"RepoTags", "RepoDigests"}) {
    for (const Json& name : image.value(list, Json::array())) {
      if (name.is_string() && !may_take(name.get<std::string>())) {
        return PermissionDeniedError("image: '" + source + "' is also '" + name.get<std::string>() +
                                     "', which is not yours to push");
      }
    }
  }
  auto [repo, tag] = SplitReference(target);
  BATON_ASSIGN_OR_RETURN(DockerResponse tagged,
                         client_.Request("POST", "/images/" + image["Id"].get<std::string>() + "/tag?repo=" +
                                                     QueryEscape(repo) + "&tag=" + QueryEscape(tag)));
  if (tagged.status != 201) return FromDocker(tagged, "tag image '" + source + "' as '" + target + "'");
  BATON_RETURN_IF_ERROR(PushImage(target, credentials, timeout));
  return LocalImageDigest(target);
}

Result<std::vector<std::string>> DockerRuntime::NodeImageNames(const std::string& prefix) {
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("GET", "/images/json"));
  if (r.status != 200) return FromDocker(r, "list images");
  Json list = Json::parse(r.body, nullptr, false);
  std::vector<std::string> names;
  if (!list.is_array()) return names;
  for (const Json& image : list) {
    for (const char* key : {"RepoTags", "RepoDigests"}) {
      const Json values = image.is_object() ? image.value(key, Json::array()) : Json::array();
      if (!values.is_array()) continue;
      for (const Json& name : values) {
        if (name.is_string() && name.get<std::string>().rfind(prefix, 0) == 0) names.push_back(name.get<std::string>());
      }
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

Status DockerRuntime::RemoveImage(const std::string& image) {
  // Not forced: an image still used by a container, or tagged elsewhere, stays.
  BATON_ASSIGN_OR_RETURN(DockerResponse r, client_.Request("DELETE", "/images/" + image));
  if (r.status != 200 && r.status != 404) return FromDocker(r, "remove image '" + image + "'");
  return Status::Ok();
}

std::string MakeTar(const std::map<std::string, std::string>& files, const std::vector<std::string>& executables) {
  std::string out;
  for (const auto& [name, content] : files) {
    char header[512] = {};
    std::snprintf(header, 100, "%s", name.c_str());
    bool exec = std::find(executables.begin(), executables.end(), name) != executables.end();
    std::snprintf(header + 100, 8, "%07o", exec ? 0755 : 0644);
    std::snprintf(header + 108, 8, "%07o", 0);
    std::snprintf(header + 116, 8, "%07o", 0);
    std::snprintf(header + 124, 12, "%011llo", static_cast<unsigned long long>(content.size()));
    std::snprintf(header + 136, 12, "%011o", 0);
    header[156] = '0';
    std::memcpy(header + 257, "ustar", 6);
    std::memcpy(header + 263, "00", 2);
    std::memset(header + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : header) sum += c;
    std::snprintf(header + 148, 8, "%06o", sum);
    header[155] = ' ';
    out.append(header, 512);
    out.append(content);
    out.append((512 - content.size() % 512) % 512, '\0');
  }
  out.append(1024, '\0');
  return out;
}

}  // namespace baton::runtime::docker

