// A "new build" for `baton preflight --registry-from`: one of the builds of
// tests/engine/preflight_versions.h, chosen by PREFLIGHT_VERSION, as a shared
// library that resolves the Baton API against the `baton` binary.
#include "baton/preflight.h"
#include "engine/preflight_versions.h"

extern "C" void baton_register(baton::Registry& registry) {
#if PREFLIGHT_VERSION == 2
  baton::testing::preflight::RegisterV2(registry);
#else
  baton::testing::preflight::RegisterV3(registry);
#endif
}
