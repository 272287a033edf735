#include "batch/job_view.h"

#include <openssl/rand.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>

#include "batch/job_orchestration.h"
#include "batch/scheduler.h"
#include "util/overloaded.h"
#include "util/url.h"

namespace baton::batch {
namespace {

Json Parsed(const std::string& payload) {
  Json j = FromPayload(payload);
  return j.is_object() ? j : Json::object();
}

}  // namespace

std::string JobInstanceId(const std::string& tenant, const std::string& id) {
  return std::string(kJobInstancePrefix) + tenant + "." + id;
}

std::string NewJobId() {
  // The time in ms, then a counter that starts at a random value: ids of one
  // process never repeat (up to 2^20 per millisecond), and sort by creation.
  static std::atomic<uint32_t> counter = [] {
    unsigned char r[4] = {0, 0, 0, 0};
    RAND_bytes(r, sizeof r);
    return static_cast<uint32_t>(r[0] << 24 | r[1] << 16 | r[2] << 8 | r[3]);
  }();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%011llx%05x", static_cast<unsigned long long>(ms) & 0xfffffffffffULL,
                counter.fetch_add(1) & 0xfffff);
  return buf;
}


std::string JobStatusOf(const InstanceState& s) {
  switch (s.status) {
    case OrchestrationStatus::kCompleted: {
      Json out = FromPayload(s.output);
      return out.is_object() ? out.value("status", "Failed") : "Failed";
    }
    case OrchestrationStatus::kFailed:
      return "Failed";
    case OrchestrationStatus::kTerminated:
    case OrchestrationStatus::kCanceled:
      return "Canceled";
    case OrchestrationStatus::kPending:
      return "Pending";
    default:
      break;
  }
  const std::string phase = Parsed(s.custom_status).value("phase", "");
  if (phase == "queued") return "Queued";
  if (phase == "starting") return "Starting";
  if (phase == "running" || phase == "finishing" || phase == "array") return "Running";
  if (phase == "backoff") return "BackingOff";
  return "Pending";  // pulling, or not yet picked up
}

Json JobView(const InstanceState& s, const Json& scheduler_state, bool brief) {
  Json in = Parsed(s.input);
  Json custom = Parsed(s.custom_status);
  const std::string id = in.value("id", "");
  const std::string status = JobStatusOf(s);
  Json view = {{"id", id},
               {"name", in.contains("spec") ? in["spec"].value("name", "") : ""},
               {"status", status},
               {"waitingOn", nullptr},
               {"attempt", custom.value("attempt", 0)},
               {"progress", custom.value("progress", Json())},
               {"image", custom.value("image", Json())},
               {"createdAt", FormatIso8601(s.created_at)},
               {"lastUpdatedAt", FormatIso8601(s.last_updated_at)}};
  if (status == "Pending") {
    view["waitingOn"] = custom.value("phase", "") == "pulling"
                            ? Json{{"reason", "imagePull"}, {"image", custom.value("image", Json())}}
                            : Json{{"reason", "worker"}};
  } else if (status == "Queued") {
    int position = custom.value("position", 0);
    if (scheduler_state.is_object() && scheduler_state.contains("queue")) {
      position = 0;
      const Json& q = scheduler_state["queue"];
      for (size_t i = 0; i < q.size(); ++i) {
        if (q[i].value("job", "") == s.instance_id) position = static_cast<int>(i) + 1;
      }
    }
    view["waitingOn"] = Json{{"reason", "quota"}, {"position", position}};
  } else if (status == "Starting") {
    view["waitingOn"] = Json{{"reason", "container"}, {"attempt", custom.value("attempt", 0)}};
  } else if (status == "BackingOff") {
    view["waitingOn"] = Json{{"reason", "backoff"}, {"retryAt", custom.value("retryAt", Json())}};
  }
  // A runtime or registry fault being waited out (job_orchestration.cc) says
  // more than the phase does.
  if (custom.contains("waitingOn") && custom["waitingOn"].is_object() && s.status == OrchestrationStatus::kRunning) {
    view["waitingOn"] = custom["waitingOn"];
  }
  if (s.status == OrchestrationStatus::kSuspended) {
    view["waitingOn"] = Json{{"reason", "suspended"}};  // held with the orchestration that started it
  }
  // Started from a tenant's orchestration: which one (the id its tenant
  // knows, without the hub), and the sub-orchestration waiting for it.
  if (in.contains("parent") && in["parent"].is_object()) {
    auto local = [](const std::string& id) {
      const std::string_view hub = HubOf(id);
      return hub.empty() ? id : id.substr(hub.size() + kHubSeparator.size());
    };
    const std::string owner = local(in["parent"].value("instance", ""));
    view["parent"] = {{"instanceId", owner},
                      {"subOrchestrationId", local(in["parent"].value("bridge", ""))},
                      {"url", "/runtime/webhooks/durabletask/instances/" + util::PercentEncode(owner)}};
  }
  // An array job: its size (the job API adds its children's counts); a
  // child: its index and its array job.
  if (in.contains("spec") && in["spec"].is_object() && in["spec"].contains("array")) {
    view["array"] = {{"size", in["spec"]["array"].value("size", 0)}};
  }
  if (in.contains("arrayIndex")) {
    view["array"] = {{"index", in["arrayIndex"]}, {"parentId", id.substr(0, id.find(':'))}};
  }
  if (!brief) view["spec"] = in.value("spec", Json());
  Json result = nullptr;
  if (s.status == OrchestrationStatus::kCompleted) {
    result = FromPayload(s.output);
    if (brief && result.is_object()) {
      result.erase("attemptResults");
      result.erase("logsTail");
    }
    if (result.is_object() && view["progress"].is_null()) view["progress"] = result.value("progress", Json());
  } else if (s.status == OrchestrationStatus::kFailed) {
    result = {{"status", "Failed"},
              {"error", s.failure ? s.failure->error_type + ": " + s.failure->error_message : "the job failed"},
              {"reason", "Error"}};
    result["summary"] = result["error"];
  } else if (s.status == OrchestrationStatus::kTerminated || s.status == OrchestrationStatus::kCanceled) {
    result = {{"status", "Canceled"},
              {"error", "the job's orchestration was terminated by an operator"},
              {"reason", "Canceled"},
              {"summary", "canceled: the job's orchestration was terminated by an operator"}};
  }
  if (s.completed_at) view["finishedAt"] = FormatIso8601(*s.completed_at);
  view["result"] = result;
  const std::string self = "/api/v1/jobs/" + id;
  view["urls"] = {{"self", self}, {"events", self + "/events"}, {"logs", self + "/logs"}, {"cancel", self + "/cancel"}};
  return view;
}

EndReason WhyEnded(const Json& o, const std::string& status) {
  if (!o.is_object()) return {status == "Completed" ? "Completed" : "Error", status == "Completed" ? "completed" : "failed"};
  const std::string error = o.value("error", Json()).is_string() ? o["error"].get<std::string>() : "";
  const Json code = o.value("exitCode", Json());
  const std::string exit = code.is_number_integer() ? "exit code " + std::to_string(code.get<int64_t>()) : "";
  const std::string known = o.value("reason", Json()).is_string() ? o["reason"].get<std::string>() : "";
  if (status == "Completed") return {"Completed", exit.empty() ? "completed" : "completed (" + exit + ")"};
  if (status == "Canceled" || o.value("canceled", false)) {
    const std::string by = o.value("canceledBecause", "");
    return {"Canceled", by.empty() ? "canceled" : "canceled: " + by};
  }
  if (known == "DependencyFailed" || known == "ImagePullFailed" || known == "PermissionDenied") {
    return {known, error.empty() ? known : error};
  }
  if (o.value("timedOut", false)) {
    const Json after = o.value("timeoutSeconds", Json());
    return {"TimedOut", after.is_number() ? "timed out after " + std::to_string(after.get<int64_t>()) + " s" : "timed out"};
  }
  if (o.value("oomKilled", false)) return {"OOMKilled", "killed for lack of memory (OOM)" + (exit.empty() ? "" : ", " + exit)};
  if (error.rfind("ContainerLost", 0) == 0) return {"ContainerLost", "the container was lost: " + error};
  if (error.rfind("PermissionDenied", 0) == 0) return {"PermissionDenied", error};
  if (o.value("reported", "") == "Failed") {
    const std::string message = o.value("message", Json()).is_string() ? o["message"].get<std::string>() : "";
    return {"ReportedFailed", "the job reported Failed" + (message.empty() ? "" : ": " + message) +
                                  (exit.empty() ? "" : " (" + exit + ")")};
  }
  if (!exit.empty() && code.get<int64_t>() != 0) return {"ExitCode", exit};
  if (!error.empty()) return {"Error", error};
  return {"Error", exit.empty() ? "failed" : "failed (" + exit + ")"};
}

Json JobTimeline(const std::vector<HistoryEvent>& history) {
  Json out = Json::array();
  std::map<int32_t, std::string> scheduled;  // task id -> activity name
  std::map<int32_t, int> attempt_of;         // task id -> attempt
  int attempt = 0;
  bool after_finish = false;  // the next timer is a backoff
  std::string entity_request;  // the scheduler request's id
  std::set<int> reported;      // attempts whose end was reported (later reports are ignored)
  std::map<int, std::string> verdict;  // the job's own word on an attempt (callback, job URL)
  std::set<int> resized;               // attempts whose MemoryIncreased was added
  // A run of failures of one call waiting out a fault shows as one "Waiting"
  // entry (index in `out`), counted, until a call succeeds.
  int waiting = -1;
  std::string waiting_key;
  bool retry_timer = false;  // the next timer is a retry after a failure
  auto add = [&](const HistoryEvent& e, const std::string& type, Json fields = Json::object()) {
    Json item = {{"time", FormatIso8601(e.timestamp)}, {"type", type}};
    for (auto& [k, v] : fields.items()) item[k] = v;
    out.push_back(std::move(item));
  };
  for (const HistoryEvent& e : history) {
    std::visit(util::Overloaded{
                   [&](const events::ExecutionStarted&) { add(e, "Submitted"); },
                   [&](const events::TaskScheduled& t) {
                     retry_timer = false;
                     scheduled[e.event_id] = t.name;
                     Json input = FromPayload(t.input);
                     if (input.is_object() && input.contains("attempt")) {
                       attempt = input["attempt"].get<int>();
                     }
                     attempt_of[e.event_id] = attempt;
                     // A new attempt's first step: a timer after it is no backoff (a
                     // retry with more memory has none; its job timeout is not one).
                     if (t.name == "baton.CreateGroup") after_finish = false;
                     // A retry with more memory after an OOM kill (onOomKilled): once
                     // per attempt, however often its create call was retried.
                     if (t.name == "baton.CreateGroup" && input.is_object() && input.contains("resized") &&
                         input["resized"].is_object() && resized.insert(attempt).second) {
                       Json f = input["resized"];
                       f["attempt"] = attempt;
                       add(e, "MemoryIncreased", f);
                     }
                   },
                   [&](const events::TaskCompleted& t) {
                     const std::string& name = scheduled[t.task_scheduled_id];
                     Json result = FromPayload(t.result);
                     int a = attempt_of[t.task_scheduled_id];
                     waiting = -1;
                     if (name == "baton.ResolveImages" && result.is_object()) {
                       Json f = {{"image", result["images"][0]}};
                       if (result.contains("sources") && result["sources"].is_array() && !result["sources"].empty()) {
                         f["source"] = result["sources"][0];
                       }
                       add(e, "ImageResolved", f);
                     } else if (name == "baton.StartGroup") {
                       add(e, "AttemptStarted", Json{{"attempt", a}});
                     } else if (name == "baton.CollectGroup" && result.is_object()) {
                       Json f = {{"attempt", a},
                                 {"exitCode", result.value("exitCode", Json())},
                                 {"oomKilled", result.value("oomKilled", false)}};
                       if (result.contains("error")) f["error"] = result["error"];
                       for (const char* k : {"peakMemoryBytes", "cpuSeconds", "avgCores"}) {
                         if (result.contains(k)) f[k] = result[k];
                       }
                       // The attempt's own status is not in the collected
                       // outcome: a stop for a timeout or a cancel is.
                       const std::string stopped = result.value("stoppedFor", "");
                       Json o = result;
                       if (stopped == "timeout") {
                         o["timedOut"] = true;
                         f["timedOut"] = true;
                       }
                       if (stopped == "cancel") o["canceled"] = true;
                       if (verdict.count(a)) o["reported"] = verdict[a];
                       const bool ok = (stopped.empty() || stopped == "verdict") && !o.value("oomKilled", false) &&
                                       !o.contains("error") && o.value("reported", "") != "Failed" &&
                                       (o.value("reported", "") == "Completed" || o.value("exitCode", Json()) == Json(0));
                       EndReason why = WhyEnded(o, stopped == "cancel" ? "Canceled" : ok ? "Completed" : "Failed");
                       f["reason"] = why.reason;
                       f["summary"] = why.summary;
                       add(e, "AttemptEnded", f);
                       after_finish = true;
                     }
                   },
                   [&](const events::TaskFailed& t) {
                     retry_timer = true;
                     const std::string error = t.failure.error_type + ": " + t.failure.error_message;
                     const std::string& activity = scheduled[t.task_scheduled_id];
                     const int a = attempt_of[t.task_scheduled_id];
                     const std::string reason = t.failure.error_type == "RegistryUnavailable"  ? "registry"
                                                : t.failure.error_type == "RuntimeUnavailable" ? "runtime"
                                                : t.failure.error_type == "Unplaceable"        ? "placement"
                                                                                               : "";
                     if (reason.empty()) {
                       waiting = -1;
                       add(e, "Error", Json{{"activity", activity}, {"attempt", a}, {"error", error}});
                       return;
                     }
                     const std::string key = activity + "/" + std::to_string(a) + "/" + reason;
                     if (waiting >= 0 && key == waiting_key) {
                       Json& entry = out[static_cast<size_t>(waiting)];
                       entry["failures"] = entry.value("failures", 1) + 1;
                       entry["lastError"] = error;
                       entry["lastFailedAt"] = FormatIso8601(e.timestamp);
                       return;
                     }
                     add(e, "Waiting",
                         Json{{"waitingOn", reason}, {"activity", activity}, {"attempt", a}, {"lastError", error},
                              {"failures", 1}, {"lastFailedAt", FormatIso8601(e.timestamp)}});
                     waiting = static_cast<int>(out.size()) - 1;
                     waiting_key = key;
                   },
                   [&](const events::EntityOperationCalled& c) {
                     // The first grant, or the larger size of a retry after an OOM kill.
                     if (c.operation == "request" || c.operation == "resize") entity_request = c.request_id;
                   },
                   [&](const events::EntityOperationCompleted& c) {
                     if (c.request_id != entity_request) return;
                     Json answer = FromPayload(c.output);
                     if (answer.is_object() && answer.value("granted", false)) {
                       add(e, "QuotaGranted");
                     } else if (answer.is_object()) {
                       add(e, "Queued", Json{{"position", answer.value("position", 0)}});
                     }
                   },
                   [&](const events::TimerCreated& t) {
                     if (retry_timer) {  // a retry of a failed call, not a restart's backoff
                       retry_timer = false;
                       return;
                     }
                     if (after_finish) add(e, "BackoffStarted", Json{{"retryAt", FormatIso8601(t.fire_at)}});
                     after_finish = false;
                   },
                   [&](const events::EventRaised& r) {
                     Json data = FromPayload(r.input);
                     int a = data.is_object() ? data.value("attempt", 0) : 0;
                     if (r.name == kQuotaGrantedEvent) {
                       add(e, "QuotaGranted");
                     } else if (r.name == kProgressEvent) {
                       add(e, "Progress", Json{{"attempt", a}, {"progress", data.value("progress", Json())}});
                     } else if ((r.name == kCompletedEvent || r.name == kFailedEvent) && reported.insert(a).second) {
                       Json f = {{"attempt", a}, {"status", r.name}, {"source", data.value("source", "callback")}};
                       if (data.value("source", "callback") != "docker") verdict[a] = r.name;
                       if (data.contains("exitCode")) f["exitCode"] = data["exitCode"];
                       add(e, "Reported", f);
                     } else if (r.name == kContainerLostEvent) {
                       add(e, "ContainerLost", Json{{"attempt", a}});
                     } else if (r.name == kCancelEvent) {
                       add(e, "CancelRequested");
                     }
                   },
                   [&](const events::ExecutionCompleted& c) {
                     Json result = FromPayload(c.result);
                     std::string status = c.status == OrchestrationStatus::kCompleted && result.is_object()
                                              ? result.value("status", "Failed")
                                              : "Failed";
                     Json f = Json::object();
                     if (result.is_object()) {
                       f["exitCode"] = result.value("exitCode", Json());
                       f["attempts"] = result.value("attempts", 0);
                       if (result.contains("error")) f["error"] = result["error"];
                       if (result.contains("reason")) f["reason"] = result["reason"];
                       if (result.contains("summary")) f["summary"] = result["summary"];
                     }
                     if (c.failure) f["error"] = c.failure->error_type + ": " + c.failure->error_message;
                     add(e, status, f);
                   },
                   [&](const events::ExecutionTerminated&) { add(e, "Canceled", Json{{"error", "terminated"}}); },
                   [](const auto&) {},
               },
               e.body);
  }
  return out;
}

}  // namespace baton::batch
