// Percent-encoding of URL components (RFC 3986): the one encoder and decoder
// of the tree, shared by the server (ids in the URLs it answers with, path
// and query parameters it reads) and the CLI (URLs it builds).
#pragma once

#include <string>
#include <string_view>

namespace baton::util {

// Every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~) as %XX (upper-case
// hex), so the result is safe in a path segment and in a query value.
std::string PercentEncode(std::string_view text);

// Decodes %XX escapes ('+' stays '+'). False on a malformed escape; the bytes
// decoded may be any, so a caller that needs text checks them (utf8.h).
bool PercentDecode(std::string_view in, std::string* out);

}  // namespace baton::util
