#include "app/preflight_command.h"

#include <dlfcn.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "baton/json.h"
#include "baton/preflight.h"
#include "baton/store_reader.h"

namespace baton::app {
namespace {

Result<std::unique_ptr<StoreReader>> OpenReader(const PreflightCommandOptions& o) {
  if (o.store.starts_with("postgresql://") || o.store.starts_with("postgres://")) {
    return OpenPostgresStoreReader(o.store);
  }
  if (o.store.empty()) return OpenSqliteStoreReader(o.data_dir + "/baton.db");
  if (o.store.starts_with("sqlite:") && o.store.size() > 7) return OpenSqliteStoreReader(o.store.substr(7));
  return InvalidArgumentError("--store '" + o.store +
                              "': expected postgresql://…, postgres://… or sqlite:PATH");
}

// Loads the new build. The library stays loaded for the life of the process:
// the registry holds functions that live in it.
Status LoadRegistry(const std::string& path, Registry& registry) {
  // A bare name would be searched in the system's library path; only a path
  // the operator names is loaded.
  if (path.find('/') == std::string::npos) {
    return InvalidArgumentError("--registry-from '" + path + "': give a path (./" + path + ")");
  }
  void* lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return FailedPreconditionError(std::string("dlopen: ") + ::dlerror());
  auto fn = reinterpret_cast<RegisterFn>(::dlsym(lib, kRegisterSymbol));
  if (fn == nullptr) {
    return FailedPreconditionError(path + " exports no function '" + kRegisterSymbol +
                                   "' (extern \"C\" void baton_register(baton::Registry&))");
  }
  fn(registry);
  if (registry.OrchestratorNames().empty()) {
    return FailedPreconditionError(path + ": baton_register added no orchestrator");
  }
  return Status::Ok();
}

Json ToJson(const PreflightReport& r) {
  Json out = Json::object();
  out["safe"] = r.Safe();
  out["passes"] = r.passes;
  out["nonDeterministic"] = r.non_deterministic;
  out["fails"] = r.fails;
  out["notRegistered"] = r.not_registered;
  out["unreadable"] = r.unreadable;
  out["truncated"] = r.truncated;
  Json list = Json::array();
  for (const PreflightFinding& f : r.findings) {
    Json j = {{"instanceId", f.instance_id},
              {"name", f.name},
              {"status", std::string(OrchestrationStatusName(f.status))},
              {"outcome", PreflightOutcomeName(f.outcome)},
              {"events", f.events}};
    if (f.divergence) {
      j["divergence"] = {{"eventIndex", f.divergence->event_index},
                         {"eventKind", f.divergence->event_kind},
                         {"eventId", f.divergence->event_id},
                         {"expected", f.divergence->expected},
                         {"actual", f.divergence->actual}};
    }
    if (!f.error.empty()) j["error"] = f.error;
    list.push_back(std::move(j));
  }
  out["instances"] = std::move(list);
  return out;
}

void PrintText(const PreflightReport& r) {
  for (const PreflightFinding& f : r.findings) {
    std::printf("%-18s %s (%s, %s, %lld events)\n", PreflightOutcomeName(f.outcome), f.instance_id.c_str(),
                f.name.c_str(), std::string(OrchestrationStatusName(f.status)).c_str(),
                static_cast<long long>(f.events));
    if (f.divergence) {
      std::printf("    at history event #%lld (%s, eventId %d)\n", static_cast<long long>(f.divergence->event_index),
                  f.divergence->event_kind.c_str(), f.divergence->event_id);
      std::printf("    expected: %s\n", f.divergence->expected.c_str());
      std::printf("    actual:   %s\n", f.divergence->actual.c_str());
    }
    if (!f.error.empty()) std::printf("    %s\n", f.error.c_str());
  }
  std::printf("%zu live instances checked: %d pass, %d non-deterministic, %d fail, %d not registered, %d unreadable%s\n",
              r.findings.size(), r.passes, r.non_deterministic, r.fails, r.not_registered, r.unreadable,
              r.truncated ? " (stopped early)" : "");
  std::printf("%s\n", r.Safe() ? "SAFE to deploy: every checked instance replays on the new build"
                               : "NOT SAFE to deploy: the instances above would fail on the new build");
}

}  // namespace

CLI::App* AddPreflightCommand(CLI::App& app, PreflightCommandOptions* o) {
  auto* cmd = app.add_subcommand(
      "preflight",
      "Replay the live instances of a task hub (read-only) against the orchestrators of a new build "
      "and list those that would hit a non-determinism error (docs/preflight.md)");
  cmd->add_option("--registry-from", o->registry_from,
                  "Shared library of the new build exporting extern \"C\" void baton_register(baton::Registry&)")
      ->required();
  cmd->add_option("--store", o->store, "Task hub (as for serve: postgresql://… or sqlite:PATH; env BATON_STORE)");
  cmd->add_option("--data-dir", o->data_dir, "Data dir of the default SQLite task hub")->capture_default_str();
  cmd->add_option("--prefix", o->prefix, "Only instances whose id starts with this (a hub: 'tenant::')");
  cmd->add_flag("--json", o->json, "Print the report as JSON");
  cmd->add_flag("--strict", o->strict, "Fail also when an instance could not be checked");
  cmd->add_flag("--include-platform", o->include_platform,
                "Check the platform's own instances (baton.*) too");
  return cmd;
}

int RunPreflight(const PreflightCommandOptions& o) {
  Registry registry;
  if (Status s = LoadRegistry(o.registry_from, registry); !s.ok()) {
    std::fprintf(stderr, "baton: preflight: %s\n", s.ToString().c_str());
    return 2;
  }
  Result<std::unique_ptr<StoreReader>> reader = OpenReader(o);
  if (!reader.ok()) {
    std::fprintf(stderr, "baton: preflight: %s\n", reader.status().ToString().c_str());
    return 2;
  }
  PreflightOptions options;
  options.instance_id_prefix = o.prefix;
  options.skip_platform = !o.include_platform;
  Result<PreflightReport> report = Preflight(**reader, registry, options);
  if (!report.ok()) {
    std::fprintf(stderr, "baton: preflight: %s\n", report.status().ToString().c_str());
    return 2;
  }
  if (o.json) {
    std::printf("%s\n", ToJson(*report).dump(2).c_str());
  } else {
    PrintText(*report);
  }
  bool ok = report->Safe() && (!o.strict || (report->not_registered == 0 && report->unreadable == 0));
  return ok ? 0 : 1;
}

}  // namespace baton::app
