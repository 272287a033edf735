#include <string_view>

#include "baton/json.h"
#include "batch/job_spec.h"
#include "fuzz/targets.h"

namespace baton::fuzz {

int FuzzJobSpec(const uint8_t* data, size_t size) {
  Json j;
  if (!ParseJson(std::string_view(reinterpret_cast<const char*>(data), size), &j).ok()) return 0;
  auto spec = batch::ParseJobSpec(j);
  if (!spec.ok()) {
    FUZZ_CHECK(spec.status().code() == StatusCode::kInvalidArgument);
    return 0;
  }
  // What was accepted is within the documented ranges (docs/job-spec.md).
  FUZZ_CHECK(!spec->containers.empty() && spec->containers.size() <= 8);
  for (const batch::JobContainer& c : spec->containers) {
    FUZZ_CHECK(c.cpu >= 0.01 && c.cpu <= 1024);
    FUZZ_CHECK(c.memory_bytes >= (int64_t{6} << 20) && c.memory_bytes <= (int64_t{1} << 42));
    for (uint16_t p : c.ports) FUZZ_CHECK(p >= 1);
  }
  FUZZ_CHECK(spec->timeout_seconds >= 1 && spec->timeout_seconds <= 7 * 24 * 3600);
  FUZZ_CHECK(spec->max_attempts >= 1 && spec->max_attempts <= 100);
  FUZZ_CHECK(spec->backoff_seconds >= 0 && spec->backoff_seconds <= 3600);
  FUZZ_CHECK(spec->priority >= -100 && spec->priority <= 100);
  FUZZ_CHECK(spec->completion != batch::CompletionMode::kJobUrl || spec->job_port >= 1);
  // The redacted form is what tenants see: it dumps, and parses back as a spec.
  const std::string redacted = batch::RedactedJson(*spec).dump();
  Json back;
  FUZZ_CHECK(ParseJson(redacted, &back).ok());
  (void)batch::FitsWithin(*spec, batch::Capacity{1, 64 << 20}, "the node has");
  return 0;
}

}  // namespace baton::fuzz
