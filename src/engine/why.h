// `baton why`: one chain from a thing that waits (an orchestration instance,
// a job, an entity) to the root cause of its wait, across layers
// (docs/why.md).
//
// Every layer reports the wait state of the things it owns through one small
// interface, WaitSource: given a subject ("instance:<id>", "entity:<id>",
// "workers:<hub prefix>", "quota:<job instance>", "container:<group>", …) it
// answers one WaitLink — what the subject waits for, since when, the facts
// (due times, holders, positions) — and the subject of the next link, or
// none when this link is the root cause. ExplainWait asks the sources in
// order (the first that owns a subject answers) and follows `next` until a
// root, a cycle (a deadlock: A waits for B waits for A) or max_links.
//
// The engine's sources are here: instances (from state and history: timers,
// retries, activities, child orchestrations, entity calls and locks, external
// events, suspension), entities (lock holder and since) and SDK workers (a
// hub with no worker connected). The batch layer adds jobs, quota and
// containers (batch/job_why.h); they go first in the list so that they claim
// job instances before the generic instance source does.
//
// Sources only read. Thread-safety: a source is used by one request at a time.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "baton/client.h"
#include "baton/json.h"
#include "baton/registry.h"
#include "baton/status.h"

namespace baton::engine {

struct WaitLink {
  std::string subject;  // what this link is about, e.g. "instance:order-7"
  // What kind of wait: "timer", "external-event", "activity", "retry",
  // "child", "entity-call", "entity-lock", "suspended", "scheduled",
  // "sdk-worker", "done", "running", and from batch/: "quota",
  // "image-pull", "container", "runtime-fault", …
  std::string layer;
  std::string summary;          // one sentence for people
  Json details = Json::object();  // the facts, for programs (times in ISO 8601)
  std::string next;             // the subject this one waits on; "" = root cause
};

class WaitSource {
 public:
  virtual ~WaitSource() = default;
  // Whether this source answers for `subject`.
  virtual bool Owns(std::string_view subject) const = 0;
  // The subject's wait state. NotFound: no such thing. Other codes: the
  // store or the runtime could not answer.
  virtual Result<WaitLink> Explain(const std::string& subject) = 0;
};

struct WhyChain {
  std::vector<WaitLink> links;  // first: the subject asked about; last: the root cause
  bool cycle = false;      // the last link's `next` is an earlier subject (a deadlock)
  bool truncated = false;  // max_links reached, or a link led outside what the caller may see
};

// Assembles the chain from `subject`. `visible` (may be empty = all) tells
// whether the caller may see a subject; a link whose `next` is not visible
// ends the chain there (truncated) with its `next` cleared. NotFound when the
// first subject is not found or no source owns it; an error of a later link
// ends the chain with what was found and a link of layer "unknown" saying why.
Result<WhyChain> ExplainWait(const std::string& subject, const std::vector<WaitSource*>& sources,
                             const std::function<bool(const std::string& subject)>& visible = {},
                             int max_links = 16);

// {"subject", "rootCause": {…last link…}, "chain": [links], "cycle", "truncated"}
Json WhyJson(const WhyChain& chain);

inline std::string InstanceSubject(std::string_view id) { return "instance:" + std::string(id); }
inline std::string EntitySubject(std::string_view id) { return "entity:" + std::string(id); }
inline std::string WorkersSubject(std::string_view hub_prefix) { return "workers:" + std::string(hub_prefix); }

// The task-hub prefix of an instance id ("acme::" for "acme::order-7", "" for the default hub).
std::string HubPrefixOf(std::string_view instance_id);

// The connected SDK worker streams of a hub prefix; nullopt when this server
// has no sidecar (no SDK worker can ever connect).
using SdkWorkerCount = std::function<std::optional<int>(std::string_view hub_prefix)>;

// Orchestration instances ("instance:<id>"). `registry` (may be null) tells
// C++ orchestrators and activities from SDK ones, and lets the source replay
// a C++ orchestrator to learn which external events it awaits.
class InstanceWaitSource final : public WaitSource {
 public:
  InstanceWaitSource(Client& client, const Registry* registry, SdkWorkerCount sdk_workers);
  bool Owns(std::string_view subject) const override;
  Result<WaitLink> Explain(const std::string& subject) override;

 private:
  Client& client_;
  const Registry* registry_;
  SdkWorkerCount sdk_workers_;
};

// Entities ("entity:<id>"): who holds the lock, since when.
class EntityWaitSource final : public WaitSource {
 public:
  explicit EntityWaitSource(Client& client) : client_(client) {}
  bool Owns(std::string_view subject) const override;
  Result<WaitLink> Explain(const std::string& subject) override;

 private:
  Client& client_;
};

// SDK workers of a hub ("workers:<hub prefix>").
class WorkerWaitSource final : public WaitSource {
 public:
  explicit WorkerWaitSource(SdkWorkerCount sdk_workers) : sdk_workers_(std::move(sdk_workers)) {}
  bool Owns(std::string_view subject) const override;
  Result<WaitLink> Explain(const std::string& subject) override;

 private:
  SdkWorkerCount sdk_workers_;
};

}  // namespace baton::engine
