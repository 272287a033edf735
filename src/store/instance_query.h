// The checks every Store makes of an InstanceQuery before it runs one, and
// the continuation tokens both stores hand out.
//
// A token names the last row of the page it ended, in the query's order:
//   by instance id:      hex(id)
//   by created time:     "t" hex("<created_at unix micros>/<id>")
// so the next page starts strictly after that row (keyset paging: rows
// created or deleted meanwhile never shift a page, and no row is read twice).
// <id> is the instance id without the query's instance_id_prefix (which every
// row of the query has): the HTTP API confines a tenant by a "<hub>::" prefix,
// and its tokens then carry no hub. A token is good for the query that made
// it; 't' is not a hex digit, so a token of one order is refused by the other.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "baton/instance.h"
#include "baton/status.h"
#include "util/hex.h"

namespace baton::store {

// Longest instance-id prefix and name prefix a query may carry: ids are
// short (the HTTP API allows 200 characters plus a hub), and a filter that
// is longer cannot match anything but still costs a scan.
inline constexpr size_t kMaxQueryPrefixBytes = 512;

// Where a page starts: after `instance_id` (and, in a created-time order,
// `created_micros`). `has_cursor` is false for a first page.
struct QueryCursor {
  bool has_cursor = false;
  int64_t created_micros = 0;
  std::string instance_id;
};

inline std::string EncodeQueryCursor(const InstanceQuery& query, const InstanceState& last) {
  std::string_view id = last.instance_id;
  if (id.starts_with(query.instance_id_prefix)) id.remove_prefix(query.instance_id_prefix.size());
  if (query.order == InstanceOrder::kInstanceId) return util::HexEncode(id);
  return "t" + util::HexEncode(std::to_string(ToUnixMicros(last.created_at)) + "/" + std::string(id));
}

// The cursor of `query`'s continuation token. InvalidArgument when
// page_size is not 1..1000, a prefix is longer than kMaxQueryPrefixBytes, or
// the token is not one a previous page of a query in this order returned.
inline Result<QueryCursor> InstanceQueryStart(const InstanceQuery& query) {
  if (query.page_size < 1 || query.page_size > 1000) {
    return InvalidArgumentError("page_size must be 1..1000, got " + std::to_string(query.page_size));
  }
  if (query.instance_id_prefix.size() > kMaxQueryPrefixBytes ||
      query.name_prefix.size() > kMaxQueryPrefixBytes) {
    return InvalidArgumentError("a query prefix has at most " + std::to_string(kMaxQueryPrefixBytes) +
                                " bytes");
  }
  QueryCursor cursor;
  const std::string& token = query.continuation_token;
  if (token.empty()) return cursor;
  cursor.has_cursor = true;
  if (query.order == InstanceOrder::kInstanceId) {
    if (!util::HexDecode(token, &cursor.instance_id)) {
      return InvalidArgumentError("malformed continuation token");
    }
    cursor.instance_id.insert(0, query.instance_id_prefix);
    return cursor;
  }
  std::string decoded;
  if (token[0] != 't' || !util::HexDecode(std::string_view(token).substr(1), &decoded)) {
    return InvalidArgumentError("malformed continuation token (or one of a query in another order)");
  }
  const size_t slash = decoded.find('/');
  if (slash == std::string::npos) return InvalidArgumentError("malformed continuation token");
  auto [end, ec] = std::from_chars(decoded.data(), decoded.data() + slash, cursor.created_micros);
  if (ec != std::errc() || end != decoded.data() + slash) {
    return InvalidArgumentError("malformed continuation token");
  }
  cursor.instance_id = query.instance_id_prefix + decoded.substr(slash + 1);
  return cursor;
}

}  // namespace baton::store
