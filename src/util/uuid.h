// UUIDs: random ones for ids minted by the engine and the API, and
// name-based (version 5, SHA-1) ones for the orchestrator's deterministic
// NewGuid().
#pragma once

#include <string>
#include <string_view>

namespace baton::util {

// A random (version 4) UUID, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx". Thread-safe.
std::string NewRandomUuid();

// A random UUID in Guid.ToString("N") form: 32 lowercase hex digits, no
// dashes. Execution ids have this form everywhere (the Durable Task
// Scheduler's; the SDKs derive child instance ids "<executionId>:<hex4>" from
// them and those must stay within the 100-character id limit). Thread-safe.
std::string NewExecutionId();

// The version 5 UUID of `name` in the namespace `ns` (a UUID string). Pure.
std::string NameBasedUuid(std::string_view ns, std::string_view name);

}  // namespace baton::util
