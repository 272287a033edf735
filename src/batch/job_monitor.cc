#include "batch/job_monitor.h"

#include "batch/secret_vault.h"

#include <algorithm>
#include <optional>

#include "batch/job_orchestration.h"
#include "batch/loopback_http.h"
#include "batch/job_view.h"
#include "batch/scheduler.h"
#include "util/log.h"

namespace baton::batch {
namespace {

using namespace std::chrono_literals;

constexpr char kMainIndex[] = "1000";
// After a Nudge: a pass of FollowParents every kFollowEvery for kFollowWindow
// (a recursive terminate reaches a parent's children, and so the "baton.Job"
// bridges, a few episodes after the call that asked for it).
constexpr std::chrono::milliseconds kFollowEvery{500};
constexpr std::chrono::milliseconds kFollowWindow{5000};  // the "baton.index" of a group's first container

struct Phase {
  std::string phase;
  int attempt = 0;
};

Phase PhaseOf(const InstanceState& s) {
  Phase p;
  Json status = FromPayload(s.custom_status);
  if (status.is_object()) {
    p.phase = status.value("phase", "");
    p.attempt = status.value("attempt", 0);
  }
  return p;
}

bool Live(const InstanceState& s) {
  return s.status == OrchestrationStatus::kRunning || s.status == OrchestrationStatus::kPending ||
         s.status == OrchestrationStatus::kSuspended;
}

int AttemptOf(const runtime::ContainerState& c) {
  auto it = c.labels.find("baton.attempt");
  if (it == c.labels.end()) return 0;
  try {
    return std::stoi(it->second);
  } catch (...) {
    return 0;
  }
}

std::string Label(const runtime::ContainerState& c, const std::string& key) {
  auto it = c.labels.find(key);
  return it == c.labels.end() ? "" : it->second;
}

}  // namespace

JobMonitor::JobMonitor(runtime::ContainerRuntime& runtime, Client& client, JobMonitorOptions options)
    : runtime_(runtime), client_(client), options_(std::move(options)) {}

JobMonitor::~JobMonitor() { Stop(); }

std::map<std::string, std::string> JobMonitor::Selector() const {
  std::map<std::string, std::string> selector;
  if (!options_.deployment_id.empty()) {
    selector["baton.deployment"] = options_.deployment_id;
  } else if (!options_.node_id.empty()) {
    selector["baton.node"] = options_.node_id;
  }
  return selector;
}

bool JobMonitor::Leading() {
  if (options_.leases == nullptr) {
    reconciling_.store(true, std::memory_order_relaxed);
    return true;
  }
  auto held = options_.leases->TryAcquire("job-monitor/" + options_.deployment_id, options_.node_id, options_.lease_ttl);
  if (!held.ok()) {
    util::Log().warn("job monitor: the reconciler's lease: {}", held.status().ToString());
    reconciling_.store(false, std::memory_order_relaxed);
    return false;
  }
  reconciling_.store(*held, std::memory_order_relaxed);
  if (*held != leading_) {
    if (*held) {
      util::Log().info("job monitor: this node now reconciles deployment {}", options_.deployment_id);
    } else {
      util::Log().info("job monitor: another node reconciles deployment {}", options_.deployment_id);
    }
    leading_ = *held;
  }
  return *held;
}

void JobMonitor::Start() {
  Result<ReconcileReport> first = ReconcileReport{};
  if (Leading()) first = ReconcileOnce();
  if (!first.ok()) {
    util::Log().warn("job monitor: first reconcile pass: {}", first.status().ToString());
  } else if (first->groups_removed + first->exits_reported + first->containers_lost > 0) {
    util::Log().info("job monitor: removed {} orphan groups, reported {} missed exits, {} lost containers",
                     first->groups_removed, first->exits_reported, first->containers_lost);
  }
  std::lock_guard lock(mu_);
  stopping_ = false;
  watcher_ = std::thread([this] { WatchLoop(); });
  poller_ = std::thread([this] { PollLoop(); });
}

void JobMonitor::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  if (poller_.joinable()) poller_.join();
}

bool JobMonitor::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

void JobMonitor::Raise(const std::string& instance, const std::string& name, const Json& data) {
  Status s = client_.RaiseEvent(instance, name, data);
  if (!s.ok() && s.code() != StatusCode::kNotFound && s.code() != StatusCode::kFailedPrecondition) {
    util::Log().warn("job monitor: raising {} on {}: {}", name, instance, s.ToString());
  }
}

void JobMonitor::RequestReconcile() {
  {
    std::lock_guard lock(mu_);
    reconcile_requested_ = true;
  }
  cv_.notify_all();
}

void JobMonitor::WatchLoop() {
  std::map<std::string, std::string> selector = Selector();
  selector["baton.index"] = kMainIndex;
  TimePoint since = std::chrono::system_clock::now() - 2s;
  std::optional<std::chrono::steady_clock::time_point> failing_since;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    const TimePoint call_start = std::chrono::system_clock::now();
    TimePoint newest = since;
    Status s = runtime_.WatchEvents(
        selector,
        [&](const runtime::ContainerEvent& e) {
          newest = std::max(newest, e.time);
          if (e.action != "die") return true;
          auto instance = e.labels.find("baton.instance");
          if (instance == e.labels.end()) return true;
          auto attempt = e.labels.find("baton.attempt");
          Json data = {{"attempt", attempt == e.labels.end() ? 0 : std::atoi(attempt->second.c_str())},
                       {"exitCode", e.exit_code},
                       {"source", "docker"}};
          Raise(instance->second, e.exit_code == 0 ? kCompletedEvent : kFailedEvent, data);
          std::lock_guard lock(mu_);
          return !stopping_;
        },
        1s, since);
    if (!s.ok() && s.code() != StatusCode::kDeadlineExceeded) {
      if (!failing_since) {
        failing_since = std::chrono::steady_clock::now();
        util::Log().warn("job monitor: watching container events: {} (retrying every second)", s.ToString());
      }
      if (!SleepFor(1s)) return;
      continue;  // the same `since` again: nothing is missed
    }
    if (failing_since) {
      util::Log().info("job monitor: container events are back after {:.1f} s; reconciling",
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - *failing_since).count());
      failing_since.reset();
      RequestReconcile();  // what a restarted runtime no longer replays
    }
    // Everything up to the start of this call was seen; overlap a little,
    // since events are stamped by the daemon (duplicates are harmless).
    since = std::max(newest, call_start - 1s);
  }
}

void JobMonitor::PollLoop() {
  auto next_reconcile = std::chrono::steady_clock::now() + options_.reconcile_interval;
  std::chrono::steady_clock::time_point next_follow{};
  bool failing = false;
  for (;;) {
    bool requested = false;
    bool follow = false;
    {
      std::unique_lock lock(mu_);
      auto wait = std::min(options_.job_url_poll_interval, options_.reconcile_interval);
      const auto now = std::chrono::steady_clock::now();
      if (now < follow_until_) {
        const auto until_follow = std::chrono::duration_cast<std::chrono::milliseconds>(next_follow - now);
        wait = std::clamp(until_follow, std::chrono::milliseconds(0), wait);
      }
      cv_.wait_for(lock, wait, [&] {
        return stopping_ || reconcile_requested_ ||
               (std::chrono::steady_clock::now() < follow_until_ && std::chrono::steady_clock::now() >= next_follow);
      });
      if (stopping_) return;
      requested = reconcile_requested_;
      reconcile_requested_ = false;
      const auto after = std::chrono::steady_clock::now();
      follow = after < follow_until_ && after >= next_follow;
    }
    // Jobs follow their parents at once after a terminate, suspend or
    // resume (Nudge), on whichever node took the call: it only raises
    // events and suspends or resumes job orchestrations, which any node may.
    if (follow) {
      next_follow = std::chrono::steady_clock::now() + kFollowEvery;
      ReconcileReport ignored;
      if (Status s = FollowParents(ignored); !s.ok()) util::Log().debug("job monitor: following parents: {}", s.ToString());
    }
    if (!Leading()) continue;  // another node of the deployment does it
    PollJobUrls();
    if (requested || std::chrono::steady_clock::now() >= next_reconcile) {
      auto report = ReconcileOnce();
      if (!report.ok() && !failing) {
        util::Log().warn("job monitor: reconcile: {} (retrying every {} ms)", report.status().ToString(),
                         options_.reconcile_interval.count());
      } else if (report.ok() && failing) {
        util::Log().info("job monitor: reconcile passes succeed again");
      }
      failing = !report.ok();
      next_reconcile = std::chrono::steady_clock::now() + options_.reconcile_interval;
    }
  }
}

void JobMonitor::PollJobUrls() {
  std::map<std::string, std::string> selector = Selector();
  selector["baton.completion"] = "jobUrl";
  selector["baton.index"] = kMainIndex;
  auto containers = runtime_.ListByLabels(selector);
  if (!containers.ok()) return;
  for (const runtime::ContainerState& c : *containers) {
    if (!c.running) continue;
    const std::string instance = Label(c, "baton.instance");
    const int attempt = AttemptOf(c);
    const std::string key = instance + "/" + std::to_string(attempt);
    if (instance.empty() || reported_.count(key)) continue;
    uint16_t port = static_cast<uint16_t>(std::atoi(Label(c, "baton.jobPort").c_str()));
    if (auto it = c.published_ports.find(port); it != c.published_ports.end()) port = it->second;
    auto answer = LoopbackHttp("GET", port, "/status", "", 2s);
    if (!answer.ok() || answer->status != 200) continue;
    Json body;  // the job's own answer: untrusted, parsed with limits
    if (!ParseJson(answer->body, &body).ok() || !body.is_object()) continue;
    // The same bounds as the callback route's (job_api.cc): members of the
    // wrong type or size are ignored, never thrown on.
    if (body.contains("progress") && DumpJson(body["progress"]).size() <= 16 * 1024) {
      std::string progress = DumpJson(body["progress"]);
      if (last_progress_[key] != progress) {
        last_progress_[key] = progress;
        Raise(instance, kProgressEvent, Json{{"attempt", attempt}, {"progress", body["progress"]}});
      }
    }
    std::string status = body.contains("status") && body["status"].is_string() ? body["status"].get<std::string>() : "";
    if (status == "Completed" || status == "Failed") {
      reported_.insert(key);
      Json data = {{"attempt", attempt}, {"source", "jobUrl"}};
      if (body.contains("exitCode") && JsonInteger(body["exitCode"], INT32_MIN, INT32_MAX)) {
        data["exitCode"] = body["exitCode"];
      }
      if (body.contains("message") && body["message"].is_string()) {
        data["message"] = body["message"].get<std::string>().substr(0, 1000);
      }
      Raise(instance, status == "Completed" ? kCompletedEvent : kFailedEvent, data);
    }
  }
}

Result<ReconcileReport> JobMonitor::ReconcileOnce() {
  ReconcileReport report;
  // What the previous pass found missing; a pass that fails leaves nothing
  // behind, so "two in a row" means two passes that got answers.
  SeenTwice::Pass missing(missing_);
  // 1. The attempts that should be running, read before the containers: a
  //    group that vanishes afterwards belongs to an attempt already over.
  std::map<std::string, Phase> running;
  InstanceQuery q;
  q.instance_id_prefix = kJobInstancePrefix;
  q.statuses = {OrchestrationStatus::kRunning};
  q.include_payloads = true;
  q.page_size = 500;
  for (int pages = 0; pages < 1000; ++pages) {
    BATON_ASSIGN_OR_RETURN(QueryPage page, client_.Query(q));
    for (const InstanceState& s : page.instances) {
      if (s.name == kJobOrchestrator) running[s.instance_id] = PhaseOf(s);
    }
    if (page.continuation_token.empty()) break;
    q.continuation_token = page.continuation_token;
  }
  // 2. The deployment's job containers, by group — and this node's from
  //    before groups carried the deployment's label.
  BATON_ASSIGN_OR_RETURN(std::vector<runtime::ContainerState> containers, runtime_.ListByLabels(Selector()));
  if (!options_.deployment_id.empty() && !options_.node_id.empty()) {
    BATON_ASSIGN_OR_RETURN(std::vector<runtime::ContainerState> older,
                           runtime_.ListByLabels({{"baton.node", options_.node_id}}));
    std::set<std::string> seen;
    for (const auto& c : containers) seen.insert(c.id);
    for (auto& c : older) {
      if (!seen.count(c.id) && Label(c, "baton.deployment").empty()) containers.push_back(std::move(c));
    }
  }
  struct Group {
    std::string instance;
    int attempt = 0;
    const runtime::ContainerState* main = nullptr;
  };
  std::map<std::string, Group> groups;
  for (const runtime::ContainerState& c : containers) {
    const std::string instance = Label(c, "baton.instance");
    if (instance.empty()) continue;  // not a job's
    Group& g = groups[Label(c, "baton.group")];
    g.instance = instance;
    g.attempt = AttemptOf(c);
    if (Label(c, "baton.index") == kMainIndex) g.main = &c;
  }
  std::set<std::string> present;  // "<instance>/<attempt>"
  for (const auto& [name, g] : groups) {
    present.insert(g.instance + "/" + std::to_string(g.attempt));
    // Who owns it now? Read after the listing: a group is created only after
    // its attempt shows in the custom status.
    auto state = client_.GetState(g.instance, /*include_payloads=*/true);
    bool owned = false;
    Phase phase;
    if (state.ok() && Live(*state)) {
      phase = PhaseOf(*state);
      owned = phase.attempt == g.attempt &&
              (phase.phase == "starting" || phase.phase == "running" || phase.phase == "finishing");
    } else if (!state.ok() && state.status().code() != StatusCode::kNotFound) {
      continue;  // cannot tell: leave it for the next pass
    }
    if (!owned) {
      // Gone meanwhile — unless the runtime listed it only by what it left
      // behind (status "removing": a swarm group's secrets), which this finishes.
      const bool leftover = g.main != nullptr && g.main->status == "removing";
      if (!leftover && runtime_.InspectGroup(name).status().code() == StatusCode::kNotFound) continue;
      Status s = runtime_.DeleteGroup(name);
      if (s.ok()) {
        ++report.groups_removed;
        util::Log().info("job monitor: removed group {} (no live attempt owns it)", name);
      }
      continue;
    }
    if (phase.phase == "running" && g.main != nullptr && !g.main->running && g.main->status == "exited") {
      Json data = {{"attempt", g.attempt}, {"exitCode", g.main->exit_code}, {"source", "docker"}};
      Raise(g.instance, g.main->exit_code == 0 ? kCompletedEvent : kFailedEvent, data);
      ++report.exits_reported;
    }
  }
  // 3. Running attempts without a container: only the runtime's NotFound
  //    counts (an error says nothing about the container), and only when the
  //    previous pass found the same attempt without its group too.
  for (const auto& [instance, phase] : running) {
    const std::string key = instance + "/" + std::to_string(phase.attempt);
    if (phase.phase != "running" || present.count(key)) continue;
    auto group = runtime_.InspectGroup(JobGroupName(instance, phase.attempt));
    if (group.ok() || group.status().code() != StatusCode::kNotFound) continue;
    auto now = client_.GetState(instance, true);
    if (!now.ok() || !Live(*now)) continue;
    Phase p = PhaseOf(*now);
    if (p.phase != "running" || p.attempt != phase.attempt) continue;
    if (!missing.Saw(key)) continue;  // a second look first
    Raise(instance, kContainerLostEvent, Json{{"attempt", phase.attempt}});
    ++report.containers_lost;
    util::Log().warn("job monitor: the container of {} attempt {} vanished", instance, phase.attempt);
  }
  missing.Keep();
  // 4. Secrets of jobs that are over (or gone) and still in the vault.
  //    A job with no instance yet may be between the vault's Put and its
  //    start (the job API stores its secrets first): it counts as gone only
  //    when a second pass still finds no instance.
  if (options_.vault != nullptr) {
    SeenTwice::Pass unknown(vault_unknown_);
    std::string after;
    for (int pages = 0; pages < 1000; ++pages) {
      BATON_ASSIGN_OR_RETURN(std::vector<std::string> jobs, options_.vault->Jobs(after, 500));
      for (const std::string& job : jobs) {
        auto state = client_.GetState(job, /*include_payloads=*/false);
        bool over = state.ok() && IsTerminal(state->status);
        if (!state.ok() && state.status().code() == StatusCode::kNotFound) {
          over = unknown.Saw(job);
        }
        if (over && options_.vault->Delete(job).ok()) ++report.secrets_swept;
      }
      if (jobs.size() < 500) break;
      after = jobs.back();
    }
    unknown.Keep();
  }
  // 5. Jobs started from a tenant's orchestration follow it
  //    (job_orchestration.h). Level-triggered, so a pass that was missed (a
  //    crash, another leader) is made up by the next one.
  BATON_RETURN_IF_ERROR(FollowParents(report));
  // 6-7. What a job that ended abnormally left behind.
  BATON_RETURN_IF_ERROR(TellWaitingBridges(report));
  BATON_RETURN_IF_ERROR(ReleaseGrantsOfEndedJobs(report));
  return report;
}

Status JobMonitor::FollowParents(ReconcileReport& report) {
  InstanceQuery children;
  children.instance_id_prefix = kJobInstancePrefix;
  children.statuses = {OrchestrationStatus::kPending, OrchestrationStatus::kRunning, OrchestrationStatus::kSuspended};
  children.include_payloads = true;
  children.page_size = 500;
  // The indexes of an array job (its sub-orchestrations "<job>:<i>")
  // follow their array job the same way: held while it is suspended,
  // canceled when it ended without them (terminated by an admin).
  std::map<std::string, std::optional<OrchestrationStatus>> arrays;  // array job -> status (nullopt: gone)
  for (int pages = 0; pages < 1000; ++pages) {
    BATON_ASSIGN_OR_RETURN(QueryPage page, client_.Query(children));
    for (const InstanceState& s : page.instances) {
      if (s.name != kJobOrchestrator) continue;
      Json in = FromPayload(s.input);
      if (in.is_object() && in.contains("parent") && in["parent"].is_object()) FollowParent(s, in["parent"], report);
      if (s.parent_instance_id.rfind(kJobInstancePrefix, 0) == 0 && in.is_object() && in.contains("arrayIndex")) {
        auto it = arrays.find(s.parent_instance_id);
        if (it == arrays.end()) {
          auto a = client_.GetState(s.parent_instance_id, /*include_payloads=*/false);
          if (!a.ok() && a.status().code() != StatusCode::kNotFound) continue;  // cannot tell now
          it = arrays.emplace(s.parent_instance_id, a.ok() ? std::optional(a->status) : std::nullopt).first;
        }
        FollowArray(s, it->second, report);
      }
    }
    if (page.continuation_token.empty()) break;
    children.continuation_token = page.continuation_token;
  }
  return Status::Ok();
}

void JobMonitor::Nudge() {
  {
    std::lock_guard lock(mu_);
    follow_until_ = std::chrono::steady_clock::now() + kFollowWindow;
  }
  cv_.notify_all();
}

// A "baton.Job" bridge (job_orchestration.h) in phase "job" waits for
// kJobEndedEvent, which the job orchestration sends as it ends. It is not
// sent when the job orchestration was terminated directly (an admin's
// terminate of "job.<tenant>.<id>"), failed outside RunJob's error handling,
// or was purged: then the bridge is told here, once two passes in a row
// found it still waiting on the same ended job (the job's own event may be
// in flight; a second one is harmless: the bridge takes the first).
Status JobMonitor::TellWaitingBridges(ReconcileReport& report) {
  SeenTwice::Pass waiting(waiting_bridges_);
  InstanceQuery q;
  q.name_prefix = kJobOrchestrator;
  q.statuses = {OrchestrationStatus::kRunning, OrchestrationStatus::kSuspended};
  q.include_payloads = true;
  q.page_size = 500;
  for (int pages = 0; pages < 1000; ++pages) {
    BATON_ASSIGN_OR_RETURN(QueryPage page, client_.Query(q));
    for (const InstanceState& b : page.instances) {
      if (b.name != kJobOrchestrator || b.instance_id.rfind(kJobInstancePrefix, 0) == 0) continue;
      const std::string tenant(HubOf(b.instance_id));
      const Json status = FromPayload(b.custom_status);
      if (tenant.empty() || !status.is_object() || status.value("phase", "") != "job" ||
          !status["job"].is_string()) {
        continue;
      }
      const std::string id = status["job"].get<std::string>();
      const std::string job = JobInstanceId(tenant, id);
      auto state = client_.GetState(job, /*include_payloads=*/true);
      if (!state.ok() && state.status().code() != StatusCode::kNotFound) continue;  // cannot tell now
      if (state.ok() && !IsTerminal(state->status)) continue;
      // A completed job orchestration sent its news with its completion.
      if (state.ok() && state->status == OrchestrationStatus::kCompleted) continue;
      const std::string key = b.instance_id + "/" + job;
      if (!waiting.Saw(key)) continue;  // a second look first
      Json result = {{"id", id}};
      if (!state.ok()) {
        result["status"] = "Failed";
        result["reason"] = "Error";
        result["summary"] = "the job's record is gone (purged) before it told its orchestration how it ended";
      } else if (state->status == OrchestrationStatus::kTerminated) {
        result["status"] = "Canceled";
        result["reason"] = "Canceled";
        result["summary"] = "the job's orchestration was terminated";
        Json output = FromPayload(state->output);
        if (output.is_string() && !output.get<std::string>().empty()) {
          result["summary"] = "the job's orchestration was terminated: " + output.get<std::string>().substr(0, 500);
        }
      } else {
        result["status"] = "Failed";
        result["reason"] = "Error";
        std::string why = state->failure ? state->failure->error_type + ": " + state->failure->error_message
                                         : std::string("the job's orchestration failed");
        result["error"] = why.substr(0, 1000);
        result["summary"] = "the job's orchestration failed: " + why.substr(0, 500);
      }
      Raise(b.instance_id, kJobEndedEvent, result);
      ++report.bridges_told;
      util::Log().warn("job monitor: told {} that job {} ended ({}) without telling it", b.instance_id, job,
                       result["status"].get<std::string>());
    }
    if (page.continuation_token.empty()) break;
    q.continuation_token = page.continuation_token;
  }
  waiting.Keep();
  return Status::Ok();
}

// The scheduler (scheduler.h) holds a grant, or a queue place, until the
// job orchestration's "release". A job orchestration that was terminated,
// or is gone, never sends it: released here once two passes in a row found
// the entry's orchestration ended (an orchestration that ended normally
// sent its release as it ended, which may still be on its way).
Status JobMonitor::ReleaseGrantsOfEndedJobs(ReconcileReport& report) {
  const EntityId scheduler(kSchedulerEntity, kSchedulerKey);
  auto entity = client_.GetEntity(scheduler);
  if (!entity.ok()) {
    return entity.status().code() == StatusCode::kNotFound ? Status::Ok() : entity.status();
  }
  const Json st = entity->has_state ? FromPayload(entity->state) : Json::object();
  if (!st.is_object()) return Status::Ok();
  std::vector<std::pair<std::string, std::string>> held;  // (job, instance)
  if (st.contains("running") && st["running"].is_object()) {
    for (const auto& [job, r] : st["running"].items()) {
      held.emplace_back(job, r.is_object() && r.value("instance", "") != "" ? r.value("instance", "") : job);
    }
  }
  if (st.contains("queue") && st["queue"].is_array()) {
    for (const Json& e : st["queue"]) {
      if (!e.is_object() || !e["job"].is_string()) continue;
      const std::string job = e["job"].get<std::string>();
      held.emplace_back(job, e.value("instance", "") != "" ? e.value("instance", "") : job);
    }
  }
  SeenTwice::Pass ended(ended_grants_);
  for (const auto& [job, instance] : held) {
    if (instance.rfind(kJobInstancePrefix, 0) != 0) continue;  // not a job orchestration's
    auto state = client_.GetState(instance, /*include_payloads=*/false);
    if (!state.ok() && state.status().code() != StatusCode::kNotFound) continue;  // cannot tell now
    if (state.ok() && !IsTerminal(state->status)) continue;
    if (!ended.Saw(job)) continue;  // a second look first
    Status s = client_.SignalEntity(scheduler, "release", Json{{"job", job}});
    if (!s.ok()) {
      util::Log().warn("job monitor: releasing the quota of {}: {}", job, s.ToString());
      continue;
    }
    ++report.grants_released;
    util::Log().warn("job monitor: released the quota of {} (its orchestration ended without releasing it)", job);
  }
  ended.Keep();
  return Status::Ok();
}

void JobMonitor::FollowArray(const InstanceState& child, std::optional<OrchestrationStatus> array,
                             ReconcileReport& report) {
  if (!array || IsTerminal(*array)) {
    if (child.status == OrchestrationStatus::kSuspended) {
      client_.Resume(child.instance_id, "its array job ended").IgnoreError();
    }
    Raise(child.instance_id, kCancelEvent, Json{{"reason", "its array job ended"}});
    ++report.parents_ended;
    util::Log().info("job monitor: canceled {} (its array job {} ended)", child.instance_id, child.parent_instance_id);
    return;
  }
  const bool hold = *array == OrchestrationStatus::kSuspended;
  if (hold && child.status != OrchestrationStatus::kSuspended) {
    if (client_.Suspend(child.instance_id, "its array job is suspended").ok()) ++report.held;
  } else if (!hold && child.status == OrchestrationStatus::kSuspended) {
    if (client_.Resume(child.instance_id, "its array job resumed").ok()) ++report.released;
  }
}

void JobMonitor::FollowParent(const InstanceState& job, const Json& parent, ReconcileReport& report) {
  const std::string bridge = parent.value("bridge", "");
  const std::string owner = parent.value("instance", "");
  auto b = client_.GetState(bridge, /*include_payloads=*/false);
  auto o = client_.GetState(owner, /*include_payloads=*/false);
  for (const auto* r : {&b, &o}) {
    if (!r->ok() && r->status().code() != StatusCode::kNotFound) return;  // cannot tell now
  }
  // The bridge ends only with the job, so a bridge that ended (or is gone)
  // can no longer take its result; a terminated parent wants its children
  // stopped (a parent that completed or failed does not: as with any
  // sub-orchestration, the child runs on).
  const bool cancel = !b.ok() || IsTerminal(b->status) || !o.ok() || o->status == OrchestrationStatus::kTerminated;
  if (cancel) {
    if (job.status == OrchestrationStatus::kSuspended) {
      // A suspended job would hold the Cancel until resumed.
      client_.Resume(job.instance_id, "its parent orchestration was terminated").IgnoreError();
    }
    Raise(job.instance_id, kCancelEvent, Json{{"reason", "its parent orchestration was terminated"}});
    ++report.parents_ended;
    util::Log().info("job monitor: canceled {} (its parent orchestration {} was terminated)", job.instance_id, owner);
    return;
  }
  const bool hold = b->status == OrchestrationStatus::kSuspended || o->status == OrchestrationStatus::kSuspended;
  if (hold && job.status != OrchestrationStatus::kSuspended) {
    if (client_.Suspend(job.instance_id, "its parent orchestration is suspended").ok()) ++report.held;
  } else if (!hold && job.status == OrchestrationStatus::kSuspended) {
    if (client_.Resume(job.instance_id, "its parent orchestration resumed").ok()) ++report.released;
  }
}

}  // namespace baton::batch
