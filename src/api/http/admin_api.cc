#include "api/http/admin_api.h"

#include <map>
#include <set>

#include "api/http/request_util.h"

namespace baton::api {
namespace {

namespace http = boost::beast::http;

// Refuses every query parameter but `allowed` (hostile or misspelt ones get
// a 400 naming them, rather than being ignored).
bool OnlyKnownParams(const RouteMatch& m, const std::set<std::string>& allowed, HttpResponse* error) {
  for (const auto& [name, value] : m.query) {
    (void)value;
    if (!allowed.contains(name)) {
      std::string shown = name.size() > 40 ? name.substr(0, 40) + "…" : name;
      for (char& ch : shown) {
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
      }
      *error = ErrorResponse(400, "InvalidArgument", "unknown query parameter '" + shown + "'", name);
      return false;
    }
  }
  return true;
}

std::optional<Json> ParseDetails(const std::string& text) {
  Json j;
  if (text.empty() || !ParseJson(text, &j).ok() || !j.is_object()) return std::nullopt;
  return j;
}

Json NodeJson(const NodeInfo& n, const std::string& this_node) {
  Json j{{"id", n.node_id}, {"state", NodeStateName(n.state)}, {"thisNode", n.node_id == this_node}};
  j["version"] = n.version;
  if (auto details = ParseDetails(n.details)) j["details"] = std::move(*details);
  if (n.started_at) j["startedAt"] = FormatIso8601(*n.started_at);
  if (n.heartbeat_at) j["heartbeatAt"] = FormatIso8601(*n.heartbeat_at);
  if (n.stopped_at) j["stoppedAt"] = FormatIso8601(*n.stopped_at);
  Json tasks = Json::array();
  for (const LeasedTask& t : n.leased_tasks) {
    tasks.push_back(Json{{"seq", t.seq}, {"instanceId", t.instance_id}, {"name", t.name}});
  }
  j["leases"] = Json{{"instances", n.instance_leases},
                     {"tasks", n.task_leases},
                     {"instanceIds", n.leased_instances},
                     {"taskList", std::move(tasks)},
                     {"listedAtMost", kMaxListedLeases}};
  return j;
}

class AdminApi : public std::enable_shared_from_this<AdminApi> {
 public:
  explicit AdminApi(AdminApiServices s) : s_(std::move(s)) {}

  void Register(Router& r) {
    r.Add(http::verb::get, "/api/v1/admin/nodes", Bind(&AdminApi::Nodes));
    r.Add(http::verb::get, "/api/v1/admin/workers", Bind(&AdminApi::Workers));
  }

 private:
  using Method = HttpResponse (AdminApi::*)(const RouteMatch&);

  Handler Bind(Method m) {
    return [self = shared_from_this(), m](const HttpRequest& req, const RouteMatch& match) {
      auto principal = AuthenticateBearer(req, *self->s_.directory, self->s_.admission);
      if (auto* refused = std::get_if<HttpResponse>(&principal)) return std::move(*refused);
      if (!std::get<tenancy::Principal>(principal).admin) {
        return ErrorResponse(403, "PermissionDenied", "this endpoint needs an admin key", "Authorization");
      }
      return ((*self).*m)(match);
    };
  }

  HttpResponse Nodes(const RouteMatch& m) {
    HttpResponse error;
    if (!OnlyKnownParams(m, {"state"}, &error)) return error;
    const std::string state = m.Query("state");
    if (m.Has("state") && state != "up" && state != "stopped" && state != "gone" && state != "unknown") {
      return ErrorResponse(400, "InvalidArgument", "state is one of up, stopped, gone, unknown", "state");
    }
    auto nodes = s_.store->ListNodes();
    if (!nodes.ok()) return ErrorResponse(nodes.status());
    Json list = Json::array();
    for (const NodeInfo& n : *nodes) {
      if (!state.empty() && state != NodeStateName(n.state)) continue;
      list.push_back(NodeJson(n, s_.node_id));
    }
    return JsonResponse(200, Json{{"thisNode", s_.node_id},
                                  {"heartbeatSeconds", kNodeHeartbeatEvery.count()},
                                  {"goneAfterSeconds", kNodeGoneAfter.count()},
                                  {"nodes", std::move(list)}});
  }

  HttpResponse Workers(const RouteMatch& m) {
    HttpResponse error;
    if (!OnlyKnownParams(m, {"hub"}, &error)) return error;
    std::optional<std::string> hub;  // "" = the default hub
    if (m.Has("hub")) {
      const std::string h = m.Query("hub");
      if (h.empty()) {
        hub = "";
      } else if (!tenancy::IsValidTenantId(h)) {
        return ErrorResponse(400, "InvalidArgument", "hub is a tenant id, or empty for the default hub", "hub");
      } else {
        hub = h;
      }
    }
    auto nodes = s_.store->ListNodes();
    if (!nodes.ok()) return ErrorResponse(nodes.status());
    const Json local = s_.worker_streams ? s_.worker_streams() : Json::array();
    // hub -> node -> streams: this node's counted now, the others' from
    // their last heartbeat (nodes that are not up count none).
    std::map<std::string, std::map<std::string, int64_t>> counts;
    for (const NodeInfo& n : *nodes) {
      if (n.node_id == s_.node_id || n.state != NodeState::kUp) continue;
      auto details = ParseDetails(n.details);
      if (!details || !details->contains("sdkWorkers") || !(*details)["sdkWorkers"].is_object()) continue;
      for (const auto& [h, c] : (*details)["sdkWorkers"].items()) {
        if (c.is_number_integer() && c.get<int64_t>() > 0) counts[h][n.node_id] += c.get<int64_t>();
      }
    }
    const Json local_counts = SdkWorkerCounts(local);
    for (const auto& [h, c] : local_counts.items()) counts[h][s_.node_id] += c.get<int64_t>();
    Json hubs = Json::array();
    for (const auto& [h, per_node] : counts) {
      if (hub && *hub != h) continue;
      int64_t total = 0;
      Json by_node = Json::object();
      for (const auto& [node, c] : per_node) {
        total += c;
        by_node[node] = c;
      }
      hubs.push_back(Json{{"hub", h}, {"workers", total}, {"byNode", std::move(by_node)}});
    }
    Json streams = Json::array();
    for (const Json& st : local) {
      if (hub && st.value("hub", std::string()) != *hub) continue;
      streams.push_back(st);
    }
    return JsonResponse(200, Json{{"thisNode", s_.node_id},
                                  {"grpc", static_cast<bool>(s_.worker_streams)},
                                  {"hubs", std::move(hubs)},
                                  {"streams", std::move(streams)}});
  }

  AdminApiServices s_;
};

}  // namespace

Json SdkWorkerCounts(const Json& streams) {
  Json counts = Json::object();
  if (!streams.is_array()) return counts;
  for (const Json& s : streams) {
    if (!s.is_object()) continue;
    const std::string hub = s.value("hub", std::string());
    counts[hub] = counts.value(hub, int64_t{0}) + 1;
  }
  return counts;
}

void AddAdminApi(Router& router, const AdminApiServices& services) {
  std::make_shared<AdminApi>(services)->Register(router);
}

}  // namespace baton::api
