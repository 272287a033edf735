// Hex encoding of bytes (lower-case), and its inverse.
#pragma once

#include <string>
#include <string_view>

namespace baton::util {

std::string HexEncode(std::string_view bytes);
// False (and `out` unspecified) on an odd length or a non-hex digit; accepts
// both cases.
bool HexDecode(std::string_view hex, std::string* out);

}  // namespace baton::util
