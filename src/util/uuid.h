// UUIDs: random ones for ids minted by the engine and the API, and
// name-based (version 5, SHA-1) ones for the orchestrator's deterministic
// NewGuid().
#pragma once

#include <string>
#include <string_view>

namespace baton::util {

// A random (version 4) UUID, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx". Thread-safe.
std::string NewRandomUuid();

// The version 5 UUID of `name` in the namespace `ns` (a UUID string). Pure.
std::string NameBasedUuid(std::string_view ns, std::string_view name);

}  // namespace baton::util
