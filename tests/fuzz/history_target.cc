#include <string_view>

#include "baton/history.h"
#include "fuzz/targets.h"

namespace baton::fuzz {

int FuzzHistory(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto events = ParseEvents(text); events.ok()) {
    // What decodes, encodes; and that encoding is a fixed point.
    const std::string once = SerializeEvents(*events);
    auto again = ParseEvents(once);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(SerializeEvents(*again) == once);
  } else {
    FUZZ_CHECK(events.status().code() == StatusCode::kDataLoss);
  }
  if (auto event = ParseEvent(text); event.ok()) {
    const std::string once = SerializeEvent(*event);
    auto again = ParseEvent(once);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(SerializeEvent(*again) == once);
    (void)EventKindName(event->body);
  }
  if (auto failure = ParseFailure(text); failure.ok()) {
    const std::string once = SerializeFailure(*failure);
    auto again = ParseFailure(once);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(SerializeFailure(*again) == once);
  }
  return 0;
}

}  // namespace baton::fuzz
