// Logging: one spdlog logger for the whole process, named "baton".
#pragma once

#include <spdlog/spdlog.h>

namespace baton::util {

// The process logger. Level from BATON_LOG_LEVEL (trace..off), default "info".
spdlog::logger& Log();

}  // namespace baton::util
