#include "batch/rightsize.h"

#include <algorithm>
#include <cmath>

#include "batch/job_orchestration.h"
#include "batch/job_view.h"

namespace baton::batch {
namespace {

constexpr int64_t kMiB = 1 << 20;

double Round(double v, double unit) { return std::round(v / unit) * unit; }

}  // namespace

std::vector<MeasuredAttempt> MeasuredAttempts(const std::string& job_id, const Json& result) {
  std::vector<MeasuredAttempt> out;
  if (!result.is_object() || !result.contains("attemptResults") || !result["attemptResults"].is_array()) return out;
  for (const Json& a : result["attemptResults"]) {
    if (!a.is_object() || !a.value("peakMemoryBytes", Json()).is_number_integer()) continue;
    MeasuredAttempt m;
    m.job_id = job_id;
    m.attempt = a.value("attempt", 0);
    m.cpu_limit = a.value("cpuLimit", Json()).is_number() ? a["cpuLimit"].get<double>() : 0;
    m.memory_limit_bytes = a.value("memoryLimitBytes", Json()).is_number_integer() ? a["memoryLimitBytes"].get<int64_t>() : 0;
    m.peak_memory_bytes = a["peakMemoryBytes"].get<int64_t>();
    if (a.value("avgCores", Json()).is_number()) m.avg_cores = a["avgCores"].get<double>();
    m.oom_killed = a.value("oomKilled", false);
    out.push_back(m);
  }
  return out;
}

double NearestRankPercentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

Json Rightsize(const std::string& name, int runs, const std::vector<MeasuredAttempt>& attempts, double requested_cpu,
               int64_t requested_memory_mb, const RightsizeOptions& options) {
  Json out = {{"name", name},
              {"runs", runs},
              {"measuredAttempts", attempts.size()},
              {"headroom", options.headroom},
              {"requested", {{"cpu", requested_cpu}, {"memoryMb", requested_memory_mb}}},
              {"observed", nullptr},
              {"recommended", nullptr},
              {"saving", nullptr}};
  std::vector<double> peaks_mb, cores;
  int64_t oom_limit = 0;
  int oom_killed = 0;
  for (const MeasuredAttempt& a : attempts) {
    if (a.oom_killed) {
      // Killed at its limit: the peak says only "more than that".
      ++oom_killed;
      oom_limit = std::max(oom_limit, a.memory_limit_bytes);
      continue;
    }
    peaks_mb.push_back(static_cast<double>(a.peak_memory_bytes) / kMiB);
    if (a.avg_cores) cores.push_back(*a.avg_cores);
  }
  const int enough_at = std::max(1, options.min_runs);
  if (static_cast<int>(peaks_mb.size()) < enough_at || static_cast<int>(cores.size()) < enough_at) {
    out["enough"] = false;
    out["message"] = "too little history: " + std::to_string(std::min(peaks_mb.size(), cores.size())) +
                     " measured attempt(s) of job '" + name + "' that were not OOM-killed among its last " +
                     std::to_string(runs) + " run(s); at least " + std::to_string(enough_at) +
                     " are needed (attempts shorter than the sampling interval have no figures)";
    return out;
  }
  out["enough"] = true;
  const double peak_p95 = NearestRankPercentile(peaks_mb, 95);
  const double cores_p95 = NearestRankPercentile(cores, 95);
  out["observed"] = {{"peakMemoryMbP95", Round(peak_p95, 0.1)},
                     {"peakMemoryMbMax", Round(*std::max_element(peaks_mb.begin(), peaks_mb.end()), 0.1)},
                     {"avgCoresP95", Round(cores_p95, 0.001)},
                     {"avgCoresMax", Round(*std::max_element(cores.begin(), cores.end()), 0.001)},
                     {"oomKilled", oom_killed}};
  const double factor = 1.0 + options.headroom;
  int64_t memory_mb = static_cast<int64_t>(std::ceil(peak_p95 * factor - 1e-9));
  if (oom_limit > 0) {
    memory_mb = std::max(memory_mb, static_cast<int64_t>(std::ceil(static_cast<double>(oom_limit) / kMiB * factor - 1e-9)));
  }
  memory_mb = std::max<int64_t>(memory_mb, 6);
  double cpu = std::ceil(cores_p95 * factor * 100 - 1e-9) / 100;
  cpu = std::max(cpu, 0.01);
  out["recommended"] = {{"cpu", cpu}, {"memoryMb", memory_mb}};
  const double cpu_saving = Round(requested_cpu - cpu, 0.01);
  const int64_t memory_saving = requested_memory_mb - memory_mb;
  out["saving"] = {{"cpu", cpu_saving},
                   {"memoryMb", memory_saving},
                   {"cpuPercent", requested_cpu > 0 ? Round(cpu_saving / requested_cpu * 100, 0.1) : 0.0},
                   {"memoryPercent", requested_memory_mb > 0
                                         ? Round(static_cast<double>(memory_saving) / static_cast<double>(requested_memory_mb) * 100, 0.1)
                                         : 0.0}};
  return out;
}

Result<Json> RightsizeJobName(Client& client, const std::string& tenant, const std::string& name, int max_runs,
                              int max_scanned, const RightsizeOptions& options) {
  InstanceQuery q;
  // The tenant's own jobs only: the prefix names its tenant.
  q.instance_id_prefix = JobInstanceId(tenant, "");
  q.name_prefix = kJobOrchestrator;
  q.statuses = {OrchestrationStatus::kCompleted};  // the job orchestration completes whatever the job's status
  q.order = InstanceOrder::kNewestFirst;
  q.include_payloads = true;
  q.page_size = 100;
  std::vector<MeasuredAttempt> attempts;
  int runs = 0;
  int scanned = 0;
  double requested_cpu = 0;
  int64_t requested_memory_mb = 0;
  while (runs < max_runs && scanned < max_scanned) {
    BATON_ASSIGN_OR_RETURN(QueryPage page, client.Query(q));
    for (const InstanceState& s : page.instances) {
      ++scanned;
      const Json in = FromPayload(s.input);
      if (!in.is_object() || !in.contains("spec") || !in["spec"].is_object() || in["spec"].value("name", "") != name) {
        continue;
      }
      if (in["spec"].contains("array")) continue;  // an array job's parent runs nothing itself
      const Json result = FromPayload(s.output);
      // A job that ended before any attempt (canceled while queued, refused
      // at its first step) says nothing about what the job needs.
      if (!result.is_object() || result.value("attempts", 0) == 0) continue;
      if (runs == 0) {  // the newest: what the job asks for now
        requested_cpu = in["spec"].value("cpu", 0.5);
        requested_memory_mb = in["spec"].value("memoryMb", int64_t{256});
      }
      ++runs;
      std::vector<MeasuredAttempt> m = MeasuredAttempts(in.value("id", ""), result);
      attempts.insert(attempts.end(), m.begin(), m.end());
      if (runs >= max_runs || scanned >= max_scanned) break;
    }
    if (page.continuation_token.empty()) break;
    q.continuation_token = page.continuation_token;
  }
  if (runs == 0) return NotFoundError("no finished job named '" + name + "'");
  return Rightsize(name, runs, attempts, requested_cpu, requested_memory_mb, options);
}

}  // namespace baton::batch
