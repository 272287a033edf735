// Three builds of one orchestrator, "Release", for the preflight tests
// (tests/engine/preflight_test.cc, and tests/app/preflight_module.cc, which
// turns each into a shared library for `baton preflight --registry-from`).
//
//   v1 (live):   Build, Test, wait for "Approve", Ship
//   v2 (broken): Test, Build (order swapped), wait for "Approve", Ship
//   v3 (safe):   Build, Test, wait for "Approve", Notify, Ship  (changed only
//                after the point where a live instance waits)
#pragma once

#include "baton/registry.h"

namespace baton::testing::preflight {

inline Json Echo(ActivityContext& ctx) { return ctx.GetInput<Json>(); }

inline void RegisterV1(Registry& r) {
  (void)r.AddOrchestrator("Release", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CallActivity("Build", "v1");
    co_await ctx.CallActivity("Test", "v1");
    ctx.SetCustomStatus("awaiting approval");
    co_await ctx.WaitForExternalEvent("Approve");
    co_await ctx.CallActivity("Ship", "v1");
    co_return "shipped";
  });
  for (const char* a : {"Build", "Test", "Ship", "Notify"}) (void)r.AddActivity(a, Echo);
}

inline void RegisterV2(Registry& r) {
  (void)r.AddOrchestrator("Release", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CallActivity("Test", "v1");
    co_await ctx.CallActivity("Build", "v1");
    ctx.SetCustomStatus("awaiting approval");
    co_await ctx.WaitForExternalEvent("Approve");
    co_await ctx.CallActivity("Ship", "v1");
    co_return "shipped";
  });
}

inline void RegisterV3(Registry& r) {
  (void)r.AddOrchestrator("Release", [](OrchestrationContext& ctx) -> Task<Json> {
    co_await ctx.CallActivity("Build", "v1");
    co_await ctx.CallActivity("Test", "v1");
    ctx.SetCustomStatus("awaiting approval");
    co_await ctx.WaitForExternalEvent("Approve");
    co_await ctx.CallActivity("Notify", "v3");
    co_await ctx.CallActivity("Ship", "v1");
    co_return "shipped";
  });
}

}  // namespace baton::testing::preflight
