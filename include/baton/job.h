// Jobs from orchestrations: a batch job (a container image run to completion
// by the Baton server, docs/job-spec.md) started and awaited by an
// orchestration as the sub-orchestration "baton.Job".
//
//   Json result = co_await baton::CallJob(ctx, baton::JobSpec{.name = "render",
//                                                              .image = "127.0.0.1:5000/acme/render@sha256:…"});
//   if (result["status"] == "Completed") …
//
// The job runs for the tenant whose hub the orchestration runs in, under
// that tenant's quota, fair share, sandbox, grants and limits, exactly as a
// job submitted with POST /api/v1/jobs, and it shows in the job API (its
// view's "parent" names the orchestration). Any Durable Task SDK does the
// same with ctx.callSubOrchestrator("baton.Job", spec).
//
// What the awaited task yields: the job's result object, whatever the job's
// end ({"status": "Completed" | "Failed" | "Canceled", "exitCode", "attempts",
// "attemptResults", "error", …}, as GET /api/v1/jobs/{id} shows in "result",
// plus "id", the job's id). It throws TaskFailedError when the spec is refused
// before anything runs, with the error a submit would answer as its type
// ("InvalidArgument", "PermissionDenied", "NeverFits", "NotSupported") and a
// message that names the field. A spec with secretEnv or secretFiles is
// refused: the spec is kept in the orchestration's history.
//
// Terminating the orchestration cancels the job (its containers are stopped
// and removed); suspending it holds the job until it is resumed (the
// server's job monitor applies both, within one --reconcile-interval).
//
// Only in an orchestration run by a Baton server for a tenant's hub: the
// default hub has no "baton.Job" sub-orchestration to offer.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "baton/json.h"
#include "baton/orchestration.h"
#include "baton/task.h"

namespace baton {

inline constexpr char kJobSubOrchestration[] = "baton.Job";

// The common fields of a job spec (docs/job-spec.md); zero and empty values
// are left out, so the server's defaults apply. `extra` holds any other
// field of the spec ("restartPolicy", "labels", "priority", …) and wins over
// the fields above.
struct JobSpec {
  std::string name;   // required: 1-63 of a-z, 0-9, '-'
  std::string image;  // required: a tag or a digest the tenant may run
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  double cpu = 0;            // cores
  int64_t memory_mb = 0;     // MiB
  int timeout_seconds = 0;
  Json extra = Json::object();

  Json ToJson() const {
    Json j = {{"name", name}, {"image", image}};
    if (!command.empty()) j["command"] = command;
    if (!args.empty()) j["args"] = args;
    if (!env.empty()) j["env"] = env;
    if (cpu > 0) j["cpu"] = cpu;
    if (memory_mb > 0) j["memoryMb"] = memory_mb;
    if (timeout_seconds > 0) j["timeoutSeconds"] = timeout_seconds;
    if (extra.is_object()) {
      for (const auto& [k, v] : extra.items()) j[k] = v;
    }
    return j;
  }
};

// Starts the job of `spec` (a JSON job spec) and yields its result object.
inline Task<Json> CallJob(OrchestrationContext& ctx, Json spec) {
  return ctx.CallSubOrchestrator(kJobSubOrchestration, std::move(spec));
}
inline Task<Json> CallJob(OrchestrationContext& ctx, const JobSpec& spec) { return CallJob(ctx, spec.ToJson()); }

}  // namespace baton
