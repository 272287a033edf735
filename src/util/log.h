// Logging: one spdlog logger for the whole process, named "baton", on stderr.
//
// Two formats (`baton serve --log-format`):
//   text  "[2026-12-03 16:31:18.123] [baton] [info] message", the default;
//   json  one JSON object per line: {"ts": ISO-8601 UTC with ms, "level",
//         "msg"} for a plain message, {"ts", "level", "event", fields…} for a
//         structured one (LogEvent).
// The level: `--log-level`, else the environment variable BATON_LOG_LEVEL,
// else "info" (trace, debug, info, warn, error, critical, off).
//
// What is logged never holds an API key, a job token, a secret's value, a
// registry password or an Authorization header: callers log ids, route
// patterns and tenant names (docs/SECURITY.md).
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

#include "baton/json.h"
#include "baton/status.h"

namespace baton::util {

// The process logger. Level from BATON_LOG_LEVEL (trace..off), default "info".
spdlog::logger& Log();

enum class LogFormat { kText, kJson };

// Sets the format ("text" | "json") and, when `level` is not empty, the level
// ("trace" … "off"). InvalidArgument naming the value otherwise (nothing
// changes then). Call before the threads that log start.
Status ConfigureLog(std::string_view format, std::string_view level);

LogFormat CurrentLogFormat();

// A structured line: `event` (a short name, "http_request", "job") and the
// members of the JSON object `fields`. json: spliced into the line's object;
// text: "event k=v k=v" (strings unquoted unless they hold a space or '=').
// Nothing is formatted when `level` is below the logger's.
void LogEvent(spdlog::level::level_enum level, std::string_view event, const Json& fields);

}  // namespace baton::util
