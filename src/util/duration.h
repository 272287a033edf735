// Durations as operators write them: "7d", "36h", "1d12h", "90m", "45s",
// "2w" (units w, d, h, m, s; each at most once, largest first).
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "baton/status.h"

namespace baton::util {

// The duration `text` names, from `min` to `max` inclusive. InvalidArgument
// (saying what is wrong: "'7x': unknown unit 'x' (w, d, h, m, s)") for an
// empty text, a number without a unit, a unit out of order or repeated, a
// sign, a fraction, or a value out of range.
Result<std::chrono::seconds> ParseDuration(std::string_view text, std::chrono::seconds min = std::chrono::seconds(1),
                                           std::chrono::seconds max = std::chrono::hours(24 * 365 * 100));

// The shortest text ParseDuration reads back as `d` ("7d", "1d12h", "0s").
// REQUIRES: d >= 0.
std::string FormatDuration(std::chrono::seconds d);

}  // namespace baton::util
