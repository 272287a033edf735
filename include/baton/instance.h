// What Baton knows about an orchestration instance, and how to ask for many.
//
// `InstanceState` is the metadata row of one instance (the Durable Task
// protocol's OrchestrationState). `InstanceQuery` and `PurgeFilter` select
// instances for listing and purging. These are plain values shared by the
// Client (client.h) and every Store (store.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "baton/clock.h"
#include "baton/history.h"

namespace baton {

// Task hubs. An instance id of the form "<hub>::<id>" belongs to task hub
// <hub> (a tenant, for the HTTP API); an id without "::" to the default hub.
// Orchestrations stay inside their hub: the ids they give to
// sub-orchestrations and to SendEvent are taken relative to it.
inline constexpr std::string_view kHubSeparator = "::";

// The hub part of `instance_id` ("" for the default hub).
std::string_view HubOf(std::string_view instance_id);
// True for the instance id of a durable entity: "@name@key", with or without
// a hub prefix (entity.h).
bool IsEntityInstanceId(std::string_view instance_id);
// `id` as seen from an orchestration whose own id is `instance_id`: prefixed
// with that instance's hub unless it already is.
std::string QualifyInHub(std::string_view instance_id, std::string_view id);

struct InstanceState {
  std::string instance_id;
  std::string name;
  std::string version;
  std::string execution_id;  // changes at every continue-as-new
  OrchestrationStatus status = OrchestrationStatus::kPending;
  TimePoint created_at;
  TimePoint last_updated_at;
  std::optional<TimePoint> completed_at;      // set once terminal
  std::optional<TimePoint> scheduled_start;   // when asked to start later
  // Payloads (serialized JSON; "" = none). Left empty when the caller asked
  // for state without inputs and outputs.
  std::string input;
  std::string output;
  std::string custom_status;
  std::optional<FailureDetails> failure;  // set when status is kFailed
  std::string parent_instance_id;         // "" for top-level instances
  // The tags given at start (ScheduleOptions::tags, the SDKs' `tags`); read
  // by GetInstance, WaitForInstance and QueryInstances whether or not
  // payloads were asked for.
  std::map<std::string, std::string> tags;
};

// The order of a query's pages.
enum class InstanceOrder {
  kInstanceId,   // instance id, ascending (byte order)
  kNewestFirst,  // created_at descending, then instance id descending
  kOldestFirst,  // created_at ascending, then instance id ascending
};

// Which instances to list. Empty/unset fields do not filter.
struct InstanceQuery {
  std::vector<OrchestrationStatus> statuses;   // any of these
  std::optional<TimePoint> created_from;       // inclusive
  std::optional<TimePoint> created_to;         // exclusive
  std::string instance_id_prefix;
  std::string name_prefix;                     // orchestrator name starts with this
  // Leaves out durable entities (IsEntityInstanceId): their rows are
  // instances too, but they are not orchestrations a user started.
  bool exclude_entities = false;
  InstanceOrder order = InstanceOrder::kInstanceId;
  int page_size = 100;                         // 1..1000
  // Opaque token from the previous page's QueryPage::continuation_token, of
  // a query in the same order (a token of another order is InvalidArgument).
  std::string continuation_token;
  bool include_payloads = false;  // fill input/output/custom_status/failure
  // Fill QueryPage::status_counts: how many instances match every filter
  // but `statuses` (the whole result, not the page). Costs a scan of the
  // matching rows; the HTTP API asks for it on a list's first page only.
  bool count_by_status = false;
};

struct QueryPage {
  std::vector<InstanceState> instances;  // in the query's order
  std::string continuation_token;        // "" when this is the last page
  // When InstanceQuery::count_by_status: (status, count) for each status
  // with at least one matching instance, in OrchestrationStatus order.
  std::vector<std::pair<OrchestrationStatus, int64_t>> status_counts;
};

// Which instances to purge. Only terminal instances are ever purged.
struct PurgeFilter {
  std::string instance_id_prefix;            // "" = any (used to confine a purge to a hub)
  std::optional<TimePoint> created_from;     // inclusive
  std::optional<TimePoint> created_to;       // exclusive
  std::vector<OrchestrationStatus> statuses;  // empty = every terminal status
};

}  // namespace baton
