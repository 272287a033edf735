#include "app/default_quota.h"

#include <cmath>
#include <cstdlib>
#include <set>

namespace baton::app {

Result<Json> ParseDefaultQuota(const std::string& text) {
  if (text == "none") return Json(nullptr);
  const std::string usage = "expected cpu=C,memory=MB,jobs=N[,weight=W] or none";
  Json quota = {{"weight", 1}};
  std::set<std::string> seen;
  for (size_t i = 0; i <= text.size();) {
    size_t comma = text.find(',', i);
    if (comma == std::string::npos) comma = text.size();
    const std::string part = text.substr(i, comma - i);
    i = comma + 1;
    const size_t eq = part.find('=');
    if (eq == std::string::npos) return InvalidArgumentError("'" + part + "': " + usage);
    const std::string key = part.substr(0, eq), value = part.substr(eq + 1);
    static const std::set<std::string> kKeys = {"cpu", "memory", "jobs", "weight"};
    if (!kKeys.count(key)) return InvalidArgumentError("unknown part '" + key + "': " + usage);
    if (!seen.insert(key).second) return InvalidArgumentError("'" + key + "' given twice");
    char* end = nullptr;
    const double n = std::strtod(value.c_str(), &end);
    const bool integer = key != "cpu";
    if (value.empty() || *end != '\0' || !std::isfinite(n) || n <= 0 || n > 1e9 ||
        (integer && n != std::floor(n)) || (key == "weight" && n < 1)) {
      const char* expected = key == "cpu" ? "cores above 0" : key == "weight" ? "an integer from 1" : "an integer above 0";
      return InvalidArgumentError(key + "=" + value + ": expected " + expected);
    }
    const std::string field = key == "memory" ? "memoryMb" : key;
    quota[field] = integer ? Json(static_cast<int64_t>(n)) : Json(n);
  }
  for (const char* needed : {"cpu", "memory", "jobs"}) {
    if (!seen.count(needed)) return InvalidArgumentError(std::string("no ") + needed + ": " + usage);
  }
  return quota;
}

}  // namespace baton::app
