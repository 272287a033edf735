#include "batch/job_why.h"

#include <map>

#include "batch/job_eta.h"
#include "batch/job_orchestration.h"
#include "batch/job_view.h"
#include "batch/scheduler.h"

namespace baton::batch {
namespace {

using engine::WaitLink;

// "job.<tenant>.<id>" -> {tenant, id}
std::pair<std::string, std::string> SplitJob(const std::string& instance) {
  std::string rest = instance.substr(std::string(kJobInstancePrefix).size());
  size_t dot = rest.rfind('.');
  if (dot == std::string::npos) return {"", rest};
  return {rest.substr(0, dot), rest.substr(dot + 1)};
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

// ---- Jobs ----

bool JobWaitSource::Owns(std::string_view subject) const {
  return subject.starts_with(std::string("instance:") + kJobInstancePrefix);
}

Result<WaitLink> JobWaitSource::Explain(const std::string& subject) {
  const std::string instance = subject.substr(9);
  BATON_ASSIGN_OR_RETURN(InstanceState s, client_.GetState(instance, /*include_payloads=*/true));
  const auto [tenant, id] = SplitJob(instance);
  Json custom = FromPayload(s.custom_status);
  if (!custom.is_object()) custom = Json::object();
  const std::string phase = custom.value("phase", "");
  const int attempt = custom.value("attempt", 0);
  const std::string job = "job " + id;
  WaitLink l;
  l.details = {{"jobId", id}, {"status", JobStatusOf(s)}, {"phase", phase}};
  if (attempt > 0) l.details["attempt"] = attempt;
  if (IsTerminal(s.status)) {
    Json out = FromPayload(s.output);
    l.layer = "done";
    l.summary = job + " ended " + JobStatusOf(s) + (s.completed_at ? " at " + FormatIso8601(*s.completed_at) : "");
    if (out.is_object() && out.contains("exitCode") && !out["exitCode"].is_null()) {
      l.details["exitCode"] = out["exitCode"];
      l.summary += " (exit code " + out["exitCode"].dump() + ")";
    }
    return l;
  }
  if (s.status == OrchestrationStatus::kSuspended) {
    l.layer = "suspended";
    l.summary = job + " is suspended: it goes on when resumed";
    return l;
  }
  // A call waiting out a fault of the runtime or the registry is the root, whatever the phase.
  if (custom.contains("waitingOn") && custom["waitingOn"].is_object()) {
    const Json& w = custom["waitingOn"];
    l.layer = w.value("reason", "") == "registry" ? "registry-fault" : "runtime-fault";
    l.summary = job + " (" + phase + ") waits out a " + w.value("reason", std::string("runtime")) + " fault since " +
                w.value("since", std::string("?")) + ": " + w.value("lastError", std::string("")) +
                "; next try at " + w.value("retryAt", std::string("?"));
    l.details["waitingOn"] = w;
    return l;
  }
  if (phase == "pulling" || phase.empty()) {
    l.layer = "image-pull";
    l.summary = job + " resolves and pulls its image" +
                (custom.contains("image") ? " " + custom["image"].get<std::string>() : std::string()) +
                " (submitted " + FormatIso8601(s.created_at) + ")";
    l.details["image"] = custom.value("image", Json());
    return l;
  }
  if (phase == "queued") {
    l.layer = "queued";
    l.summary = job + " is queued for capacity at position " + custom.value("position", Json()).dump();
    l.next = "quota:" + instance;
    return l;
  }
  const std::string group = JobGroupName(instance, attempt);
  if (phase == "backoff") {
    l.layer = "retry";
    l.summary = job + ": attempt " + std::to_string(attempt) + " ended";
    // Its outcome, as the collect activity recorded it.
    if (auto h = client_.GetHistory(instance); h.ok()) {
      std::map<int32_t, bool> collects;
      Json last;
      for (const HistoryEvent& e : *h) {
        if (const auto* t = std::get_if<events::TaskScheduled>(&e.body); t && t->name == "baton.CollectGroup") {
          collects[e.event_id] = true;
        } else if (const auto* c = std::get_if<events::TaskCompleted>(&e.body); c && collects.contains(c->task_scheduled_id)) {
          last = FromPayload(c->result);
        }
      }
      if (last.is_object()) {
        if (last.value("oomKilled", false)) {
          l.summary += " OOM-killed";
        } else if (last.contains("exitCode")) {
          l.summary += " with exit code " + last["exitCode"].dump();
        }
        l.details["lastExitCode"] = last.value("exitCode", Json());
        l.details["oomKilled"] = last.value("oomKilled", false);
        if (last.contains("error")) l.details["lastError"] = last["error"];
      }
    }
    l.summary += "; attempt " + std::to_string(attempt + 1) + " starts at " + custom.value("retryAt", std::string("?"));
    l.details["nextAttemptAt"] = custom.value("retryAt", Json());
    return l;
  }
  if (phase == "starting" || phase == "running" || phase == "finishing") {
    l.layer = phase == "running" ? "running" : phase;
    l.summary = job + " is " + phase + " attempt " + std::to_string(attempt) +
                (custom.contains("startedAt") ? " (since " + custom["startedAt"].get<std::string>() + ")" : "") +
                " in container group " + group;
    if (custom.contains("progress") && !custom["progress"].is_null()) l.details["progress"] = custom["progress"];
    l.next = "container:" + group;
    return l;
  }
  l.layer = phase;
  l.summary = job + " is in phase '" + phase + "'";
  return l;
}

// ---- Quota ----

bool QuotaWaitSource::Owns(std::string_view subject) const { return subject.starts_with("quota:"); }

Result<WaitLink> QuotaWaitSource::Explain(const std::string& subject) {
  const std::string instance = subject.substr(6);
  const auto [tenant, id] = SplitJob(instance);
  BATON_ASSIGN_OR_RETURN(EntityState e, client_.GetEntity(EntityId(kSchedulerEntity, kSchedulerKey)));
  Json st = e.has_state ? FromPayload(e.state) : Json::object();
  if (!st.is_object()) st = Json::object();
  WaitLink l;
  l.layer = "quota";
  const Json queue = st.value("queue", Json::array());
  int position = 0, ahead_own = 0, ahead_other = 0;
  Json entry;
  for (size_t i = 0; i < queue.size(); ++i) {
    if (queue[i].value("instance", "") == instance || queue[i].value("job", "") == instance) {
      position = static_cast<int>(i) + 1;
      entry = queue[i];
      break;
    }
    (queue[i].value("tenant", "") == tenant ? ahead_own : ahead_other)++;
  }
  if (position == 0) {
    l.summary = "job " + id + " is not in the scheduler's queue (granted meanwhile)";
    return l;
  }
  const double need_cpu = entry.value("cpu", 0.0), need_mem = entry.value("memoryMb", 0.0);
  // Who holds the capacity now: the caller's own jobs by id, other tenants by totals.
  double node_cpu = 0, node_mem = 0;
  Json holders = Json::array();
  std::map<std::string, std::pair<int, std::pair<double, double>>> others;
  const Json running = st.value("running", Json::object());  // a range-for over a temporary's items() would dangle
  for (const auto& [job, r] : running.items()) {
    const std::string t = r.value("tenant", "");
    const double cpu = r.value("cpu", 0.0), mem = r.value("memoryMb", 0.0);
    node_cpu += cpu;
    node_mem += mem;
    if (viewer_.empty() || t == viewer_) {
      holders.push_back({{"tenant", t}, {"jobId", SplitJob(r.value("instance", job)).second}, {"cpu", cpu}, {"memoryMb", mem}});
    } else {
      auto& o = others["other tenants"];
      ++o.first;
      o.second.first += cpu;
      o.second.second += mem;
    }
  }
  for (const auto& [who, o] : others) {
    holders.push_back({{"tenant", who}, {"jobs", o.first}, {"cpu", o.second.first}, {"memoryMb", o.second.second}});
  }
  const Json capacity = st.value("capacity", Json::object());
  const Json tenants = st.value("tenants", Json::object());
  const Json tq = tenants.value(tenant, Json::object());
  const Json quota = tq.value("quota", Json::object()), used = tq.value("used", Json::object());
  auto over = [](double used_v, double need, double limit) { return limit > 0 && used_v + need > limit + 1e-9; };
  std::string blocker;
  if (over(used.value("cpu", 0.0), need_cpu, quota.value("cpu", 0.0))) {
    blocker = "the tenant's CPU quota (" + Num(used.value("cpu", 0.0)) + " of " + Num(quota.value("cpu", 0.0)) +
              " cores in use, the job needs " + Num(need_cpu) + ")";
  } else if (over(used.value("memoryMb", 0.0), need_mem, quota.value("memoryMb", 0.0))) {
    blocker = "the tenant's memory quota (" + Num(used.value("memoryMb", 0.0)) + " of " +
              Num(quota.value("memoryMb", 0.0)) + " MiB in use, the job needs " + Num(need_mem) + ")";
  } else if (over(used.value("jobs", 0.0), 1, quota.value("jobs", 0.0))) {
    blocker = "the tenant's job quota (" + Num(used.value("jobs", 0.0)) + " of " + Num(quota.value("jobs", 0.0)) +
              " jobs running)";
  } else if (over(node_cpu, need_cpu, capacity.value("cpu", 0.0))) {
    blocker = "the node's CPU (" + Num(node_cpu) + " of " + Num(capacity.value("cpu", 0.0)) +
              " cores held, the job needs " + Num(need_cpu) + ")";
  } else if (over(node_mem, need_mem, capacity.value("memoryMb", 0.0))) {
    blocker = "the node's memory (" + Num(node_mem) + " of " + Num(capacity.value("memoryMb", 0.0)) +
              " MiB held, the job needs " + Num(need_mem) + ")";
  } else {
    blocker = "fair share: jobs of tenants with a smaller share go first";
  }
  l.summary = "job " + id + " is number " + std::to_string(position) + " in the queue (" + std::to_string(ahead_own) +
              " of its tenant's and " + std::to_string(ahead_other) + " of other tenants' jobs ahead), held back by " +
              blocker;
  std::string held;
  for (const Json& h : holders) {
    held += (held.empty() ? "" : "; ") + h.value("tenant", std::string()) +
            (h.contains("jobId") ? " job " + h["jobId"].get<std::string>() : " (" + h["jobs"].dump() + " jobs)") +
            ": " + Num(h.value("cpu", 0.0)) + " CPU, " + Num(h.value("memoryMb", 0.0)) + " MiB";
  }
  if (!held.empty()) l.summary += "; capacity held by " + held;
  l.details = {{"position", position},
               {"aheadOwn", ahead_own},
               {"aheadOther", ahead_other},
               {"needs", {{"cpu", need_cpu}, {"memoryMb", need_mem}}},
               {"blockedBy", blocker},
               {"holders", holders},
               {"nodeCapacity", capacity},
               {"tenantQuota", quota},
               {"tenantUsed", used}};
  // When it is expected to start (docs/eta.md), as the viewer may see it.
  auto eta = JobEta(client_, st, instance, viewer_, std::chrono::system_clock::now());
  if (eta.ok() && eta->is_object()) {
    l.summary += "; " + eta->value("summary", std::string());
    l.details["eta"] = std::move(*eta);
  }
  return l;
}

// ---- Containers ----

bool ContainerWaitSource::Owns(std::string_view subject) const { return subject.starts_with("container:"); }

Result<WaitLink> ContainerWaitSource::Explain(const std::string& subject) {
  const std::string group = subject.substr(10);
  WaitLink l;
  l.layer = "container";
  if (runtime_ == nullptr) {
    l.summary = "container group " + group + " (no runtime to ask)";
    return l;
  }
  auto g = runtime_->InspectGroup(group);
  if (!g.ok() && g.status().code() == StatusCode::kNotFound) {
    l.summary = "container group " + group + " does not exist (yet, or any more)";
    l.details["state"] = "absent";
    return l;
  }
  if (!g.ok()) return g.status();
  if (g->containers.empty()) {
    l.summary = "container group " + group + " has no containers left";
    return l;
  }
  const runtime::ContainerState& main = g->containers[0];
  l.details = {{"group", group}, {"container", main.id.substr(0, 12)}, {"state", main.status}, {"running", main.running}};
  if (main.started_at) l.details["startedAt"] = FormatIso8601(*main.started_at);
  if (!main.node.empty()) l.details["node"] = main.node;
  l.summary = "container " + main.id.substr(0, 12) + " of group " + group + " is " + main.status;
  if (main.running && main.started_at) l.summary += " since " + FormatIso8601(*main.started_at);
  if (!main.waiting.empty()) {
    l.summary += ", waiting: " + main.waiting;
    l.details["waiting"] = main.waiting;
  }
  if (!main.running && main.finished_at) {
    l.summary += " (exit code " + std::to_string(main.exit_code) + (main.oom_killed ? ", OOM-killed" : "") +
                 " at " + FormatIso8601(*main.finished_at) + ")";
    l.details["exitCode"] = main.exit_code;
  }
  if (!main.error.empty()) l.details["error"] = main.error;
  return l;
}

}  // namespace baton::batch
