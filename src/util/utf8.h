// UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF), for text that arrives as bytes: URL components, JSON text,
// container output that ends up in a JSON answer.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace baton::util {

// The length (1-4) of the well-formed UTF-8 sequence that starts at
// `text[pos]`, or 0 when the bytes there are not one. REQUIRES: pos < size.
size_t Utf8SequenceLength(std::string_view text, size_t pos);

// Whether `text` is well-formed UTF-8. When it is not and `bad_offset` is
// given, *bad_offset is the offset of the first byte that is not.
bool IsValidUtf8(std::string_view text, size_t* bad_offset = nullptr);

// `text` with every byte that is not part of a well-formed sequence replaced
// by U+FFFD (what a browser shows); well-formed text comes back unchanged.
std::string ToValidUtf8(std::string_view text);

}  // namespace baton::util
