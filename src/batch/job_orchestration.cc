#include "batch/job_orchestration.h"
#include "batch/receipts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <thread>

#include "batch/job_logs.h"
#include "batch/job_token.h"
#include "batch/job_view.h"
#include "batch/loopback_http.h"
#include "batch/resource_sampler.h"
#include "batch/scheduler.h"
#include "util/log.h"
#include "util/metrics.h"

namespace baton::batch {
namespace {

using namespace std::chrono_literals;

constexpr char kResolveImages[] = "baton.ResolveImages";
constexpr char kCreateGroup[] = "baton.CreateGroup";
constexpr char kStartGroup[] = "baton.StartGroup";
constexpr char kStartJobUrl[] = "baton.StartJobUrl";
constexpr char kCollectGroup[] = "baton.CollectGroup";
constexpr char kDeleteGroup[] = "baton.DeleteGroup";
constexpr char kDeleteSecrets[] = "baton.DeleteSecrets";
constexpr char kDependencies[] = "baton.Dependencies";
constexpr int kLogsTail = 20;
// How long a job that reported its completion through the callback has to
// exit on its own before it is stopped.
constexpr int kExitAfterCallbackSeconds = 10;

// Activities fail with a DurableError whose type says what went wrong.
[[noreturn]] void Throw(const Status& s, const std::string& what, bool non_retriable = false) {
  std::string type = s.code() == StatusCode::kNotFound          ? "NotFound"
                     : s.code() == StatusCode::kUnauthenticated ? "RegistryUnauthorized"
                     : s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded
                         ? "RuntimeUnavailable"
                     : s.code() == StatusCode::kInvalidArgument   ? "InvalidArgument"
                     : s.code() == StatusCode::kResourceExhausted ? "Unplaceable"
                                                                  : "RuntimeError";
  throw DurableError(type, what + ": " + s.message(), nullptr,
                     non_retriable || s.code() == StatusCode::kNotFound || s.code() == StatusCode::kInvalidArgument ||
                         s.code() == StatusCode::kUnauthenticated);
}

Json Now(const OrchestrationContext& ctx) { return FormatIso8601(ctx.CurrentUtcDateTime()); }

// The custom status of a job waiting for its dependencies, and the input of
// the activity that looks at them (not built inside the coroutine: g++ 12
// puts a nested initializer list's array in the frame and fails).
Json DependencyStatus(const Json& pending) {
  Json waiting = Json::object();
  waiting["reason"] = "dependencies";
  waiting["jobs"] = pending;
  Json status = Json::object();
  status["phase"] = "dependencies";
  status["waitingOn"] = waiting;
  return status;
}
Json DependencyQuery(const std::string& tenant, const Json& pending) {
  Json q = Json::object();
  q["tenant"] = tenant;
  q["jobs"] = pending;
  return q;
}

// The "reason" a Cancel event gives (the job monitor's, for a job whose
// parent orchestration was terminated); "" for a tenant's cancel.
std::string CancelReason(const Json& event) {
  if (!event.is_object() || !event.value("reason", Json()).is_string()) return "";
  return event["reason"].get<std::string>().substr(0, 200);
}

std::string CompletionName(CompletionMode m) {
  return m == CompletionMode::kCallback ? "callback" : m == CompletionMode::kJobUrl ? "jobUrl" : "exitCode";
}

// The images of a spec, main container first (the JSON form, as in the input).
std::vector<std::string> ImagesOf(const Json& spec) {
  std::vector<std::string> images{spec.value("image", "")};
  for (const Json& s : spec.value("sidecars", Json::array())) images.push_back(s.value("image", ""));
  return images;
}

Json WithImages(Json spec, const Json& images) {
  spec["image"] = images[0];
  for (size_t i = 0; i + 1 < images.size() && i < spec["sidecars"].size(); ++i) spec["sidecars"][i]["image"] = images[i + 1];
  return spec;
}

// One log line per step of a job's life ("job": job, tenant, phase,
// attempt, status, position), written when the step first happens (not on
// replay; again only if the episode that took it has to run again), and the
// count of finished jobs by tenant and status.
void LogJobStep(OrchestrationContext& ctx, const Json& phase) {
  const bool done = phase.value("phase", "") == "done";
  const bool log = util::Log().should_log(spdlog::level::info);
  if (!log && !done) return;
  const Json in = ctx.GetInput();
  const std::string tenant = in.value("tenant", "");
  if (done) {
    util::metrics::Default()
        .GetCounter("baton_jobs_finished_total", "Batch jobs that ended, by tenant and status",
                    {{"tenant", tenant}, {"status", phase.value("status", "")}})
        .Inc();
  }
  if (!log) return;
  Json fields = {{"job", in.value("id", in.value("job", ""))}, {"tenant", tenant}};
  for (const char* key : {"phase", "attempt", "status", "position"}) {
    if (phase.contains(key)) fields[key] = phase[key];
  }
  util::LogEvent(spdlog::level::info, "job", fields);
}

// Sets the custom status: the phase, plus what stays shown throughout (the
// pinned image, the last progress the job reported).
// `step`: a step of the job's life (logged), not a progress report.
void SetPhase(OrchestrationContext& ctx, Json status, const Json& shown, bool step = true) {
  if (step && !ctx.IsReplaying()) LogJobStep(ctx, status);
  for (const auto& [k, v] : shown.items()) status[k] = v;
  ctx.SetCustomStatus(status);
}

// ---- Transient faults ----
//
// A runtime or registry call fails in one of three ways (the activity's
// DurableError says which):
//   - for good (non-retriable: no such image, credentials refused, a bad
//     spec): the job fails at once with that error;
//   - because the runtime or the registry is away ("RuntimeUnavailable":
//     dockerd down, restarting or not answering in time; "RegistryUnavailable":
//     the registry unreachable): the call is tried again after 1 s, 2 s, 4 s, …
//     up to kMaxFaultRetry, for as long as the fault lasts — but no longer than
//     the job's timeoutSeconds from the first failure, and not past a Cancel;
//   - because a cluster runtime has no node to place the group on yet
//     ("Unplaceable": Swarm's "no suitable node (…)"): waited out the same
//     way, but looked at again at least every kMaxPlacementRetry, with reason
//     "placement" and Swarm's word in lastError — the cluster has the
//     capacity in all (the scheduler granted it), just not on one node now;
//   - otherwise (a runtime error of another kind): kOtherAttempts tries.
// The waits are durable timers, so a Baton restart keeps waiting where it
// was. While it waits, the custom status carries
//   "waitingOn": {"reason": "runtime" | "registry" | "placement", "lastError",
//                 "retryAt", "since", "failures"}
// (JobView shows it). Each try is a separate activity; activities are safe to
// run again, so a try whose answer was lost is harmless.
constexpr char kRuntimeUnavailable[] = "RuntimeUnavailable";
constexpr char kRegistryUnavailable[] = "RegistryUnavailable";
constexpr char kUnplaceable[] = "Unplaceable";
constexpr std::chrono::seconds kFirstFaultRetry{1};
constexpr std::chrono::seconds kMaxFaultRetry{30};
// A cluster frees a node when another job ends, which is often: placement is
// looked at again sooner (Swarm starts the task the moment it places it; the
// attempt counts as running from the look that finds it placed).
constexpr std::chrono::seconds kMaxPlacementRetry{5};
constexpr int kOtherAttempts = 3;

// Calls `activity` with `input` through transient faults (above). `status`
// is the custom status to show meanwhile (with `shown`, as SetPhase).
// Yields {"result": …} on success; {"error": "<type>: <message>"} when the
// call failed for good or the wait ran out; {"canceled": true, "error": …}
// when a Cancel arrived while it waited.
Task<Json> CallThroughFaults(OrchestrationContext& ctx, std::string activity, Json input, Json status, Json shown,
                             std::chrono::seconds budget) {
  int failures = 0;
  int other_failures = 0;
  std::optional<TimePoint> since;
  for (;;) {
    std::string error;
    std::string reason;
    bool fatal = false;
    try {
      Json out = Json::object();
      out["result"] = co_await ctx.CallActivity(activity, input);
      if (since) SetPhase(ctx, status, shown);  // no longer waiting
      co_return out;
    } catch (const TaskFailedError& e) {
      const FailureDetails& d = e.details();
      error = d.error_type + ": " + d.error_message;
      if (d.error_type == kRegistryUnavailable) {
        reason = "registry";
      } else if (d.error_type == kRuntimeUnavailable) {
        reason = "runtime";
      } else if (d.error_type == kUnplaceable) {
        reason = "placement";
      } else {
        fatal = d.is_non_retriable || ++other_failures >= kOtherAttempts;
        reason = "runtime";
      }
    }
    if (fatal) co_return Json{{"error", error}};
    ++failures;
    const auto delay = std::min<std::chrono::seconds>(kFirstFaultRetry * (int64_t{1} << std::min(failures - 1, 10)),
                                                      reason == "placement" ? kMaxPlacementRetry : kMaxFaultRetry);
    const TimePoint now = ctx.CurrentUtcDateTime();
    if (!since) since = now;
    if (now + delay - *since > budget) {
      const auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - *since).count();
      co_return Json{{"error", error + " (still failing after " + std::to_string(waited) +
                                   " s of retries; the job's timeoutSeconds bounds the wait)"}};
    }
    const TimePoint retry_at = now + delay;
    Json waiting = status;
    waiting["waitingOn"] = {{"reason", reason},
                            {"lastError", error},
                            {"retryAt", FormatIso8601(retry_at)},
                            {"since", FormatIso8601(*since)},
                            {"failures", failures}};
    SetPhase(ctx, waiting, shown);
    Task<void> pause = ctx.CreateTimer(retry_at);
    Task<Json> cancel = ctx.WaitForExternalEvent(kCancelEvent);
    if (co_await WhenAny(pause, cancel) == 1) co_return Json{{"canceled", true}, {"error", error}};
  }
}

// ---- Array jobs ----
//
// The parent of an array job holds no quota and runs no container: after its
// dependencies and its images (pinned once for all), it starts one child job
// orchestration per index as a sub-orchestration, "job.<tenant>.<id>:<i>"
// (job id "<id>:<i>"), with the pinned spec, BATON_ARRAY_INDEX = i, its own
// attempts, restart policy, logs and quota request, the parent's secrets
// (read from the parent's vault entry, deleted by the parent at its end) and,
// for each N_TO_N dependency d, a dependency on "d:<i>". A Cancel of the
// parent is sent on to every child. The parent's result counts its
// children's statuses.

// The input of child `i` of the array job whose input is `in`.
Json ArrayChildInput(const Json& in, const Json& pinned_spec, const JobSpec& spec, int i) {
  const std::string index = std::to_string(i);
  Json child_spec = pinned_spec;
  child_spec.erase("array");
  child_spec.erase("dependsOn");
  child_spec.erase("runOnFailure");
  Json deps = Json::array();
  for (const JobDependency& d : spec.depends_on) {
    if (d.n_to_n) deps.push_back(Json{{"jobId", d.job_id + ":" + index}});
  }
  if (!deps.empty()) {
    child_spec["dependsOn"] = deps;
    if (spec.run_on_failure) child_spec["runOnFailure"] = true;
  }
  Json child = Json::object();
  child["job"] = in.value("job", "") + ":" + index;
  child["id"] = in.value("id", "") + ":" + index;
  child["tenant"] = in.value("tenant", "");
  child["spec"] = child_spec;
  child["arrayIndex"] = i;
  child["secretsOf"] = in.value("job", "");
  return child;
}

Json ArrayResult(const std::vector<Json>& results, const std::string& id, bool canceled, const Json& durations) {
  Json counts = Json::object();
  Json children = Json::array();
  std::string failed;  // the first few indexes that did not complete
  int not_completed = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const Json& r = results[i];
    const std::string status = r.is_object() ? r.value("status", "Failed") : "Failed";
    counts[status] = counts.value(status, 0) + 1;
    Json c = {{"index", i}, {"id", id + ":" + std::to_string(i)}, {"status", status}};
    if (r.is_object()) {
      c["attempts"] = r.value("attempts", 0);
      c["reason"] = r.value("reason", "");
      c["summary"] = r.value("summary", "");
    }
    if (status != "Completed" && ++not_completed <= 3) {
      failed += (failed.empty() ? "" : ", ") + std::to_string(i) + " (" + c.value("summary", status) + ")";
    }
    children.push_back(std::move(c));
  }
  const int n = static_cast<int>(results.size());
  const std::string status = canceled ? "Canceled" : not_completed == 0 ? "Completed" : "Failed";
  Json result = {{"status", status},
                 {"array", {{"size", n}, {"counts", counts}}},
                 {"children", children},
                 {"attempts", 0},
                 {"exitCode", nullptr},
                 {"durations", durations}};
  if (status == "Completed") {
    result["reason"] = "Completed";
    result["summary"] = "all " + std::to_string(n) + " indexes completed";
  } else if (status == "Canceled") {
    result["reason"] = "Canceled";
    result["summary"] = "canceled with its " + std::to_string(n) + " indexes";
  } else {
    result["reason"] = "ArrayChildFailed";
    result["summary"] = std::to_string(not_completed) + " of " + std::to_string(n) + " indexes did not complete: " +
                        failed + (not_completed > 3 ? ", …" : "");
    result["error"] = "ArrayChildFailed: " + result["summary"].get<std::string>();
  }
  return result;
}

Task<Json> RunArray(OrchestrationContext& ctx, const Json& in, const JobSpec& spec, const Json& pinned_spec,
                    Json durations) {
  const std::string job = in.value("job", "");
  const int n = spec.array_size;
  std::vector<std::string> ids;
  std::vector<Task<Json>> children;
  for (int i = 0; i < n; ++i) {
    const Json child = ArrayChildInput(in, pinned_spec, spec, i);
    ids.push_back(child["job"].get<std::string>());
    children.push_back(ctx.CallSubOrchestrator(kJobOrchestrator, child, SubOrchestratorOptions(ids.back())));
  }
  Json running = Json::object();
  running["phase"] = "array";
  running["size"] = n;
  ctx.SetCustomStatus(running);
  Task<std::vector<Json>> all = WhenAll(std::move(children));
  Task<Json> cancel = ctx.WaitForExternalEvent(kCancelEvent);
  const size_t first = co_await WhenAny(all, cancel);
  const bool canceled = first == 1;
  if (canceled) {
    const Json reason = {{"reason", "its array job was canceled"}};
    for (const std::string& child : ids) ctx.SendEvent(child, kCancelEvent, reason);
  }
  const std::vector<Json> results = co_await all;
  try {
    const Json forget = {{"job", job}};
    co_await ctx.CallActivity(kDeleteSecrets, forget, RetryPolicy(3, std::chrono::seconds(2)));
  } catch (const TaskFailedError&) {
    // The JobMonitor's sweep deletes them later.
  }
  durations["finished"] = Now(ctx);
  Json result = ArrayResult(results, in.value("id", ""), canceled, durations);
  Json done = Json::object();
  done["phase"] = "done";
  done["status"] = result["status"];
  ctx.SetCustomStatus(done);
  co_return result;
}

Task<Json> RunJob(OrchestrationContext& ctx) {
  Json in = ctx.GetInput();
  const std::string job = in.value("job", "");
  const std::string tenant = in.value("tenant", "");
  auto parsed = ParseJobSpec(in["spec"]);
  if (!parsed.ok()) throw DurableError("InvalidJobSpec", parsed.status().message());
  const JobSpec spec = std::move(*parsed);
  const EntityId scheduler(kSchedulerEntity, kSchedulerKey);
  Json durations = Json::object();
  durations["submitted"] = Now(ctx);
  Json shown = Json::object();  // {"image", "progress"}
  // How long one runtime or registry call may wait out a fault.
  const std::chrono::seconds fault_budget(spec.timeout_seconds);

  std::string fatal;
  std::string fatal_reason;  // WhyEnded's reason for `fatal`
  std::string cancel_reason;
  bool canceled = false;
  // Dependencies: wait until every job this one depends on ended (polled,
  // 1 s, 2 s, … up to 15 s apart, on durable timers); one that did not
  // complete fails this job at once, unless runOnFailure.
  // (N_TO_N ones are waited for by each child of an array job, RunArray.)
  Json pending = Json::array();
  for (const JobDependency& d : spec.depends_on) {
    if (!d.n_to_n) pending.push_back(d.job_id);
  }
  if (!pending.empty()) {
    for (int polls = 0;; ++polls) {
      ctx.SetCustomStatus(DependencyStatus(pending));
      Json seen;
      const Json asked = DependencyQuery(tenant, pending);
      try {
        seen = co_await ctx.CallActivity(kDependencies, asked, RetryPolicy(5, std::chrono::seconds(1)));
      } catch (const TaskFailedError& e) {
        fatal = "DependencyUnknown: " + e.details().error_message;
        break;
      }
      for (const Json& ended : seen["ended"]) {
        if (ended.value("status", "") != "Completed" && !spec.run_on_failure) {
          fatal_reason = "DependencyFailed";
          fatal = "DependencyFailed: job " + ended.value("id", "") + " ended " + ended.value("status", "") +
                  (ended.value("summary", "").empty() ? "" : " (" + ended.value("summary", "") + ")");
        }
      }
      pending = seen["pending"];
      if (!fatal.empty() || pending.empty()) break;
      Task<void> pause = ctx.CreateTimer(std::min<std::chrono::seconds>(
          std::chrono::seconds(int64_t{1} << std::min(polls, 4)), std::chrono::seconds(15)));
      Task<Json> cancel = ctx.WaitForExternalEvent(kCancelEvent);
      if (co_await WhenAny(pause, cancel) == 1) {
        canceled = true;
        break;
      }
    }
    if (fatal.empty() && !canceled) durations["dependenciesMet"] = Now(ctx);
  }

  // 0. Images, pinned to digests for every attempt.
  const Json pulling = {{"phase", "pulling"}, {"image", in["spec"]["image"]}};
  Json pinned_spec = in["spec"];
  if (fatal.empty() && !canceled) {
    if (!ctx.IsReplaying()) LogJobStep(ctx, pulling);
    ctx.SetCustomStatus(pulling);
    const Json images_in = {{"images", ImagesOf(in["spec"])}};
    const Json resolved = co_await CallThroughFaults(ctx, kResolveImages, images_in, pulling, shown, fault_budget);
    if (resolved.contains("result")) {
      pinned_spec = WithImages(in["spec"], resolved["result"]["images"]);
      shown["image"] = pinned_spec["image"];
      durations["imageResolved"] = Now(ctx);
    } else if (resolved.value("canceled", false)) {
      canceled = true;
    } else {
      fatal = resolved.value("error", "");
      fatal_reason = "ImagePullFailed";
    }
  }

  // An array job: its children run, each a job of its own (RunArray).
  if (spec.array_size > 0 && fatal.empty() && !canceled) {
    Json out = co_await RunArray(ctx, in, spec, pinned_spec, durations);
    co_return out;
  }

  // 1. Capacity.
  bool requested = false;  // the scheduler knows the job: it must hear of its end
  if (fatal.empty() && !canceled) {
    requested = true;
    Json request = {{"job", job},
                    {"tenant", tenant},
                    {"instance", ctx.InstanceId()},
                    {"cpu", spec.TotalCpu()},
                    {"memoryMb", spec.TotalMemoryBytes() >> 20},
                    {"priority", spec.priority}};
    Json answer = co_await ctx.CallEntity(scheduler, "request", request);
    if (!answer.value("granted", false)) {
      SetPhase(ctx, Json{{"phase", "queued"}, {"position", answer["position"]}}, shown);
      Task<Json> granted = ctx.WaitForExternalEvent(kQuotaGrantedEvent);
      Task<Json> cancel = ctx.WaitForExternalEvent(kCancelEvent);
      size_t first = co_await WhenAny(granted, cancel);
      // Both may have taken a buffered event at once; WhenAny reports one,
      // and a Cancel is never to be dropped.
      if (cancel.IsReady()) first = 1;
      canceled = first == 1;
      if (canceled) {
        const Json event = co_await cancel;
        cancel_reason = CancelReason(event);
      }
    }
    durations["granted"] = Now(ctx);
    // Shown from now on: the admission ETA of the jobs queued behind this
    // one reads how long it has held its capacity (job_eta.h).
    if (!canceled) shown["grantedAt"] = durations["granted"];
  }

  // 2.–3. Attempts.
  Json last = Json::object();
  std::string status = canceled ? "Canceled" : "Failed";
  int attempt = 0;
  Json attempts = Json::array();
  // Attempts that count against the restart policy: a retry with more
  // memory after an OOM kill (onOomKilled) does not.
  int policy_attempts = 0;
  // The main container's memory: grows with each OOM retry.
  int64_t memory_mb = spec.containers[0].memory_bytes >> 20;
  int resizes = 0;
  Json resized;  // why the next attempt has more memory (in its create input, for the timeline)
  while (fatal.empty() && !canceled && policy_attempts < spec.max_attempts) {
    ++attempt;
    ++policy_attempts;
    const std::string group = JobGroupName(job, attempt);
    const Json starting = {{"phase", "starting"}, {"attempt", attempt}};
    SetPhase(ctx, starting, shown);
    Json create = {{"job", job},     {"id", in.value("id", "")},      {"tenant", tenant}, {"attempt", attempt},
                   {"group", group}, {"instance", ctx.InstanceId()}, {"spec", pinned_spec}};
    if (resizes > 0) {
      create["spec"]["memoryMb"] = memory_mb;
      create["resized"] = resized;
    }
    if (in.contains("arrayIndex")) create["arrayIndex"] = in["arrayIndex"];
    if (in.contains("secretsOf")) create["secretsOf"] = in["secretsOf"];
    Json call = co_await CallThroughFaults(ctx, kCreateGroup, create, starting, shown, fault_budget);
    if (call.contains("result")) {
      Json start = {{"group", group}};
      call = co_await CallThroughFaults(ctx, kStartGroup, start, starting, shown, fault_budget);
    }
    if (call.contains("result") && spec.completion == CompletionMode::kJobUrl) {
      Json url = {{"group", group}, {"port", spec.job_port}, {"host", spec.network == runtime::NetworkMode::kHost}};
      call = co_await CallThroughFaults(ctx, kStartJobUrl, url, starting, shown, fault_budget);
    }
    const bool created = call.contains("result");
    std::string create_error;
    if (!created) {
      canceled = call.value("canceled", false);
      create_error = call.value("error", "");
      // What the failed start left behind goes now if the runtime answers;
      // otherwise the reconciler removes it (no live attempt owns it then).
      try {
        Json delete_in = {{"group", group}};
        co_await ctx.CallActivity(kDeleteGroup, delete_in);
      } catch (const TaskFailedError&) {
      }
    }
    Json outcome = Json::object();
    bool stopped = false;
    Json reported = Json::object();  // the event that ended the attempt
    if (created) {
      SetPhase(ctx, Json{{"phase", "running"}, {"attempt", attempt}, {"startedAt", Now(ctx)}}, shown);
      Task<void> deadline = ctx.CreateTimer(std::chrono::seconds(spec.timeout_seconds));
      size_t first = 0;
      for (;;) {
        Task<Json> completed = ctx.WaitForExternalEvent(kCompletedEvent);
        Task<Json> failed = ctx.WaitForExternalEvent(kFailedEvent);
        Task<Json> lost = ctx.WaitForExternalEvent(kContainerLostEvent);
        Task<Json> reports = ctx.WaitForExternalEvent(kProgressEvent);
        Task<Json> cancel = ctx.WaitForExternalEvent(kCancelEvent);
        first = co_await WhenAny(completed, failed, lost, reports, deadline, cancel);
        // Several waits may have taken buffered events at once (a late
        // duplicate "Completed" of an earlier attempt and a "Cancel" that
        // arrived while no wait was pending): WhenAny names the first ready,
        // but a Cancel must never be dropped with the others.
        if (cancel.IsReady()) first = 5;
        if (first == 5) {
          const Json event = co_await cancel;
          cancel_reason = CancelReason(event);
        }
        if (first >= 4) break;  // the deadline or a cancel
        Json event = Json::object();  // g++ 12: no ?: inside co_await
        if (first == 0) {
          event = co_await completed;
        } else if (first == 1) {
          event = co_await failed;
        } else if (first == 2) {
          event = co_await lost;
        } else {
          event = co_await reports;
        }
        if (!event.is_object() || event.value("attempt", 0) != attempt) continue;  // about another attempt
        if (first == 3) {
          shown["progress"] = event.value("progress", Json());
          SetPhase(ctx, Json{{"phase", "running"}, {"attempt", attempt}}, shown, /*step=*/false);
          continue;
        }
        // A fast job's progress reports and its end can all be waiting when
        // this loop first runs (they came while the attempt was starting):
        // the end wins the WhenAny, so the reports still buffered are taken
        // here, the latest kept. Waits leave no trace in the history, so
        // older histories replay unchanged.
        for (int drained = 0; drained < 10000 && reports.IsReady(); ++drained) {
          const Json report = co_await reports;
          if (report.is_object() && report.value("attempt", 0) == attempt) {
            shown["progress"] = report.value("progress", Json());
          }
          reports = ctx.WaitForExternalEvent(kProgressEvent);
        }
        reported = event;
        break;
      }
      stopped = first >= 4;
      canceled = first == 5;
      // The job's own verdict (callback or job URL) rather than its exit.
      const bool by_callback = reported.value("source", "") != "docker" && first < 2;
      // A job that called back is given time to exit on its own; a job-URL
      // server is expected to run until stopped.
      const bool let_exit = by_callback && reported.value("source", "") == "callback";
      Json finish_in = {{"job", job},
                        {"attempt", attempt},
                        {"group", group},
                        {"stopFor", first == 4 ? "timeout" : first == 5 ? "cancel" : by_callback ? "verdict" : ""},
                        {"stop", stopped || by_callback},
                        {"waitExitSeconds", let_exit ? kExitAfterCallbackSeconds : 0},
                        // For the attempt's run receipt (receipts.h); inputs are not
                        // compared on replay, so older histories replay unchanged.
                        {"id", in.value("id", "")},
                        {"tenant", tenant},
                        {"images", ImagesOf(pinned_spec)},
                        {"specHash", SpecHash(pinned_spec)}};
      // Collect (stop, exit code, logs), then delete: each is safe to run
      // again after a crash, which one activity doing both was not.
      const Json finishing = {{"phase", "finishing"}, {"attempt", attempt}};
      SetPhase(ctx, finishing, shown);
      const Json collected = co_await CallThroughFaults(ctx, kCollectGroup, finish_in, finishing, shown, fault_budget);
      if (collected.contains("result")) {
        outcome = collected["result"];
        // The signed receipt stays in the collect activity's recorded result
        // (ReceiptsInHistory reads it there), not in the job's result.
        outcome.erase("receipt");
        Json delete_in = {{"group", group}};
        const Json deleted = co_await CallThroughFaults(ctx, kDeleteGroup, delete_in, finishing, shown, fault_budget);
        // Not deleted (the runtime stayed away): the reconciler removes the group later.
        if (deleted.value("canceled", false)) canceled = true;
      } else {
        // Never collected (the runtime stayed away, or a Cancel ended the
        // wait): the attempt's outcome is unknown; the reconciler stops and
        // removes its group once the runtime is back.
        outcome = {{"error", collected.value("error", "")}, {"logsTail", Json::array()}};
        if (collected.value("canceled", false)) canceled = true;
      }
      if (first == 4) outcome["timedOut"] = true;
      if (first == 2) outcome["error"] = "ContainerLost: the attempt's container vanished";
      if (first < 2) {
        outcome["source"] = reported.value("source", "callback");
        if (by_callback) {
          outcome["reported"] = first == 0 ? "Completed" : "Failed";
          if (reported.contains("exitCode")) {  // the job's own word over how its container ended
            outcome["containerExitCode"] = outcome.value("exitCode", Json());
            outcome["exitCode"] = reported["exitCode"];
          }
          if (reported.contains("message")) outcome["message"] = reported["message"];
        }
      }
    } else {
      outcome["error"] = create_error;
    }
    outcome["attempt"] = attempt;
    bool success = false;
    if (created && !stopped && !outcome.value("oomKilled", false) && outcome.value("reported", "") != "Failed") {
      success = outcome.value("reported", "") == "Completed" || outcome.value("exitCode", -1) == 0;
      if (outcome.contains("error")) success = false;
    }
    status = canceled ? "Canceled" : success ? "Completed" : "Failed";
    if (outcome.value("timedOut", false)) outcome["timeoutSeconds"] = spec.timeout_seconds;
    if (!created && create_error.rfind("PermissionDenied", 0) == 0) outcome["reason"] = "PermissionDenied";
    {
      const EndReason why = WhyEnded(outcome, status);
      outcome["reason"] = why.reason;
      outcome["summary"] = why.summary;
    }
    if (spec.on_oom_killed) outcome["memoryMb"] = memory_mb;
    // An OOM kill under onOomKilled: again at once with more memory, once the
    // scheduler granted the larger size.
    if (spec.on_oom_killed && created && !stopped && !canceled && outcome.value("oomKilled", false)) {
      const int64_t max_mb = spec.on_oom_killed->max_memory_bytes >> 20;
      const int64_t next_mb = std::min<int64_t>(
          max_mb, static_cast<int64_t>(std::ceil(static_cast<double>(memory_mb) * spec.on_oom_killed->increase_memory)));
      std::string refused;
      if (next_mb <= memory_mb) {
        refused = "already at onOomKilled.maxMemoryMb (" + std::to_string(max_mb) + " MiB)";
      } else if (resizes >= OomPolicy::kMaxResizes) {
        refused = "already retried " + std::to_string(resizes) + " times with more memory";
      }
      bool resize_granted = false;
      if (refused.empty()) {
        const int64_t total_mb = (spec.TotalMemoryBytes() >> 20) - memory_mb + next_mb;
        Json request = {{"job", job},           {"tenant", tenant},         {"instance", ctx.InstanceId()},
                        {"cpu", spec.TotalCpu()}, {"memoryMb", total_mb}, {"priority", spec.priority}};
        Json answer = co_await ctx.CallEntity(scheduler, "resize", request);
        if (answer.value("neverFits", false)) {
          refused = "a retry with " + std::to_string(next_mb) + " MiB could never run: it " + answer.value("reason", "");
        } else if (!answer.value("granted", false)) {
          SetPhase(ctx, Json{{"phase", "queued"}, {"position", answer["position"]}, {"attempt", attempt}}, shown);
          Task<Json> granted = ctx.WaitForExternalEvent(kQuotaGrantedEvent);
          Task<Json> cancel = ctx.WaitForExternalEvent(kCancelEvent);
          size_t first = co_await WhenAny(granted, cancel);
          if (cancel.IsReady()) first = 1;
          if (first == 1) {
            canceled = true;
            const Json event = co_await cancel;
            cancel_reason = CancelReason(event);
          } else {
            resize_granted = true;
          }
        } else {
          resize_granted = true;
        }
      }
      if (!refused.empty()) {
        outcome["oomRetry"] = {{"refused", refused}};
        outcome["summary"] = outcome.value("summary", "") + "; no retry with more memory: " + refused;
      }
      if (resize_granted) {
        outcome["oomRetry"] = {{"memoryMb", next_mb}};
        resized = {{"fromMemoryMb", memory_mb},
                   {"memoryMb", next_mb},
                   {"reason", "OOMKilled"},
                   {"afterAttempt", attempt},
                   {"factor", spec.on_oom_killed->increase_memory}};
        memory_mb = next_mb;
        ++resizes;
        --policy_attempts;
        attempts.push_back(outcome);
        last = outcome;
        continue;
      }
      if (canceled) status = "Canceled";
    }
    attempts.push_back(outcome);
    last = outcome;
    const bool again = !canceled && policy_attempts < spec.max_attempts &&
                       (spec.restart == RestartPolicy::kAlways || (spec.restart == RestartPolicy::kOnFailure && !success));
    if (!again) break;
    int64_t backoff = std::min<int64_t>(spec.backoff_seconds << std::min(attempt - 1, 20), 3600);
    SetPhase(ctx,
             Json{{"phase", "backoff"},
                  {"attempt", attempt},
                  {"retryAt", FormatIso8601(ctx.CurrentUtcDateTime() + std::chrono::seconds(backoff))}},
             shown);
    Task<void> pause = ctx.CreateTimer(std::chrono::seconds(backoff));
    Task<Json> cancel = ctx.WaitForExternalEvent(kCancelEvent);
    if (co_await WhenAny(pause, cancel) == 1) {
      canceled = true;
      status = "Canceled";
      const Json event = co_await cancel;
      cancel_reason = CancelReason(event);
    }
  }

  // 4. Release, forget the secrets, and report.
  if (requested) {
    Json release = {{"job", job}};
    ctx.SignalEntity(scheduler, "release", release);
  }
  // A child of an array job reads its parent's secrets: the parent deletes them.
  if (!in.contains("secretsOf")) {
    try {
      Json forget = {{"job", job}};
      RetryPolicy retry(3, std::chrono::seconds(2));
      co_await ctx.CallActivity(kDeleteSecrets, forget, retry);
    } catch (const TaskFailedError&) {
      // Not the job's failure: the JobMonitor's sweep deletes them later.
    }
  }
  durations["finished"] = Now(ctx);
  Json result = {{"status", status},
                 {"exitCode", last.value("exitCode", Json())},
                 {"oomKilled", last.value("oomKilled", false)},
                 {"attempts", attempt},
                 {"attemptResults", attempts},
                 {"durations", durations},
                 {"progress", shown.value("progress", Json())},
                 {"logsTail", last.value("logsTail", Json::array())}};
  if (spec.on_oom_killed) result["memoryMb"] = memory_mb;
  if (!fatal.empty()) result["error"] = fatal;
  else if (last.contains("error")) result["error"] = last["error"];
  // Why it ended, as the last attempt's end says, or the step before any
  // attempt that failed (job_view.h WhyEnded).
  {
    Json o = attempt > 0 && fatal.empty() ? last : result;
    if (!fatal_reason.empty()) o["reason"] = fatal_reason;
    if (canceled) {
      o["canceled"] = true;
      if (!cancel_reason.empty()) o["canceledBecause"] = cancel_reason;
    }
    const EndReason why = WhyEnded(o, status);
    result["reason"] = why.reason;
    result["summary"] = why.summary;
    if (last.contains("oomRetry") && last["oomRetry"].contains("refused") && why.reason == "OOMKilled") {
      result["summary"] = why.summary + "; no retry with more memory: " + last["oomRetry"].value("refused", "");
    }
  }
  SetPhase(ctx, Json{{"phase", "done"}, {"status", status}, {"attempt", attempt}}, shown);
  co_return result;
}

// The job orchestration: RunJob, and for a job started from a tenant's
// orchestration, the news of its end sent to the bridge that waits for it
// (a failure of the job orchestration itself too, as a Failed result).
Task<Json> JobOrchestration(OrchestrationContext& ctx) {
  const Json in = ctx.GetInput();
  const std::string bridge =
      in.contains("parent") && in["parent"].is_object() ? in["parent"].value("bridge", "") : "";
  if (bridge.empty()) co_return co_await RunJob(ctx);
  Json result;
  std::optional<FailureDetails> failure;
  try {
    result = co_await RunJob(ctx);
  } catch (const DurableError& e) {  // TaskFailedError too
    failure = e.details();
  }
  if (failure) {
    result = {{"status", "Failed"}, {"error", failure->error_type + ": " + failure->error_message}};
  }
  result["id"] = in.value("id", "");
  ctx.SendEvent(bridge, kJobEndedEvent, result);
  if (failure) throw DurableError(*failure);
  co_return result;
}

// A child job's id, as NewJobId makes them (creation time in ms, then 5 hex
// digits), from the orchestration's clock and a GUID: the same on replay.
std::string ChildJobId(TimePoint now, std::string guid) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  guid.erase(std::remove(guid.begin(), guid.end(), '-'), guid.end());
  char buf[32];
  std::snprintf(buf, sizeof buf, "%011llx", static_cast<unsigned long long>(ms) & 0xfffffffffffULL);
  std::string id = std::string(buf) + (guid.size() >= 5 ? guid.substr(guid.size() - 5) : "00000");
  for (char& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return id;
}
Json StartJobInput(const std::string& id, const Json& spec) {
  Json in = Json::object();
  in["id"] = id;
  in["spec"] = spec;
  return in;
}
Json BridgeStatus(const std::string& phase, const Json& detail) {
  Json status = Json::object();
  status["phase"] = phase;
  status[phase == "job" ? "job" : "waitingOn"] = detail;
  return status;
}

// The tenant's "baton.Job" (job_orchestration.h): starts the job with every
// check of a submit, then waits for its end.
Task<Json> JobFromOrchestration(OrchestrationContext& ctx) {
  const Json spec = ctx.GetInput();
  std::string id;
  for (int tries = 0;; ++tries) {
    id = ChildJobId(ctx.CurrentUtcDateTime(), ctx.NewGuid());
    const Json start = StartJobInput(id, spec);
    Json answer;
    std::optional<FailureDetails> refused;
    try {
      answer = co_await ctx.CallActivity(kStartJobActivity, start, RetryPolicy(3, std::chrono::seconds(1)));
    } catch (const TaskFailedError& e) {
      refused = e.details();
    }
    if (refused) throw DurableError(refused->error_type, refused->error_message);
    if (answer.value("started", false)) break;
    if (tries >= 10000) throw DurableError("Unavailable", "the job was never admitted: " + answer.dump());
    // Not now (the tenant's cap on unfinished jobs, the capacity not read
    // yet, an id taken): try again later, with a new id.
    ctx.SetCustomStatus(BridgeStatus("admission", answer));
    co_await ctx.CreateTimer(std::chrono::seconds(std::clamp(answer.value("retryAfterSeconds", 5), 1, 60)));
  }
  ctx.SetCustomStatus(BridgeStatus("job", id));
  Json ended = co_await ctx.WaitForExternalEvent(kJobEndedEvent);
  co_return ended;
}

// The credentials for `image`'s registry (its first path segment when that
// looks like a host: has a '.' or a ':' or is "localhost").
runtime::RegistryCredentials CredentialsFor(const JobServices& s, const std::string& image) {
  size_t slash = image.find('/');
  std::string host = slash == std::string::npos ? "" : image.substr(0, slash);
  bool is_host = host.find_first_of(".:") != std::string::npos || host == "localhost";
  if (is_host) {
    for (const auto& c : s.registries) {
      if (c.server == host) return c;
    }
    return runtime::RegistryCredentials{host, "", ""};
  }
  return runtime::RegistryCredentials{};
}

struct ResolvedImage {
  std::string digest;  // "repo@sha256:…"
  std::string source;  // "node": found on this node, not pulled; "registry": pulled
};

// Pins `ref` to a digest (docs/job-spec.md#images):
//   - a digest reference the node already holds starts without a pull;
//   - anything else is pulled (a tag is asked of the registry, which says
//     where it points now);
//   - when the registry cannot be reached, a tag the node already holds with
//     a digest for its repository is used as the node has it.
// Throws RuntimeUnavailable (dockerd away), RegistryUnavailable (the
// registry away; dockerd answers) or the error that will not change.
ResolvedImage ResolveImage(runtime::ContainerRuntime& rt, const JobServices& s, const std::string& ref) {
  const bool pinned = ref.find('@') != std::string::npos;
  if (pinned) {
    auto local = rt.LocalImageDigest(ref);
    if (local.ok()) return {*local, "node"};
    if (local.status().code() != StatusCode::kNotFound) Throw(local.status(), "looking for '" + ref + "' on the node");
  }
  auto pulled = rt.PullImage(ref, CredentialsFor(s, ref), s.pull_timeout);
  if (pulled.ok()) return {*pulled, "registry"};
  const Status& error = pulled.status();
  if (error.code() == StatusCode::kUnavailable || error.code() == StatusCode::kDeadlineExceeded) {
    // Who is away: dockerd itself, or the registry dockerd pulls from?
    if (!rt.Ping(std::chrono::seconds(5)).ok()) Throw(error, "pulling '" + ref + "'");
    if (!pinned) {
      auto local = rt.LocalImageDigest(ref);
      if (local.ok()) return {*local, "node"};
      if (local.status().code() != StatusCode::kNotFound) {
        Throw(local.status(), "looking for '" + ref + "' on the node");
      }
    }
    throw DurableError(kRegistryUnavailable, "pulling '" + ref + "': " + error.message());
  }
  Throw(error, "pulling '" + ref + "'");
}

// The attempt's resource figures in the collect activity's result:
// "peakMemoryBytes", "cpuSeconds" (ms precision), "avgCores" (CPU time over
// the run's wall time), "memoryLimitBytes", "cpuLimit"; null figures when
// nothing was measured.
void AddUsage(Json& out, const std::optional<AttemptUsage>& usage, const runtime::ContainerState& main) {
  out["memoryLimitBytes"] = main.memory_bytes;
  out["cpuLimit"] = main.cpus;
  out["peakMemoryBytes"] = usage ? Json(usage->peak_memory_bytes) : Json();
  out["cpuSeconds"] = usage && usage->samples > 0 ? Json(std::round(usage->cpu_seconds * 1000) / 1000) : Json();
  out["avgCores"] = Json();
  if (usage && usage->samples > 0 && main.started_at && main.finished_at && *main.finished_at > *main.started_at) {
    const double wall = std::chrono::duration<double>(*main.finished_at - *main.started_at).count();
    out["avgCores"] = std::round(usage->cpu_seconds / wall * 1000) / 1000;
  }
}

// The signed receipt of the attempt the collect activity `in` ended.
Json SignedReceipt(const util::ReceiptSigner& signer, const JobServices& s, const Json& in,
                   const runtime::ContainerState& main, const std::vector<runtime::LogLine>* logs,
                   const std::optional<AttemptUsage>& usage) {
  AttemptFacts f;
  f.job_id = in.value("id", "").empty() ? in.value("job", "") : in.value("id", "");
  f.tenant = in.value("tenant", "");
  f.attempt = in.value("attempt", 0);
  f.images = in.value("images", Json::array());
  f.spec_hash = in.value("specHash", "");
  f.node = main.node.empty() ? s.node_id : main.node;
  f.deployment = s.deployment_id;
  f.started_at = main.started_at;
  f.finished_at = main.finished_at;
  f.exit_code = main.exit_code;
  f.oom_killed = main.oom_killed;
  f.cpu_limit = main.cpus;
  f.memory_limit_bytes = main.memory_bytes;
  if (usage) {
    f.peak_memory_bytes = usage->peak_memory_bytes;
    if (usage->samples > 0) f.cpu_time_ms = static_cast<int64_t>(usage->cpu_seconds * 1000 + 0.5);
  }
  if (logs != nullptr) f.log_digest = LogDigest(*logs);
  f.issued_at = std::chrono::system_clock::now();
  auto signed_doc = signer.Sign(ReceiptStatement(f));
  if (!signed_doc.ok()) Throw(signed_doc.status(), "signing the run receipt");
  return *signed_doc;
}

}  // namespace

// The latency of creating or starting a job's container group, by outcome.
static util::metrics::Histogram& ContainerMetrics(const char* op, bool ok) {
  return util::metrics::Default().GetHistogram(
      "baton_container_operation_seconds", "Creating and starting jobs' container groups through the runtime, by outcome",
      {{"op", op}, {"result", ok ? "ok" : "error"}});
}

std::string JobGroupName(const std::string& job, int attempt) {
  std::string name;
  for (char c : job) name.push_back(std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '-');
  return name + "-a" + std::to_string(attempt);
}

Json JobInput(const std::string& job, const std::string& tenant, const JobSpec& spec, const std::string& id) {
  Json in = {{"job", job}, {"tenant", tenant}, {"spec", RedactedJson(spec)}};
  if (!id.empty()) in["id"] = id;
  return in;
}

Status RegisterJobFunctions(Registry& registry, runtime::ContainerRuntime& rt, SecretVault& vault) {
  JobServices services;
  services.runtime = &rt;
  services.vault = &vault;
  return RegisterJobFunctions(registry, services);
}

Status RegisterTenantJobEntryPoint(Registry& registry, ActivityFn start_job) {
  BATON_RETURN_IF_ERROR(registry.AddTenantOrchestrator(kJobOrchestrator, JobFromOrchestration));
  return registry.AddTenantActivity(kStartJobActivity, std::move(start_job));
}

Status RegisterJobFunctions(Registry& registry, const JobServices& services) {
  if (services.runtime == nullptr || services.vault == nullptr) {
    return InvalidArgumentError("job functions need a container runtime and a secret vault");
  }
  const JobServices s = services;
  runtime::ContainerRuntime& rt = *s.runtime;
  BATON_RETURN_IF_ERROR(registry.AddOrchestrator(kJobOrchestrator, JobOrchestration));
  BATON_RETURN_IF_ERROR(registry.AddActivity(kResolveImages, [s, &rt](ActivityContext& ctx) -> Json {
    const Json in = ctx.GetInput();  // a range-for over a temporary's member would dangle
    Json out = Json::array();
    Json sources = Json::array();
    for (const Json& image : in["images"]) {
      ResolvedImage r = ResolveImage(rt, s, image.get<std::string>());
      out.push_back(r.digest);
      sources.push_back(r.source);
    }
    return Json{{"images", out}, {"sources", sources}};
  }));
  BATON_RETURN_IF_ERROR(registry.AddActivity(kCreateGroup, [s, &rt](ActivityContext& ctx) -> Json {
    Json in = ctx.GetInput();
    auto spec = ParseJobSpec(in["spec"]);
    if (!spec.ok()) throw DurableError("InvalidJobSpec", spec.status().message(), nullptr, true);
    if (s.grants_of) {
      // The grants of now, not of the submit: an admin may have taken one back.
      auto grants = s.grants_of(in["tenant"]);
      if (!grants.ok() && grants.status().code() == StatusCode::kPermissionDenied) {
        throw DurableError("PermissionDenied", grants.status().message(), nullptr, true);
      }
      if (!grants.ok()) Throw(grants.status(), "reading the tenant's grants");
      Status allowed = CheckJobPolicy(*spec, in["tenant"], s.platform_registry, *grants);
      if (!allowed.ok()) throw DurableError("PermissionDenied", allowed.message(), nullptr, true);
    }
    Status filled = s.vault->Fill(in.value("secretsOf", in["job"].get<std::string>()), &*spec);
    if (!filled.ok()) Throw(filled, "reading the job's secrets");
    const int attempt = in["attempt"].get<int>();
    runtime::GroupSpec group;
    group.name = in["group"];
    group.network = spec->network;
    group.labels = {{"baton.job", in["job"]},
                    {"baton.tenant", in["tenant"]},
                    {"baton.attempt", std::to_string(attempt)},
                    {"baton.instance", in["instance"]},
                    {"baton.completion", CompletionName(spec->completion)}};
    if (!s.node_id.empty()) group.labels["baton.node"] = s.node_id;
    if (!s.deployment_id.empty()) group.labels["baton.deployment"] = s.deployment_id;
    if (spec->completion == CompletionMode::kJobUrl) group.labels["baton.jobPort"] = std::to_string(spec->job_port);
    for (const auto& [k, v] : spec->labels) group.labels["job." + k] = v;
    const std::string id = in.value("id", "");
    for (const JobContainer& c : spec->containers) {
      runtime::ContainerSpec cs;
      cs.name = c.name;
      cs.image = c.image;
      cs.command = c.command;
      cs.args = c.args;
      cs.env = c.env;
      cs.secret_env = c.secret_env;
      cs.secret_files = c.secret_files;
      cs.user = c.user;
      cs.read_only_root_fs = c.read_only_root_fs;
      cs.capabilities = c.capabilities;
      cs.pids_limit = c.pids_limit;
      cs.env["BATON_JOB_ID"] = id.empty() ? in["job"].get<std::string>() : id;
      cs.env["BATON_JOB_ATTEMPT"] = std::to_string(attempt);
      if (in.contains("arrayIndex")) cs.env["BATON_ARRAY_INDEX"] = std::to_string(in["arrayIndex"].get<int>());
      if (spec->completion == CompletionMode::kCallback && s.tokens != nullptr && !id.empty()) {
        cs.env["BATON_CALLBACK_URL"] = s.callback_base + "/api/v1/jobs/" + id + "/callback";
        cs.secret_env["BATON_JOB_TOKEN"] = s.tokens->Sign(in["instance"], attempt);
        group.callback_dir = s.callback_dir;
      }
      cs.working_dir = c.working_dir;
      cs.cpus = c.cpu;
      cs.memory_bytes = c.memory_bytes;
      for (uint16_t p : c.ports) cs.ports.push_back(runtime::PortMapping{p, 0});
      group.containers.push_back(std::move(cs));
    }
    const auto create_start = util::metrics::StartTimer();
    auto created = rt.CreateGroup(group);
    ContainerMetrics("create", created.ok()).ObserveSince(create_start);
    if (!created.ok()) Throw(created.status(), "creating container group '" + group.name + "'");
    Json ids = Json::array();
    for (const auto& c : created->containers) ids.push_back(c.id);
    return Json{{"containers", ids}};
  }));
  // Starts what was never started of the group (this activity may run again
  // after a crash, a lost answer or an outage of the runtime): no container
  // runs twice. A main container already over is left as it is, and so are
  // its sidecars.
  BATON_RETURN_IF_ERROR(registry.AddActivity(kStartGroup, [s, &rt](ActivityContext& ctx) -> Json {
    std::string group = ctx.GetInput()["group"];
    auto g = rt.InspectGroup(group);
    if (!g.ok()) Throw(g.status(), "inspecting '" + group + "'");
    const runtime::ContainerState& main = g->containers[0];
    const bool main_started = main.status != "created";
    if (main_started && !main.running) return Json{{"alreadyStarted", true}, {"state", main.status}};
    const auto start_start = util::metrics::StartTimer();
    Status started = rt.StartGroup(group);  // only containers still "created"
    ContainerMetrics("start", started.ok()).ObserveSince(start_start);
    if (!started.ok()) Throw(started, "starting '" + group + "'");
    if (s.sampler != nullptr && !main.id.empty()) s.sampler->Watch(main.id);
    return Json{{"alreadyStarted", main_started}};
  }));
  // POST /start on the job's URL, retried while the job starts listening.
  BATON_RETURN_IF_ERROR(registry.AddActivity(kStartJobUrl, [&rt](ActivityContext& ctx) -> Json {
    Json in = ctx.GetInput();
    std::string group = in["group"];
    const uint16_t port = in["port"].get<uint16_t>();
    const auto until = std::chrono::steady_clock::now() + 60s;
    Status last = UnavailableError("the job never answered");
    while (std::chrono::steady_clock::now() < until) {
      auto g = rt.InspectGroup(group);
      if (!g.ok()) Throw(g.status(), "inspecting '" + group + "'");
      const runtime::ContainerState& main = g->containers[0];
      if (!main.running) throw DurableError("JobExited", "the job exited before POST /start", nullptr, true);
      uint16_t host_port = port;
      if (!in.value("host", false)) {
        auto it = main.published_ports.find(port);
        if (it == main.published_ports.end()) {
          throw DurableError("InvalidJobSpec", "the job port is not published", nullptr, true);
        }
        host_port = it->second;
      }
      auto answer = LoopbackHttp("POST", host_port, "/start", "{}", 5s);
      if (answer.ok() && answer->status / 100 == 2) return Json{{"port", host_port}};
      last = answer.ok() ? FailedPreconditionError("POST /start answered HTTP " + std::to_string(answer->status))
                         : answer.status();
      if (answer.ok() && answer->status / 100 == 4) break;
      std::this_thread::sleep_for(200ms);
    }
    throw DurableError("JobUrlUnavailable", last.message(), nullptr, true);
  }));
  // Stops the group if asked (or after the callback's grace), and collects
  // the main container's exit and logs. Leaves the group: a second run (after
  // a crash) finds the same container and returns the same outcome.
  BATON_RETURN_IF_ERROR(registry.AddActivity(kCollectGroup, [s, &rt](ActivityContext& ctx) -> Json {
    Json in = ctx.GetInput();
    std::string group = in["group"];
    auto g = rt.InspectGroup(group);
    if (!g.ok() && g.status().code() == StatusCode::kNotFound) {
      return Json{{"error", "ContainerLost: the container group vanished"}, {"logsTail", Json::array()}};
    }
    if (!g.ok()) Throw(g.status(), "inspecting '" + group + "'");
    int wait = in.value("waitExitSeconds", 0);
    if (wait > 0 && g->containers[0].running) {
      (void)rt.WaitContainer(g->containers[0].id, std::chrono::seconds(wait));
    }
    // Before the stop: a container still running gives its last sample.
    std::optional<AttemptUsage> usage;
    if (s.sampler != nullptr) usage = s.sampler->Take(g->containers[0].id);
    // Stopping a stopped group is a no-op; sidecars end with the main container.
    Status stopped = rt.StopGroup(group, in.value("stop", false) || wait > 0 ? s.stop_grace : std::chrono::seconds(2));
    if (!stopped.ok()) Throw(stopped, "stopping '" + group + "'");
    g = rt.InspectGroup(group);
    if (!g.ok()) Throw(g.status(), "inspecting '" + group + "'");
    const runtime::ContainerState& main = g->containers[0];
    Json out = {{"exitCode", main.exit_code}, {"oomKilled", main.oom_killed}};
    // Why it was stopped, for the timeline's AttemptEnded (job_view.h WhyEnded).
    if (!in.value("stopFor", "").empty()) out["stoppedFor"] = in["stopFor"];
    // The runtime's word on how it ended, when the exit code is not all of it
    // (a swarm task that never ran; an exit 137 whose OOM kill it cannot confirm).
    if (!main.error.empty()) out["error"] = main.error;
    if (!main.node.empty()) out["node"] = main.node;
    if (main.started_at) out["startedAt"] = FormatIso8601(*main.started_at);
    if (main.finished_at) out["finishedAt"] = FormatIso8601(*main.finished_at);
    // An OOM kill means the cgroup reached its limit: the peak is the limit,
    // whatever the last sample before the kill saw.
    if (main.oom_killed && main.memory_bytes > 0) {
      if (!usage) usage = AttemptUsage{};
      usage->peak_memory_bytes = std::max(usage->peak_memory_bytes, main.memory_bytes);
    }
    AddUsage(out, usage, main);
    Json tail = Json::array();
    // What is kept is the tail: only that is read (one line more, so that
    // JobLogs sees a cut and marks it).
    auto logs = rt.LogsTail(main.id, JobLogs::kMaxLines + 1);
    if (logs.ok()) {
      size_t from = logs->size() > kLogsTail ? logs->size() - kLogsTail : 0;
      for (size_t i = from; i < logs->size(); ++i) {
        const runtime::LogLine& l = (*logs)[i];
        tail.push_back((l.stream == runtime::LogLine::Stream::kStderr ? "stderr: " : "stdout: ") + l.text);
      }
      if (s.logs != nullptr) {
        Status saved = s.logs->Save(in["job"], in["attempt"].get<int>(), *logs);
        if (!saved.ok()) Throw(saved, "keeping the logs of '" + group + "'");
      }
    }
    out["logsTail"] = tail;
    if (s.receipts != nullptr) {
      out["receipt"] = SignedReceipt(*s.receipts, s, in, main, logs.ok() ? &*logs : nullptr, usage);
    }
    return out;
  }));
  BATON_RETURN_IF_ERROR(registry.AddActivity(kDeleteSecrets, [s](ActivityContext& ctx) -> Json {
    Status deleted = s.vault->Delete(ctx.GetInput()["job"]);  // OK when already gone
    if (!deleted.ok()) Throw(deleted, "deleting the job's secrets");
    return nullptr;
  }));
  // Which of the jobs a job depends on have ended, and how:
  // {"pending": [id…], "ended": [{"id", "status", "reason", "summary"}]}.
  BATON_RETURN_IF_ERROR(registry.AddActivity(kDependencies, [s](ActivityContext& ctx) -> Json {
    if (s.client == nullptr) throw DurableError("Unimplemented", "this node cannot read jobs (no client)", nullptr, true);
    const Json in = ctx.GetInput();
    Json out = {{"pending", Json::array()}, {"ended", Json::array()}};
    for (const Json& id : in["jobs"]) {
      auto state = s.client->GetState(JobInstanceId(in["tenant"], id), /*include_payloads=*/true);
      if (!state.ok() && state.status().code() == StatusCode::kNotFound) {
        // Purged after it ended: what it was is gone with it.
        out["ended"].push_back(Json{{"id", id}, {"status", "Unknown"}, {"summary", "the job was purged"}});
        continue;
      }
      if (!state.ok()) Throw(state.status(), "reading job " + id.get<std::string>());
      if (!IsTerminal(state->status)) {
        out["pending"].push_back(id);
        continue;
      }
      Json view = JobView(*state, Json::object(), /*brief=*/true);
      const Json result = view.value("result", Json::object());
      out["ended"].push_back(Json{{"id", id},
                                  {"status", view.value("status", "")},
                                  {"reason", result.is_object() ? result.value("reason", "") : ""},
                                  {"summary", result.is_object() ? result.value("summary", "") : ""}});
    }
    return out;
  }));
  BATON_RETURN_IF_ERROR(registry.AddActivity(kDeleteGroup, [&rt](ActivityContext& ctx) -> Json {
    std::string group = ctx.GetInput()["group"];
    Status deleted = rt.DeleteGroup(group);  // OK when already gone
    if (!deleted.ok()) Throw(deleted, "deleting '" + group + "'");
    return nullptr;
  }));
  return Status::Ok();
}

}  // namespace baton::batch
