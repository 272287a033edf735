// JobSpec: what a tenant submits to run a batch job (docs/job-spec.md).
//
// Parsing validates everything a job needs before anything is stored: each
// rejection names the offending field with its JSON path ("containers[1].cpu")
// and says why, so an API can answer 400 with {"field": …}. A job that could
// never run on this node or within the tenant's largest quota is rejected too
// (FitsWithin), with 422 semantics, rather than queued forever.
//
// Thread-safety: values; ParseJobSpec is pure.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "baton/json.h"
#include "baton/status.h"
#include "runtime/container_runtime.h"

namespace baton::batch {

enum class RestartPolicy { kNever, kOnFailure, kAlways };
enum class CompletionMode { kExitCode, kCallback, kJobUrl };

struct JobContainer {
  std::string name;  // "main" for the first; sidecars name themselves
  std::string image;
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> secret_env;
  std::string working_dir;
  double cpu = 0.5;              // cores, > 0
  int64_t memory_bytes = 256 << 20;
  std::vector<uint16_t> ports;   // container ports (network "bridge" only)
  // Sandbox (docs/job-spec.md#sandbox): every container runs with no
  // capabilities, no-new-privileges and a pids limit; these loosen or
  // tighten it.
  std::string user;                        // "UID" or "UID:GID" (numeric); "" = the image's
  bool read_only_root_fs = false;
  std::vector<std::string> capabilities;   // added back; each needs the tenant's grant
  int64_t pids_limit = kDefaultPidsLimit;
  // Files under /run/baton/secrets/ (BATON_SECRETS_DIR), by file name.
  std::map<std::string, std::string> secret_files;

  static constexpr int64_t kDefaultPidsLimit = 512;
  static constexpr int64_t kMaxPidsLimit = 32768;
};

// What to do when the main container is killed for lack of memory
// (docs/job-spec.md#oom-retries): retry with its memory limit multiplied by
// `increase_memory` (in (1, 16]), up to `max_memory_bytes` (at least the
// main container's memory). Such a retry does not use the restart policy's
// attempts; at most kMaxResizes of them per job.
struct OomPolicy {
  double increase_memory = 2.0;
  int64_t max_memory_bytes = 0;
  static constexpr int kMaxResizes = 10;
};

// A job this job waits for (docs/job-spec.md#dependencies).
struct JobDependency {
  std::string job_id;   // a job of the same tenant
  bool n_to_n = false;  // arrays of equal size: index i waits for index i
};

struct JobSpec {
  std::string name;
  std::vector<JobContainer> containers;  // containers[0] is the main container
  runtime::NetworkMode network = runtime::NetworkMode::kNone;
  int64_t timeout_seconds = 3600;
  RestartPolicy restart = RestartPolicy::kNever;
  int max_attempts = 1;           // attempts in all, >= 1
  int64_t backoff_seconds = 10;   // before the 2nd attempt; doubles after, capped at 1 h
  CompletionMode completion = CompletionMode::kExitCode;
  uint16_t job_port = 0;          // kJobUrl: the port serving POST /start and GET /status
  std::map<std::string, std::string> labels;
  int priority = 0;               // higher first within the tenant's queue
  // Waits until these jobs ended; fails when one did not complete, unless
  // run_on_failure.
  std::vector<JobDependency> depends_on;
  bool run_on_failure = false;
  // An array job (docs/job-spec.md#array-jobs): array_size children, each
  // this spec with BATON_ARRAY_INDEX 0..array_size-1; 0 = not an array.
  int array_size = 0;
  std::optional<OomPolicy> on_oom_killed;  // "onOomKilled"; none = an OOM kill is a failure like another

  static constexpr int kMaxArraySize = 1000;

  static constexpr size_t kMaxDependencies = 20;

  double TotalCpu() const;
  int64_t TotalMemoryBytes() const;
};

// A job id: 16 lower-case hex digits ("3f9c0a1be2d44c71"), or a child of an
// array job, "<id>:<index>" (index 0-9999, no leading zero).
bool IsJobId(const std::string& id);

// A field-named validation error: InvalidArgument whose message is
// "<field>: <reason>". FieldOf() returns the field part.
std::string FieldOf(const Status& status);

// Parses and validates a job spec (JSON object). InvalidArgument names the
// field, e.g. "containers[0].memoryMb: must be at least 6".
Result<JobSpec> ParseJobSpec(const Json& json);

// The spec as JSON, secret env values replaced by "***" (for status, events
// and any output a tenant or an operator can see).
Json RedactedJson(const JobSpec& spec);

// Limits a job can never exceed.
struct Capacity {
  double cpu = 0;
  int64_t memory_bytes = 0;
};
// FailedPrecondition naming the field ("cpu" or "memoryMb") when the job's
// total needs exceed `limit` (the node's capacity or the tenant's quota):
// such a job would wait forever. `what` names the limit in the message.
Status FitsWithin(const JobSpec& spec, const Capacity& limit, const std::string& what);

}  // namespace baton::batch
