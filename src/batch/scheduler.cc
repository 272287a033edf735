#include "batch/scheduler.h"

#include <algorithm>
#include <limits>
#include <map>

namespace baton::batch {
namespace {

double Number(const Json& j, const char* key) { return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0; }

Json& TenantOf(Json& s, const std::string& tenant) {
  Json& tenants = s["tenants"];
  if (!tenants.contains(tenant)) {
    tenants[tenant] = {{"quota", {{"cpu", 0}, {"memoryMb", 0}, {"jobs", 0}}},
                       {"weight", 1.0},
                       {"used", {{"cpu", 0.0}, {"memoryMb", 0.0}, {"jobs", 0.0}}}};
  }
  return tenants[tenant];
}

bool Fits(Json& s, const Json& entry) {
  Json& t = TenantOf(s, entry["tenant"]);
  const Json& quota = t["quota"];
  const Json& used = t["used"];
  double cpu = entry["cpu"].get<double>(), mem = entry["memoryMb"].get<double>();
  auto within = [](double used_v, double need, double limit) { return limit <= 0 || used_v + need <= limit + 1e-9; };
  if (!within(used["cpu"], cpu, quota["cpu"]) || !within(used["memoryMb"], mem, quota["memoryMb"]) ||
      !within(used["jobs"], 1, quota["jobs"])) {
    return false;
  }
  double node_cpu = 0, node_mem = 0;
  for (const auto& [job, r] : s["running"].items()) {
    node_cpu += r["cpu"].get<double>();
    node_mem += r["memoryMb"].get<double>();
  }
  return within(node_cpu, cpu, s["capacity"]["cpu"]) && within(node_mem, mem, s["capacity"]["memoryMb"]);
}

// The tenant's dominant share of the node, divided by its weight.
double Share(Json& s, const std::string& tenant) {
  Json& t = TenantOf(s, tenant);
  double cap_cpu = s["capacity"]["cpu"].get<double>(), cap_mem = s["capacity"]["memoryMb"].get<double>();
  double cpu_share = cap_cpu > 0 ? t["used"]["cpu"].get<double>() / cap_cpu : t["used"]["jobs"].get<double>();
  double mem_share = cap_mem > 0 ? t["used"]["memoryMb"].get<double>() / cap_mem : 0;
  return std::max(cpu_share, mem_share) / t["weight"].get<double>();
}

class Scheduler {
 public:
  explicit Scheduler(Json state) : s_(NormalizedSchedulerState(std::move(state))) {}
  Json& state() { return s_; }

  void SetTenant(const Json& in) {
    std::string tenant = in.value("tenant", "");
    if (tenant.empty()) throw DurableError("InvalidArgument", "setTenant needs a tenant");
    Json& t = TenantOf(s_, tenant);
    t["quota"] = {{"cpu", Number(in, "cpu")}, {"memoryMb", Number(in, "memoryMb")}, {"jobs", Number(in, "jobs")}};
    double weight = Number(in, "weight");
    t["weight"] = weight > 0 ? weight : 1.0;
  }

  // Grants what fits after the limits changed (setTenant, setCapacity).
  void Grant(EntityContext& ctx) { Dispatch(ctx, ""); }

  Json Request(const Json& in, EntityContext& ctx) {
    std::string job = in.value("job", "");
    if (job.empty()) throw DurableError("InvalidArgument", "request needs a job");
    if (s_["running"].contains(job)) return {{"granted", true}, {"position", 0}};
    if (Position(job) == 0) {
      Json entry = {{"job", job},
                    {"tenant", in.value("tenant", "")},
                    {"instance", in.value("instance", "")},
                    {"cpu", Number(in, "cpu")},
                    {"memoryMb", Number(in, "memoryMb")},
                    {"priority", in.value("priority", 0)},
                    {"seq", s_["seq"].get<int64_t>()}};
      s_["seq"] = s_["seq"].get<int64_t>() + 1;
      TenantOf(s_, entry["tenant"]);
      s_["queue"].push_back(std::move(entry));
    }
    Dispatch(ctx, job);
    if (s_["running"].contains(job)) return {{"granted", true}, {"position", 0}};
    return {{"granted", false}, {"position", Position(job)}};
  }

  // A granted (or queued) job asks for a new size (a retry with more memory
  // after an OOM kill): a size that can never fit the tenant's quota or the
  // node (a cluster's largest node) is refused with the reason, and the old
  // claim is kept; otherwise the old claim is given back and the new one
  // granted when it fits now, or queued first among its tenant's jobs.
  Json Resize(const Json& in, EntityContext& ctx) {
    std::string job = in.value("job", "");
    if (job.empty()) throw DurableError("InvalidArgument", "resize needs a job");
    const std::string tenant = in.value("tenant", "");
    const double cpu = Number(in, "cpu"), mem = Number(in, "memoryMb");
    const Json& quota = TenantOf(s_, tenant)["quota"];
    const Json& cap = s_["capacity"];
    auto never = [&](const std::string& why) { return Json{{"granted", false}, {"neverFits", true}, {"reason", why}}; };
    auto mib = [](double v) { return std::to_string(static_cast<int64_t>(v)) + " MiB"; };
    if (Number(quota, "memoryMb") > 0 && mem > Number(quota, "memoryMb") + 1e-9) {
      return never("needs " + mib(mem) + " but the tenant's memory quota is " + mib(Number(quota, "memoryMb")));
    }
    if (Number(quota, "cpu") > 0 && cpu > Number(quota, "cpu") + 1e-9) {
      return never("needs more cores than the tenant's CPU quota");
    }
    const double node_mem = cap.contains("largestNode") ? Number(cap["largestNode"], "memoryMb") : Number(cap, "memoryMb");
    if (node_mem > 0 && mem > node_mem + 1e-9) {
      return never("needs " + mib(mem) + " but the largest node has " + mib(node_mem) + " for jobs");
    }
    // The job keeps its place in arrival order.
    const int64_t seq = ReleaseSchedulerJob(s_, job).value_or(s_["seq"].get<int64_t>());
    Json& q = s_["queue"];
    Json entry = {{"job", job},     {"tenant", tenant},           {"instance", in.value("instance", "")},
                  {"cpu", cpu},     {"memoryMb", mem},            {"priority", in.value("priority", 0)},
                  {"seq", seq}};
    q.insert(q.begin(), std::move(entry));
    Dispatch(ctx, job);
    if (s_["running"].contains(job)) return {{"granted", true}, {"position", 0}};
    return {{"granted", false}, {"position", Position(job)}};
  }

  void Release(const Json& in, EntityContext& ctx) {
    ReleaseSchedulerJob(s_, in.value("job", ""));
    Dispatch(ctx, "");
  }

  // 1-based place of `job` in the node's queue, in arrival order (0 when not
  // queued). Fair share may grant others first; the place says how long the
  // queue ahead is, not a promise of order.
  int Position(const std::string& job) {
    const Json& q = s_["queue"];
    for (size_t i = 0; i < q.size(); ++i) {
      if (q[i]["job"] == job) return static_cast<int>(i) + 1;
    }
    return 0;
  }

 private:
  // Grants queued jobs while some fit, fairest tenant first. The requester
  // (if any) learns of its grant from the operation's result; the others by
  // the QuotaGranted event.
  void Dispatch(EntityContext& ctx, const std::string& requester) {
    while (std::optional<size_t> pick = NextSchedulerGrant(s_)) {
      const Json entry = GrantSchedulerJob(s_, *pick);
      const std::string job = entry["job"];
      if (job != requester && !entry["instance"].get<std::string>().empty()) {
        ctx.RaiseEvent(entry["instance"], kQuotaGrantedEvent, Json{{"job", job}});
      }
    }
  }

  Json s_;
};

}  // namespace

Json NormalizedSchedulerState(Json s) {
  if (!s.is_object()) s = Json::object();
  for (const char* k : {"tenants", "running"}) {
    if (!s.contains(k) || !s[k].is_object()) s[k] = Json::object();
  }
  if (!s.contains("queue") || !s["queue"].is_array()) s["queue"] = Json::array();
  if (!s.contains("capacity") || !s["capacity"].is_object()) s["capacity"] = {{"cpu", 0}, {"memoryMb", 0}};
  if (!s.contains("seq")) s["seq"] = 0;
  return s;
}

std::optional<size_t> NextSchedulerGrant(Json& s) {
  const Json& q = s["queue"];
  // Each tenant's next job: highest priority, then earliest.
  std::map<std::string, size_t> head;
  for (size_t i = 0; i < q.size(); ++i) {
    std::string tenant = q[i]["tenant"];
    auto it = head.find(tenant);
    if (it == head.end()) {
      head[tenant] = i;
    } else {
      const Json& best = q[it->second];
      if (q[i]["priority"].get<int>() > best["priority"].get<int>()) it->second = i;
    }
  }
  std::optional<size_t> pick;
  double best_share = std::numeric_limits<double>::max();
  for (const auto& [tenant, index] : head) {
    if (!Fits(s, s["queue"][index])) continue;
    double share = Share(s, tenant);
    if (share < best_share) {
      best_share = share;
      pick = index;
    }
  }
  return pick;
}

Json GrantSchedulerJob(Json& s, size_t index) {
  Json& q = s["queue"];
  Json entry = q[index];
  q.erase(index);
  Json& used = TenantOf(s, entry["tenant"])["used"];
  used["cpu"] = used["cpu"].get<double>() + entry["cpu"].get<double>();
  used["memoryMb"] = used["memoryMb"].get<double>() + entry["memoryMb"].get<double>();
  used["jobs"] = used["jobs"].get<double>() + 1;
  s["running"][entry["job"].get<std::string>()] = entry;
  return entry;
}

std::optional<int64_t> ReleaseSchedulerJob(Json& s, const std::string& job) {
  std::optional<int64_t> seq;
  if (s["running"].contains(job)) {
    const Json r = s["running"][job];
    Json& used = TenantOf(s, r["tenant"])["used"];
    used["cpu"] = std::max(0.0, used["cpu"].get<double>() - r["cpu"].get<double>());
    used["memoryMb"] = std::max(0.0, used["memoryMb"].get<double>() - r["memoryMb"].get<double>());
    used["jobs"] = std::max(0.0, used["jobs"].get<double>() - 1);
    if (r.contains("seq")) seq = r["seq"].get<int64_t>();
    s["running"].erase(job);
  }
  Json& q = s["queue"];
  for (size_t i = 0; i < q.size(); ++i) {
    if (q[i]["job"] == job) {
      if (q[i].contains("seq")) seq = q[i]["seq"].get<int64_t>();
      q.erase(i);
      break;
    }
  }
  return seq;
}

Json SchedulerEntity(EntityContext& ctx) {
  Scheduler scheduler(ctx.HasState() ? ctx.RawState() : Json::object());
  Json input = FromPayload(ctx.RawInput());
  Json result;
  const std::string& op = ctx.OperationName();
  if (op == "setCapacity") {
    Json capacity = {{"cpu", Number(input, "cpu")}, {"memoryMb", Number(input, "memoryMb")}};
    // A cluster's: its largest node too (what one job can never exceed).
    if (input.contains("largestNode") && input["largestNode"].is_object()) {
      capacity["largestNode"] = {{"cpu", Number(input["largestNode"], "cpu")},
                                 {"memoryMb", Number(input["largestNode"], "memoryMb")}};
      capacity["nodes"] = Number(input, "nodes");
    }
    scheduler.state()["capacity"] = std::move(capacity);
    scheduler.Grant(ctx);  // what fits now starts now
  } else if (op == "setTenant") {
    scheduler.SetTenant(input);
    scheduler.Grant(ctx);
  } else if (op == "request") {
    result = scheduler.Request(input, ctx);
  } else if (op == "resize") {
    result = scheduler.Resize(input, ctx);
  } else if (op == "release") {
    scheduler.Release(input, ctx);
  } else if (op == "position") {
    std::string job = input.value("job", "");
    bool granted = scheduler.state()["running"].contains(job);
    result = {{"granted", granted}, {"position", granted ? 0 : scheduler.Position(job)}};
  } else if (op == "snapshot") {
    return scheduler.state();
  } else {
    throw DurableError("UnknownOperation", "the scheduler has no operation '" + op + "'");
  }
  ctx.SetState(std::move(scheduler.state()));
  return result;
}

}  // namespace baton::batch
