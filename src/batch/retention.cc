#include "batch/retention.h"

#include <algorithm>
#include <vector>

#include "batch/job_orchestration.h"
#include "util/log.h"

namespace baton::batch {

std::string TenantOfInstance(const std::string& id) {
  if (const size_t hub = id.find(kHubSeparator); hub != std::string::npos) return id.substr(0, hub);
  const std::string_view jobs = kJobInstancePrefix;
  if (id.compare(0, jobs.size(), jobs) == 0) {
    const size_t dot = id.find('.', jobs.size());
    if (dot != std::string::npos) return id.substr(jobs.size(), dot - jobs.size());
  }
  return "";
}

RetentionPurger::RetentionPurger(Client& client, SecretVault* vault, JobLogs* logs, RetentionOptions options)
    : client_(client), vault_(vault), logs_(logs), options_(std::move(options)) {
  if (!options_.clock) options_.clock = SystemClock();
  options_.batch_size = std::clamp(options_.batch_size, 1, 1000);
}

RetentionPurger::~RetentionPurger() { Stop(); }

bool RetentionPurger::Stopping() {
  std::lock_guard lock(mu_);
  return stop_;
}

RetentionReport RetentionPurger::Totals() const {
  std::lock_guard lock(mu_);
  return totals_;
}

Status RetentionPurger::PurgePrefix(const std::string& prefix, TimePoint cutoff,
                                    const std::map<std::string, std::chrono::seconds>* skip,
                                    RetentionReport* report) {
  InstanceQuery q;
  q.instance_id_prefix = prefix;
  q.statuses = {OrchestrationStatus::kCompleted, OrchestrationStatus::kFailed, OrchestrationStatus::kCanceled,
                OrchestrationStatus::kTerminated};
  // Finished before the cutoff implies created before it: the store skips the rest.
  q.created_to = cutoff;
  q.page_size = options_.batch_size;
  for (;;) {
    if (Stopping()) return Status::Ok();
    const auto started = std::chrono::steady_clock::now();
    BATON_ASSIGN_OR_RETURN(QueryPage page, client_.Query(q));
    for (const InstanceState& s : page.instances) {
      if (!IsTerminal(s.status)) continue;
      const TimePoint finished = s.completed_at.value_or(s.last_updated_at);
      if (!(finished < cutoff)) continue;
      if (skip != nullptr && skip->count(TenantOfInstance(s.instance_id))) continue;
      const bool job = s.instance_id.rfind(kJobInstancePrefix, 0) == 0;
      if (job) {
        // Logs and secrets first: if this pass stops here, the instance is
        // still there and the next pass deletes all three again.
        if (logs_ != nullptr && !logs_->Delete(s.instance_id).ok()) continue;
        if (vault_ != nullptr && !vault_->Delete(s.instance_id).ok()) continue;
      }
      if (auto purged = client_.Purge(s.instance_id); purged.ok() && *purged > 0) {
        ++report->instances_purged;
        report->jobs_purged += job;
        std::lock_guard lock(mu_);
        ++totals_.instances_purged;
        totals_.jobs_purged += job;
      }
    }
    if (page.continuation_token.empty()) return Status::Ok();
    q.continuation_token = page.continuation_token;
    // Leave the store to the work at least as long as this batch took.
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::max(took, options_.min_pause), [this] { return stop_; });
  }
}

Result<RetentionReport> RetentionPurger::RunOnce() {
  std::map<std::string, std::chrono::seconds> tenants;
  if (options_.tenant_ages) {
    BATON_ASSIGN_OR_RETURN(tenants, options_.tenant_ages());
  }
  const TimePoint now = options_.clock->Now();
  RetentionReport report;
  if (options_.global_age) {
    // Everything, but the tenants with an age of their own.
    BATON_RETURN_IF_ERROR(PurgePrefix("", now - *options_.global_age, &tenants, &report));
  }
  for (const auto& [tenant, age] : tenants) {
    if (age == kKeepForever) continue;
    for (const std::string& prefix : {tenant + std::string(kHubSeparator), kJobInstancePrefix + tenant + "."}) {
      BATON_RETURN_IF_ERROR(PurgePrefix(prefix, now - age, nullptr, &report));
    }
  }
  return report;
}

void RetentionPurger::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] {
    for (;;) {
      auto pass = RunOnce();  // an error: the next pass tries again
      if (!pass.ok()) {
        util::Log().warn("retention: pass stopped: {}", pass.status().ToString());
      } else if (pass->instances_purged > 0) {
        util::Log().info("retention: purged {} finished instance(s), {} of them job(s)", pass->instances_purged,
                         pass->jobs_purged);
      }
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, options_.interval, [this] { return stop_; })) return;
    }
  });
}

void RetentionPurger::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace baton::batch
