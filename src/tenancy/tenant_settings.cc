#include "tenancy/tenant_settings.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "util/duration.h"

namespace baton::tenancy {
namespace {

Status FieldError(const std::string& field, const std::string& reason) {
  return InvalidArgumentError(field + ": " + reason);
}

Status OnlyKnown(const Json& object, const std::string& path, const std::set<std::string>& known) {
  for (const auto& [key, value] : object.items()) {
    if (!known.count(key)) return FieldError(path + key, "unknown field");
  }
  return Status::Ok();
}

// An integer in [min, max]; unsigned values above INT64_MAX and fractions are refused.
Status Integer(const Json& j, const std::string& field, int64_t min, int64_t max, int64_t* out) {
  const std::string range = "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!j.is_number_integer()) return FieldError(field, range);
  if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(max)) return FieldError(field, range);
  int64_t v = j.get<int64_t>();
  if (v < min || v > max) return FieldError(field, range);
  *out = v;
  return Status::Ok();
}

bool ValidImagePrefix(const std::string& p) {
  if (p.empty() || p.size() > 256) return false;
  return std::all_of(p.begin(), p.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' || c == '/' ||
           c == ':';
  });
}

const std::set<std::string>& KnownCapabilities() {
  static const std::set<std::string> kCaps = {
      "AUDIT_CONTROL", "AUDIT_READ",   "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF",          "CHECKPOINT_RESTORE",
      "CHOWN",         "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER",    "FSETID",       "IPC_LOCK",
      "IPC_OWNER",     "KILL",         "LEASE",       "LINUX_IMMUTABLE", "MAC_ADMIN",  "MAC_OVERRIDE",
      "MKNOD",         "NET_ADMIN",    "NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON",
      "SETFCAP",       "SETGID",       "SETPCAP",     "SETUID",        "SYS_ADMIN",    "SYS_BOOT",
      "SYS_CHROOT",    "SYS_MODULE",   "SYS_NICE",    "SYS_PACCT",     "SYS_PTRACE",   "SYS_RAWIO",
      "SYS_RESOURCE",  "SYS_TIME",     "SYS_TTY_CONFIG", "SYSLOG",     "WAKE_ALARM"};
  return kCaps;
}

}  // namespace

bool IsKnownCapability(const std::string& name) { return KnownCapabilities().count(name) != 0; }

Json SettingsToJson(const TenantSettings& s) {
  return Json{{"grants",
               {{"hostNetwork", s.grants.host_network},
                {"capabilities", s.grants.capabilities},
                {"imagePrefixes", s.grants.image_prefixes}}},
              {"limits",
               {{"requestsPerSecond", s.limits.requests_per_second},
                {"burst", s.limits.burst},
                {"maxQueuedJobs", s.limits.max_queued_jobs},
                {"maxInstances", s.limits.max_instances}}},
              {"retention", !s.retention                                  ? Json(nullptr)
                            : *s.retention == TenantSettings::kKeepForever ? Json("forever")
                                                                           : Json(util::FormatDuration(*s.retention))}};
}

Status ApplySettingsPatch(const Json& patch, TenantSettings* settings) {
  if (!patch.is_object()) return FieldError("body", "tenant settings are a JSON object");
  BATON_RETURN_IF_ERROR(OnlyKnown(patch, "", {"grants", "limits", "retention"}));
  TenantSettings s = *settings;
  if (patch.contains("retention")) {
    const Json& r = patch["retention"];
    if (r.is_null()) {
      s.retention.reset();
    } else if (r.is_string() && r.get<std::string>() == "forever") {
      s.retention = TenantSettings::kKeepForever;
    } else if (r.is_string()) {
      auto age = util::ParseDuration(r.get<std::string>(), std::chrono::minutes(1));
      if (!age.ok()) return FieldError("retention", age.status().message());
      s.retention = *age;
    } else {
      return FieldError("retention", "must be a duration (\"30d\", \"12h\"), \"forever\" or null (the server's "
                                     "--retention)");
    }
  }
  if (patch.contains("grants")) {
    const Json& g = patch["grants"];
    if (!g.is_object()) return FieldError("grants", "must be an object");
    BATON_RETURN_IF_ERROR(OnlyKnown(g, "grants.", {"hostNetwork", "capabilities", "imagePrefixes"}));
    if (g.contains("hostNetwork")) {
      if (!g["hostNetwork"].is_boolean()) return FieldError("grants.hostNetwork", "must be true or false");
      s.grants.host_network = g["hostNetwork"].get<bool>();
    }
    if (g.contains("capabilities")) {
      const Json& caps = g["capabilities"];
      if (!caps.is_array() || caps.size() > 64) return FieldError("grants.capabilities", "must be an array of capability names");
      std::set<std::string> names;
      for (size_t i = 0; i < caps.size(); ++i) {
        const std::string field = "grants.capabilities[" + std::to_string(i) + "]";
        if (!caps[i].is_string()) return FieldError(field, "must be a string");
        std::string name = caps[i].get<std::string>();
        if (name.rfind("CAP_", 0) == 0) name = name.substr(4);
        if (!IsKnownCapability(name)) return FieldError(field, "is not a Linux capability name (e.g. NET_BIND_SERVICE)");
        names.insert(name);
      }
      s.grants.capabilities.assign(names.begin(), names.end());
    }
    if (g.contains("imagePrefixes")) {
      const Json& prefixes = g["imagePrefixes"];
      if (!prefixes.is_array() || prefixes.size() > 64) {
        return FieldError("grants.imagePrefixes", "must be an array of at most 64 image prefixes");
      }
      std::set<std::string> out;
      for (size_t i = 0; i < prefixes.size(); ++i) {
        const std::string field = "grants.imagePrefixes[" + std::to_string(i) + "]";
        if (!prefixes[i].is_string() || !ValidImagePrefix(prefixes[i].get<std::string>())) {
          return FieldError(field,
                            "must be 1-256 characters of a-z, 0-9, '.', '-', '_', '/' and ':' (a registry path such "
                            "as 127.0.0.1:5000/samples/, or one repository)");
        }
        out.insert(prefixes[i].get<std::string>());
      }
      s.grants.image_prefixes.assign(out.begin(), out.end());
    }
  }
  if (patch.contains("limits")) {
    const Json& l = patch["limits"];
    if (!l.is_object()) return FieldError("limits", "must be an object");
    BATON_RETURN_IF_ERROR(
        OnlyKnown(l, "limits.", {"requestsPerSecond", "burst", "maxQueuedJobs", "maxInstances"}));
    if (l.contains("requestsPerSecond")) {
      const Json& r = l["requestsPerSecond"];
      if (!r.is_number() || !std::isfinite(r.get<double>()) || r.get<double>() < 0.01 || r.get<double>() > 1e6) {
        return FieldError("limits.requestsPerSecond", "must be a number from 0.01 to 1000000");
      }
      s.limits.requests_per_second = r.get<double>();
    }
    if (l.contains("burst")) BATON_RETURN_IF_ERROR(Integer(l["burst"], "limits.burst", 1, 1000000, &s.limits.burst));
    if (l.contains("maxQueuedJobs")) {
      BATON_RETURN_IF_ERROR(Integer(l["maxQueuedJobs"], "limits.maxQueuedJobs", 0, 1000000, &s.limits.max_queued_jobs));
    }
    if (l.contains("maxInstances")) {
      BATON_RETURN_IF_ERROR(
          Integer(l["maxInstances"], "limits.maxInstances", 0, 1000000000, &s.limits.max_instances));
    }
  }
  *settings = std::move(s);
  return Status::Ok();
}

}  // namespace baton::tenancy
