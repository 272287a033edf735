// The batch-job client verbs (user guide: docs/cli.md, "Jobs"; HTTP contract:
// docs/http-api.md, "Batch jobs"; the spec: docs/job-spec.md):
//
//   baton job submit|list|get|logs|cancel|wait|events   (a tenant key)
//   baton image push|list                                (a tenant key)
//   baton tenant quota ID                                (the admin key)
//
// They are registered by AddClientCommands (commands.h) and behave like the
// other client verbs: the same connection options, --output table|json, and
// the exit codes of commands.h. `job wait` and `job submit --wait` exit
// kExitNotCompleted when the job did not end Completed.
//
// The pure pieces (building a spec from flags, rendering) are exposed for
// tests. Thread-safety: all functions here are pure, or are registration
// functions to call before app.parse().
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "baton/status.h"

namespace baton::cli {

struct Io;  // verb.h

// Registers the `job` group and its verbs on `app`.
// REQUIRES: `io`'s streams and exit code outlive `app`; no `job` subcommand yet.
void AddJobVerbs(CLI::App& app, const Io& io);

// Registers the `image` group: `image push IMAGE [NAME]`, `image list`.
void AddImageVerbs(CLI::App& app, const Io& io);

// Registers `quota` under the `tenant` group.
void AddTenantQuotaVerb(CLI::App* tenant_group, const Io& io);

// The job spec members `job submit` takes as flags; an empty optional or
// vector means the flag was not given.
struct JobSpecFlags {
  std::optional<std::string> image;
  std::optional<std::string> name;
  std::optional<double> cpu;
  std::optional<int64_t> memory_mb;
  std::vector<std::string> env;         // "K=V" each (--env)
  std::vector<std::string> secret_env;  // "K=V" each (--secret-env)
  std::optional<std::string> restart;   // Never, OnFailure or Always
  std::optional<int> max_attempts;
  std::optional<int64_t> backoff_seconds;
  std::optional<int64_t> timeout_seconds;
  std::optional<std::string> network;     // none, host or bridge
  std::optional<std::string> completion;  // exitCode or callback
  std::vector<std::string> labels;        // "k=v" each (--label)
  std::optional<int> priority;
  std::vector<std::string> command;  // the entrypoint argv (--command, repeated)
  std::vector<std::string> args;     // (--arg, repeated)
};

// The job spec to POST: `base` (the spec read with -f, or an empty object)
// with the flags applied over it:
//  - --image, --name, --cpu, --memory, --timeout, --network, --completion and
//    --priority replace their member;
//  - --env, --secret-env and --label add or replace one key each in env,
//    secretEnv and labels (the last of a repeated key wins); a key given with
//    --env is removed from the file's secretEnv and the other way round, so
//    the flag decides whether the variable is secret;
//  - --command and --arg replace the whole command and args arrays;
//  - --restart, --max-attempts and --backoff set restartPolicy's policy,
//    maxAttempts and backoffSeconds, turning a restartPolicy given as a name
//    into the object form; --restart Never drops a maxAttempts from the file
//    (Never allows one attempt).
// A spec left without "name" gets DeriveJobName(its image).
//
// Returns InvalidArgument whose message starts with the flag it is about
// ("--env: 'FOO' is not KEY=VALUE"): a K=V flag without '=' or with an empty
// key; the same key in --env and --secret-env; an invalid --name; no policy
// for --max-attempts / --backoff, or more than one attempt with policy
// Never; a spec without "image" (--image is required without -f); an image
// no name can be derived from; `base` not an object ("-f: ..."). Members are
// not otherwise validated here: the server does that, naming the field.
Result<nlohmann::ordered_json> BuildJobSpec(nlohmann::ordered_json base, const JobSpecFlags& flags);

// The default job name for an image reference: the last path segment of its
// repository (without registry, tag or digest), lowercased, every character
// outside [a-z0-9-] replaced by '-', leading and trailing '-' trimmed, cut to
// 63 characters: "127.0.0.1:5000/vfx/Render_HQ:1.4" -> "render-hq". "" when
// nothing is left (then the user must pass --name).
std::string DeriveJobName(std::string_view image);

// A job's waitingOn for people: the reason, then its other members as
// "name value" in parentheses: {"reason":"quota","position":2} ->
// "quota (position 2)", {"reason":"imagePull","image":"x:1"} ->
// "imagePull (image x:1)". "" for null or missing; a string as it is.
std::string DescribeWaitingOn(const nlohmann::ordered_json& waiting_on);

// The "Key: value" lines of `job get` for a job object (see
// docs/http-api.md): id, name, status, waiting on, attempt, progress, image,
// times, and once it ended the result's exit code, OOM kill, attempts, error
// and logs tail. Members that are null or missing are left out.
std::vector<std::pair<std::string, std::string>> JobFields(const nlohmann::ordered_json& job);

// The table of `job events`: TIME TYPE ATTEMPT DETAIL, DETAIL being the
// event's other members as compact JSON ("" when none).
std::string JobEventsTable(const nlohmann::ordered_json& events);

// Validates a comma-separated list of job statuses (case-insensitive) and
// returns it in the canonical spelling ("running,queued" ->
// "Running,Queued"). Returns false and sets `*error` for an unknown name.
bool NormalizeJobStatuses(std::string_view list, std::string* out, std::string* error);

// The new values `tenant quota` sets; empty = keep the current one.
struct QuotaFlags {
  std::optional<double> cpu;
  std::optional<int64_t> memory_mb;
  std::optional<int64_t> jobs;
  std::optional<double> weight;
};

// The body of PUT .../quota: the members cpu, memoryMb, jobs and weight of
// `current` (the GET answer; its usage members and non-numbers are dropped),
// each replaced by its flag when given. Whole numbers are sent as JSON
// integers (8192.0 as 8192).
nlohmann::ordered_json MergeQuota(const nlohmann::ordered_json& current, const QuotaFlags& flags);

}  // namespace baton::cli
