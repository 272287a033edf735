#include "util/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <cstdlib>
#include <ctime>

namespace baton::util {
namespace {

// A structured message's payload starts with this byte, then the fields as
// JSON object members without braces ("\"a\":1,\"b\":\"x\""). Plain
// messages never start with it (it is not printable text).
constexpr char kStructured = '\x1e';

std::atomic<LogFormat> g_format{LogFormat::kText};

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// One JSON object per line (see log.h).
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - secs).count();
    std::time_t t = static_cast<std::time_t>(secs.count());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[96];
    std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    std::string line = "{\"ts\":\"";
    line += ts;
    line += "\",\"level\":\"";
    const auto level = spdlog::level::to_string_view(msg.level);
    line.append(level.data(), level.size());
    line += "\",";
    std::string_view payload(msg.payload.data(), msg.payload.size());
    if (!payload.empty() && payload[0] == kStructured) {
      line.append(payload.substr(1));
    } else {
      line += "\"msg\":";
      line += Dump(Json(std::string(payload)));
    }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

std::string TextValue(const Json& v) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (!s.empty() && s.find_first_of(" =\"\n") == std::string::npos) return s;
  }
  return Dump(v);
}

}  // namespace

spdlog::logger& Log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_color_mt("baton");
    const char* level = std::getenv("BATON_LOG_LEVEL");
    l->set_level(level ? spdlog::level::from_str(level) : spdlog::level::info);
    return l;
  }();
  return *logger;
}

Status ConfigureLog(std::string_view format, std::string_view level) {
  if (format != "text" && format != "json") {
    return InvalidArgumentError("--log-format '" + std::string(format) + "': expected text or json");
  }
  std::optional<spdlog::level::level_enum> wanted;
  if (!level.empty()) {
    // from_str maps anything unknown to "off": check the name ourselves.
    static constexpr std::string_view kNames[] = {"trace", "debug", "info", "warn", "warning",
                                                  "error", "err",   "critical", "off"};
    if (std::find(std::begin(kNames), std::end(kNames), level) == std::end(kNames)) {
      return InvalidArgumentError("--log-level '" + std::string(level) +
                                  "': expected trace, debug, info, warn, error, critical or off");
    }
    wanted = spdlog::level::from_str(std::string(level == "warning" ? "warn" : level));
  }
  if (wanted) Log().set_level(*wanted);
  if (format == "json") {
    Log().set_formatter(std::make_unique<JsonFormatter>());
    g_format = LogFormat::kJson;
  } else {
    Log().set_formatter(std::make_unique<spdlog::pattern_formatter>());
    g_format = LogFormat::kText;
  }
  return Status::Ok();
}

LogFormat CurrentLogFormat() { return g_format.load(); }

void LogEvent(spdlog::level::level_enum level, std::string_view event, const Json& fields) {
  spdlog::logger& log = Log();
  if (!log.should_log(level)) return;
  std::string payload;
  if (g_format.load() == LogFormat::kJson) {
    payload += kStructured;
    payload += "\"event\":";
    payload += Dump(Json(std::string(event)));
    if (fields.is_object()) {
      for (const auto& [k, v] : fields.items()) {
        if (k == "ts" || k == "level" || k == "event") continue;
        payload += ',';
        payload += Dump(Json(k));
        payload += ':';
        payload += Dump(v);
      }
    }
  } else {
    payload = std::string(event);
    if (fields.is_object()) {
      for (const auto& [k, v] : fields.items()) {
        payload += ' ';
        payload += k;
        payload += '=';
        payload += TextValue(v);
      }
    }
  }
  log.log(level, "{}", payload);
}

}  // namespace baton::util
