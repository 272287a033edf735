#include "app/cli/admin_commands.h"

#include "util/url.h"

namespace baton::cli {
namespace {

struct NodesOptions {
  GlobalOptions g;
  std::string state;
};

// "api,worker,jobs" from the details' roles.
std::string Roles(const OJson& node) {
  if (!node.contains("details") || !node["details"].is_object()) return "";
  const OJson& roles = node["details"]["roles"];
  std::string out;
  if (!roles.is_array()) return out;
  for (const OJson& r : roles) {
    if (r.is_string()) out += (out.empty() ? "" : ",") + r.get<std::string>();
  }
  return out;
}

void RunNodes(Session& s, const NodesOptions& o) {
  HttpRequestSpec spec;
  spec.target = "/api/v1/admin/nodes";
  if (!o.state.empty()) spec.target += "?state=" + util::PercentEncode(o.state);
  auto answer = s.CallForJson(spec, /*array=*/false);
  if (!answer) return;
  if (s.json()) {
    s.PrintJson(*answer);
    return;
  }
  const OJson& nodes = (*answer)["nodes"];
  if (!nodes.is_array()) {
    s.Fail(kExitError, "unexpected answer from the server: no array \"nodes\"");
    return;
  }
  std::vector<std::vector<std::string>> rows;
  const std::string self = Text(*answer, "thisNode");
  for (const OJson& n : nodes) {
    const OJson& leases = n.contains("leases") ? n["leases"] : OJson::object();
    rows.push_back({Text(n, "id") + (Text(n, "id") == self ? " *" : ""), Text(n, "state"), Roles(n),
                    Text(n, "version"), Text(n, "startedAt"), Text(n, "heartbeatAt"),
                    Text(leases, "instances"), Text(leases, "tasks")});
  }
  s.out() << FormatTable({"NODE", "STATE", "ROLES", "VERSION", "STARTED", "HEARTBEAT", "INSTANCES", "TASKS"},
                         rows);
  s.out() << "(* = the node that answered; INSTANCES and TASKS: leases held now)\n";
}

struct WorkersOptions {
  GlobalOptions g;
  std::string hub;
  bool hub_given = false;
};

void RunWorkers(Session& s, const WorkersOptions& o) {
  HttpRequestSpec spec;
  spec.target = "/api/v1/admin/workers";
  if (o.hub_given) spec.target += "?hub=" + util::PercentEncode(o.hub);
  auto answer = s.CallForJson(spec, /*array=*/false);
  if (!answer) return;
  if (s.json()) {
    s.PrintJson(*answer);
    return;
  }
  const OJson& hubs = (*answer)["hubs"];
  if (!hubs.is_array()) {
    s.Fail(kExitError, "unexpected answer from the server: no array \"hubs\"");
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const OJson& h : hubs) {
    std::string nodes;
    if (h.contains("byNode") && h["byNode"].is_object()) {
      for (const auto& [node, n] : h["byNode"].items()) {
        nodes += (nodes.empty() ? "" : ", ") + node + "=" + CompactJson(n);
      }
    }
    const std::string hub = Text(h, "hub");
    rows.push_back({hub.empty() ? "(default)" : hub, Text(h, "workers"), nodes});
  }
  s.out() << FormatTable({"TASK HUB", "WORKERS", "BY NODE"}, rows);
}

}  // namespace

std::vector<CLI::App*> AddAdminVerbs(CLI::App& app, const Io& io) {
  auto [nodes, no] = AddVerb<NodesOptions>(
      &app, "nodes",
      "List the nodes of the deployment: state, roles, version, heartbeat, leases held (admin key)", false, io,
      RunNodes);
  nodes->add_option("--state", no->state, "Only nodes in this state")
      ->check(CLI::IsMember({"up", "stopped", "gone", "unknown"}));
  auto [workers, wo] = AddVerb<WorkersOptions>(
      &app, "workers", "List the SDK workers connected over gRPC, per task hub and node (admin key)", false, io,
      RunWorkers);
  workers->add_option("--hub", wo->hub, "Only this task hub (a tenant id; \"\" = the default hub)")
      ->each([o = wo.get()](const std::string&) { o->hub_given = true; });
  return {nodes, workers};
}

}  // namespace baton::cli
