// libFuzzer's entry point for one target, chosen at compile time
// (-DBATON_FUZZ_TARGET=FuzzJson, …): see targets.h and scripts/fuzz.
#include "fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return baton::fuzz::BATON_FUZZ_TARGET(data, size);
}
