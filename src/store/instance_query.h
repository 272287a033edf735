// The checks every Store makes of an InstanceQuery before it runs one.
#pragma once

#include <string>

#include "baton/instance.h"
#include "baton/status.h"
#include "util/hex.h"

namespace baton::store {

// The id after which the page starts: "" for the first page, else the
// decoded continuation token. InvalidArgument when page_size is not 1..1000
// or the token is not one a previous page returned (hex).
inline Result<std::string> InstanceQueryStart(const InstanceQuery& query) {
  if (query.page_size < 1 || query.page_size > 1000) {
    return InvalidArgumentError("page_size must be 1..1000, got " + std::to_string(query.page_size));
  }
  std::string after;
  if (!query.continuation_token.empty() && !util::HexDecode(query.continuation_token, &after)) {
    return InvalidArgumentError("malformed continuation token");
  }
  return after;
}

}  // namespace baton::store
