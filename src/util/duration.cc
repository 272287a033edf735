#include "util/duration.h"

#include <cstdint>

namespace baton::util {
namespace {

struct Unit {
  char name;
  int64_t seconds;
};
constexpr Unit kUnits[] = {{'w', 7 * 86400}, {'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};

}  // namespace

Result<std::chrono::seconds> ParseDuration(std::string_view text, std::chrono::seconds min, std::chrono::seconds max) {
  const std::string quoted = "'" + std::string(text.substr(0, 40)) + "'";
  if (text.empty()) return InvalidArgumentError("a duration is a number and a unit, e.g. 7d, 36h, 90m");
  int64_t total = 0;
  size_t next_unit = 0;  // units must come largest first, each once
  size_t i = 0;
  while (i < text.size()) {
    int64_t n = 0;
    size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (n > (INT64_C(1) << 40)) return InvalidArgumentError(quoted + ": too large");
      n = n * 10 + (text[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0) {
      return InvalidArgumentError(quoted + ": expected a whole number of weeks, days, hours, minutes or seconds "
                                           "(e.g. 7d, 36h, 1d12h)");
    }
    if (i == text.size()) return InvalidArgumentError(quoted + ": the number needs a unit (w, d, h, m, s)");
    const char u = text[i++];
    size_t k = next_unit;
    while (k < std::size(kUnits) && kUnits[k].name != u) ++k;
    if (k == std::size(kUnits)) {
      bool known = false;
      for (const Unit& unit : kUnits) known = known || unit.name == u;
      return InvalidArgumentError(known ? quoted + ": units go largest first, each once (e.g. 1d12h)"
                                        : quoted + ": unknown unit '" + std::string(1, u) + "' (w, d, h, m, s)");
    }
    next_unit = k + 1;
    total += n * kUnits[k].seconds;
    if (total > (INT64_C(1) << 50)) return InvalidArgumentError(quoted + ": too large");
  }
  if (total < min.count() || total > max.count()) {
    return InvalidArgumentError(quoted + ": must be from " + FormatDuration(min) + " to " + FormatDuration(max));
  }
  return std::chrono::seconds(total);
}

std::string FormatDuration(std::chrono::seconds d) {
  int64_t left = d.count();
  if (left <= 0) return "0s";
  std::string out;
  for (const Unit& unit : kUnits) {
    if (unit.name == 'w' && left % unit.seconds != 0) continue;  // "10d", not "1w3d"
    if (left >= unit.seconds) {
      out += std::to_string(left / unit.seconds) + unit.name;
      left %= unit.seconds;
    }
  }
  return out;
}

}  // namespace baton::util
