#include "batch/job_orchestration.h"

#include <sqlite3.h>

#include <algorithm>

#include "batch/scheduler.h"

namespace baton::batch {
namespace {

using namespace std::chrono_literals;

constexpr char kCreateGroup[] = "baton.CreateGroup";
constexpr char kStartGroup[] = "baton.StartGroup";
constexpr char kWaitGroup[] = "baton.WaitGroup";
constexpr char kFinishGroup[] = "baton.FinishGroup";
constexpr int kLogsTail = 20;

std::string GroupName(const std::string& job, int attempt) {
  std::string name;
  for (char c : job) name.push_back(std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '-');
  return name + "-a" + std::to_string(attempt);
}

// Activities fail with a DurableError whose type says what went wrong.
[[noreturn]] void Throw(const Status& s, const std::string& what, bool non_retriable = false) {
  std::string type = s.code() == StatusCode::kNotFound          ? "NotFound"
                     : s.code() == StatusCode::kUnauthenticated ? "RegistryUnauthorized"
                     : s.code() == StatusCode::kUnavailable     ? "RuntimeUnavailable"
                     : s.code() == StatusCode::kInvalidArgument ? "InvalidArgument"
                                                                : "RuntimeError";
  throw DurableError(type, what + ": " + s.message(), nullptr,
                     non_retriable || s.code() == StatusCode::kNotFound || s.code() == StatusCode::kInvalidArgument);
}

Json Now(const OrchestrationContext& ctx) { return FormatIso8601(ctx.CurrentUtcDateTime()); }

Task<Json> JobOrchestration(OrchestrationContext& ctx) {
  Json in = ctx.GetInput();
  const std::string job = in.value("job", "");
  const std::string tenant = in.value("tenant", "");
  auto parsed = ParseJobSpec(in["spec"]);
  if (!parsed.ok()) throw DurableError("InvalidJobSpec", parsed.status().message());
  const JobSpec spec = std::move(*parsed);
  const EntityId scheduler(kSchedulerEntity, kSchedulerKey);
  Json durations = Json::object();
  durations["submitted"] = Now(ctx);

  // 1. Capacity.
  Json request = {{"job", job},
                  {"tenant", tenant},
                  {"instance", ctx.InstanceId()},
                  {"cpu", spec.TotalCpu()},
                  {"memoryMb", spec.TotalMemoryBytes() >> 20},
                  {"priority", spec.priority}};
  Json answer = co_await ctx.CallEntity(scheduler, "request", request);
  bool canceled = false;
  if (!answer.value("granted", false)) {
    ctx.SetCustomStatus(Json{{"phase", "queued"}, {"waitingOn", "quota"}, {"position", answer["position"]}});
    Task<Json> granted = ctx.WaitForExternalEvent(kQuotaGrantedEvent);
    Task<Json> cancel = ctx.WaitForExternalEvent(kCancelEvent);
    size_t first = co_await WhenAny(granted, cancel);
    canceled = first == 1;
  }
  durations["granted"] = Now(ctx);

  // 2.–3. Attempts.
  Json last = Json::object();
  std::string status = canceled ? "Canceled" : "Failed";
  int attempt = 0;
  Json attempts = Json::array();
  while (!canceled && attempt < spec.max_attempts) {
    ++attempt;
    const std::string group = GroupName(job, attempt);
    ctx.SetCustomStatus(Json{{"phase", "starting"}, {"waitingOn", "container"}, {"attempt", attempt}});
    Json create = {{"job", job},       {"tenant", tenant}, {"attempt", attempt},
                   {"group", group},   {"instance", ctx.InstanceId()}, {"spec", in["spec"]}};
    RetryPolicy transient(3, 2s);
    bool created = true;
    std::string create_error;
    try {
      co_await ctx.CallActivity(kCreateGroup, create, transient);
      Json start = {{"group", group}};
      co_await ctx.CallActivity(kStartGroup, start, transient);
    } catch (const TaskFailedError& e) {
      created = false;
      create_error = e.details().error_type + ": " + e.details().error_message;
    }
    Json outcome;
    bool stopped = false;
    if (created) {
      ctx.SetCustomStatus(Json{{"phase", "running"}, {"attempt", attempt}, {"startedAt", Now(ctx)}});
      Json wait_in = {{"group", group}, {"timeoutSeconds", spec.timeout_seconds}};
      Task<Json> exited = ctx.CallActivity(kWaitGroup, wait_in);
      Task<void> deadline = ctx.CreateTimer(std::chrono::seconds(spec.timeout_seconds));
      Task<Json> cancel = ctx.WaitForExternalEvent(kCancelEvent);
      size_t first = co_await WhenAny(exited, deadline, cancel);
      stopped = first != 0;
      canceled = first == 2;
      Json finish_in = {{"group", group}, {"stop", stopped}};
      outcome = co_await ctx.CallActivity(kFinishGroup, finish_in, transient);
      if (first == 1) outcome["timedOut"] = true;
    } else {
      outcome = {{"error", create_error}};
    }
    outcome["attempt"] = attempt;
    attempts.push_back(outcome);
    last = outcome;
    const bool success = created && !stopped && outcome.value("exitCode", -1) == 0 && !outcome.value("oomKilled", false);
    status = canceled ? "Canceled" : success ? "Completed" : "Failed";
    const bool again = !canceled && attempt < spec.max_attempts &&
                       (spec.restart == RestartPolicy::kAlways || (spec.restart == RestartPolicy::kOnFailure && !success));
    if (!again) break;
    int64_t backoff = std::min<int64_t>(spec.backoff_seconds << std::min(attempt - 1, 20), 3600);
    ctx.SetCustomStatus(Json{{"phase", "backoff"}, {"waitingOn", "backoff"}, {"attempt", attempt},
                             {"retryAt", FormatIso8601(ctx.CurrentUtcDateTime() + std::chrono::seconds(backoff))}});
    Task<void> pause = ctx.CreateTimer(std::chrono::seconds(backoff));
    Task<Json> cancel = ctx.WaitForExternalEvent(kCancelEvent);
    if (co_await WhenAny(pause, cancel) == 1) {
      canceled = true;
      status = "Canceled";
    }
  }

  // 4. Release and report.
  Json release = {{"job", job}};
  ctx.SignalEntity(scheduler, "release", release);
  durations["finished"] = Now(ctx);
  ctx.SetCustomStatus(Json{{"phase", "done"}, {"status", status}});
  co_return Json{{"status", status},
                 {"exitCode", last.value("exitCode", Json())},
                 {"oomKilled", last.value("oomKilled", false)},
                 {"attempts", attempt},
                 {"attemptResults", attempts},
                 {"durations", durations},
                 {"logsTail", last.value("logsTail", Json::array())}};
}

}  // namespace

// ---- SecretVault ----

Result<std::unique_ptr<SecretVault>> SecretVault::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return UnavailableError("cannot open the secret vault '" + path + "': " + m);
  }
  char* err = nullptr;
  const char* schema =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
      "CREATE TABLE IF NOT EXISTS job_secrets (job_id TEXT NOT NULL, container TEXT NOT NULL, name TEXT NOT NULL,"
      " value TEXT NOT NULL, PRIMARY KEY(job_id, container, name));";
  if (sqlite3_exec(db, schema, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "?";
    sqlite3_free(err);
    sqlite3_close(db);
    return InternalError("secret vault schema: " + m);
  }
  return std::unique_ptr<SecretVault>(new SecretVault(db));
}

SecretVault::~SecretVault() { sqlite3_close(db_); }

Status SecretVault::Put(const std::string& job_id, const JobSpec& spec) {
  std::lock_guard lock(mu_);
  BATON_RETURN_IF_ERROR(DeleteLocked(job_id));
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "INSERT INTO job_secrets(job_id, container, name, value) VALUES(?1, ?2, ?3, ?4)", -1, &st,
                     nullptr);
  Status result;
  for (const JobContainer& c : spec.containers) {
    for (const auto& [name, value] : c.secret_env) {
      sqlite3_bind_text(st, 1, job_id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 2, c.name.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 3, name.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 4, value.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) != SQLITE_DONE) result = InternalError("secret vault: cannot store a secret");
      sqlite3_reset(st);
    }
  }
  sqlite3_finalize(st);
  return result;
}

Status SecretVault::Fill(const std::string& job_id, JobSpec* spec) {
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT container, name, value FROM job_secrets WHERE job_id = ?1", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, job_id.c_str(), -1, SQLITE_TRANSIENT);
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string container = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    for (JobContainer& c : spec->containers) {
      if (c.name == container) {
        c.secret_env[reinterpret_cast<const char*>(sqlite3_column_text(st, 1))] =
            reinterpret_cast<const char*>(sqlite3_column_text(st, 2));
      }
    }
  }
  sqlite3_finalize(st);
  return Status::Ok();
}

Status SecretVault::Delete(const std::string& job_id) {
  std::lock_guard lock(mu_);
  return DeleteLocked(job_id);
}

Status SecretVault::DeleteLocked(const std::string& job_id) {
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "DELETE FROM job_secrets WHERE job_id = ?1", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, job_id.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? Status::Ok() : InternalError("secret vault: cannot delete");
}

Json JobInput(const std::string& job_id, const std::string& tenant, const JobSpec& spec) {
  return Json{{"job", job_id}, {"tenant", tenant}, {"spec", RedactedJson(spec)}};
}

Status RegisterJobFunctions(Registry& registry, runtime::ContainerRuntime& rt, SecretVault& vault) {
  BATON_RETURN_IF_ERROR(registry.AddOrchestrator(kJobOrchestrator, JobOrchestration));
  BATON_RETURN_IF_ERROR(registry.AddActivity(kCreateGroup, [&rt, &vault](ActivityContext& ctx) -> Json {
    Json in = ctx.GetInput();
    auto spec = ParseJobSpec(in["spec"]);
    if (!spec.ok()) throw DurableError("InvalidJobSpec", spec.status().message(), nullptr, true);
    Status filled = vault.Fill(in["job"], &*spec);
    if (!filled.ok()) Throw(filled, "reading the job's secrets");
    runtime::GroupSpec group;
    group.name = in["group"];
    group.network = spec->network;
    group.labels = {{"baton.job", in["job"]},
                    {"baton.tenant", in["tenant"]},
                    {"baton.attempt", std::to_string(in["attempt"].get<int>())},
                    {"baton.instance", in["instance"]}};
    for (const auto& [k, v] : spec->labels) group.labels["job." + k] = v;
    for (const JobContainer& c : spec->containers) {
      runtime::ContainerSpec cs;
      cs.name = c.name;
      cs.image = c.image;
      cs.command = c.command;
      cs.args = c.args;
      cs.env = c.env;
      cs.secret_env = c.secret_env;
      cs.working_dir = c.working_dir;
      cs.cpus = c.cpu;
      cs.memory_bytes = c.memory_bytes;
      for (uint16_t p : c.ports) cs.ports.push_back(runtime::PortMapping{p, 0});
      group.containers.push_back(std::move(cs));
    }
    auto created = rt.CreateGroup(group);
    if (!created.ok()) Throw(created.status(), "creating container group '" + group.name + "'");
    Json ids = Json::array();
    for (const auto& c : created->containers) ids.push_back(c.id);
    return Json{{"containers", ids}};
  }));
  BATON_RETURN_IF_ERROR(registry.AddActivity(kStartGroup, [&rt](ActivityContext& ctx) -> Json {
    std::string group = ctx.GetInput()["group"];
    Status s = rt.StartGroup(group);
    if (!s.ok()) Throw(s, "starting '" + group + "'");
    return nullptr;
  }));
  // Blocks until the main container exits. After a crash it runs again and
  // simply waits on the same container.
  BATON_RETURN_IF_ERROR(registry.AddActivity(kWaitGroup, [&rt](ActivityContext& ctx) -> Json {
    Json in = ctx.GetInput();
    std::string group = in["group"];
    auto g = rt.InspectGroup(group);
    if (!g.ok()) Throw(g.status(), "inspecting '" + group + "'");
    auto code = rt.WaitContainer(g->containers[0].id, std::chrono::seconds(in.value("timeoutSeconds", 3600)) + 60s);
    if (!code.ok()) Throw(code.status(), "waiting for '" + group + "'");
    return Json{{"exitCode", *code}};
  }));
  BATON_RETURN_IF_ERROR(registry.AddActivity(kFinishGroup, [&rt](ActivityContext& ctx) -> Json {
    Json in = ctx.GetInput();
    std::string group = in["group"];
    auto g = rt.InspectGroup(group);
    if (!g.ok() && g.status().code() == StatusCode::kNotFound) return Json{{"error", "the container group vanished"}};
    if (!g.ok()) Throw(g.status(), "inspecting '" + group + "'");
    if (in.value("stop", false)) {
      Status s = rt.StopGroup(group, 10s);
      if (!s.ok()) Throw(s, "stopping '" + group + "'");
      g = rt.InspectGroup(group);
      if (!g.ok()) Throw(g.status(), "inspecting '" + group + "'");
    }
    const runtime::ContainerState& main = g->containers[0];
    Json out = {{"exitCode", main.exit_code}, {"oomKilled", main.oom_killed}};
    if (main.started_at) out["startedAt"] = FormatIso8601(*main.started_at);
    if (main.finished_at) out["finishedAt"] = FormatIso8601(*main.finished_at);
    Json tail = Json::array();
    auto logs = rt.Logs(main.id);
    if (logs.ok()) {
      size_t from = logs->size() > kLogsTail ? logs->size() - kLogsTail : 0;
      for (size_t i = from; i < logs->size(); ++i) {
        const runtime::LogLine& l = (*logs)[i];
        tail.push_back((l.stream == runtime::LogLine::Stream::kStderr ? "stderr: " : "stdout: ") + l.text);
      }
    }
    out["logsTail"] = tail;
    Status deleted = rt.DeleteGroup(group);
    if (!deleted.ok()) Throw(deleted, "deleting '" + group + "'");
    return out;
  }));
  return Status::Ok();
}

}  // namespace baton::batch
