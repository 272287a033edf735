#include "batch/platform_metrics.h"

#include <algorithm>
#include <map>
#include <string>

#include "batch/job_view.h"
#include "batch/scheduler.h"
#include "baton/entity_id.h"

namespace baton::batch {
namespace {

constexpr char kJobPrefix[] = "job.";

// "job.<tenant>.<id>" -> tenant ("" when the id is not a job's).
std::string TenantOfJob(const std::string& instance_id) {
  const size_t start = sizeof(kJobPrefix) - 1;
  const size_t dot = instance_id.rfind('.');
  if (instance_id.compare(0, start, kJobPrefix) != 0 || dot == std::string::npos || dot <= start) return "";
  return instance_id.substr(start, dot - start);
}

double Number(const Json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0;
}

}  // namespace

PlatformMetrics::PlatformMetrics(util::metrics::Registry& registry, Store& store, Client& client,
                                 PlatformMetricsOptions options)
    : registry_(registry), store_(store), client_(client), options_(options) {
  collector_ = registry_.AddCollector([this](util::metrics::Sink& sink) { Collect(sink); });
}

PlatformMetrics::~PlatformMetrics() { registry_.RemoveCollector(collector_); }

void PlatformMetrics::Collect(util::metrics::Sink& sink) {
  const TimePoint now = SystemClock()->Now();
  // Queues per task hub.
  auto depths = store_.QueueDepths(now);
  sink.Gauge("baton_metrics_source_up", "Whether a source of scrape-time figures answered (1) or not (0)",
             {{"source", "queues"}}, depths.ok() ? 1 : 0);
  if (depths.ok()) {
    for (const QueueDepth& d : *depths) {
      const util::metrics::Labels hub = {{"hub", d.hub}};
      sink.Gauge("baton_queue_orchestration_messages", "Messages waiting in instances' inboxes, by task hub", hub,
                 static_cast<double>(d.orchestration_messages));
      sink.Gauge("baton_queue_activity_tasks", "Activity tasks not yet completed, by task hub", hub,
                 static_cast<double>(d.activity_tasks));
      const double age =
          d.oldest_visible ? std::max(0.0, std::chrono::duration<double>(now - *d.oldest_visible).count()) : 0;
      sink.Gauge("baton_queue_oldest_visible_age_seconds",
                 "How long the oldest visible message or activity task of a task hub has waited (0: none)", hub, age);
    }
  }

  // Jobs in flight, by tenant and status.
  std::map<std::pair<std::string, std::string>, int> jobs;
  InstanceQuery q;
  q.statuses = {OrchestrationStatus::kPending, OrchestrationStatus::kRunning, OrchestrationStatus::kSuspended};
  q.instance_id_prefix = kJobPrefix;
  q.include_payloads = true;
  q.page_size = 1000;
  int scanned = 0;
  bool truncated = false, jobs_ok = true;
  for (;;) {
    auto page = client_.Query(q);
    if (!page.ok()) {
      jobs_ok = false;
      break;
    }
    for (const InstanceState& s : page->instances) {
      const std::string tenant = TenantOfJob(s.instance_id);
      if (!tenant.empty()) ++jobs[{tenant, JobStatusOf(s)}];
    }
    scanned += static_cast<int>(page->instances.size());
    if (page->continuation_token.empty()) break;
    if (scanned >= options_.max_jobs_scanned) {
      truncated = true;
      break;
    }
    q.continuation_token = page->continuation_token;
  }
  sink.Gauge("baton_metrics_source_up", "Whether a source of scrape-time figures answered (1) or not (0)",
             {{"source", "jobs"}}, jobs_ok ? 1 : 0);
  sink.Gauge("baton_jobs_scan_truncated", "1 when more jobs were in flight than one scrape reads (max_jobs_scanned)", {},
             truncated ? 1 : 0);
  for (const auto& [key, n] : jobs) {
    sink.Gauge("baton_jobs", "Batch jobs in flight (not ended), by tenant and status",
               {{"tenant", key.first}, {"status", key.second}}, n);
  }

  // The scheduler: quotas, use and queues per tenant; the node's capacity.
  auto scheduler = client_.GetEntity(EntityId(kSchedulerEntity, kSchedulerKey));
  const bool scheduler_ok = scheduler.ok() || scheduler.status().code() == StatusCode::kNotFound;
  sink.Gauge("baton_metrics_source_up", "Whether a source of scrape-time figures answered (1) or not (0)",
             {{"source", "scheduler"}}, scheduler_ok ? 1 : 0);
  if (!scheduler.ok() || !scheduler->has_state) return;
  const Json state = FromPayload(scheduler->state);
  if (!state.is_object()) return;
  std::map<std::string, int> queued;
  if (state.contains("queue") && state["queue"].is_array()) {
    for (const Json& e : state["queue"]) {
      if (e.is_object() && e.contains("tenant") && e["tenant"].is_string()) ++queued[e["tenant"].get<std::string>()];
    }
  }
  if (state.contains("tenants") && state["tenants"].is_object()) {
    for (const auto& [tenant, t] : state["tenants"].items()) {
      for (const char* resource : {"cpu", "memoryMb", "jobs"}) {
        const util::metrics::Labels labels = {{"tenant", tenant}, {"resource", resource}};
        sink.Gauge("baton_tenant_quota", "A tenant's quota per resource (cpu cores, memoryMb, jobs; 0 = unlimited)",
                   labels, Number(t.value("quota", Json()), resource));
        sink.Gauge("baton_tenant_used", "What a tenant's running jobs hold per resource (cpu cores, memoryMb, jobs)",
                   labels, Number(t.value("used", Json()), resource));
      }
      sink.Gauge("baton_tenant_queued_jobs", "A tenant's jobs waiting in the scheduler's queue", {{"tenant", tenant}},
                 queued.count(tenant) ? queued[tenant] : 0);
    }
  }
  const Json capacity = state.value("capacity", Json());
  sink.Gauge("baton_node_capacity", "The capacity jobs may use (cpu cores, memoryMb)", {{"resource", "cpu"}},
             Number(capacity, "cpu"));
  sink.Gauge("baton_node_capacity", "The capacity jobs may use (cpu cores, memoryMb)", {{"resource", "memoryMb"}},
             Number(capacity, "memoryMb"));
}

}  // namespace baton::batch
