// JSON values in Baton's API, and the one way Baton turns text into them.
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
//
// Parsing is bounded. nlohmann's parser is iterative, but much of what is done
// with a parsed value is not: dump(), copies, comparisons and every walker of
// our own recurse once per level, so a body nested 100,000 levels deep would
// overflow the stack long after it was parsed. ParseJson therefore checks the
// nesting depth in a scan of the text, before any value is built, and every
// value it returns is at most `max_depth` deep. Every parse of text Baton did
// not write itself (HTTP bodies, gRPC payloads, job specs, stored history,
// Docker's answers, a job's status answer, the CLI's files) goes through it.
//
// Thread-safety: free functions of their arguments; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "baton/status.h"

namespace baton {

using Json = nlohmann::json;
// Keeps object members in their written order (the history format, the CLI).
using OrderedJson = nlohmann::ordered_json;

// The default nesting limit: `1` and `"a"` are depth 0, `[]` and `{}` depth 1,
// `[[1]]` depth 2. Deep enough for any real document, shallow enough that
// the recursive code that handles a value never runs out of stack.
inline constexpr int kMaxJsonDepth = 128;

struct JsonLimits {
  // Deepest nesting of arrays and objects accepted.
  int max_depth = kMaxJsonDepth;
  // Longest text accepted, in bytes; 0 = no limit of its own (the caller's
  // transport bounds the text, e.g. the HTTP body limit).
  size_t max_bytes = 0;
};

// Parses `text`, one JSON value with optional whitespace around it (RFC 8259),
// into `*out`.
//
// Returns OK, or InvalidArgument whose message says why and where, ready to
// follow a field name ("body: …"):
//   "is larger than N bytes"                       (limits.max_bytes)
//   "is not valid UTF-8 (byte 17)"                 (anywhere in the text)
//   "is nested deeper than 128 levels (byte 129)"  (limits.max_depth)
//   "is not valid JSON: syntax error … (byte 4)"   (anything else; "" too)
// On error `*out` is left unchanged. Never throws; never recurses over the
// text; never builds a value deeper than limits.max_depth.
Status ParseJson(std::string_view text, Json* out, const JsonLimits& limits = {});
Status ParseJson(std::string_view text, OrderedJson* out, const JsonLimits& limits = {});

// Checks that `text` is one JSON value within `limits`, as ParseJson does,
// without building the value. Same errors as ParseJson. For payloads that are
// carried as the bytes they are (JsonText) and never parsed on the way.
Status ValidateJson(std::string_view text, const JsonLimits& limits = {});

// A payload given as JSON text, carried as these exact bytes: never parsed
// into a value and dumped again, so `null` stays `null` (not "no value"),
// object members keep their order and numbers their spelling. What the
// Durable Task SDKs send; the Client's JsonText overloads take it and check
// it with ValidateJson. "" is no value.
struct JsonText {
  std::string text;
};

// Serialized JSON text for `value`; a null value becomes "" (absent). Never
// throws: bytes that are not UTF-8 inside strings become U+FFFD.
std::string ToPayload(const Json& value);

// `value.dump()` that never throws (bytes that are not UTF-8 inside strings
// become U+FFFD): for answers that may echo text Baton did not validate, such
// as a container's output.
std::string DumpJson(const Json& value);

// Reads a stored or carried payload: "" reads back as null; JSON text within
// the default limits is parsed (ParseJson). Text that is not such JSON (a
// payload written by a foreign SDK as a bare string, say, or one nested too
// deeply to be handled safely) comes back as a JSON string holding the text,
// with bytes that are not UTF-8 replaced by U+FFFD: never an exception.
Json FromPayload(std::string_view text);

// The value of `value` when it is a JSON integer within [min, max], else
// nullopt. Unlike `get<int>()`, never truncates or wraps: 4294967376 is out
// of range for a port, not port 80, and 18446744073709551615 is not -1. A
// number with a fraction or an exponent (1.0, 1e3) is not an integer.
std::optional<int64_t> JsonInteger(const Json& value, int64_t min, int64_t max);
std::optional<int64_t> JsonInteger(const OrderedJson& value, int64_t min, int64_t max);

}  // namespace baton
