#include "app/cli/job_commands.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <thread>

#include "app/cli/commands.h"
#include "app/cli/http_client.h"
#include "app/cli/verb.h"

namespace baton::cli {
namespace {

constexpr std::string_view kJobsBase = "/api/v1/jobs";
constexpr std::string_view kAdminBase = "/api/v1/admin";

// The job statuses, as the server spells them (docs/http-api.md).
constexpr std::string_view kJobStatuses[] = {"Pending",    "Queued",    "Starting", "Running",
                                             "BackingOff", "Completed", "Failed",   "Canceled"};

// How often `job wait` reads the job.
constexpr std::chrono::milliseconds kPollInterval{500};
// How long one `logs --follow` request asks the server to wait for a line
// (the server's default; it allows 1-60 s).
constexpr int kFollowWaitSeconds = 20;

bool HasEnded(std::string_view status) {
  return status == "Completed" || status == "Failed" || status == "Canceled";
}

std::string JobPath(const std::string& id, std::string_view suffix = "") {
  return std::string(kJobsBase) + "/" + PercentEncode(id) + std::string(suffix);
}

// A whole number as a JSON integer (the server may insist on one), else as
// a double.
OJson Number(double value) {
  if (std::isfinite(value) && std::floor(value) == value && std::fabs(value) < 9.0e15) {
    return static_cast<int64_t>(value);
  }
  return value;
}

// Whether `name` is a job name the server accepts (docs/job-spec.md).
bool IsJobName(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// The "K=V" values of one repeatable flag, split at the first '='.
Result<std::vector<std::pair<std::string, std::string>>> SplitKeyValues(
    std::string_view flag, const std::vector<std::string>& values) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& text : values) {
    size_t eq = text.find('=');
    if (eq == std::string::npos) {
      return InvalidArgumentError(std::string(flag) + ": '" + text + "' is not KEY=VALUE");
    }
    if (eq == 0) {
      return InvalidArgumentError(std::string(flag) + ": '" + text + "' has an empty key");
    }
    out.emplace_back(text.substr(0, eq), text.substr(eq + 1));
  }
  return out;
}

// Sets each pair in the object member `member` of `spec` (replacing the
// member when it is not an object), and removes the keys from the object
// member `other` (when not empty).
void ApplyKeyValues(OJson& spec, const char* member, const char* other,
                    const std::vector<std::pair<std::string, std::string>>& pairs) {
  if (pairs.empty()) return;
  OJson& target = spec[member];
  if (!target.is_object()) target = OJson::object();
  for (const auto& [key, value] : pairs) target[key] = value;
  if (*other == '\0') return;
  auto it = spec.find(other);
  if (it == spec.end() || !it->is_object()) return;
  for (const auto& [key, value] : pairs) it->erase(key);
}

// restartPolicy after --restart, --max-attempts and --backoff.
Status ApplyRestartFlags(OJson& spec, const JobSpecFlags& f) {
  if (!f.restart && !f.max_attempts && !f.backoff_seconds) return Status::Ok();
  OJson policy = OJson::object();
  if (auto it = spec.find("restartPolicy"); it != spec.end()) {
    if (it->is_string()) policy["policy"] = *it;
    if (it->is_object()) policy = *it;
  }
  if (f.restart) {
    policy["policy"] = *f.restart;
    // Never allows one attempt: a count from the file would only be rejected.
    if (*f.restart == "Never" && !f.max_attempts) policy.erase("maxAttempts");
  }
  if (f.max_attempts) policy["maxAttempts"] = *f.max_attempts;
  if (f.backoff_seconds) policy["backoffSeconds"] = *f.backoff_seconds;
  if (!policy.contains("policy")) {
    return InvalidArgumentError(std::string(f.max_attempts ? "--max-attempts" : "--backoff") +
                                ": needs a restart policy: add --restart OnFailure or "
                                "--restart Always");
  }
  if (f.max_attempts && *f.max_attempts > 1 && policy["policy"] == "Never") {
    return InvalidArgumentError(
        "--max-attempts: the restart policy Never allows one attempt; add --restart OnFailure "
        "or --restart Always");
  }
  spec["restartPolicy"] = std::move(policy);
  return Status::Ok();
}

// DescribeWaitingOn of a job's waitingOn member.
std::string WaitingOnOf(const OJson& job) {
  if (!job.is_object()) return "";
  auto it = job.find("waitingOn");
  return it == job.end() ? "" : DescribeWaitingOn(*it);
}

// A log line's text. Lines are {"stream","time","text"} objects; a bare
// string is taken as the text.
std::string LineText(const OJson& line) {
  if (line.is_string()) return line.get<std::string>();
  if (line.is_object()) return Text(line, "text");
  return CompactJson(line);
}

// One log line for people: its text, on stderr when the container wrote it
// there.
void PrintLogLine(Session& s, const OJson& line) {
  std::string text = LineText(line);
  std::ostream& to = Text(line, "stream") == "stderr" ? s.err() : s.out();
  to << text;
  if (text.empty() || text.back() != '\n') to << '\n';
}

// A member as Text(), but a whole number without a fraction ("512", not
// "512.0").
std::string NumberText(const OJson& object, std::string_view key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_float()) return Text(object, key);
  return CompactJson(Number(it->get<double>()));
}

// A quota limit; 0 means none.
std::string LimitText(const OJson& quota, std::string_view key) {
  auto it = quota.find(key);
  if (it != quota.end() && it->is_number() && it->get<double>() == 0) return "unlimited";
  return NumberText(quota, key);
}

std::vector<std::pair<std::string, std::string>> QuotaFields(const std::string& tenant,
                                                             const OJson& q) {
  std::string memory = LimitText(q, "memoryMb");
  if (!memory.empty() && memory != "unlimited") memory += " MiB";
  std::vector<std::pair<std::string, std::string>> f = {{"Tenant", tenant},
                                                        {"CPU", LimitText(q, "cpu")},
                                                        {"Memory", memory},
                                                        {"Jobs", LimitText(q, "jobs")},
                                                        {"Weight", NumberText(q, "weight")}};
  if (auto it = q.find("running"); it != q.end() && it->is_object()) {
    f.emplace_back("Running", NumberText(*it, "cpu") + " CPU, " + NumberText(*it, "memoryMb") +
                                  " MiB, " + NumberText(*it, "jobs") + " jobs");
  }
  if (std::string queued = Text(q, "queued"); !queued.empty()) f.emplace_back("Queued", queued);
  return f;
}

// Why the job ended: the result's "reason: summary" (as its AttemptEnded
// event and `job get` say it); from an older server, "exit code 1, OOM
// killed: <error>"; "" when none.
std::string ResultSummary(const OJson& job) {
  auto it = job.find("result");
  if (it == job.end() || !it->is_object()) return "";
  if (std::string reason = Text(*it, "reason"); !reason.empty()) {
    std::string summary = Text(*it, "summary");
    return summary.empty() ? reason : reason + ": " + summary;
  }
  std::string out;
  if (std::string code = Text(*it, "exitCode"); !code.empty()) out = "exit code " + code;
  if (auto oom = it->find("oomKilled"); oom != it->end() && oom->is_boolean() && oom->get<bool>())
    out += out.empty() ? "OOM killed" : ", OOM killed";
  if (std::string error = Text(*it, "error"); !error.empty())
    out += (out.empty() ? "" : ": ") + error;
  return out;
}

// ---- Validators ----

CLI::Validator Minimum(double min) {
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        try {
          size_t used = 0;
          double value = std::stod(text, &used);
          if (used == text.size() && value >= min) return "";
        } catch (const std::exception&) {
        }
        std::ostringstream bound;
        bound << min;
        return "'" + text + "' is not a number of at least " + bound.str();
      },
      "");
}

CLI::Validator JobStatusListValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::string normalized, error;
        if (!NormalizeJobStatuses(text, &normalized, &error)) return error;
        text = normalized;
        return "";
      },
      "");
}

// ---- Verbs ----

// Reads the job until it ended or `timeout_s` passed; prints its final
// state and sets the exit code (kExitNotCompleted unless Completed).
void WaitForJob(Session& s, const std::string& id, int timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  OJson job;
  while (true) {
    HttpRequestSpec spec;
    spec.target = JobPath(id);
    auto got = s.CallForJson(spec, /*array=*/false);
    if (!got) return;
    job = std::move(*got);
    if (HasEnded(Text(job, "status"))) break;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(kPollInterval, deadline - now));
  }
  const std::string status = Text(job, "status");
  if (s.json()) {
    s.PrintJson(job);
  } else {
    s.err() << "status: " << status << '\n';  // stdout stays the id alone
  }
  if (status == "Completed") return;
  if (HasEnded(status)) {
    std::string why = ResultSummary(job);
    s.Warn("job " + id + " ended " + status + (why.empty() ? "" : " (" + why + ")"));
  } else {
    s.Warn("job " + id + " is still " + status + " after " + std::to_string(timeout_s) + " s");
  }
  s.SetExitCode(kExitNotCompleted);
}

struct SubmitOptions {
  GlobalOptions g;
  std::string file;
  JobSpecFlags spec;
  int wait = 0;
};

void RunSubmit(Session& s, const SubmitOptions& o) {
  OJson base = OJson::object();
  if (!o.file.empty()) {
    const std::string shown = o.file == "-" ? "stdin" : "'" + o.file + "'";
    std::string text;
    if (!ReadFileOrStdin(o.file, &text)) {
      s.Fail(kExitUsage, "-f: cannot read " + shown);
      return;
    }
    if (std::string why = JsonError(text); !why.empty()) {
      s.Fail(kExitUsage, "-f: " + shown + " is not valid JSON: " + why);
      return;
    }
    base = *ParseJson(text);
  }
  auto spec = BuildJobSpec(std::move(base), o.spec);
  if (!spec.ok()) {
    s.Fail(kExitUsage, spec.status().message());
    return;
  }
  HttpRequestSpec request;
  request.method = HttpMethod::kPost;
  request.target = std::string(kJobsBase);
  request.has_body = true;
  request.body = CompactJson(*spec);
  auto job = s.CallForJson(request, /*array=*/false);
  if (!job) return;
  if (o.wait == 0 || !s.json()) {
    if (s.json()) {
      s.PrintJson(*job);
    } else {
      // The id alone on stdout (ID=$(baton job submit …)); the status beside
      // it on stderr, for the person watching.
      s.out() << Text(*job, "id") << '\n';
      s.out().flush();
      s.err() << "status: " << Text(*job, "status") << '\n';
    }
  }
  if (o.wait == 0) return;
  s.out().flush();
  WaitForJob(s, Text(*job, "id"), o.wait);
}

struct ListOptions {
  GlobalOptions g;
  std::string statuses;
  std::string name;
  std::string labels;
  std::string sort;
  int page_size = 0;
  bool all = false;
};

void RunList(Session& s, const ListOptions& o) {
  std::vector<std::pair<std::string, std::string>> query;
  if (!o.statuses.empty()) query.emplace_back("status", o.statuses);
  if (!o.name.empty()) query.emplace_back("name", o.name);
  if (!o.labels.empty()) query.emplace_back("labels", o.labels);
  if (!o.sort.empty()) query.emplace_back("sort", o.sort);
  if (o.page_size > 0) query.emplace_back("pageSize", std::to_string(o.page_size));
  // The server counts jobs exactly only without a filter it applies job by job.
  const bool countable = o.statuses.empty() && o.name.empty() && o.labels.empty();
  if (countable) query.emplace_back("countByStatus", "true");
  HttpRequestSpec spec;
  spec.target = std::string(kJobsBase) + BuildQueryString(query);

  bool more = false;
  std::string token;
  HttpResponse first;
  std::optional<OJson> jobs = FetchPages(s, spec, o.all, &more, PageStyle{"jobs"}, &token, &first);
  if (!jobs) return;
  int64_t remaining = -1;
  if (countable) {
    OJson answer = OJson::parse(first.body, nullptr, /*allow_exceptions=*/false);
    if (answer.is_object() && answer.contains("counts") && answer["counts"].is_object()) {
      int64_t total = 0;
      for (const auto& [k, v] : answer["counts"].items()) total += v.is_number_integer() ? v.get<int64_t>() : 0;
      remaining = total - static_cast<int64_t>(jobs->size());
    }
  }

  if (s.json()) {
    // The server's shape, every page's jobs in one array.
    OJson answer = {{"jobs", *jobs}};
    if (more) answer["continuationToken"] = token;
    s.PrintJson(answer);
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const OJson& job : *jobs) {
      rows.push_back({Text(job, "id"), Text(job, "name"), Text(job, "status"), Text(job, "attempt"),
                      WaitingOnOf(job), Text(job, "createdAt")});
    }
    s.out() << FormatTable({"ID", "NAME", "STATUS", "ATTEMPT", "WAITING-ON", "CREATED"}, rows);
  }
  WarnIfMore(s, more, o.all, "jobs", remaining, o.page_size > 0 ? o.page_size : 50);
}

struct IdOptions {
  GlobalOptions g;
  std::string id;
};

void RunGet(Session& s, const IdOptions& o) {
  HttpRequestSpec spec;
  spec.target = JobPath(o.id);
  auto job = s.CallForJson(spec, /*array=*/false);
  if (!job) return;
  if (s.json()) {
    s.PrintJson(*job);
  } else {
    s.out() << FormatKeyValues(JobFields(*job));
  }
}

struct LogsOptions {
  GlobalOptions g;
  std::string id;
  bool follow = false;
  int attempt = 0;
};

void RunLogs(Session& s, const LogsOptions& o) {
  // Without --attempt the first answer names the latest attempt; later
  // requests ask for that one, so `after` keeps counting its lines even when
  // a retry starts meanwhile.
  int attempt = o.attempt;
  int64_t after = 0;
  OJson collected = OJson::array();  // without --follow, for --output json
  OJson last;
  bool last_round = false;
  // Following ends only when the attempt is over; a plain read ends when
  // nothing more comes, after at most kMaxListPages answers.
  for (int round = 1;; ++round) {
    const bool follow = o.follow && !last_round;
    std::vector<std::pair<std::string, std::string>> query;
    if (attempt > 0) query.emplace_back("attempt", std::to_string(attempt));
    if (after > 0) query.emplace_back("after", std::to_string(after));
    if (follow) {
      query.emplace_back("follow", "true");
      query.emplace_back("timeout", std::to_string(kFollowWaitSeconds));
    }
    HttpRequestSpec spec;
    spec.target = JobPath(o.id, "/logs") + BuildQueryString(query);
    if (follow) spec.timeout = std::chrono::seconds(kFollowWaitSeconds) + kWaitMargin;
    auto page = s.CallForJson(spec, /*array=*/false);
    if (!page) return;
    auto lines = page->find("lines");
    if (lines == page->end() || !lines->is_array()) {
      s.Fail(kExitError,
             "unexpected answer from the server: the logs answer has no array \"lines\"");
      return;
    }
    for (const OJson& line : *lines) {
      if (!s.json()) {
        PrintLogLine(s, line);
      } else if (o.follow) {
        s.out() << CompactJson(line) << '\n';  // JSON Lines, as they come
      } else {
        collected.push_back(line);
      }
    }
    s.out().flush();
    s.err().flush();

    auto done_it = page->find("done");
    const bool done = done_it != page->end() && done_it->is_boolean() && done_it->get<bool>();
    auto next = page->find("next");
    const int64_t next_after = next != page->end() && next->is_number_integer()
                                   ? next->get<int64_t>()
                                   : after + static_cast<int64_t>(lines->size());
    if (attempt == 0) {
      auto a = page->find("attempt");
      if (a != page->end() && a->is_number_integer() && a->get<int64_t>() > 0)
        attempt = static_cast<int>(a->get<int64_t>());
    }
    const bool empty = lines->empty();
    const bool advanced = next_after > after;
    after = std::max(after, next_after);
    last = std::move(*page);
    if (done || last_round) break;
    if (!o.follow) {
      if (empty || !advanced || round >= kMaxListPages) break;  // all there is for now
      continue;
    }
    if (empty) {
      // Nothing within the wait. A job that ended without (another) attempt
      // has no attempt to report done, so check the job: once it ended, one
      // last read without waiting returns whatever is left.
      HttpRequestSpec get;
      get.target = JobPath(o.id);
      auto job = s.CallForJson(get, /*array=*/false);
      if (!job) return;
      if (HasEnded(Text(*job, "status"))) last_round = true;
    }
  }
  if (s.json() && !o.follow) {
    last["lines"] = std::move(collected);
    s.PrintJson(last);
  }
}

void RunCancel(Session& s, const IdOptions& o) {
  HttpRequestSpec spec;
  spec.method = HttpMethod::kPost;
  spec.target = JobPath(o.id, "/cancel");
  auto job = s.CallForJson(spec, /*array=*/false);
  if (!job) return;
  if (s.json()) {
    s.PrintJson(*job);
  } else {
    s.out() << "Requested cancel of job " << o.id << ".\n";
  }
}

void RunDelete(Session& s, const IdOptions& o) {
  HttpRequestSpec spec;
  spec.method = HttpMethod::kDelete;
  spec.target = JobPath(o.id);
  auto answer = s.CallForJson(spec, /*array=*/false);
  if (!answer) return;
  if (s.json()) {
    s.PrintJson(*answer);
  } else {
    s.out() << "Deleted job " << o.id << " with its logs.\n";
  }
}

struct WaitOptions {
  GlobalOptions g;
  std::string id;
  int timeout = 600;
};

void RunWait(Session& s, const WaitOptions& o) { WaitForJob(s, o.id, o.timeout); }

void RunEvents(Session& s, const IdOptions& o) {
  HttpRequestSpec spec;
  spec.target = JobPath(o.id, "/events");
  auto answer = s.CallForJson(spec, /*array=*/false);
  if (!answer) return;
  auto events = answer->find("events");
  if (events == answer->end() || !events->is_array()) {
    s.Fail(kExitError, "unexpected answer from the server: no array \"events\"");
    return;
  }
  if (s.json()) {
    s.PrintJson(*answer);
  } else {
    s.out() << JobEventsTable(*events);
  }
}

struct QuotaOptions {
  GlobalOptions g;
  std::string id;
  QuotaFlags flags;
};

void RunQuota(Session& s, const QuotaOptions& o) {
  const QuotaFlags& f = o.flags;
  if (o.id.empty()) {
    // A tenant key reads its own tenant's quota, usage and queue.
    if (f.cpu || f.memory_mb || f.jobs || f.weight) {
      s.Fail(kExitUsage, "changing a quota takes a tenant id (and an admin key)");
      return;
    }
    HttpRequestSpec own;
    own.target = "/api/v1/quota";
    auto quota = s.CallForJson(own, /*array=*/false);
    if (!quota) return;
    if (s.json()) {
      s.PrintJson(*quota);
      return;
    }
    s.out() << FormatKeyValues(QuotaFields(Text(*quota, "tenant"), *quota));
    if (quota->contains("queue") && (*quota)["queue"].is_array() && !(*quota)["queue"].empty()) {
      std::vector<std::vector<std::string>> rows;
      for (const OJson& e : (*quota)["queue"]) rows.push_back({Text(e, "position"), Text(e, "id"), Text(e, "cpu"),
                                                              Text(e, "memoryMb")});
      s.out() << "\n" << FormatTable({"POSITION", "JOB ID", "CPU", "MEMORY MB"}, rows);
    }
    return;
  }
  const std::string path = std::string(kAdminBase) + "/tenants/" + PercentEncode(o.id) + "/quota";
  HttpRequestSpec get;
  get.target = path;
  auto quota = s.CallForJson(get, /*array=*/false);
  if (!quota) return;
  if (f.cpu || f.memory_mb || f.jobs || f.weight) {
    HttpRequestSpec put;
    put.method = HttpMethod::kPut;
    put.target = path;
    put.has_body = true;
    put.body = CompactJson(MergeQuota(*quota, f));
    quota = s.CallForJson(put, /*array=*/false);
    if (!quota) return;
  }
  if (s.json()) {
    s.PrintJson(*quota);
  } else {
    s.out() << FormatKeyValues(QuotaFields(o.id, *quota));
  }
}

}  // namespace

// ---- Registration ----

void AddJobVerbs(CLI::App& app, const Io& io) {
  CLI::App* g = AddGroup(app, "job", "Submit, inspect and control batch jobs (tenant key)");
  {
    auto [v, o] = AddVerb<SubmitOptions>(
        g, "submit", "Submit a job (POST /api/v1/jobs) from a spec file and/or flags", false, io,
        RunSubmit);
    JobSpecFlags& f = o->spec;
    v->add_option("-f,--file", o->file,
                  "Read the job spec (JSON, docs/job-spec.md) from file F ('-' = stdin); the "
                  "flags below override its fields")
        ->type_name("F");
    v->add_option("--image", f.image, "Image of the main container (required without -f)")
        ->type_name("IMAGE");
    v->add_option("--name", f.name,
                  "Job name: 1-63 of a-z, 0-9, '-' (default: from the image's last path segment)")
        ->type_name("N");
    v->add_option("--cpu", f.cpu, "CPU cores, fractional (server default 0.5)")
        ->type_name("C")
        ->check(Minimum(0.01));
    v->add_option("--memory", f.memory_mb, "Memory limit in MiB (server default 256)")
        ->type_name("MB")
        ->check(Minimum(6));
    v->add_option("--env", f.env, "Environment variable (repeatable)")
        ->type_name("K=V")
        ->allow_extra_args(false);
    v->add_option("--secret-env", f.secret_env,
                  "Secret environment variable, never shown by the API (repeatable)")
        ->type_name("K=V")
        ->allow_extra_args(false);
    v->add_option("--restart", f.restart, "Restart policy (server default Never)")
        ->type_name("POLICY")
        ->transform(CLI::IsMember({"Never", "OnFailure", "Always"}, CLI::ignore_case));
    v->add_option("--max-attempts", f.max_attempts, "Attempts in all, with --restart")
        ->type_name("N")
        ->check(CLI::Range(1, 100));
    v->add_option("--backoff", f.backoff_seconds,
                  "Seconds before the 2nd attempt, doubling after (capped at 1 h)")
        ->type_name("SECONDS")
        ->check(CLI::Range(0, 3600));
    v->add_option("--timeout", f.timeout_seconds,
                  "Stop the job after this many seconds (server default 3600)")
        ->type_name("SECONDS")
        ->check(CLI::Range(1, 604800));
    v->add_option("--network", f.network, "Network (server default none)")
        ->type_name("MODE")
        ->transform(CLI::IsMember({"none", "host", "bridge"}, CLI::ignore_case));
    v->add_option("--completion", f.completion, "How the job reports completion")
        ->type_name("MODE")
        ->transform(CLI::IsMember({"exitCode", "callback"}, CLI::ignore_case));
    v->add_option("--label", f.labels, "Label (repeatable)")
        ->type_name("K=V")
        ->allow_extra_args(false);
    v->add_option("--priority", f.priority, "Order in the tenant's queue, higher first")
        ->type_name("N")
        ->check(CLI::Range(-100, 100));
    v->add_option("--command", f.command,
                  "Entrypoint argv, one element per --command (repeatable; replaces the image's)")
        ->type_name("X")
        ->allow_extra_args(false);
    v->add_option("--arg", f.args, "Argument, one per --arg (repeatable; replaces the image's)")
        ->type_name("X")
        ->allow_extra_args(false);
    v->add_option("--wait", o->wait,
                  "Then wait up to SECONDS for the job to end, as `job wait` does")
        ->type_name("SECONDS")
        ->check(CLI::Range(1, 604800));
  }
  {
    auto [v, o] = AddVerb<ListOptions>(g, "list", "List jobs, newest first (GET /api/v1/jobs)",
                                       false, io, RunList);
    v->add_option("--status", o->statuses, "Only these statuses, e.g. Running,Queued")
        ->type_name("STATUS[,...]")
        ->transform(JobStatusListValidator());
    v->add_option("--name", o->name, "Only jobs of this name")->type_name("N");
    v->add_option("--label", o->labels, "Only jobs with these labels: key=value[,key[=value]...]")
        ->type_name("LABELS");
    v->add_option("--sort", o->sort, "newest (the default), oldest or id")
        ->type_name("ORDER")
        ->check(CLI::IsMember({"newest", "oldest", "id"}));
    v->add_option("--page-size", o->page_size, "Jobs per page (server default)")
        ->type_name("N")
        ->check(CLI::PositiveNumber);
    v->add_flag("--all", o->all,
                "Follow continuation tokens to fetch every page (at most " +
                    std::to_string(kMaxListPages) + " pages)");
  }
  {
    auto [v, o] =
        AddVerb<IdOptions>(g, "get", "Show a job (GET /api/v1/jobs/ID)", false, io, RunGet);
    v->add_option("id", o->id, "Job id")->required();
  }
  {
    auto [v, o] = AddVerb<LogsOptions>(
        g, "logs", "Print a job's log lines (stderr lines to stderr)", false, io, RunLogs);
    v->add_option("id", o->id, "Job id")->required();
    v->add_flag("-f,--follow", o->follow, "Keep printing new lines until the attempt is over");
    v->add_option("--attempt", o->attempt, "This attempt's lines (default: the latest attempt)")
        ->type_name("N")
        ->check(CLI::PositiveNumber);
  }
  {
    auto [v, o] = AddVerb<IdOptions>(g, "cancel", "Cancel a job (POST /api/v1/jobs/ID/cancel)",
                                     false, io, RunCancel);
    v->add_option("id", o->id, "Job id")->required();
  }
  {
    auto [v, o] = AddVerb<IdOptions>(g, "delete",
                                     "Delete a finished job with its logs and secrets (DELETE /api/v1/jobs/ID)",
                                     false, io, RunDelete);
    v->add_option("id", o->id, "Job id")->required();
  }
  {
    auto [v, o] = AddVerb<WaitOptions>(
        g, "wait", "Wait for a job to end; exit 0 only when it Completed", false, io, RunWait);
    v->add_option("id", o->id, "Job id")->required();
    v->add_option("--timeout", o->timeout, "Give up after SECONDS (exit 7)")
        ->type_name("SECONDS")
        ->capture_default_str()
        ->check(CLI::Range(0, 604800));
  }
  {
    auto [v, o] =
        AddVerb<IdOptions>(g, "events", "Print a job's timeline of events", false, io, RunEvents);
    v->add_option("id", o->id, "Job id")->required();
  }
}

// ---- Images ----

struct ImagePushOptions {
  GlobalOptions g;
  std::string image;
  std::string name;
};

void RunImagePush(Session& s, const ImagePushOptions& o) {
  HttpRequestSpec request;
  request.method = HttpMethod::kPost;
  request.target = "/api/v1/images";
  request.has_body = true;
  OJson body = {{"image", o.image}};
  if (!o.name.empty()) body["name"] = o.name;
  request.body = CompactJson(body);
  request.timeout = std::chrono::minutes(6);  // the server pushes for up to 5
  auto answer = s.CallForJson(request, /*array=*/false);
  if (!answer) return;
  if (s.json()) {
    s.PrintJson(*answer);
  } else {
    // The digest alone on stdout, to put in a job spec's "image".
    s.out() << Text(*answer, "digest") << '\n';
    s.err() << "pushed as " << Text(*answer, "image") << '\n';
  }
}

struct ImageListOptions {
  GlobalOptions g;
};

void RunImageList(Session& s, const ImageListOptions&) {
  HttpRequestSpec request;
  request.target = "/api/v1/images";
  auto answer = s.CallForJson(request, /*array=*/false);
  if (!answer) return;
  if (s.json()) {
    s.PrintJson(*answer);
    return;
  }
  std::vector<std::vector<std::string>> rows;
  auto images = answer->find("images");
  if (images != answer->end() && images->is_array()) {
    for (const OJson& i : *images) {
      std::string tags, digests;
      for (const OJson& t : i.value("tags", OJson::array())) tags += (tags.empty() ? "" : ",") + LineText(t);
      for (const OJson& d : i.value("digests", OJson::array())) {
        const std::string text = LineText(d);
        digests += (digests.empty() ? "" : ",") + text.substr(text.find('@') == std::string::npos ? 0 : text.find('@') + 1);
      }
      rows.push_back({Text(i, "repository"), tags, digests});
    }
  }
  s.out() << FormatTable({"REPOSITORY", "TAGS", "DIGESTS"}, rows);
}

void AddImageVerbs(CLI::App& app, const Io& io) {
  CLI::App* g = AddGroup(app, "image", "Push images of this node into your namespace of the platform registry (tenant key)");
  {
    auto [v, o] = AddVerb<ImagePushOptions>(
        g, "push",
        "Push IMAGE (built on the server's Docker Engine) as <registry>/<tenant>/NAME with the platform's "
        "credentials; prints the digest to run",
        false, io, RunImagePush);
    v->add_option("image", o->image, "A local image: repo[:tag], repo@sha256:… or an image id")->required();
    v->add_option("name", o->name, "repo[:tag] in your namespace (default: IMAGE's last path component)");
  }
  {
    auto [v, o] = AddVerb<ImageListOptions>(g, "list", "List your repositories, tags and digests on this node", false,
                                            io, RunImageList);
    (void)v;
    (void)o;
  }
}

void AddTenantQuotaVerb(CLI::App* tenant_group, const Io& io) {
  auto [v, o] = AddVerb<QuotaOptions>(
      tenant_group, "quota",
      "Show a tenant's job quota, usage and queue (without ID: the caller's own tenant, with a tenant key); "
      "with flags, change it (admin key: GET, then PUT, .../quota)",
      false, io, RunQuota);
  v->add_option("id", o->id, "Tenant id (admin key); omit with a tenant key");
  v->add_option("--cpu", o->flags.cpu, "CPU cores the tenant's running jobs may use (0 = no limit)")
      ->type_name("C")
      ->check(Minimum(0));
  v->add_option("--memory", o->flags.memory_mb,
                "MiB the tenant's running jobs may use (0 = no limit)")
      ->type_name("MB")
      ->check(Minimum(0));
  v->add_option("--jobs", o->flags.jobs, "Jobs the tenant may run at once (0 = no limit)")
      ->type_name("N")
      ->check(Minimum(0));
  v->add_option("--weight", o->flags.weight, "Share of the node against other tenants (>= 1)")
      ->type_name("W")
      ->check(Minimum(1));
}

// ---- Pure pieces ----

Result<OJson> BuildJobSpec(OJson spec, const JobSpecFlags& f) {
  if (!spec.is_object()) {
    return InvalidArgumentError(std::string("-f: a job spec is a JSON object, not ") +
                                spec.type_name());
  }
  if (f.image) spec["image"] = *f.image;
  if (f.name) {
    if (!IsJobName(*f.name)) {
      return InvalidArgumentError("--name: '" + *f.name +
                                  "' is not a job name: 1-63 characters of a-z, 0-9 and '-', "
                                  "not starting with '-'");
    }
    spec["name"] = *f.name;
  }
  if (f.cpu) spec["cpu"] = Number(*f.cpu);
  if (f.memory_mb) spec["memoryMb"] = *f.memory_mb;

  BATON_ASSIGN_OR_RETURN(auto env, SplitKeyValues("--env", f.env));
  BATON_ASSIGN_OR_RETURN(auto secret_env, SplitKeyValues("--secret-env", f.secret_env));
  BATON_ASSIGN_OR_RETURN(auto labels, SplitKeyValues("--label", f.labels));
  for (const auto& [key, value] : secret_env) {
    if (std::any_of(env.begin(), env.end(), [&](const auto& e) { return e.first == key; })) {
      return InvalidArgumentError("--secret-env: '" + key + "' is also given with --env");
    }
  }
  ApplyKeyValues(spec, "env", "secretEnv", env);
  ApplyKeyValues(spec, "secretEnv", "env", secret_env);
  ApplyKeyValues(spec, "labels", "", labels);

  if (!f.command.empty()) spec["command"] = f.command;
  if (!f.args.empty()) spec["args"] = f.args;
  BATON_RETURN_IF_ERROR(ApplyRestartFlags(spec, f));
  if (f.timeout_seconds) spec["timeoutSeconds"] = *f.timeout_seconds;
  if (f.network) spec["network"] = *f.network;
  if (f.completion) spec["completion"] = *f.completion;
  if (f.priority) spec["priority"] = *f.priority;

  auto image = spec.find("image");
  if (image == spec.end() || image->is_null() ||
      (image->is_string() && image->get<std::string>().empty())) {
    return InvalidArgumentError("--image: is required (or an \"image\" in the spec given with -f)");
  }
  if (!spec.contains("name") && image->is_string()) {
    std::string name = DeriveJobName(image->get<std::string>());
    if (name.empty()) {
      return InvalidArgumentError("--name: cannot derive a job name from the image '" +
                                  image->get<std::string>() + "'; pass --name");
    }
    spec["name"] = std::move(name);
  }
  return spec;
}

std::string DeriveJobName(std::string_view image) {
  std::string_view repo = image.substr(0, image.find('@'));  // no digest
  if (size_t slash = repo.rfind('/'); slash != std::string_view::npos) {
    repo.remove_prefix(slash + 1);
  }
  // In the last segment a ':' starts the tag (a registry's port is never in
  // the last segment).
  repo = repo.substr(0, repo.find(':'));
  std::string name;
  for (char c : repo) {
    char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool ok = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9') || lower == '-';
    name += ok ? lower : '-';
  }
  size_t first = name.find_first_not_of('-');
  if (first == std::string::npos) return "";
  name.erase(0, first);
  if (name.size() > 63) name.resize(63);
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name;
}

std::string DescribeWaitingOn(const OJson& waiting_on) {
  if (waiting_on.is_null()) return "";
  if (waiting_on.is_string()) return waiting_on.get<std::string>();
  if (!waiting_on.is_object()) return CompactJson(waiting_on);
  std::string details;
  for (const auto& [key, value] : waiting_on.items()) {
    if (key == "reason" || value.is_null()) continue;
    if (!details.empty()) details += ", ";
    details += key + " " + (value.is_string() ? value.get<std::string>() : CompactJson(value));
  }
  std::string reason = Text(waiting_on, "reason");
  if (reason.empty()) return details;
  return details.empty() ? reason : reason + " (" + details + ")";
}

// One line per attempt: its limits, what it used (docs/job-spec.md#resource-usage)
// and a retry with more memory after an OOM kill; "" when no attempt has figures.
std::string AttemptResources(const OJson& result) {
  if (!result.contains("attemptResults") || !result["attemptResults"].is_array()) return "";
  auto fixed = [](double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return std::string(buf);
  };
  std::string out;
  for (const OJson& a : result["attemptResults"]) {
    if (!a.is_object() || !a.contains("memoryLimitBytes")) continue;
    std::string line = "attempt " + Text(a, "attempt") + ": limit " +
                       std::to_string(a.value("memoryLimitBytes", int64_t{0}) >> 20) + " MiB, peak ";
    const OJson peak = a.value("peakMemoryBytes", OJson());
    line += peak.is_number() ? fixed(peak.get<double>() / (1 << 20), 1) + " MiB" : "not measured";
    const OJson cpu = a.value("cpuSeconds", OJson());
    if (cpu.is_number()) {
      line += ", CPU " + fixed(cpu.get<double>(), 2) + " s";
      if (a.value("avgCores", OJson()).is_number()) line += " (" + fixed(a["avgCores"].get<double>(), 2) + " cores)";
    }
    if (a.contains("oomRetry") && a["oomRetry"].is_object()) {
      const OJson& retry = a["oomRetry"];
      line += retry.contains("memoryMb") ? "; OOM-killed: retried with " + Text(retry, "memoryMb") + " MiB"
                                         : "; OOM-killed: " + Text(retry, "refused");
    }
    out += (out.empty() ? "" : "\n") + line;
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> JobFields(const OJson& job) {
  std::vector<std::pair<std::string, std::string>> f;
  auto add = [&](const char* label, std::string value) {
    if (!value.empty()) f.emplace_back(label, std::move(value));
  };
  add("Job ID", Text(job, "id"));
  add("Name", Text(job, "name"));
  add("Status", Text(job, "status"));
  add("Waiting on", WaitingOnOf(job));
  if (job.is_object() && job.contains("eta") && job["eta"].is_object()) {
    add("Expected start", Text(job["eta"], "summary"));
  }
  add("Attempt", Text(job, "attempt"));
  add("Progress", JsonText(job, "progress"));
  add("Image", Text(job, "image"));
  add("Created", Text(job, "createdAt"));
  add("Last updated", Text(job, "lastUpdatedAt"));
  if (job.is_object() && job.contains("result") && job["result"].is_object()) {
    const OJson& r = job["result"];
    add("Ended because", ResultSummary(job));
    add("Exit code", Text(r, "exitCode"));
    add("OOM killed", YesNo(r, "oomKilled"));
    add("Attempts", Text(r, "attempts"));
    add("Resources", AttemptResources(r));
    add("Error", Text(r, "error"));
    if (r.contains("logsTail") && r["logsTail"].is_array()) {
      std::string tail;
      for (const OJson& line : r["logsTail"]) {
        std::string text = LineText(line);
        if (!text.empty() && text.back() == '\n') text.pop_back();
        tail += (tail.empty() ? "" : "\n") + text;
      }
      add("Logs tail", tail);
    }
  }
  return f;
}

std::string JobEventsTable(const OJson& events) {
  std::vector<std::vector<std::string>> rows;
  if (events.is_array()) {
    for (const OJson& e : events) {
      std::string detail;
      if (e.is_object()) {
        OJson rest = OJson::object();
        for (const auto& [key, value] : e.items()) {
          if (key != "time" && key != "type" && key != "attempt") rest[key] = value;
        }
        if (!rest.empty()) detail = CompactJson(rest);
      } else {
        detail = CompactJson(e);
      }
      rows.push_back({Text(e, "time"), Text(e, "type"), Text(e, "attempt"), detail});
    }
  }
  return FormatTable({"TIME", "TYPE", "ATTEMPT", "DETAIL"}, rows);
}

bool NormalizeJobStatuses(std::string_view list, std::string* out, std::string* error) {
  return NormalizeNameList(list, kJobStatuses, "job status", out, error);
}

OJson MergeQuota(const OJson& current, const QuotaFlags& flags) {
  OJson body = OJson::object();
  for (const char* key : {"cpu", "memoryMb", "jobs", "weight"}) {
    if (!current.is_object() || !current.contains(key)) continue;
    const OJson& value = current[key];
    // The server wants integers for memoryMb and jobs: 8192.0 goes back as 8192.
    if (value.is_number()) body[key] = Number(value.get<double>());
  }
  if (flags.cpu) body["cpu"] = Number(*flags.cpu);
  if (flags.memory_mb) body["memoryMb"] = *flags.memory_mb;
  if (flags.jobs) body["jobs"] = *flags.jobs;
  if (flags.weight) body["weight"] = Number(*flags.weight);
  return body;
}

}  // namespace baton::cli
