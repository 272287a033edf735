#include "batch/job_spec.h"

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

namespace baton::batch {
namespace {

Status FieldError(const std::string& field, const std::string& reason) {
  return InvalidArgumentError(field + ": " + reason);
}

bool ValidName(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && c == '-');
    if (!ok) return false;
  }
  return true;
}

bool ValidEnvName(const std::string& s) {
  if (s.empty() || s.size() > 256 || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// Rejects members a spec does not have: a typo must not pass silently.
Status OnlyKnown(const Json& object, const std::string& path, const std::set<std::string>& known) {
  for (const auto& [key, value] : object.items()) {
    if (!known.count(key)) return FieldError(path + key, "unknown field");
  }
  return Status::Ok();
}

Status StringList(const Json& j, const std::string& field, std::vector<std::string>* out) {
  if (!j.is_array()) return FieldError(field, "must be an array of strings");
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_string()) return FieldError(field + "[" + std::to_string(i) + "]", "must be a string");
    out->push_back(j[i].get<std::string>());
  }
  return Status::Ok();
}

Status EnvMap(const Json& j, const std::string& field, std::map<std::string, std::string>* out) {
  if (!j.is_object()) return FieldError(field, "must be an object of strings");
  for (const auto& [k, v] : j.items()) {
    if (!ValidEnvName(k)) return FieldError(field + "." + k, "is not a valid environment variable name");
    if (k.rfind("BATON_", 0) == 0) return FieldError(field + "." + k, "names starting with BATON_ are reserved");
    if (!v.is_string()) return FieldError(field + "." + k, "must be a string");
    (*out)[k] = v.get<std::string>();
  }
  return Status::Ok();
}

// "UID" or "UID:GID", numeric (a name would need the image's /etc/passwd).
bool ValidUser(const std::string& u) {
  auto number = [](std::string_view s) {
    return !s.empty() && s.size() <= 10 && std::all_of(s.begin(), s.end(), ::isdigit) && std::stoull(std::string(s)) <= 0x7fffffff;
  };
  size_t colon = u.find(':');
  if (colon == std::string::npos) return number(u);
  return number(std::string_view(u).substr(0, colon)) && number(std::string_view(u).substr(colon + 1));
}

// Docker's reference grammar (distribution/reference): [domain/]path[:tag][@digest],
// path components lower-case, digests sha256. What fails it would fail the
// pull anyway, later; and the reference goes into Engine API paths.
bool ValidImageReference(const std::string& image) {
  static const std::regex kReference(
      "^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
      "(?::[0-9]{1,5})?/)?"
      "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
      "(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
      "(?:@sha256:[a-f0-9]{64})?$");
  return image.size() <= 512 && std::regex_match(image, kReference);
}

bool ValidSecretFileName(const std::string& s) {
  if (s.empty() || s.size() > 128 || s[0] == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'; });
}

constexpr size_t kMaxSecretBytes = 64 * 1024;

// The sandbox fields of a container and its secret files.
Status ParseSandbox(const Json& j, const std::string& path, JobContainer* c) {
  if (j.contains("user")) {
    if (!j["user"].is_string() || !ValidUser(j["user"].get<std::string>())) {
      return FieldError(path + "user", "must be a numeric \"UID\" or \"UID:GID\" (e.g. \"1000:1000\")");
    }
    c->user = j["user"].get<std::string>();
  }
  if (j.contains("readOnlyRootFs")) {
    if (!j["readOnlyRootFs"].is_boolean()) return FieldError(path + "readOnlyRootFs", "must be true or false");
    c->read_only_root_fs = j["readOnlyRootFs"].get<bool>();
  }
  if (j.contains("capabilities")) {
    const Json& caps = j["capabilities"];
    if (!caps.is_array() || caps.size() > 64) return FieldError(path + "capabilities", "must be an array of capability names");
    std::set<std::string> names;
    for (size_t i = 0; i < caps.size(); ++i) {
      const std::string field = path + "capabilities[" + std::to_string(i) + "]";
      if (!caps[i].is_string()) return FieldError(field, "must be a string");
      std::string name = caps[i].get<std::string>();
      if (name.rfind("CAP_", 0) == 0) name = name.substr(4);
      if (name.empty() || name.size() > 32 ||
          !std::all_of(name.begin(), name.end(), [](char ch) { return (ch >= 'A' && ch <= 'Z') || ch == '_'; })) {
        return FieldError(field, "must be a capability name such as NET_BIND_SERVICE");
      }
      names.insert(name);
    }
    c->capabilities.assign(names.begin(), names.end());
  }
  if (j.contains("pidsLimit")) {
    const Json& p = j["pidsLimit"];
    const bool ok = p.is_number_integer() && !(p.is_number_unsigned() && p.get<uint64_t>() > JobContainer::kMaxPidsLimit) &&
                    p.get<int64_t>() >= 16 && p.get<int64_t>() <= JobContainer::kMaxPidsLimit;
    if (!ok) return FieldError(path + "pidsLimit", "must be an integer from 16 to " + std::to_string(JobContainer::kMaxPidsLimit));
    c->pids_limit = p.get<int64_t>();
  }
  if (j.contains("secretFiles")) {
    const Json& files = j["secretFiles"];
    if (!files.is_object() || files.size() > 64) {
      return FieldError(path + "secretFiles", "must be an object of at most 64 file names to contents");
    }
    for (const auto& [name, content] : files.items()) {
      if (!ValidSecretFileName(name)) {
        return FieldError(path + "secretFiles." + name,
                          "a file name is 1-128 characters of letters, digits, '.', '_' and '-', not starting with '.'");
      }
      if (!content.is_string()) return FieldError(path + "secretFiles." + name, "must be a string");
      if (content.get_ref<const std::string&>().size() > kMaxSecretBytes) {
        return FieldError(path + "secretFiles." + name, "must be at most 65536 bytes");
      }
      c->secret_files[name] = content.get<std::string>();
    }
  }
  for (const auto& [k, v] : c->secret_env) {
    if (v.size() > kMaxSecretBytes) return FieldError(path + "secretEnv." + k, "must be at most 65536 bytes");
  }
  return Status::Ok();
}

Status ParseContainer(const Json& j, const std::string& path, bool is_main, JobContainer* c) {
  static const std::set<std::string> kFields = {"name",     "image",          "command",      "args",
                                                "env",      "secretEnv",      "secretFiles",  "workingDir",
                                                "cpu",      "memoryMb",       "ports",        "user",
                                                "readOnlyRootFs", "capabilities", "pidsLimit"};
  static const std::set<std::string> kJobOnly = {"sidecars", "network", "timeoutSeconds", "restartPolicy",
                                                 "completion", "labels", "priority", "dependsOn",
                                                 "runOnFailure", "array", "onOomKilled"};
  if (!j.is_object()) return FieldError(path.empty() ? "body" : path.substr(0, path.size() - 1), "must be an object");
  if (!is_main) BATON_RETURN_IF_ERROR(OnlyKnown(j, path, kFields));
  if (is_main) {
    std::set<std::string> all = kFields;
    all.insert(kJobOnly.begin(), kJobOnly.end());
    BATON_RETURN_IF_ERROR(OnlyKnown(j, path, all));
  }
  if (!is_main) {
    if (!j.contains("name") || !j["name"].is_string() || !ValidName(j["name"].get<std::string>(), 40)) {
      return FieldError(path + "name", "must be 1-40 characters of a-z, 0-9 and '-'");
    }
    c->name = j["name"];
    if (c->name == "main") return FieldError(path + "name", "'main' is the job's own container");
  } else {
    c->name = "main";
  }
  if (!j.contains("image") || !j["image"].is_string() || j["image"].get<std::string>().empty()) {
    return FieldError(path + "image", "is required: an image reference such as 127.0.0.1:5000/team/job:1");
  }
  c->image = j["image"];
  if (!ValidImageReference(c->image)) {
    return FieldError(path + "image",
                      "is not a valid image reference: [registry/]repository[:tag][@sha256:<64 hex>], the repository "
                      "in lower case");
  }
  if (j.contains("command")) BATON_RETURN_IF_ERROR(StringList(j["command"], path + "command", &c->command));
  if (j.contains("args")) BATON_RETURN_IF_ERROR(StringList(j["args"], path + "args", &c->args));
  if (j.contains("env")) BATON_RETURN_IF_ERROR(EnvMap(j["env"], path + "env", &c->env));
  if (j.contains("secretEnv")) BATON_RETURN_IF_ERROR(EnvMap(j["secretEnv"], path + "secretEnv", &c->secret_env));
  for (const auto& [k, v] : c->secret_env) {
    if (c->env.count(k)) return FieldError(path + "secretEnv." + k, "is also in env");
  }
  if (j.contains("workingDir")) {
    if (!j["workingDir"].is_string() || j["workingDir"].get<std::string>().rfind('/', 0) != 0) {
      return FieldError(path + "workingDir", "must be an absolute path");
    }
    c->working_dir = j["workingDir"];
  }
  if (j.contains("cpu")) {
    if (!j["cpu"].is_number() || !(j["cpu"].get<double>() >= 0.01) || !(j["cpu"].get<double>() <= 1024)) {
      return FieldError(path + "cpu", "must be a number of cores from 0.01 to 1024");
    }
    c->cpu = j["cpu"];
  }
  if (j.contains("memoryMb")) {
    auto mb = JsonInteger(j["memoryMb"], 6, 1 << 22);
    if (!mb) return FieldError(path + "memoryMb", "must be an integer number of MiB from 6 to 4194304");
    c->memory_bytes = *mb << 20;
  }
  if (j.contains("ports")) {
    if (!j["ports"].is_array()) return FieldError(path + "ports", "must be an array of port numbers");
    for (size_t i = 0; i < j["ports"].size(); ++i) {
      const Json& p = j["ports"][i];
      auto port = JsonInteger(p, 1, 65535);
      if (!port) return FieldError(path + "ports[" + std::to_string(i) + "]", "must be a port number 1-65535");
      c->ports.push_back(static_cast<uint16_t>(*port));
    }
  }
  return ParseSandbox(j, path, c);
}

// "onOomKilled": {"increaseMemory": factor, "maxMemoryMb": n}, both required.
Status ParseOomPolicy(const Json& o, JobSpec* spec) {
  if (!o.is_object()) return FieldError("onOomKilled", "must be {\"increaseMemory\": factor, \"maxMemoryMb\": n}");
  BATON_RETURN_IF_ERROR(OnlyKnown(o, "onOomKilled.", {"increaseMemory", "maxMemoryMb"}));
  OomPolicy p;
  const Json factor = o.value("increaseMemory", Json());
  if (!factor.is_number() || !(factor.get<double>() > 1.0) || !(factor.get<double>() <= 16.0)) {
    return FieldError("onOomKilled.increaseMemory", "must be a number greater than 1 and at most 16 (e.g. 2.0)");
  }
  p.increase_memory = factor.get<double>();
  auto max_mb = o.contains("maxMemoryMb") ? JsonInteger(o["maxMemoryMb"], 6, 1 << 22) : std::nullopt;
  if (!max_mb) return FieldError("onOomKilled.maxMemoryMb", "is required: an integer number of MiB from 6 to 4194304");
  const int64_t memory_mb = spec->containers[0].memory_bytes >> 20;
  if (*max_mb < memory_mb) {
    return FieldError("onOomKilled.maxMemoryMb", "must be at least the job's memoryMb (" + std::to_string(memory_mb) + ")");
  }
  p.max_memory_bytes = *max_mb << 20;
  spec->on_oom_killed = p;
  return Status::Ok();
}

}  // namespace

double JobSpec::TotalCpu() const {
  double total = 0;
  for (const auto& c : containers) total += c.cpu;
  return total;
}

int64_t JobSpec::TotalMemoryBytes() const {
  int64_t total = 0;
  for (const auto& c : containers) total += c.memory_bytes;
  return total;
}

std::string FieldOf(const Status& status) {
  const std::string& m = status.message();
  size_t colon = m.find(": ");
  return colon == std::string::npos ? std::string() : m.substr(0, colon);
}

bool IsJobId(const std::string& id) {
  const std::string base = id.substr(0, id.find(':'));
  if (base.size() != 16 || base.find_first_not_of("0123456789abcdef") != std::string::npos) return false;
  if (base.size() == id.size()) return true;
  const std::string index = id.substr(17);
  return !index.empty() && index.size() <= 4 && index.find_first_not_of("0123456789") == std::string::npos &&
         (index == "0" || index[0] != '0');
}

Result<JobSpec> ParseJobSpec(const Json& j) {
  JobSpec spec;
  if (!j.is_object()) return FieldError("body", "a job spec is a JSON object");
  if (!j.contains("name") || !j["name"].is_string() || !ValidName(j["name"].get<std::string>(), 63)) {
    return FieldError("name", "is required: 1-63 characters of a-z, 0-9 and '-'");
  }
  spec.name = j["name"];
  JobContainer main;
  BATON_RETURN_IF_ERROR(ParseContainer(j, "", /*is_main=*/true, &main));
  spec.containers.push_back(std::move(main));
  if (j.contains("sidecars")) {
    if (!j["sidecars"].is_array()) return FieldError("sidecars", "must be an array of containers");
    std::set<std::string> names = {"main"};
    for (size_t i = 0; i < j["sidecars"].size(); ++i) {
      JobContainer sidecar;
      std::string path = "sidecars[" + std::to_string(i) + "].";
      BATON_RETURN_IF_ERROR(ParseContainer(j["sidecars"][i], path, false, &sidecar));
      if (!names.insert(sidecar.name).second) return FieldError(path + "name", "is not unique within the job");
      spec.containers.push_back(std::move(sidecar));
    }
    if (spec.containers.size() > 8) return FieldError("sidecars", "at most 7 sidecars");
  }
  if (j.contains("network")) {
    std::string n = j["network"].is_string() ? j["network"].get<std::string>() : "";
    if (n == "none") spec.network = runtime::NetworkMode::kNone;
    else if (n == "host") spec.network = runtime::NetworkMode::kHost;
    else if (n == "bridge") spec.network = runtime::NetworkMode::kBridge;
    else return FieldError("network", "must be \"none\", \"host\" or \"bridge\"");
  }
  for (size_t i = 0; i < spec.containers.size(); ++i) {
    if (!spec.containers[i].ports.empty() && spec.network != runtime::NetworkMode::kBridge) {
      return FieldError(i == 0 ? "ports" : "sidecars[" + std::to_string(i - 1) + "].ports",
                        "ports are published only with network \"bridge\"");
    }
  }
  if (j.contains("timeoutSeconds")) {
    auto timeout = JsonInteger(j["timeoutSeconds"], 1, 7 * 24 * 3600);
    if (!timeout) return FieldError("timeoutSeconds", "must be an integer from 1 to 604800 (7 days)");
    spec.timeout_seconds = *timeout;
  }
  if (j.contains("restartPolicy")) {
    const Json& r = j["restartPolicy"];
    std::string policy;
    if (r.is_string()) {
      policy = r;
    } else if (r.is_object()) {
      BATON_RETURN_IF_ERROR(OnlyKnown(r, "restartPolicy.", {"policy", "maxAttempts", "backoffSeconds"}));
      if (r.contains("policy") && r["policy"].is_string()) policy = r["policy"].get<std::string>();
      if (r.contains("maxAttempts")) {
        auto attempts = JsonInteger(r["maxAttempts"], 1, 100);
        if (!attempts) return FieldError("restartPolicy.maxAttempts", "must be an integer from 1 to 100");
        spec.max_attempts = static_cast<int>(*attempts);
      }
      if (r.contains("backoffSeconds")) {
        auto backoff = JsonInteger(r["backoffSeconds"], 0, 3600);
        if (!backoff) return FieldError("restartPolicy.backoffSeconds", "must be an integer from 0 to 3600");
        spec.backoff_seconds = *backoff;
      }
    } else {
      return FieldError("restartPolicy", "must be a policy name or {\"policy\", \"maxAttempts\", \"backoffSeconds\"}");
    }
    if (policy == "Never") spec.restart = RestartPolicy::kNever;
    else if (policy == "OnFailure") spec.restart = RestartPolicy::kOnFailure;
    else if (policy == "Always") spec.restart = RestartPolicy::kAlways;
    else return FieldError(r.is_string() ? "restartPolicy" : "restartPolicy.policy", "must be Never, OnFailure or Always");
    if (spec.restart == RestartPolicy::kNever && spec.max_attempts > 1) {
      return FieldError("restartPolicy.maxAttempts", "must be 1 with the policy Never");
    }
    if (spec.restart != RestartPolicy::kNever && !(r.is_object() && r.contains("maxAttempts"))) {
      spec.max_attempts = spec.restart == RestartPolicy::kAlways ? 100 : 3;
    }
  }
  if (j.contains("completion")) {
    const Json& c = j["completion"];
    std::string mode = c.is_string() ? c.get<std::string>()
                       : c.is_object() && c.contains("mode") && c["mode"].is_string() ? c["mode"].get<std::string>()
                                                                                       : "";
    if (mode == "exitCode") {
      spec.completion = CompletionMode::kExitCode;
    } else if (mode == "callback") {
      spec.completion = CompletionMode::kCallback;
    } else if (mode == "jobUrl") {
      spec.completion = CompletionMode::kJobUrl;
      auto port = c.is_object() && c.contains("port") ? JsonInteger(c["port"], 1, 65535) : std::nullopt;
      if (!port) return FieldError("completion.port", "the job URL's port (1-65535) is required with mode jobUrl");
      spec.job_port = static_cast<uint16_t>(*port);
      if (spec.network == runtime::NetworkMode::kNone) {
        return FieldError("network", "mode jobUrl needs network \"host\" or \"bridge\" to reach the job");
      }
      // On a bridge, Baton reaches the job through its port published on
      // 127.0.0.1 (docs/job-protocol.md): published even if `ports` omits it.
      std::vector<uint16_t>& ports = spec.containers[0].ports;
      if (spec.network == runtime::NetworkMode::kBridge &&
          std::find(ports.begin(), ports.end(), spec.job_port) == ports.end()) {
        ports.insert(ports.begin(), spec.job_port);
      }
    } else {
      return FieldError(c.is_object() ? "completion.mode" : "completion", "must be exitCode, callback or jobUrl");
    }
  }
  if (j.contains("labels")) {
    if (!j["labels"].is_object()) return FieldError("labels", "must be an object of strings");
    for (const auto& [k, v] : j["labels"].items()) {
      if (k.empty() || k.size() > 63 || k.rfind("baton.", 0) == 0) {
        return FieldError("labels." + k, "must be 1-63 characters and not start with 'baton.'");
      }
      if (!v.is_string() || v.get<std::string>().size() > 256) return FieldError("labels." + k, "must be a string");
      spec.labels[k] = v.get<std::string>();
    }
  }
  if (j.contains("priority")) {
    auto priority = JsonInteger(j["priority"], -100, 100);
    if (!priority) return FieldError("priority", "must be an integer from -100 to 100");
    spec.priority = static_cast<int>(*priority);
  }
  if (j.contains("dependsOn")) {
    const Json& d = j["dependsOn"];
    if (!d.is_array() || d.size() > JobSpec::kMaxDependencies) {
      return FieldError("dependsOn", "must be an array of at most 20 job ids (or {\"jobId\", \"type\"})");
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < d.size(); ++i) {
      const std::string path = "dependsOn[" + std::to_string(i) + "]";
      JobDependency dep;
      if (d[i].is_string()) {
        dep.job_id = d[i].get<std::string>();
      } else if (d[i].is_object()) {
        BATON_RETURN_IF_ERROR(OnlyKnown(d[i], path + ".", {"jobId", "type"}));
        if (d[i].contains("jobId") && d[i]["jobId"].is_string()) dep.job_id = d[i]["jobId"].get<std::string>();
        if (d[i].contains("type")) {
          const std::string type = d[i]["type"].is_string() ? d[i]["type"].get<std::string>() : "";
          if (type != "SEQUENTIAL" && type != "N_TO_N") return FieldError(path + ".type", "must be SEQUENTIAL or N_TO_N");
          dep.n_to_n = type == "N_TO_N";
        }
      } else {
        return FieldError(path, "must be a job id or {\"jobId\", \"type\"}");
      }
      if (!IsJobId(dep.job_id)) return FieldError(path, "a job id is 16 lower-case hex digits (\":<index>\" for a child of an array job)");
      if (!seen.insert(dep.job_id).second) return FieldError(path, "is listed twice");
      spec.depends_on.push_back(std::move(dep));
    }
  }
  if (j.contains("array")) {
    const Json& a = j["array"];
    if (!a.is_object()) return FieldError("array", "must be {\"size\": n}");
    BATON_RETURN_IF_ERROR(OnlyKnown(a, "array.", {"size"}));
    auto size = a.contains("size") ? JsonInteger(a["size"], 2, JobSpec::kMaxArraySize) : std::nullopt;
    if (!size) return FieldError("array.size", "must be an integer from 2 to 1000");
    spec.array_size = static_cast<int>(*size);
  }
  if (j.contains("runOnFailure")) {
    if (!j["runOnFailure"].is_boolean()) return FieldError("runOnFailure", "must be true or false");
    spec.run_on_failure = j["runOnFailure"].get<bool>();
  }
  if (j.contains("onOomKilled")) BATON_RETURN_IF_ERROR(ParseOomPolicy(j["onOomKilled"], &spec));
  return spec;
}

Json RedactedJson(const JobSpec& spec) {
  auto container = [](const JobContainer& c) {
    Json j = {{"image", c.image}, {"cpu", c.cpu}, {"memoryMb", c.memory_bytes >> 20}};
    if (c.name != "main") j["name"] = c.name;
    if (!c.command.empty()) j["command"] = c.command;
    if (!c.args.empty()) j["args"] = c.args;
    if (!c.env.empty()) j["env"] = c.env;
    if (!c.secret_env.empty()) {
      Json secrets = Json::object();
      for (const auto& [k, v] : c.secret_env) secrets[k] = "***";
      j["secretEnv"] = secrets;
    }
    if (!c.secret_files.empty()) {
      Json files = Json::object();
      for (const auto& [k, v] : c.secret_files) files[k] = "***";
      j["secretFiles"] = files;
    }
    if (!c.user.empty()) j["user"] = c.user;
    if (c.read_only_root_fs) j["readOnlyRootFs"] = true;
    if (!c.capabilities.empty()) j["capabilities"] = c.capabilities;
    if (c.pids_limit != JobContainer::kDefaultPidsLimit) j["pidsLimit"] = c.pids_limit;
    if (!c.working_dir.empty()) j["workingDir"] = c.working_dir;
    if (!c.ports.empty()) j["ports"] = c.ports;
    return j;
  };
  Json j = container(spec.containers[0]);
  j["name"] = spec.name;
  for (size_t i = 1; i < spec.containers.size(); ++i) j["sidecars"].push_back(container(spec.containers[i]));
  j["network"] = spec.network == runtime::NetworkMode::kNone ? "none"
                 : spec.network == runtime::NetworkMode::kHost ? "host"
                                                               : "bridge";
  j["timeoutSeconds"] = spec.timeout_seconds;
  j["restartPolicy"] = {{"policy", spec.restart == RestartPolicy::kNever       ? "Never"
                                   : spec.restart == RestartPolicy::kOnFailure ? "OnFailure"
                                                                               : "Always"},
                        {"maxAttempts", spec.max_attempts},
                        {"backoffSeconds", spec.backoff_seconds}};
  if (spec.completion == CompletionMode::kJobUrl) {
    j["completion"] = {{"mode", "jobUrl"}, {"port", spec.job_port}};
  } else {
    j["completion"] = spec.completion == CompletionMode::kCallback ? "callback" : "exitCode";
  }
  if (!spec.labels.empty()) j["labels"] = spec.labels;
  j["priority"] = spec.priority;
  for (const JobDependency& d : spec.depends_on) {
    j["dependsOn"].push_back(Json{{"jobId", d.job_id}, {"type", d.n_to_n ? "N_TO_N" : "SEQUENTIAL"}});
  }
  if (spec.run_on_failure) j["runOnFailure"] = true;
  if (spec.array_size > 0) j["array"] = {{"size", spec.array_size}};
  if (spec.on_oom_killed) {
    j["onOomKilled"] = {{"increaseMemory", spec.on_oom_killed->increase_memory},
                        {"maxMemoryMb", spec.on_oom_killed->max_memory_bytes >> 20}};
  }
  return j;
}

Status FitsWithin(const JobSpec& spec, const Capacity& limit, const std::string& what) {
  if (limit.cpu > 0 && spec.TotalCpu() > limit.cpu + 1e-9) {
    return FailedPreconditionError("cpu: the job needs " + std::to_string(spec.TotalCpu()) + " cores but " + what +
                                   " allows at most " + std::to_string(limit.cpu) + "; it could never run");
  }
  if (limit.memory_bytes > 0 && spec.TotalMemoryBytes() > limit.memory_bytes) {
    return FailedPreconditionError("memoryMb: the job needs " + std::to_string(spec.TotalMemoryBytes() >> 20) +
                                   " MiB but " + what + " allows at most " + std::to_string(limit.memory_bytes >> 20) +
                                   " MiB; it could never run");
  }
  return Status::Ok();
}

}  // namespace baton::batch
