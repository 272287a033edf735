#include "app/cli/commands.h"
#include "app/cli/admin_commands.h"
#include "app/cli/insight_commands.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "app/cli/http_client.h"
#include "app/cli/job_commands.h"
#include "app/cli/verb.h"
#include "baton/clock.h"
#include "util/uuid.h"

namespace baton::cli {
namespace {

constexpr std::string_view kDurableBase = "/runtime/webhooks/durabletask";
constexpr std::string_view kAdminBase = "/api/v1/admin";

// The Durable Functions runtime status names, as the server spells them.
constexpr std::string_view kRuntimeStatuses[] = {"Pending",        "Running",  "Completed",
                                                 "ContinuedAsNew", "Failed",   "Canceled",
                                                 "Terminated",     "Suspended"};

size_t DisplayWidth(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// ---- Validators: bad values are usage errors, reported by CLI11 ----

CLI::Validator JsonValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::string why = JsonError(text);
        if (why.empty()) return "";
        std::string hint;
        if (!text.empty() && std::isalpha(static_cast<unsigned char>(text.front())) &&
            text != "true" && text != "false" && text != "null") {
          hint = " (a JSON string needs quotes: '\"" + text + "\"')";
        }
        return "not valid JSON: " + why + hint;
      },
      "");
}

CLI::Validator StatusListValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::string normalized, error;
        if (!NormalizeRuntimeStatuses(text, &normalized, &error)) return error;
        text = normalized;
        return "";
      },
      "");
}

CLI::Validator TimeValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::string normalized, error;
        if (!NormalizeTime(text, &normalized, &error)) return error;
        text = normalized;
        return "";
      },
      "");
}

std::string InstancePath(const std::string& id, std::string_view suffix = "") {
  return std::string(kDurableBase) + "/instances/" + PercentEncode(id) + std::string(suffix);
}

// ---- Rendering ----

std::vector<std::pair<std::string, std::string>> StatusFields(const OJson& s) {
  std::vector<std::pair<std::string, std::string>> f = {
      {"Instance ID", Text(s, "instanceId")},       {"Name", Text(s, "name")},
      {"Status", Text(s, "runtimeStatus")},         {"Created", Text(s, "createdTime")},
      {"Last updated", Text(s, "lastUpdatedTime")},
  };
  auto add_json = [&](const char* label, const char* key) {
    if (std::string v = JsonText(s, key); !v.empty()) f.emplace_back(label, v);
  };
  add_json("Input", "input");
  add_json("Custom status", "customStatus");
  if (s.contains("failureDetails") && s["failureDetails"].is_object()) {
    const OJson& fd = s["failureDetails"];
    f.emplace_back("Error type", Text(fd, "errorType"));
    f.emplace_back("Error message", Text(fd, "errorMessage"));
    if (std::string d = JsonText(fd, "details"); !d.empty()) f.emplace_back("Error details", d);
  } else {
    add_json("Output", "output");
  }
  return f;
}

std::string HistoryTable(const OJson& events) {
  static const std::vector<std::string> kShown = {"EventType", "EventId", "Timestamp",
                                                  "FunctionName", "Name"};
  std::vector<std::vector<std::string>> rows;
  for (const OJson& e : events) {
    std::string id = Text(e, "EventId");
    if (id == "-1") id = "-";  // inbound events have no sequence number
    std::string name = Text(e, "FunctionName");
    if (name.empty()) name = Text(e, "Name");
    std::string details;
    if (e.is_object()) {
      for (const auto& [key, value] : e.items()) {
        if (std::find(kShown.begin(), kShown.end(), key) != kShown.end() || value.is_null())
          continue;
        if (!details.empty()) details += "  ";
        // Times and statuses read better bare; payloads stay JSON.
        bool bare = value.is_string() && (key.ends_with("Time") || key == "OrchestrationStatus");
        details += key + "=" +
                   (bare ? value.get<std::string>()
                         : value.dump(-1, ' ', false, OJson::error_handler_t::replace));
      }
    }
    rows.push_back({id, Text(e, "EventType"), Text(e, "Timestamp"), name, details});
  }
  return FormatTable({"ID", "EVENT", "TIMESTAMP", "NAME", "DETAILS"}, rows);
}

std::vector<std::vector<std::string>> InstanceRows(const OJson& list) {
  std::vector<std::vector<std::string>> rows;
  for (const OJson& s : list) {
    rows.push_back({Text(s, "instanceId"), Text(s, "name"), Text(s, "runtimeStatus"),
                    Text(s, "createdTime"), Text(s, "lastUpdatedTime")});
  }
  return rows;
}

std::vector<std::pair<std::string, std::string>> TenantFields(const OJson& t) {
  return {{"Tenant ID", Text(t, "id")},
          {"Display name", Text(t, "displayName")},
          {"Disabled", YesNo(t, "disabled")},
          {"Created", Text(t, "createdTime")}};
}

// ---- Instance verbs ----

struct StartOptions {
  GlobalOptions g;
  std::string name;
  std::string id;
  std::string input;
  std::string input_file;
  int wait = 0;
};

// Reads --input or --input-file ("-" = stdin). False (exit code set) when
// the file cannot be read or is not JSON.
bool ReadInput(Session& s, const std::string& input, const std::string& input_file,
               std::optional<std::string>* body) {
  if (!input.empty()) {
    *body = input;  // validated by JsonValidator
    return true;
  }
  if (input_file.empty()) return true;
  std::string text;
  if (!ReadFileOrStdin(input_file, &text)) {
    s.Fail(kExitUsage, "--input-file: cannot read '" + input_file + "'");
    return false;
  }
  if (std::string why = JsonError(text); !why.empty()) {
    s.Fail(kExitUsage, "--input-file: '" + input_file + "' is not valid JSON: " + why);
    return false;
  }
  *body = std::move(text);
  return true;
}

void PrintCheckStatus(Session& s, const OJson& check, const std::string& orchestrator) {
  if (s.json()) {
    s.PrintJson(check);
    return;
  }
  s.out() << FormatKeyValues({{"Instance ID", Text(check, "id")},
                              {"Orchestrator", orchestrator},
                              {"Status URI", Text(check, "statusQueryGetUri")}});
}

void RunStart(Session& s, const StartOptions& o) {
  std::optional<std::string> input;
  if (!ReadInput(s, o.input, o.input_file, &input)) return;

  // Waiting needs the id to fetch the final status afterwards (the 200 answer
  // carries only the output), so mint it here the way the server would.
  std::string id = o.id;
  if (o.wait > 0 && id.empty()) {
    id = util::NewRandomUuid();
    id.erase(std::remove(id.begin(), id.end(), '-'), id.end());
  }

  auto query = s.HubQuery();
  HttpRequestSpec spec;
  spec.method = HttpMethod::kPost;
  if (o.wait > 0) {
    query.emplace_back("timeout", std::to_string(o.wait));
    query.emplace_back("pollingInterval", "1");
    spec.timeout = std::chrono::seconds(o.wait) + kWaitMargin;
  }
  spec.target = std::string(kDurableBase) + "/orchestrators/" + PercentEncode(o.name) +
                (id.empty() ? "" : "/" + PercentEncode(id)) + BuildQueryString(query);
  if (input) {
    spec.has_body = true;
    spec.body = *input;
  }
  auto res = s.Call(spec);
  if (!res) return;

  if (res->status == 202) {
    auto check = s.ExpectJson(*res, /*array=*/false);
    if (!check) return;
    PrintCheckStatus(s, *check, o.name);
    if (o.wait > 0) {
      s.Warn("instance " + Text(*check, "id") + " is still running after " +
             std::to_string(o.wait) + " s");
      s.SetExitCode(kExitNotCompleted);
    }
    return;
  }
  if (o.wait == 0) {
    // Without a wait the server answers 202; show any other success as sent.
    if (auto body = ParseJson(res->body)) s.PrintJson(*body);
    return;
  }

  // Done within the wait: show the final status, which also holds the output.
  HttpRequestSpec get;
  get.target = InstancePath(id) + BuildQueryString(s.HubQuery());
  auto status = s.CallForJson(get, /*array=*/false);
  if (!status) return;
  if (s.json()) {
    s.PrintJson(*status);
  } else {
    s.out() << FormatKeyValues(StatusFields(*status));
  }
  std::string runtime_status = Text(*status, "runtimeStatus");
  if (runtime_status != "Completed") {
    s.Warn("instance " + id + " ended " + runtime_status);
    s.SetExitCode(kExitNotCompleted);
  }
}

struct StatusOptions {
  GlobalOptions g;
  std::string id;
  bool history = false;
  bool history_output = false;
};

void RunStatus(Session& s, const StatusOptions& o) {
  auto query = s.HubQuery();
  bool history = o.history || o.history_output;
  if (history) query.emplace_back("showHistory", "true");
  if (o.history_output) query.emplace_back("showHistoryOutput", "true");
  HttpRequestSpec spec;
  spec.target = InstancePath(o.id) + BuildQueryString(query);
  auto status = s.CallForJson(spec, /*array=*/false);
  if (!status) return;
  if (s.json()) {
    s.PrintJson(*status);
    return;
  }
  s.out() << FormatKeyValues(StatusFields(*status));
  if (history && status->contains("historyEvents") && (*status)["historyEvents"].is_array()) {
    s.out() << "\nHistory:\n" << HistoryTable((*status)["historyEvents"]);
  }
}

struct HistoryOptions {
  GlobalOptions g;
  std::string id;
};

void RunHistory(Session& s, const HistoryOptions& o) {
  auto query = s.HubQuery();
  query.emplace_back("showHistory", "true");
  query.emplace_back("showHistoryOutput", "true");
  HttpRequestSpec spec;
  spec.target = InstancePath(o.id) + BuildQueryString(query);
  auto status = s.CallForJson(spec, /*array=*/false);
  if (!status) return;
  OJson events = status->contains("historyEvents") ? (*status)["historyEvents"] : OJson::array();
  if (!events.is_array()) {
    s.Fail(kExitError, "unexpected answer from the server: historyEvents is not an array");
    return;
  }
  if (s.json()) {
    s.PrintJson(events);
  } else {
    s.out() << HistoryTable(events);
  }
}

struct ListOptions {
  GlobalOptions g;
  std::string statuses;
  std::string prefix;
  std::string name;
  std::string sort;
  std::string created_from;
  std::string created_to;
  int top = 0;
  bool all = false;
};

// How many instances the x-baton-status-counts header ("Running=3,Failed=1")
// counts of `statuses` (comma-separated; "" = all).
int64_t CountedInstances(const std::string& header, const std::string& statuses) {
  int64_t total = 0;
  const std::string wanted = "," + statuses + ",";
  size_t i = 0;
  while (i < header.size()) {
    size_t j = header.find(',', i);
    if (j == std::string::npos) j = header.size();
    const std::string item = header.substr(i, j - i);
    i = j + 1;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) continue;
    if (!statuses.empty() && wanted.find("," + item.substr(0, eq) + ",") == std::string::npos) continue;
    total += std::strtoll(item.c_str() + eq + 1, nullptr, 10);
  }
  return total;
}

void RunList(Session& s, const ListOptions& o) {
  auto query = s.HubQuery();
  if (!o.statuses.empty()) query.emplace_back("runtimeStatus", o.statuses);
  if (!o.prefix.empty()) query.emplace_back("instanceIdPrefix", o.prefix);
  if (!o.name.empty()) query.emplace_back("name", o.name);
  if (!o.sort.empty()) query.emplace_back("sort", o.sort);
  if (!o.created_from.empty()) query.emplace_back("createdTimeFrom", o.created_from);
  if (!o.created_to.empty()) query.emplace_back("createdTimeTo", o.created_to);
  if (o.top > 0) query.emplace_back("top", std::to_string(o.top));
  query.emplace_back("countByStatus", "true");
  HttpRequestSpec spec;
  spec.target = std::string(kDurableBase) + "/instances" + BuildQueryString(query);

  bool more = false;
  HttpResponse first;
  std::optional<OJson> fetched = FetchPages(s, spec, o.all, &more, {}, nullptr, &first);
  if (!fetched) return;
  const OJson& all = *fetched;

  if (s.json()) {
    s.PrintJson(all);
  } else {
    s.out() << FormatTable({"INSTANCE ID", "NAME", "STATUS", "CREATED", "UPDATED"},
                           InstanceRows(all));
  }
  const int64_t total = CountedInstances(first.status_counts, o.statuses);
  WarnIfMore(s, more, o.all, "instances", total - static_cast<int64_t>(all.size()), o.top > 0 ? o.top : 100);
}

struct RaiseOptions {
  GlobalOptions g;
  std::string id;
  std::string event;
  std::string data;
};

void RunRaise(Session& s, const RaiseOptions& o) {
  HttpRequestSpec spec;
  spec.method = HttpMethod::kPost;
  spec.target =
      InstancePath(o.id, "/raiseEvent/" + PercentEncode(o.event)) + BuildQueryString(s.HubQuery());
  spec.has_body = true;  // the server requires a JSON content type, even for no data
  spec.body = o.data.empty() ? "null" : o.data;
  if (!s.Call(spec)) return;
  if (!s.json()) s.out() << "Raised event '" << o.event << "' on instance " << o.id << ".\n";
}

struct ControlOptions {
  GlobalOptions g;
  std::string id;
  std::string reason;
};

// terminate, suspend, resume and rewind: accepted (202) and applied asynchronously.
void RunControl(Session& s, const ControlOptions& o, std::string_view action) {
  auto query = s.HubQuery();
  if (!o.reason.empty()) query.emplace_back("reason", o.reason);
  HttpRequestSpec spec;
  spec.method = HttpMethod::kPost;
  spec.target = InstancePath(o.id, "/" + std::string(action)) + BuildQueryString(query);
  auto res = s.Call(spec);
  if (!res) return;
  if (s.json()) {
    if (auto body = ParseJson(res->body)) s.PrintJson(*body);
    return;
  }
  s.out() << "Requested " << action << " of instance " << o.id << ".\n";
}

struct RestartOptions {
  GlobalOptions g;
  std::string id;
  bool new_id = false;
};

void RunRestart(Session& s, const RestartOptions& o) {
  auto query = s.HubQuery();
  // The server's default is a new id; the CLI restarts in place unless asked.
  query.emplace_back("restartWithNewInstanceId", o.new_id ? "true" : "false");
  HttpRequestSpec spec;
  spec.method = HttpMethod::kPost;
  spec.target = InstancePath(o.id, "/restart") + BuildQueryString(query);
  auto check = s.CallForJson(spec, /*array=*/false);
  if (!check) return;
  if (s.json()) {
    s.PrintJson(*check);
    return;
  }
  s.out() << FormatKeyValues({{"Instance ID", Text(*check, "id")},
                              {"Restarted from", o.id},
                              {"Status URI", Text(*check, "statusQueryGetUri")}});
}

struct PurgeOptions {
  GlobalOptions g;
  std::string id;
  std::string created_from;
  std::string created_to;
  std::string statuses;
  bool yes = false;
  bool dry_run = false;
};

void RunPurge(Session& s, const PurgeOptions& o) {
  bool filter = !o.created_from.empty() || !o.created_to.empty() || !o.statuses.empty();
  if (!o.id.empty() && filter) {
    s.Fail(kExitUsage, "purge takes an instance id or a filter (--created-from ...), not both");
    return;
  }
  if (o.id.empty() && o.created_from.empty()) {
    s.Fail(kExitUsage,
           filter
               ? "purging by filter needs --created-from"
               : "give an instance id, or --created-from (with optional --created-to, --status) to "
                 "purge by filter");
    return;
  }
  if (!o.id.empty() && o.dry_run) {
    s.Fail(kExitUsage, "--dry-run is for purging by filter; `instance status ID` shows one instance");
    return;
  }
  auto query = s.HubQuery();
  HttpRequestSpec spec;
  spec.method = HttpMethod::kDelete;
  if (!o.id.empty()) {
    spec.target = InstancePath(o.id) + BuildQueryString(query);
  } else {
    query.emplace_back("createdTimeFrom", o.created_from);
    if (!o.created_to.empty()) query.emplace_back("createdTimeTo", o.created_to);
    if (!o.statuses.empty()) query.emplace_back("runtimeStatus", o.statuses);
    // A purge by filter first counts what it would delete (dryRun=true):
    // that count is the answer of --dry-run, and the question asked before
    // deleting unless --yes.
    if (o.dry_run || !o.yes) {
      auto dry = query;
      dry.emplace_back("dryRun", "true");
      HttpRequestSpec count = spec;
      count.target = std::string(kDurableBase) + "/instances" + BuildQueryString(dry);
      auto counted = s.CallForJson(count, /*array=*/false);
      if (!counted) return;
      const std::string n = Text(*counted, "instancesMatched");
      const std::string what = n + (counted->value("matchedAtLeast", false) ? " or more" : "") +
                               (n == "1" ? " finished instance" : " finished instances");
      if (o.dry_run) {
        if (s.json()) {
          s.PrintJson(*counted);
        } else {
          s.out() << "Would purge " << what << " (dry run: nothing deleted).\n";
        }
        return;
      }
      if (n == "0") {
        s.Fail(kExitNotFound, "no finished instance matches the filter");
        return;
      }
      s.err() << "Purge " << what << "? [y/N] " << std::flush;
      std::string answer;
      if (!std::getline(std::cin, answer) || (answer != "y" && answer != "Y" && answer != "yes")) {
        s.Fail(kExitUsage, "purge cancelled: nothing deleted (--yes purges without asking)");
        return;
      }
    }
    spec.target = std::string(kDurableBase) + "/instances" + BuildQueryString(query);
  }
  auto body = s.CallForJson(spec, /*array=*/false);
  if (!body) return;
  if (s.json()) {
    s.PrintJson(*body);
    return;
  }
  std::string n = Text(*body, "instancesDeleted");
  s.out() << "Purged " << n << (n == "1" ? " instance.\n" : " instances.\n");
}

// ---- Entity verbs ----

struct EntityGetOptions {
  GlobalOptions g;
  std::string name;
  std::string key;
};

// The state may be any JSON value (a number, a string, ...), so it is not
// read with CallForJson, which expects an object or an array.
void RunEntityGet(Session& s, const EntityGetOptions& o) {
  HttpRequestSpec spec;
  spec.target = EntityPath(o.name, o.key) + BuildQueryString(s.HubQuery());
  auto res = s.Call(spec);
  if (!res) return;
  auto state = ParseJson(res->body);
  if (!state) {
    s.Fail(kExitError,
           "unexpected answer from the server (HTTP " + std::to_string(res->status) +
               "): expected the entity's state as JSON, got: " + OneLine(res->body.substr(0, 200)));
    return;
  }
  // The state is the whole answer, so both formats print it the same way.
  s.PrintJson(*state);
}

struct EntitySignalOptions {
  GlobalOptions g;
  std::string name;
  std::string key;
  std::string operation;
  std::string input;
  std::string input_file;
};

void RunEntitySignal(Session& s, const EntitySignalOptions& o) {
  std::optional<std::string> input;
  if (!ReadInput(s, o.input, o.input_file, &input)) return;
  auto query = s.HubQuery();
  query.emplace_back("op", o.operation);
  HttpRequestSpec spec;
  spec.method = HttpMethod::kPost;
  spec.target = EntityPath(o.name, o.key) + BuildQueryString(query);
  // Always JSON: without the JSON content type the server would take the
  // body as a string.
  spec.has_body = true;
  spec.body = input ? *input : "null";
  auto res = s.Call(spec);
  if (!res) return;
  if (s.json()) {
    if (auto body = ParseJson(res->body)) s.PrintJson(*body);
    return;
  }
  s.out() << "Signalled '" << o.operation << "' to entity " << o.name << "/"
          << (o.key.empty() ? "$" : o.key) << ".\n";
}

struct EntityListOptions {
  GlobalOptions g;
  std::string name;
  bool state = false;
  std::string from;
  std::string to;
  int top = 0;
  bool all = false;
};

void RunEntityList(Session& s, const EntityListOptions& o) {
  auto query = s.HubQuery();
  query.emplace_back("fetchState", o.state ? "true" : "false");
  if (!o.from.empty()) query.emplace_back("lastOperationTimeFrom", o.from);
  if (!o.to.empty()) query.emplace_back("lastOperationTimeTo", o.to);
  if (o.top > 0) query.emplace_back("top", std::to_string(o.top));
  HttpRequestSpec spec;
  spec.target =
      std::string(kDurableBase) + "/entities/" + PercentEncode(o.name) + BuildQueryString(query);

  bool more = false;
  std::optional<OJson> fetched = FetchPages(s, spec, o.all, &more);
  if (!fetched) return;
  const OJson& all = *fetched;

  if (s.json()) {
    s.PrintJson(all);
  } else {
    std::vector<std::string> headers = {"NAME", "KEY", "LAST OPERATION", "LOCKED BY"};
    if (o.state) headers.push_back("STATE");
    std::vector<std::vector<std::string>> rows;
    for (const OJson& e : all) {
      const OJson& id = e.is_object() && e.contains("entityId") ? e["entityId"] : OJson();
      std::vector<std::string> row = {Text(id, "name"), Text(id, "key"),
                                      Text(e, "lastOperationTime"), Text(e, "lockedBy")};
      if (o.state) row.push_back(JsonText(e, "state"));
      rows.push_back(std::move(row));
    }
    s.out() << FormatTable(headers, rows);
  }
  WarnIfMore(s, more, o.all, "entities");
}

struct EntityCleanOptions {
  GlobalOptions g;
  bool remove_empty = false;
  bool release_orphaned_locks = false;
};

void RunEntityClean(Session& s, const EntityCleanOptions& o) {
  // Neither flag means both: a bare `entity clean` does the whole job.
  bool both = !o.remove_empty && !o.release_orphaned_locks;
  OJson body = {{"removeEmptyEntities", both || o.remove_empty},
                {"releaseOrphanedLocks", both || o.release_orphaned_locks}};
  HttpRequestSpec spec;
  spec.method = HttpMethod::kPost;
  spec.target = std::string(kDurableBase) + "/entities/clean" + BuildQueryString(s.HubQuery());
  spec.has_body = true;
  spec.body = body.dump();
  auto counts = s.CallForJson(spec, /*array=*/false);
  if (!counts) return;
  if (s.json()) {
    s.PrintJson(*counts);
    return;
  }
  s.out() << FormatKeyValues({{"Empty entities removed", Text(*counts, "emptyEntitiesRemoved")},
                              {"Orphaned locks released", Text(*counts, "orphanedLocksReleased")}});
}

// ---- Admin verbs ----

struct TenantCreateOptions {
  GlobalOptions g;
  std::string id;
  std::string display_name;
};

void RunTenantCreate(Session& s, const TenantCreateOptions& o) {
  OJson body = {{"id", o.id}};
  if (!o.display_name.empty()) body["displayName"] = o.display_name;
  HttpRequestSpec spec;
  spec.method = HttpMethod::kPost;
  spec.target = std::string(kAdminBase) + "/tenants";
  spec.has_body = true;
  spec.body = body.dump();
  auto tenant = s.CallForJson(spec, /*array=*/false);
  if (!tenant) return;
  if (s.json()) {
    s.PrintJson(*tenant);
  } else {
    s.out() << FormatKeyValues(TenantFields(*tenant));
  }
}

struct PlainOptions {
  GlobalOptions g;
};

void RunTenantList(Session& s, const PlainOptions&) {
  HttpRequestSpec spec;
  spec.target = std::string(kAdminBase) + "/tenants";
  auto tenants = s.CallForJson(spec, /*array=*/true);
  if (!tenants) return;
  if (s.json()) {
    s.PrintJson(*tenants);
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const OJson& t : *tenants) {
    rows.push_back(
        {Text(t, "id"), Text(t, "displayName"), YesNo(t, "disabled"), Text(t, "createdTime")});
  }
  s.out() << FormatTable({"TENANT ID", "DISPLAY NAME", "DISABLED", "CREATED"}, rows);
}

struct IdOptions {
  GlobalOptions g;
  std::string id;
};

// `tenant enable` / `tenant disable`: POST …/tenants/{id}/{action}, then the
// tenant as it is now.
void RunTenantSwitch(Session& s, const IdOptions& o, const char* action) {
  HttpRequestSpec spec;
  spec.method = HttpMethod::kPost;
  spec.target = std::string(kAdminBase) + "/tenants/" + PercentEncode(o.id) + "/" + action;
  auto tenant = s.CallForJson(spec, /*array=*/false);
  if (!tenant) return;
  if (s.json()) {
    s.PrintJson(*tenant);
  } else {
    s.out() << FormatKeyValues(TenantFields(*tenant));
  }
}

void RunTenantEnable(Session& s, const IdOptions& o) { RunTenantSwitch(s, o, "enable"); }
void RunTenantDisable(Session& s, const IdOptions& o) { RunTenantSwitch(s, o, "disable"); }

struct KeyCreateOptions {
  GlobalOptions g;
  std::string tenant;
  bool admin = false;
  std::string name;
  std::string expires_in;  // "" = never
};

void RunKeyCreate(Session& s, const KeyCreateOptions& o) {
  if (o.tenant.empty() == !o.admin) {
    s.Fail(kExitUsage,
           "key create needs exactly one of --tenant ID (a tenant key) or --admin (an admin key)");
    return;
  }
  OJson body = OJson::object();
  if (!o.name.empty()) body["name"] = o.name;
  if (!o.expires_in.empty()) body["expiresIn"] = o.expires_in;  // the server checks it
  HttpRequestSpec spec;
  spec.method = HttpMethod::kPost;
  spec.target = std::string(kAdminBase) +
                (o.admin ? "/keys" : "/tenants/" + PercentEncode(o.tenant) + "/keys");
  spec.has_body = true;
  spec.body = body.dump();
  auto key = s.CallForJson(spec, /*array=*/false);
  if (!key) return;
  if (s.json()) {
    s.PrintJson(*key);
  } else {
    std::string tenant = Text(*key, "tenantId");
    s.out() << FormatKeyValues({{"Key ID", Text(*key, "keyId")},
                                {"Tenant", tenant.empty() ? "(admin key)" : tenant},
                                {"Name", Text(*key, "name")},
                                {"Created", Text(*key, "createdTime")},
                                {"Expires", key->contains("expiresTime") && (*key)["expiresTime"].is_string()
                                                ? (*key)["expiresTime"].get<std::string>()
                                                : std::string("never")},
                                {"Key", Text(*key, "key")}});
  }
  s.Warn("the key is shown only this once and cannot be shown again: store it now");
}

void RunKeyList(Session& s, const IdOptions& o) {
  HttpRequestSpec spec;
  spec.target = std::string(kAdminBase) + "/tenants/" + PercentEncode(o.id) + "/keys";
  auto keys = s.CallForJson(spec, /*array=*/true);
  if (!keys) return;
  if (s.json()) {
    s.PrintJson(*keys);
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const OJson& k : *keys) {
    rows.push_back({Text(k, "keyId"), Text(k, "name"), Text(k, "createdTime"),
                    k.contains("expiresTime") && k["expiresTime"].is_string() ? k["expiresTime"].get<std::string>()
                                                                              : std::string("never"),
                    YesNo(k, "revoked")});
  }
  s.out() << FormatTable({"KEY ID", "NAME", "CREATED", "EXPIRES", "REVOKED"}, rows);
}

void RunKeyRevoke(Session& s, const IdOptions& o) {
  HttpRequestSpec spec;
  spec.method = HttpMethod::kDelete;
  spec.target = std::string(kAdminBase) + "/keys/" + PercentEncode(o.id);
  auto body = s.CallForJson(spec, /*array=*/false);
  if (!body) return;
  if (s.json()) {
    s.PrintJson(*body);
  } else {
    s.out() << "Revoked key " << o.id << ".\n";
  }
}

// ---- Registration ----

void AddInstanceVerbs(CLI::App& app, const Io& io) {
  CLI::App* g = AddGroup(app, "instance", "Start, inspect and control orchestration instances");

  {
    auto [v, o] = AddVerb<StartOptions>(
        g, "start", "Start an orchestration (POST /orchestrators/NAME[/ID])", true, io, RunStart);
    v->add_option("name", o->name, "Orchestrator name")->required();
    v->add_option("id", o->id, "Instance id (the server mints one when omitted)");
    auto* input = v->add_option("--input", o->input, "Input as JSON text")
                      ->type_name("JSON")
                      ->check(JsonValidator());
    v->add_option("--input-file", o->input_file, "Read the JSON input from file F ('-' = stdin)")
        ->type_name("F")
        ->excludes(input);
    v->add_option("--wait", o->wait,
                  "Wait up to SECONDS for the instance to finish and show its final status")
        ->type_name("SECONDS")
        ->check(CLI::Range(1, 3600));
  }
  {
    auto [v, o] = AddVerb<StatusOptions>(
        g, "status", "Show an instance's status (GET /instances/ID)", true, io, RunStatus);
    v->add_option("id", o->id, "Instance id")->required();
    v->add_flag("--history", o->history, "Include the history events");
    v->add_flag("--history-output", o->history_output,
                "Include the history events with their results (implies --history)");
  }
  {
    auto [v, o] =
        AddVerb<ListOptions>(g, "list", "List orchestration instances, newest first (GET /instances)", true, io, RunList);
    v->add_option("--status", o->statuses, "Only these runtime statuses, e.g. Running,Failed")
        ->type_name("STATUS[,...]")
        ->transform(StatusListValidator());
    v->add_option("--prefix", o->prefix, "Only instance ids starting with this prefix");
    v->add_option("--name", o->name, "Only orchestrator names starting with this")->type_name("NAME");
    v->add_option("--sort", o->sort, "newest (the default), oldest or id")
        ->type_name("ORDER")
        ->check(CLI::IsMember({"newest", "oldest", "id"}));
    v->add_option("--created-from", o->created_from,
                  "Only instances created at or after this UTC time")
        ->type_name("TIME")
        ->transform(TimeValidator());
    v->add_option("--created-to", o->created_to,
                  "Only instances created at or before this UTC time")
        ->type_name("TIME")
        ->transform(TimeValidator());
    v->add_option("--top", o->top,
                  "Page size (server default 100); without --all, at most this many")
        ->type_name("N")
        ->check(CLI::Range(1, 1000));
    v->add_flag("--all", o->all,
                "Follow continuation tokens to fetch every page (at most " +
                    std::to_string(kMaxListPages) + " pages)");
  }
  {
    auto [v, o] = AddVerb<RaiseOptions>(
        g, "raise", "Raise an external event (POST .../raiseEvent/EVENT)", true, io, RunRaise);
    v->add_option("id", o->id, "Instance id")->required();
    v->add_option("event", o->event, "Event name")->required();
    v->add_option("--data", o->data, "Event data as JSON text (default null)")
        ->type_name("JSON")
        ->check(JsonValidator());
  }
  struct Control {
    const char* name;
    const char* help;
  };
  for (const Control& c :
       {Control{"terminate", "Terminate a running instance (POST .../terminate)"},
        Control{"suspend", "Suspend a running instance (POST .../suspend)"},
        Control{"resume", "Resume a suspended instance (POST .../resume)"},
        Control{"rewind", "Run again what failed in a Failed instance (POST .../rewind)"}}) {
    std::string action = c.name;
    auto [v, o] = AddVerb<ControlOptions>(
        g, c.name, c.help, true, io,
        [action](Session& s, const ControlOptions& opts) { RunControl(s, opts, action); });
    v->add_option("id", o->id, "Instance id")->required();
    v->add_option("--reason", o->reason, "Why (recorded in the history)");
  }
  {
    auto [v, o] = AddVerb<RestartOptions>(
        g, "restart", "Restart an instance with its original input", true, io, RunRestart);
    v->add_option("id", o->id, "Instance id")->required();
    v->add_flag("--new-id", o->new_id, "Start the new run under a new instance id");
  }
  {
    auto [v, o] = AddVerb<PurgeOptions>(
        g, "purge", "Delete a finished instance, or every finished instance matching a filter",
        true, io, RunPurge);
    v->add_option("id", o->id, "Instance id (omit to purge by filter)");
    v->add_option("--created-from", o->created_from,
                  "Filter: created at or after this UTC time (required)")
        ->type_name("TIME")
        ->transform(TimeValidator());
    v->add_option("--created-to", o->created_to, "Filter: created at or before this UTC time")
        ->type_name("TIME")
        ->transform(TimeValidator());
    v->add_option("--status", o->statuses, "Filter: only these runtime statuses")
        ->type_name("STATUS[,...]")
        ->transform(StatusListValidator());
    v->add_flag("-y,--yes", o->yes, "Purge by filter without asking for confirmation");
    v->add_flag("--dry-run", o->dry_run, "Only say how many finished instances the filter would purge");
  }
  {
    auto [v, o] = AddVerb<HistoryOptions>(
        g, "history", "Print an instance's history events with results", true, io, RunHistory);
    v->add_option("id", o->id, "Instance id")->required();
  }
}

struct TenantSettingsOptions {
  GlobalOptions g;
  std::string id;
  std::optional<std::string> host_network;
  std::optional<std::string> capabilities;
  std::optional<std::string> image_prefixes;
  std::optional<double> rate;
  std::optional<int64_t> burst;
  std::optional<int64_t> max_queued_jobs;
  std::optional<int64_t> max_instances;
  std::optional<std::string> retention;
};

// "A,B" -> ["A","B"]; "" -> [].
OJson CommaList(const std::string& text) {
  OJson out = OJson::array();
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    if (j > i) out.push_back(text.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

void RunTenantSettings(Session& s, const TenantSettingsOptions& o) {
  const std::string path = std::string(kAdminBase) + "/tenants/" + PercentEncode(o.id) + "/settings";
  OJson grants = OJson::object(), limits = OJson::object();
  if (o.host_network) {
    if (*o.host_network != "true" && *o.host_network != "false") {
      s.Fail(kExitUsage, "--host-network: expected true or false, not '" + *o.host_network + "'");
      return;
    }
    grants["hostNetwork"] = *o.host_network == "true";
  }
  if (o.capabilities) grants["capabilities"] = CommaList(*o.capabilities);
  if (o.image_prefixes) grants["imagePrefixes"] = CommaList(*o.image_prefixes);
  if (o.rate) limits["requestsPerSecond"] = *o.rate;
  if (o.burst) limits["burst"] = *o.burst;
  if (o.max_queued_jobs) limits["maxQueuedJobs"] = *o.max_queued_jobs;
  if (o.max_instances) limits["maxInstances"] = *o.max_instances;
  HttpRequestSpec spec;
  spec.target = path;
  if (!grants.empty() || !limits.empty() || o.retention) {
    OJson patch = OJson::object();
    if (!grants.empty()) patch["grants"] = grants;
    if (!limits.empty()) patch["limits"] = limits;
    // The server checks the duration ("default" = follow --retention).
    if (o.retention) patch["retention"] = *o.retention == "default" ? OJson(nullptr) : OJson(*o.retention);
    spec.method = HttpMethod::kPatch;
    spec.has_body = true;
    spec.body = patch.dump();
  }
  auto settings = s.CallForJson(spec, /*array=*/false);
  if (!settings) return;
  if (s.json()) {
    s.PrintJson(*settings);
    return;
  }
  auto join = [](const OJson& list) {
    std::string out;
    if (!list.is_array()) return out;
    for (const OJson& v : list) out += (out.empty() ? "" : ", ") + (v.is_string() ? v.get<std::string>() : v.dump());
    return out.empty() ? std::string("(none)") : out;
  };
  const OJson g = settings->contains("grants") ? (*settings)["grants"] : OJson::object();
  const OJson l = settings->contains("limits") ? (*settings)["limits"] : OJson::object();
  auto number = [](const OJson& j, const char* key) { return j.contains(key) ? j[key].dump() : std::string("?"); };
  s.out() << FormatKeyValues({{"Tenant", o.id},
                              {"Host network", g.value("hostNetwork", false) ? "granted" : "not granted"},
                              {"Capabilities", join(g.value("capabilities", OJson::array()))},
                              {"Image prefixes", join(g.value("imagePrefixes", OJson::array()))},
                              {"Requests/s", number(l, "requestsPerSecond")},
                              {"Burst", number(l, "burst")},
                              {"Max queued jobs", number(l, "maxQueuedJobs")},
                              {"Max instances", number(l, "maxInstances")},
                              {"Retention", settings->contains("retention") && (*settings)["retention"].is_string()
                                                ? (*settings)["retention"].get<std::string>()
                                                : std::string("server default (--retention)")}});
}

void AddTenantVerbs(CLI::App& app, const Io& io) {
  CLI::App* g = AddGroup(app, "tenant", "Manage tenants (admin key)");
  {
    auto [v, o] =
        AddVerb<TenantCreateOptions>(g, "create", "Create a tenant", false, io, RunTenantCreate);
    v->add_option("id", o->id, "Tenant id")->required();
    v->add_option("--display-name", o->display_name, "Human-readable name");
  }
  AddVerb<PlainOptions>(g, "list", "List tenants", false, io, RunTenantList);
  {
    auto [v, o] = AddVerb<IdOptions>(g, "disable", "Disable a tenant: its keys stop working", false,
                                     io, RunTenantDisable);
    v->add_option("id", o->id, "Tenant id")->required();
  }
  {
    auto [v, o] = AddVerb<IdOptions>(g, "enable", "Enable a disabled tenant: its keys work again", false, io,
                                     RunTenantEnable);
    v->add_option("id", o->id, "Tenant id")->required();
  }
  AddTenantQuotaVerb(g, io);
  {
    auto [v, o] = AddVerb<TenantSettingsOptions>(
        g, "settings",
        "Show a tenant's grants and admission limits; with flags, change them (PATCH .../settings)", false, io,
        RunTenantSettings);
    v->add_option("id", o->id, "Tenant id")->required();
    v->add_option("--host-network", o->host_network, "Grant (true) or revoke (false) network \"host\" for its jobs")
        ->type_name("BOOL");
    v->add_option("--capabilities", o->capabilities,
                  "Linux capabilities its jobs may add, comma-separated (replaces the list; \"\" = none)")
        ->type_name("CAPS");
    v->add_option("--image-prefixes", o->image_prefixes,
                  "Image prefixes it may run besides <registry>/<tenant>/, comma-separated (replaces the list)")
        ->type_name("PREFIXES");
    v->add_option("--rate", o->rate, "API requests per second (token bucket, per node)")->type_name("R");
    v->add_option("--burst", o->burst, "API requests it may make at once")->type_name("N");
    v->add_option("--max-queued-jobs", o->max_queued_jobs, "Jobs it may have submitted and not yet ended")
        ->type_name("N");
    v->add_option("--max-instances", o->max_instances, "Orchestration instances it may keep stored")
        ->type_name("N");
    v->add_option("--retention", o->retention,
                  "Delete its finished instances and jobs this long after they finished (e.g. 30d, 12h), "
                  "\"forever\" to keep them, or \"default\" for the server's --retention")
        ->type_name("AGE");
  }
}

void AddKeyVerbs(CLI::App& app, const Io& io) {
  CLI::App* g = AddGroup(app, "key", "Manage API keys (admin key)");
  {
    auto [v, o] = AddVerb<KeyCreateOptions>(
        g, "create", "Create an API key; prints the secret once", false, io, RunKeyCreate);
    auto* tenant = v->add_option("--tenant", o->tenant, "Create a key of tenant ID");
    v->add_flag("--admin", o->admin, "Create an admin key")->excludes(tenant);
    v->add_option("--name", o->name, "A name to recognise the key by");
    v->add_option("--expires-in", o->expires_in, "The key stops working this long after now (e.g. 90d, 12h)")
        ->type_name("AGE");
  }
  {
    auto [v, o] = AddVerb<IdOptions>(g, "list", "List a tenant's keys (never their secrets)", false,
                                     io, RunKeyList);
    v->add_option("--tenant", o->id, "Tenant id")->required();
  }
  {
    auto [v, o] =
        AddVerb<IdOptions>(g, "revoke", "Revoke a key by its key id", false, io, RunKeyRevoke);
    v->add_option("key_id", o->id, "Key id (as shown by key list)")->required();
  }
}

void AddEntityVerbs(CLI::App& app, const Io& io) {
  CLI::App* g = AddGroup(app, "entity", "Read, signal, list and clean durable entities");
  auto add_id = [](CLI::App* v, std::string* name, std::string* key) {
    v->add_option("name", *name, "Entity name")->required();
    v->add_option("key", *key, "Entity key ('' or '$' for the empty key)")->required();
  };
  {
    auto [v, o] = AddVerb<EntityGetOptions>(
        g, "get", "Print an entity's state as JSON (GET /entities/NAME/KEY)", true, io,
        RunEntityGet);
    add_id(v, &o->name, &o->key);
  }
  {
    auto [v, o] = AddVerb<EntitySignalOptions>(
        g, "signal", "Signal an operation to an entity (POST /entities/NAME/KEY?op=OPERATION)",
        true, io, RunEntitySignal);
    add_id(v, &o->name, &o->key);
    v->add_option("operation", o->operation, "Operation name")->required();
    auto* input = v->add_option("--input", o->input, "Operation input as JSON text (default null)")
                      ->type_name("JSON")
                      ->check(JsonValidator());
    v->add_option("--input-file", o->input_file, "Read the JSON input from file F ('-' = stdin)")
        ->type_name("F")
        ->excludes(input);
  }
  {
    auto [v, o] = AddVerb<EntityListOptions>(
        g, "list", "List the entities of one name (GET /entities/NAME)", true, io, RunEntityList);
    v->add_option("name", o->name, "Entity name")->required();
    v->add_flag("--state", o->state, "Fetch and show each entity's state");
    v->add_option("--from", o->from, "Only entities last operated on at or after this UTC time")
        ->type_name("TIME")
        ->transform(TimeValidator());
    v->add_option("--to", o->to, "Only entities last operated on at or before this UTC time")
        ->type_name("TIME")
        ->transform(TimeValidator());
    v->add_option("--top", o->top,
                  "Page size (server default 100); without --all, at most this many")
        ->type_name("N")
        ->check(CLI::Range(1, 1000));
    v->add_flag("--all", o->all,
                "Follow continuation tokens to fetch every page (at most " +
                    std::to_string(kMaxListPages) + " pages)");
  }
  {
    auto [v, o] = AddVerb<EntityCleanOptions>(
        g, "clean",
        "Remove empty entities and release orphaned locks (POST /entities/clean); "
        "without flags, both",
        true, io, RunEntityClean);
    v->add_flag("--remove-empty", o->remove_empty, "Remove entities that have no state");
    v->add_flag("--release-orphaned-locks", o->release_orphaned_locks,
                "Release locks held by orchestrations that no longer run");
  }
}

}  // namespace

int ExitCodeForHttpStatus(int http_status) {
  if (http_status >= 200 && http_status <= 299) return kExitOk;
  switch (http_status) {
    case 404:
      return kExitNotFound;
    case 409:
    case 410:
    case 412:
      return kExitConflict;
    case 401:
    case 403:
      return kExitUnauthenticated;
    default:
      break;
  }
  if (http_status >= 400 && http_status <= 499) return kExitBadRequest;
  return kExitError;
}

std::string ExitCodesHelp() {
  return "Environment:\n"
         "  BATON_SERVER  server URL, used when --server is not given (default " +
         std::string(kDefaultServer) +
         ")\n"
         "  BATON_KEY     API key, used when --key is not given\n"
         "Exit codes:\n"
         "  0  success\n"
         "  1  server error (5xx), unexpected answer, or server unreachable / not answering\n"
         "  2  usage error (bad arguments, invalid JSON for --input/--data, bad --server URL)\n"
         "  3  not found (404)\n"
         "  4  conflict or failed precondition (409, 410, 412)\n"
         "  5  unauthenticated or forbidden (401, 403)\n"
         "  6  other rejected request (400, 405, 413, ...)\n"
         "  7  instance start --wait, job wait, job submit --wait: it ended Failed/Terminated/\n"
         "     Canceled or is still running\n";
}

bool ClientCommands::parsed() const {
  return std::any_of(groups.begin(), groups.end(), [](const CLI::App* g) { return g->parsed(); });
}

ClientCommands AddClientCommands(CLI::App& app, int* exit_code, std::ostream& out,
                                 std::ostream& err) {
  Io io{&out, &err, exit_code};
  AddInstanceVerbs(app, io);
  AddTenantVerbs(app, io);
  AddKeyVerbs(app, io);
  AddEntityVerbs(app, io);
  AddJobVerbs(app, io);
  AddImageVerbs(app, io);
  ClientCommands commands{{app.get_subcommand("instance"), app.get_subcommand("tenant"),
                           app.get_subcommand("key"), app.get_subcommand("entity"),
                           app.get_subcommand("job"), app.get_subcommand("image")}};
  for (CLI::App* g : AddInsightVerbs(app, io)) commands.groups.push_back(g);
  for (CLI::App* g : AddAdminVerbs(app, io)) commands.groups.push_back(g);
  return commands;
}

ClientCommands AddClientCommands(CLI::App& app, int* exit_code) {
  return AddClientCommands(app, exit_code, std::cout, std::cerr);
}

int ExitForParseError(CLI::App& app, const CLI::ParseError& error, std::ostream& out,
                      std::ostream& err) {
  int code = app.exit(error, out, err);
  return code == static_cast<int>(CLI::ExitCodes::Success) ? kExitOk : kExitUsage;
}

int ExitForParseError(CLI::App& app, const CLI::ParseError& error) {
  return ExitForParseError(app, error, std::cout, std::cerr);
}

std::string FormatTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows) {
  const size_t columns = headers.size();
  std::vector<std::vector<std::string>> cells;
  cells.reserve(rows.size() + 1);
  cells.push_back(headers);
  for (const auto& row : rows) {
    std::vector<std::string> line(columns);
    for (size_t c = 0; c < columns && c < row.size(); ++c) line[c] = OneLine(row[c]);
    cells.push_back(std::move(line));
  }
  std::vector<size_t> width(columns, 0);
  for (const auto& line : cells) {
    for (size_t c = 0; c < columns; ++c) width[c] = std::max(width[c], DisplayWidth(line[c]));
  }
  std::string out;
  for (const auto& line : cells) {
    std::string text;
    for (size_t c = 0; c < columns; ++c) {
      text += line[c];
      if (c + 1 < columns) text.append(width[c] - DisplayWidth(line[c]) + 2, ' ');
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text;
    out += '\n';
  }
  return out;
}

std::string FormatKeyValues(const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t key_width = 0;
  for (const auto& [key, value] : fields) key_width = std::max(key_width, DisplayWidth(key) + 1);
  const size_t indent = key_width + 2;
  std::string out;
  for (const auto& [key, value] : fields) {
    std::string line = key + ":";
    line.append(indent - DisplayWidth(line), ' ');
    std::string_view rest = value;
    bool first = true;
    do {
      size_t nl = rest.find('\n');
      std::string_view part = rest.substr(0, nl);
      if (!first) line.append(indent, ' ');
      line += part;
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line;
      out += '\n';
      line.clear();
      first = false;
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      if (nl == std::string_view::npos) break;
    } while (true);
  }
  return out;
}

std::string DescribeErrorResponse(int http_status, std::string_view body) {
  const std::string status = "HTTP " + std::to_string(http_status);
  auto json = ParseJson(body);
  if (json && json->is_object() && json->contains("error") && (*json)["error"].is_object()) {
    const OJson& e = (*json)["error"];
    std::string code = Text(e, "code");
    std::string message = Text(e, "message");
    std::string field = Text(e, "field");
    std::string detail = status + (code.empty() ? "" : " " + code);
    if (!field.empty()) detail += "; field: " + field;
    return (message.empty() ? code : message) + " (" + detail + ")";
  }
  std::string text = OneLine(body.substr(0, 200));
  if (body.size() > 200) text += "...";
  return text.empty() ? status : status + ": " + text;
}

bool NormalizeRuntimeStatuses(std::string_view list, std::string* out, std::string* error) {
  return NormalizeNameList(list, kRuntimeStatuses, "runtime status", out, error);
}

bool NormalizeTime(std::string_view text, std::string* out, std::string* error) {
  std::string candidate(text);
  // A bare date means its midnight UTC.
  if (candidate.size() == 10 && candidate[4] == '-' && candidate[7] == '-')
    candidate += "T00:00:00Z";
  TimePoint parsed;
  if (!ParseIso8601(candidate, &parsed)) {
    *error =
        "'" + std::string(text) +
        "' is not an ISO 8601 UTC time such as 2026-01-31T12:00:00Z or a date such as 2026-01-31";
    return false;
  }
  *out = std::move(candidate);
  return true;
}

std::string EntityPath(std::string_view name, std::string_view key) {
  return std::string(kDurableBase) + "/entities/" + PercentEncode(name) + "/" +
         (key.empty() || key == "$" ? std::string("$") : PercentEncode(key));
}

}  // namespace baton::cli
