#include "batch/job_eta.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "batch/job_orchestration.h"
#include "batch/job_view.h"
#include "batch/scheduler.h"

namespace baton::batch {
namespace {

Json Parsed(const std::string& payload) {
  Json j = FromPayload(payload);
  return j.is_object() ? j : Json::object();
}

std::string NameOf(const InstanceState& s) {
  const Json in = Parsed(s.input);
  return in.contains("spec") && in["spec"].is_object() ? in["spec"].value("name", "") : "";
}

std::optional<TimePoint> TimeAt(const Json& object, const char* key) {
  TimePoint t;
  if (!object.is_object() || !object.contains(key) || !object[key].is_string()) return std::nullopt;
  if (!ParseIso8601(object[key].get<std::string>(), &t)) return std::nullopt;
  return t;
}

// When a running job was granted: its custom status says so (from this
// version on); an older job's history does.
std::optional<TimePoint> GrantedAt(Client& client, const InstanceState& s) {
  if (auto t = TimeAt(Parsed(s.custom_status), "grantedAt")) return t;
  auto history = client.GetHistory(s.instance_id);
  if (!history.ok()) return std::nullopt;
  std::optional<TimePoint> granted;
  for (const Json& item : JobTimeline(*history)) {
    if (item.value("type", "") == "QuotaGranted") granted = TimeAt(item, "time");
  }
  return granted;
}

// The hold times by name of `tenant`'s recent finished runs, for `names`.
Result<std::map<std::string, std::optional<RunDurations>>> ReadTenantDurations(Client& client,
                                                                               const std::string& tenant,
                                                                               const std::set<std::string>& names) {
  std::map<std::string, std::vector<Seconds>> holds;
  InstanceQuery q;
  q.instance_id_prefix = JobInstanceId(tenant, "");
  q.name_prefix = kJobOrchestrator;
  q.statuses = {OrchestrationStatus::kCompleted};
  q.order = InstanceOrder::kNewestFirst;
  q.include_payloads = true;
  q.page_size = 100;
  int read = 0;
  while (read < kEtaHistoryScan) {
    BATON_ASSIGN_OR_RETURN(QueryPage page, client.Query(q));
    for (const InstanceState& s : page.instances) {
      ++read;
      if (s.name != kJobOrchestrator) continue;
      const std::string name = NameOf(s);
      if (!names.count(name)) continue;
      std::vector<Seconds>& h = holds[name];
      if (static_cast<int>(h.size()) >= kEtaSamples) continue;
      const Json out = Parsed(s.output);
      if (out.value("status", "") == "Canceled") continue;  // cut short: says nothing of how long it runs
      const Json durations = out.value("durations", Json::object());
      auto granted = TimeAt(durations, "granted");
      auto finished = TimeAt(durations, "finished");
      if (granted && finished) h.push_back(*finished - *granted);
    }
    if (page.continuation_token.empty()) break;
    q.continuation_token = page.continuation_token;
  }
  std::map<std::string, std::optional<RunDurations>> out;
  for (const std::string& name : names) out[name] = SummarizeRunDurations(holds[name]);
  return out;
}

// "21:10:04Z" of "2026-12-03T21:10:04.123456Z": the date is rarely news.
std::string Clock(TimePoint t) {
  const std::string iso = FormatIso8601(t);
  const size_t at = iso.find('T');
  if (at == std::string::npos || iso.size() < at + 9) return iso;
  return iso.substr(at + 1, 8) + "Z";
}

std::string Duration(Seconds s) {
  const long n = std::lround(std::max(0.0, s.count()));
  if (n < 120) return std::to_string(n) + " s";
  if (n < 7200) return std::to_string((n + 30) / 60) + " min";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f h", n / 3600.0);
  return buf;
}

}  // namespace

Result<EtaSnapshot> ReadEtaSnapshot(Client& client, const Json& scheduler, TimePoint now) {
  EtaSnapshot snap;
  snap.now = now;
  snap.scheduler = NormalizedSchedulerState(scheduler);
  // Each job's name and tenant, and a running job's grant time.
  struct Known {
    std::string tenant, name;
  };
  std::map<std::string, Known> known;
  int read = 0;
  auto read_job = [&](const Json& entry, bool running) -> Status {
    const std::string key = entry.value("job", "");
    const std::string instance = entry.value("instance", "").empty() ? key : entry.value("instance", "");
    if (key.empty() || read >= kEtaMaxJobsRead) return Status::Ok();
    ++read;
    auto s = client.GetState(instance, /*include_payloads=*/true);
    if (!s.ok() && s.status().code() == StatusCode::kNotFound) return Status::Ok();
    if (!s.ok()) return s.status();
    known[key] = {entry.value("tenant", ""), NameOf(*s)};
    EtaJobInfo& info = snap.jobs[key];
    info.name = known[key].name;
    if (running) info.granted_at = GrantedAt(client, *s);
    return Status::Ok();
  };
  for (const auto& [key, entry] : snap.scheduler["running"].items()) BATON_RETURN_IF_ERROR(read_job(entry, true));
  for (const Json& entry : snap.scheduler["queue"]) BATON_RETURN_IF_ERROR(read_job(entry, false));
  // The hold times of each name, one scan per tenant.
  std::map<std::string, std::set<std::string>> names;  // tenant -> names
  for (const auto& [key, k] : known) {
    if (!k.name.empty()) names[k.tenant].insert(k.name);
  }
  std::map<std::pair<std::string, std::string>, std::optional<RunDurations>> durations;
  int tenants = 0;
  for (const auto& [tenant, wanted] : names) {
    if (++tenants > kEtaMaxTenantsRead) break;
    BATON_ASSIGN_OR_RETURN(auto by_name, ReadTenantDurations(client, tenant, wanted));
    for (auto& [name, d] : by_name) durations[{tenant, name}] = d;
  }
  for (auto& [key, info] : snap.jobs) {
    const Known& k = known[key];
    auto it = durations.find({k.tenant, k.name});
    if (it != durations.end()) info.durations = it->second;
  }
  return snap;
}

Json EtaJson(const EtaSnapshot& snap, const EtaEstimate& e, const std::optional<RunDurations>& own,
             const std::string& viewer) {
  Json out = {{"basis", EtaBasisName(e.basis)},
              {"estimatedAt", FormatIso8601(snap.now)},
              {"startAt", nullptr},
              {"startBy", nullptr},
              {"inSeconds", nullptr},
              {"waitsFor", {{"runningJobs", e.running_first}, {"queuedJobs", e.queued_first}}}};
  auto tenant_of = [&](const std::string& key) -> std::string {
    const Json& s = snap.scheduler;
    if (s.contains("running") && s["running"].contains(key)) return s["running"][key].value("tenant", "");
    if (s.contains("queue")) {
      for (const Json& q : s["queue"]) {
        if (q.value("job", "") == key) return q.value("tenant", "");
      }
    }
    return "";
  };
  // Jobs without history: the viewer's own by name, other tenants' counted.
  Json names = Json::array();
  int others = 0, own_unknown = 0;
  std::set<std::string> seen;
  for (const std::string& key : e.unknown) {
    if (!viewer.empty() && tenant_of(key) != viewer) {
      ++others;
      continue;
    }
    ++own_unknown;
    auto it = snap.jobs.find(key);
    const std::string name = it == snap.jobs.end() || it->second.name.empty() ? "?" : it->second.name;
    if (seen.insert(name).second) names.push_back(name);
  }
  if (!e.unknown.empty()) {
    out["withoutHistory"] = {{"names", names}, {"ownJobs", own_unknown}, {"otherTenantsJobs", others}};
  }
  out["runTime"] = own ? Json{{"p50Seconds", std::round(own->p50.count() * 10) / 10},
                              {"p90Seconds", std::round(own->p90.count() * 10) / 10},
                              {"runs", own->samples}}
                       : Json(nullptr);
  std::string waits;
  if (e.running_first > 0) {
    waits = e.running_first == 1 ? "1 running job ends" : std::to_string(e.running_first) + " running jobs end";
  }
  if (e.queued_first > 0) {
    waits += (waits.empty() ? "" : " and ") + (e.queued_first == 1
                                                   ? "1 job queued ahead starts"
                                                   : std::to_string(e.queued_first) + " jobs queued ahead start");
  }
  std::string summary;
  switch (e.basis) {
    case EtaEstimate::Basis::kHistory:
    case EtaEstimate::Basis::kLowerBound: {
      const Seconds in = std::max(Seconds(0), Seconds(*e.start_at - snap.now));
      out["startAt"] = FormatIso8601(*e.start_at);
      out["inSeconds"] = std::round(in.count() * 10) / 10;
      if (e.basis == EtaEstimate::Basis::kHistory) {
        summary = "expected to start at " + Clock(*e.start_at) + " (in " + Duration(in);
        if (e.start_by && Clock(*e.start_by) != Clock(*e.start_at)) {
          summary += ", by " + Clock(*e.start_by) + " at p90 run times";
        }
        if (e.start_by) out["startBy"] = FormatIso8601(*e.start_by);
        summary += ")";
      } else {
        std::string without;
        if (own_unknown > 0) {
          std::string list;
          for (const Json& n : names) list += (list.empty() ? "" : ", ") + n.get<std::string>();
          without = std::to_string(own_unknown) + " of this tenant's: " + list;
        }
        if (others > 0) without += (without.empty() ? "" : "; ") + std::to_string(others) + " of other tenants'";
        summary = "no start estimate: it waits for jobs without run history (" + without +
                  "); it starts no earlier than " + Clock(*e.start_at) + " (in " + Duration(in) + ")";
      }
      if (!waits.empty()) summary += ", after " + waits;
      break;
    }
    case EtaEstimate::Basis::kNotQueued:
      summary = "not queued";
      break;
    case EtaEstimate::Basis::kNever:
      summary = "no start estimate: no expected end of a running job frees enough capacity for it";
      break;
  }
  out["summary"] = summary;
  return out;
}

Result<Json> JobEta(Client& client, const Json& scheduler, const std::string& job, const std::string& viewer,
                    TimePoint now) {
  BATON_ASSIGN_OR_RETURN(EtaSnapshot snap, ReadEtaSnapshot(client, scheduler, now));
  const EtaEstimate e = EstimateStart(snap, job);
  if (e.basis == EtaEstimate::Basis::kNotQueued) return Json(nullptr);
  std::optional<RunDurations> own;
  if (auto it = snap.jobs.find(job); it != snap.jobs.end()) own = it->second.durations;
  return EtaJson(snap, e, own, viewer);
}

}  // namespace baton::batch
