// `baton preflight`: deploy preflight (baton/preflight.h) of a new build,
// given as a shared library, against a task hub opened read-only.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace baton::app {

struct PreflightCommandOptions {
  std::string registry_from;  // shared library exporting baton_register
  std::string store;          // as for serve: postgresql://…, sqlite:PATH or "" (data dir)
  std::string data_dir = "baton-data";
  std::string prefix;         // only instances whose id starts with this
  bool json = false;          // print the report as JSON
  bool strict = false;        // not-registered and unreadable instances fail the run too
  bool include_platform = false;
};

// Adds the `preflight` sub-command to `app`; returns it (parsed() says whether it ran).
CLI::App* AddPreflightCommand(CLI::App& app, PreflightCommandOptions* options);

// Runs it. Exit status: 0 the new build replays every live instance, 1 at
// least one instance would fail (or, with strict, could not be checked),
// 2 bad usage or the store/library could not be opened.
int RunPreflight(const PreflightCommandOptions& options);

}  // namespace baton::app
