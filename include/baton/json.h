// JSON values in Baton's API.
//
// Inputs, outputs, event payloads and custom status are JSON. The SDK uses
// nlohmann::json (Debian's nlohmann-json3-dev) as its value type; user structs
// become JSON through nlohmann's `to_json` / `from_json` ADL hooks, which is how
// the typed helpers (`CallActivity<MyResult>(...)`, `GetInput<MyInput>()`)
// convert.
//
// On the wire and in storage, payloads are kept as serialized JSON text
// (`std::string`) so that the engine never parses what it only carries; an
// empty string means "no value" and reads back as JSON null.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace baton {

using Json = nlohmann::json;

// Serialized JSON text for `value`; a null value becomes "" (absent).
inline std::string ToPayload(const Json& value) {
  return value.is_null() ? std::string() : value.dump();
}

// Parses serialized JSON text; "" reads back as null. Text that is not JSON
// (a payload written by a foreign SDK as a bare string, say) comes back as a
// JSON string holding the text, never as an exception.
inline Json FromPayload(std::string_view text) {
  if (text.empty()) return Json();
  Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return Json(std::string(text));
  return value;
}

}  // namespace baton
