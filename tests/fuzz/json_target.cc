#include <string_view>
#include <utility>
#include <vector>

#include "baton/json.h"
#include "fuzz/targets.h"

namespace baton::fuzz {
namespace {

// The nesting depth of a value, without recursion (the point is that the
// value might be deep).
template <typename J>
int Depth(const J& root) {
  int deepest = 0;
  std::vector<std::pair<const J*, int>> stack = {{&root, 0}};
  while (!stack.empty()) {
    auto [v, d] = stack.back();
    stack.pop_back();
    if (!v->is_structured()) continue;
    deepest = std::max(deepest, d + 1);
    for (const auto& child : *v) stack.push_back({&child, d + 1});
  }
  return deepest;
}

}  // namespace

int FuzzJson(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Json j;
  Status s = ParseJson(text, &j);
  if (s.ok()) {
    FUZZ_CHECK(Depth(j) <= kMaxJsonDepth);
    const std::string dumped = j.dump();  // accepted text is UTF-8: dump never throws
    Json again;
    FUZZ_CHECK(ParseJson(dumped, &again).ok());
    FUZZ_CHECK(again.dump() == dumped);
    FUZZ_CHECK(FromPayload(text) == j);
    (void)JsonInteger(j, -100, 100);
    (void)JsonInteger(j, 0, INT64_MAX);
  } else {
    FUZZ_CHECK(s.code() == StatusCode::kInvalidArgument);
    Json fallback = FromPayload(text);
    FUZZ_CHECK(text.empty() ? fallback.is_null() : fallback.is_string());
    (void)DumpJson(fallback);
  }
  OrderedJson o;
  FUZZ_CHECK(ParseJson(text, &o).ok() == s.ok());
  if (s.ok()) FUZZ_CHECK(Depth(o) <= kMaxJsonDepth);
  // A tighter limit is a limit too.
  Json shallow;
  if (ParseJson(text, &shallow, JsonLimits{4, 4096}).ok()) FUZZ_CHECK(Depth(shallow) <= 4 && size <= 4096);
  return 0;
}

}  // namespace baton::fuzz
