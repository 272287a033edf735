// The `baton` binary: wiring of store, worker and client, and the CLI.
//
//   baton demo  [--db FILE]   run the sample orchestration and print its history
//   baton serve [--data-dir DIR] [--store URL] [--port N] …   the HTTP API and a worker, until SIGINT/SIGTERM
//   baton migrate [--store URL] [--data-dir DIR]  apply the task hub's schema migrations, then exit
//   baton instance|tenant|key …                  client verbs (src/app/cli/, docs/cli.md)
//   baton version
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <string>

#include "api/http/admin_api.h"
#include "api/http/dashboard.h"
#include "api/http/http_server.h"
#include "api/grpc/sidecar.h"
#include "api/http/job_api.h"
#include "api/http/management_api.h"
#include "api/http/metrics_api.h"
#include "api/http/readiness.h"
#include "app/backup.h"
#include "app/cli/commands.h"
#include "app/default_quota.h"
#include "app/job_runtime.h"
#include "app/port_reservation.h"
#include "app/samples.h"
#include "baton/client.h"
#include "baton/registry.h"
#include "baton/postgres_store.h"
#include "baton/sqlite_store.h"
#include "store/lease_store.h"
#include "store/postgres/postgres_platform_stores.h"
#include "store/sqlite/sqlite_platform_stores.h"
#include "baton/worker.h"
#include "batch/cluster_capacity.h"
#include "batch/job_logs.h"
#include "batch/job_monitor.h"
#include "batch/job_orchestration.h"
#include "batch/platform_metrics.h"
#include "batch/job_token.h"
#include "batch/retention.h"
#include "batch/scheduler.h"
#include "runtime/docker/docker_runtime.h"
#include "tenancy/tenant_directory.h"
#include "util/duration.h"
#include "util/log.h"
#include "util/node_id.h"
#include "util/metrics.h"
#include "util/secret_box.h"
#include "util/uuid.h"
#include "app/preflight_command.h"
#include "api/http/insight_api.h"
#include "batch/receipts.h"
#include "batch/resource_sampler.h"

namespace baton::app {
namespace {

Result<std::unique_ptr<Store>> Open(const std::string& db) {
  SqliteStoreOptions options;
  options.path = db;
  return OpenSqliteStore(options);
}

// The task hub a --store value names: "postgresql://…" or "postgres://…"
// (a libpq URL) is PostgreSQL; "sqlite:PATH", or "" for <data-dir>/baton.db,
// is SQLite. InvalidArgument for anything else.
bool IsPostgresUrl(const std::string& store) {
  return store.starts_with("postgresql://") || store.starts_with("postgres://");
}
Result<std::string> SqlitePath(const std::string& store, const std::string& data_dir) {
  if (store.empty()) return data_dir + "/baton.db";
  if (store.starts_with("sqlite:") && store.size() > 7) return store.substr(7);
  return InvalidArgumentError("--store '" + store +
                              "': expected postgresql://…, postgres://… or sqlite:PATH");
}
// This process's node id in the task hub: what its leases record (locked_by)
// and what GET /api/v1/admin/nodes lists it as.
std::string ThisNodeId() { return util::ProcessNodeId(); }

Result<std::unique_ptr<Store>> OpenStore(const std::string& store, const std::string& data_dir) {
  if (IsPostgresUrl(store)) {
    PostgresStoreOptions options;
    options.url = store;
    options.node_id = ThisNodeId();
    return OpenPostgresStore(options);
  }
  BATON_ASSIGN_OR_RETURN(std::string path, SqlitePath(store, data_dir));
  return Open(path);
}

int Migrate(const std::string& store, const std::string& data_dir) {
  Result<SchemaVersion> v = InvalidArgumentError("");
  if (IsPostgresUrl(store)) {
    v = MigratePostgresStore(store);
  } else if (Result<std::string> path = SqlitePath(store, data_dir); path.ok()) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(*path).parent_path(), ec);
    v = MigrateSqliteStore(*path);
  } else {
    v = path.status();
  }
  if (!v.ok()) {
    std::fprintf(stderr, "baton: migrate: %s\n", v.status().ToString().c_str());
    return 1;
  }
  std::printf("task hub schema: version %d -> %d%s\n", v->before, v->after,
              v->before == v->after ? " (up to date)" : "");
  return 0;
}

std::string Describe(const HistoryEvent& e) {
  return std::visit(
      [](const auto& body) -> std::string {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, events::ExecutionStarted>) return body.name + " " + body.input;
        if constexpr (std::is_same_v<T, events::TaskScheduled>) return body.name + " " + body.input;
        if constexpr (std::is_same_v<T, events::TaskCompleted>) return body.result;
        if constexpr (std::is_same_v<T, events::TimerCreated>) return "fire at " + FormatIso8601(body.fire_at);
        if constexpr (std::is_same_v<T, events::ExecutionCompleted>) {
          return std::string(OrchestrationStatusName(body.status)) + " " + body.result;
        }
        return "";
      },
      e.body);
}

// Without --db the demo's task hub lives in a temporary directory removed at
// exit, so that `baton demo` (and `scripts/run demo`) leaves no file behind.
int DemoIn(const std::string& db);
int Demo(const std::string& db) {
  if (!db.empty()) return DemoIn(db);
  std::string dir = (std::filesystem::temp_directory_path() / "baton-demo-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) {
    std::fprintf(stderr, "baton: cannot create a temporary directory for the demo's task hub\n");
    return 1;
  }
  const int code = DemoIn(dir + "/baton.db");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return code;
}

int DemoIn(const std::string& db) {
  auto store = Open(db);
  if (!store.ok()) {
    std::fprintf(stderr, "baton: cannot open %s: %s\n", db.c_str(), store.status().ToString().c_str());
    return 1;
  }
  Registry registry;
  RegisterSamples(registry);
  Worker worker(**store, registry);
  if (Status s = worker.Start(); !s.ok()) {
    std::fprintf(stderr, "baton: %s\n", s.ToString().c_str());
    return 1;
  }
  Client client(**store);
  auto id = client.ScheduleNewOrchestration("HelloCities", Json{"Tokyo", "Seattle", "London"});
  if (!id.ok()) {
    std::fprintf(stderr, "baton: %s\n", id.status().ToString().c_str());
    return 1;
  }
  std::printf("started HelloCities as instance %s (task hub %s)\n", id->c_str(), db.c_str());
  auto state = client.WaitForCompletion(*id, std::chrono::minutes(1));
  if (!state.ok()) {
    std::fprintf(stderr, "baton: %s\n", state.status().ToString().c_str());
    return 1;
  }
  std::printf("status: %s\noutput: %s\n\nhistory:\n", std::string(OrchestrationStatusName(state->status)).c_str(),
              state->output.c_str());
  auto history = client.GetHistory(*id);
  if (history.ok()) {
    for (const HistoryEvent& e : *history) {
      std::printf("  %3d  %-26s %s  %s\n", e.event_id, std::string(EventKindName(e.body)).c_str(),
                  FormatIso8601(e.timestamp).c_str(), Describe(e).c_str());
    }
  }
  worker.Stop();
  return state->status == OrchestrationStatus::kCompleted ? 0 : 1;
}

// The platform's stores beside the task hub (tenants and keys, job logs,
// secrets, the deployment's keys, leases): SQLite files and key files in the
// data dir, or tables of the PostgreSQL task hub's database that every node
// shares. `secrets_key_dir` (PostgreSQL only) keeps the key that seals
// secrets in a file there instead of beside the secrets in the database.
struct PlatformStores {
  std::unique_ptr<store::TenantStore> tenants;
  std::unique_ptr<store::JobLogStore> logs;
  std::unique_ptr<store::SecretStore> secrets;
  std::unique_ptr<store::KeyStore> keys;
  std::unique_ptr<store::LeaseStore> leases;
};

// Keys by name from one of two stores: "secrets" from a file, the rest from
// the database.
class SplitKeyStore final : public store::KeyStore {
 public:
  SplitKeyStore(std::unique_ptr<store::KeyStore> secrets, std::unique_ptr<store::KeyStore> rest)
      : secrets_(std::move(secrets)), rest_(std::move(rest)) {}
  Result<std::string> GetOrCreate(const std::string& name, const std::function<Result<std::string>()>& make) override {
    return Pick(name).GetOrCreate(name, make);
  }
  Status Put(const std::string& name, const std::string& key) override { return Pick(name).Put(name, key); }
  std::string Describe(const std::string& name) const override {
    return name == batch::SecretVault::kKeyName ? secrets_->Describe(name) : rest_->Describe(name);
  }

 private:
  store::KeyStore& Pick(const std::string& name) { return name == batch::SecretVault::kKeyName ? *secrets_ : *rest_; }
  std::unique_ptr<store::KeyStore> secrets_, rest_;
};

Result<PlatformStores> OpenPlatformStores(const std::string& data_dir, const std::string& store_url,
                                          const std::string& secrets_key_dir) {
  PlatformStores p;
  if (IsPostgresUrl(store_url)) {
    BATON_ASSIGN_OR_RETURN(p.tenants, store::OpenPostgresTenantStore(store_url));
    BATON_ASSIGN_OR_RETURN(p.logs, store::OpenPostgresJobLogStore(store_url));
    BATON_ASSIGN_OR_RETURN(p.secrets, store::OpenPostgresSecretStore(store_url));
    BATON_ASSIGN_OR_RETURN(p.keys, store::OpenPostgresKeyStore(store_url));
    BATON_ASSIGN_OR_RETURN(p.leases, store::OpenPostgresLeaseStore(store_url));
    if (!secrets_key_dir.empty()) {
      p.keys = std::make_unique<SplitKeyStore>(store::OpenFileKeyStore(secrets_key_dir), std::move(p.keys));
    }
    return p;
  }
  BATON_ASSIGN_OR_RETURN(p.tenants, store::OpenSqliteTenantStore(data_dir + "/tenants.db"));
  BATON_ASSIGN_OR_RETURN(p.logs, store::OpenSqliteJobLogStore(data_dir + "/job-logs.db"));
  BATON_ASSIGN_OR_RETURN(p.secrets, store::OpenSqliteSecretStore(data_dir + "/secrets.db"));
  p.keys = store::OpenFileKeyStore(data_dir);
  p.leases = store::OpenLocalLeaseStore();
  return p;
}

// `baton secrets rotate-key`: a new sealing key, every stored secret
// resealed with it, the old keys dropped. The server must be stopped: taking
// the task hub's lock proves it is.
int RotateSecretsKey(const std::string& data_dir, const std::string& store_url, const std::string& secrets_key_dir) {
  // On SQLite, holding the task hub's lock proves the server is stopped; on
  // PostgreSQL every node must be stopped by the operator (docs/SECURITY.md).
  auto store = OpenStore(store_url, data_dir);
  if (!store.ok()) {
    std::fprintf(stderr, "baton: %s (stop `baton serve` first)\n", store.status().ToString().c_str());
    return 1;
  }
  auto platform = OpenPlatformStores(data_dir, store_url, secrets_key_dir);
  if (!platform.ok()) {
    std::fprintf(stderr, "baton: %s\n", platform.status().ToString().c_str());
    return 1;
  }
  store::KeyStore& keys = *platform->keys;
  const std::string name = batch::SecretVault::kKeyName;
  auto old_keys = keys.GetOrCreate(name, [] { return util::SecretBox::NewKeysText(); });
  auto rotated = old_keys.ok() ? util::SecretBox::Rotated(*old_keys) : Result<std::string>(old_keys.status());
  if (!rotated.ok() || !keys.Put(name, *rotated).ok()) {
    std::fprintf(stderr, "baton: cannot add a new key to %s\n", keys.Describe(name).c_str());
    return 1;
  }
  auto vault = batch::SecretVault::Open(*platform->secrets, keys);
  auto resealed = vault.ok() ? (*vault)->ResealAll() : Result<int>(vault.status());
  if (!resealed.ok()) {
    // The old keys stay, so every secret still opens.
    std::fprintf(stderr, "baton: resealing failed, old keys kept: %s\n", resealed.status().ToString().c_str());
    return 1;
  }
  auto active = util::SecretBox::ActiveOnly(*rotated);
  if (!active.ok() || !keys.Put(name, *active).ok()) {
    std::fprintf(stderr, "baton: resealed, but the old keys could not be dropped from %s\n", keys.Describe(name).c_str());
    return 1;
  }
  std::printf("new secrets key in %s; %d stored secret(s) resealed; old keys removed\n", keys.Describe(name).c_str(),
              *resealed);
  return 0;
}

// `baton backup` / `baton restore` (app/backup.h).
int RunBackup(const std::string& file, const std::string& data_dir, const std::string& store) {
  if (IsPostgresUrl(store)) {
    std::fprintf(stderr, "baton: backup: a PostgreSQL task hub is backed up with pg_dump "
                         "(docs/postgres.md#backup-and-restore)\n");
    return 2;
  }
  auto hub = SqlitePath(store, data_dir);
  auto done = hub.ok() ? Backup(data_dir, *hub, file) : Result<BackupSummary>(hub.status());
  if (!done.ok()) {
    std::fprintf(stderr, "baton: backup: %s\n", done.status().ToString().c_str());
    return 1;
  }
  std::printf("backed up %d database(s) and %d key file(s) of %s to %s (%lld bytes)\n", done->databases,
              done->key_files, data_dir.c_str(), file.c_str(), static_cast<long long>(done->bytes));
  return 0;
}

int RunRestore(const std::string& file, const std::string& data_dir, const std::string& store, bool force) {
  if (IsPostgresUrl(store)) {
    std::fprintf(stderr, "baton: restore: a PostgreSQL task hub is restored with pg_restore "
                         "(docs/postgres.md#backup-and-restore)\n");
    return 2;
  }
  ::umask(077);
  auto hub = SqlitePath(store, data_dir);
  auto done = hub.ok() ? Restore(file, data_dir, *hub, force) : Result<BackupSummary>(hub.status());
  if (!done.ok()) {
    std::fprintf(stderr, "baton: restore: %s\n", done.status().ToString().c_str());
    return done.status().code() == StatusCode::kFailedPrecondition ? 4 : 1;
  }
  std::printf("restored %d database(s) and %d key file(s) from %s into %s\n", done->databases, done->key_files,
              file.c_str(), data_dir.c_str());
  return 0;
}

struct ServeOptions {
  std::string data_dir = "baton-data";
  std::string store;  // "" = SQLite in data_dir (see OpenStore)
  std::string secrets_key_dir;  // PostgreSQL: the secrets key in a file here, not the database
  std::string listen = "127.0.0.1";
  int port = 8080;
  size_t max_body_bytes = 1 << 20;
  int http_threads = 2;
  int handler_threads = 64;
  int orchestration_threads = 2;
  int activity_threads = 8;
  int read_timeout_s = 30;
  // Batch jobs.
  std::string runtime = "docker";  // or "swarm" (app/job_runtime.h)
  std::string swarm_manager = "/var/run/docker.sock";
  std::vector<std::string> swarm_nodes;  // "<node>=<endpoint>"
  int capacity_refresh_s = 15;
  std::string docker_socket = "/var/run/docker.sock";
  std::string secrets_dir = runtime::docker::kDefaultSecretsDir;
  double job_cpu = 0;       // 0 = the machine's cores
  int64_t job_memory_mb = 0;  // 0 = 80 % of the machine's memory
  std::string registry;     // host:port whose credentials follow
  std::string registry_user;
  std::string registry_password_file;
  int reconcile_interval_s = 30;
  int64_t min_free_disk_mb = 512;  // /readyz: the data dir's file system needs this much free
  std::string sample_tenant;  // created at start with a key in <data-dir>/<tenant>.key
  std::string retention;      // "" = keep finished work forever; else a duration ("7d")
  std::string default_quota = kDefaultTenantQuota;  // a new tenant's job quota (app/default_quota.h)
  // The Durable Task sidecar (gRPC).
  int grpc_port = 4001;  // 0 = any free port, -1 = off
  bool grpc_allow_anonymous = false;
  // Input limits (docs/SECURITY.md#input-limits).
  std::string public_url;           // base of status URIs; "" = http://<listen>:<port>
  size_t grpc_max_message_bytes = 0;  // 0 = max_body_bytes
  int grpc_max_waits_per_hub = 16;     // open WaitForInstance… calls of one task hub
  // Operations (docs/metrics.md, docs/cli.md).
  std::string metrics = "on";        // GET /metrics and the recording behind it: on | off
  std::string log_format = "text";   // text | json
  std::string log_level;             // "" = BATON_LOG_LEVEL, else info
};

// Makes the data dir 0700 and the files directly in it 0600.
Status TightenDataDir(const std::string& dir) {
  if (::chmod(dir.c_str(), 0700) != 0) return UnavailableError("cannot chmod data dir " + dir);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) && !entry.is_symlink(ec)) ::chmod(entry.path().c_str(), 0600);
  }
  return Status::Ok();
}

// The machine's memory in MiB (MemTotal), or 0.
int64_t MachineMemoryMb() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  while (in >> key >> kb) {
    if (key == "MemTotal:") return kb / 1024;
    in.ignore(256, '\n');
  }
  return 0;
}

// A stable id of this data dir's node (labels its containers).
std::string NodeId(const std::string& data_dir) {
  const std::string path = data_dir + "/node-id";
  std::ifstream in(path);
  std::string id;
  if (in >> id && !id.empty()) return id;
  id = "n" + util::NewRandomUuid().substr(0, 8);
  std::ofstream(path) << id << "\n";
  return id;
}

// Ensures the sample tenant exists, with a key in <data-dir>/<tenant>.key and
// a quota, so that the README's demo works from the first start.
Status EnsureSampleTenant(tenancy::TenantDirectory& directory, Client& client, const std::string& data_dir,
                          const std::string& tenant, const std::string& registry) {
  const std::string key_path = data_dir + "/" + tenant + ".key";
  if (!directory.GetTenant(tenant).ok()) {
    BATON_RETURN_IF_ERROR(directory.CreateTenant(tenant, "sample tenant").status());
  }
  if (!registry.empty()) {
    // The sample images (scripts/sample-image) live under <registry>/samples/.
    BATON_ASSIGN_OR_RETURN(tenancy::TenantSettings settings, directory.GetSettings(tenant));
    std::vector<std::string> prefixes = settings.grants.image_prefixes;
    const std::string samples = registry + "/samples/";
    if (std::find(prefixes.begin(), prefixes.end(), samples) == prefixes.end()) {
      prefixes.push_back(samples);
      BATON_RETURN_IF_ERROR(directory.UpdateSettings(tenant, Json{{"grants", {{"imagePrefixes", prefixes}}}}).status());
    }
  }
  if (!std::filesystem::exists(key_path)) {
    BATON_ASSIGN_OR_RETURN(auto key, directory.CreateKey(tenant, "sample"));
    std::ofstream out(key_path);
    out << key.second << "\n";
    out.close();
    std::filesystem::permissions(key_path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    BATON_RETURN_IF_ERROR(client.SignalEntity(EntityId(batch::kSchedulerEntity, batch::kSchedulerKey), "setTenant",
                                              Json{{"tenant", tenant}, {"cpu", 2}, {"memoryMb", 2048}, {"jobs", 4},
                                                   {"weight", 1}}));
    std::printf("sample tenant '%s': key in %s\n", tenant.c_str(), key_path.c_str());
  }
  return Status::Ok();
}

// This node's SDK worker streams as GET /api/v1/admin/workers lists them.
Json SdkWorkerStreamsJson(const sidecar::Sidecar* sdk_workers) {
  Json list = Json::array();
  if (sdk_workers == nullptr) return list;
  for (const sidecar::WorkerStreamInfo& w : sdk_workers->WorkerStreams()) {
    const std::string hub = w.hub_prefix.empty() ? "" : w.hub_prefix.substr(0, w.hub_prefix.size() - kHubSeparator.size());
    list.push_back(Json{{"node", ThisNodeId()},
                        {"stream", w.id},
                        {"hub", hub},
                        {"connectedAt", FormatIso8601(w.connected_at)},
                        {"peer", w.peer},
                        {"maxConcurrent", {{"orchestrations", w.max_orchestrations},
                                           {"activities", w.max_activities},
                                           {"entities", w.max_entities}}},
                        {"inFlight", {{"orchestrations", w.orchestrations},
                                      {"activities", w.activities},
                                      {"entities", w.entities}}}});
  }
  return list;
}

// A node's heartbeat details: what it does (every `baton serve` runs the
// same parts; only the reconciler moves between nodes) and its SDK workers
// per hub. docs/postgres.md#nodes describes each member.
Json ThisNodeDetails(const ServeOptions& o, unsigned http_port, int grpc_port, bool reconciling,
                     const std::string& container_node, const sidecar::Sidecar* sdk_workers) {
  Json roles = Json::array({"api", "worker", "jobs"});
  if (grpc_port >= 0) roles.push_back("sidecar");
  if (reconciling) roles.push_back("reconciler");
  Json d{{"roles", std::move(roles)},
         {"http", o.listen + ":" + std::to_string(http_port)},
         {"runtime", o.runtime},
         {"containerNode", container_node},
         {"orchestrationThreads", o.orchestration_threads},
         {"activityThreads", o.activity_threads},
         {"reconciler", reconciling},
         {"sdkWorkers", api::SdkWorkerCounts(SdkWorkerStreamsJson(sdk_workers))}};
  if (grpc_port >= 0) d["grpc"] = o.listen + ":" + std::to_string(grpc_port);
  return d;
}

int Serve(const ServeOptions& o) {
  if (Status s = util::ConfigureLog(o.log_format, o.log_level); !s.ok()) {
    std::fprintf(stderr, "baton: %s\n", s.message().c_str());
    return 2;
  }
  if (o.metrics != "on" && o.metrics != "off") {
    std::fprintf(stderr, "baton: --metrics '%s': expected on or off\n", o.metrics.c_str());
    return 2;
  }
  util::metrics::SetEnabled(o.metrics == "on");
  // Block the shutdown signals before any thread starts, then wait for one.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Everything the server writes is its user's alone: the data dir is 0700
  // and every file in it 0600 (files of older versions are tightened here).
  ::umask(077);
  // Every connection costs a file descriptor: take all the hard limit
  // allows (a service's soft limit is often 1024); the HTTP servers cap
  // their connections at a quarter of it.
  if (rlimit files{}; ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  std::optional<std::chrono::seconds> retention;
  if (!o.retention.empty()) {
    auto age = util::ParseDuration(o.retention, std::chrono::minutes(1));
    if (!age.ok()) {
      std::fprintf(stderr, "baton: --retention / BATON_RETENTION: %s\n", age.status().message().c_str());
      return 2;
    }
    retention = *age;
  }
  auto default_quota = ParseDefaultQuota(o.default_quota);
  if (!default_quota.ok()) {
    std::fprintf(stderr, "baton: --default-quota / BATON_DEFAULT_QUOTA: %s\n",
                 default_quota.status().message().c_str());
    return 2;
  }
  // Claim the ports first: a busy one fails here, before a file is created or
  // a key printed. The HTTP listener is bound now and serves once its routes
  // are added; the gRPC port is held until the sidecar binds it.
  api::Router router;
  api::HttpServerOptions http_options;
  http_options.address = o.listen;
  http_options.port = static_cast<unsigned short>(o.port);
  http_options.max_body_bytes = o.max_body_bytes;
  http_options.io_threads = o.http_threads;
  http_options.handler_threads = o.handler_threads;
  http_options.read_timeout = std::chrono::seconds(o.read_timeout_s);
  http_options.public_url = o.public_url;
  api::HttpServer server(http_options, router);
  if (Status s = server.Listen(); !s.ok()) {
    std::fprintf(stderr, "baton: %s%s\n", s.ToString().c_str(),
                 s.code() == StatusCode::kAlreadyExists ? ": choose another with --port or BATON_PORT" : "");
    return 1;
  }
  PortReservation grpc_port;
  if (o.grpc_port > 0) {
    auto taken = PortReservation::Take(o.listen, o.grpc_port);
    if (!taken.ok()) {
      std::fprintf(stderr, "baton: gRPC sidecar: %s%s\n", taken.status().ToString().c_str(),
                   taken.status().code() == StatusCode::kAlreadyExists
                       ? ": choose another with --grpc-port or BATON_GRPC_PORT (-1 turns the sidecar off)"
                       : "");
      return 1;
    }
    grpc_port = std::move(*taken);
  }
  std::error_code ec;
  std::filesystem::create_directories(o.data_dir, ec);
  if (ec) {
    std::fprintf(stderr, "baton: cannot create data dir %s: %s\n", o.data_dir.c_str(), ec.message().c_str());
    return 1;
  }
  if (Status s = TightenDataDir(o.data_dir); !s.ok()) {
    std::fprintf(stderr, "baton: %s\n", s.ToString().c_str());
    return 1;
  }
  auto store = OpenStore(o.store, o.data_dir);
  if (!store.ok()) {
    std::fprintf(stderr, "baton: %s\n", store.status().ToString().c_str());
    return 1;
  }
  std::printf("baton: task hub on %s\n", IsPostgresUrl(o.store) ? "PostgreSQL" : "SQLite");
  auto platform = OpenPlatformStores(o.data_dir, o.store, o.secrets_key_dir);
  if (!platform.ok()) {
    std::fprintf(stderr, "baton: %s\n", platform.status().ToString().c_str());
    return 1;
  }
  auto directory = std::make_unique<tenancy::TenantDirectory>(*platform->tenants);
  auto has_admin = directory->HasAdminKey();
  if (!has_admin.ok()) {
    std::fprintf(stderr, "baton: %s\n", has_admin.status().ToString().c_str());
    return 1;
  }
  if (!*has_admin) {
    auto key = directory->CreateKey("", "bootstrap");
    if (!key.ok()) {
      std::fprintf(stderr, "baton: %s\n", key.status().ToString().c_str());
      return 1;
    }
    std::printf("admin key: %s\n", key->second.c_str());
    std::printf("(shown once: keep it; create more with `baton key create --admin`)\n");
  }

  // Batch jobs: the container runtime (this node's dockerd, or a swarm), the
  // registry's credentials, secrets, kept logs, job tokens.
  std::vector<runtime::RegistryCredentials> registries;
  if (!o.registry.empty()) {
    std::ifstream in(o.registry_password_file);
    std::string password;
    std::getline(in, password);
    if (!in && password.empty()) {
      std::fprintf(stderr, "baton: cannot read --registry-password-file %s\n", o.registry_password_file.c_str());
      return 1;
    }
    registries.push_back(runtime::RegistryCredentials{o.registry, o.registry_user, password});
  }
  auto job_runtime = MakeJobRuntime(JobRuntimeOptions{o.runtime, o.docker_socket, o.secrets_dir, o.swarm_manager,
                                                      o.swarm_nodes, registries});
  if (!job_runtime.ok()) {
    std::fprintf(stderr, "baton: %s\n", job_runtime.status().ToString().c_str());
    return 1;
  }
  runtime::ContainerRuntime& docker = **job_runtime;  // the jobs' runtime, whichever it is
  auto vault = batch::SecretVault::Open(*platform->secrets, *platform->keys);
  auto job_logs = std::make_unique<batch::JobLogs>(*platform->logs);
  auto tokens = batch::JobTokens::FromKeyStore(*platform->keys);
  for (const Status& s : {vault.status(), tokens.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "baton: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  auto receipt_signer = batch::ReceiptSignerFromKeyStore(*platform->keys);
  if (!receipt_signer.ok()) {
    std::fprintf(stderr, "baton: %s\n", receipt_signer.status().ToString().c_str());
    return 1;
  }
  batch::JobServices job_services;
  job_services.receipts = &*receipt_signer;
  job_services.runtime = &docker;
  job_services.vault = vault->get();
  job_services.logs = job_logs.get();
  job_services.tokens = &*tokens;
  job_services.node_id = NodeId(o.data_dir);
  // The deployment: every node that shares the stores shares this id.
  auto deployment = platform->keys->GetOrCreate("deployment", []() -> Result<std::string> {
    return "d" + util::NewRandomUuid().substr(0, 8);
  });
  if (!deployment.ok()) {
    std::fprintf(stderr, "baton: %s\n", deployment.status().ToString().c_str());
    return 1;
  }
  job_services.deployment_id = *deployment;
  // Each attempt's CPU time and peak memory (batch/resource_sampler.h): every
  // node samples every running main container of the deployment.
  batch::ResourceSamplerOptions sampler_options;
  sampler_options.selector = {{"baton.deployment", *deployment}};
  batch::ResourceSampler sampler(docker, sampler_options);
  sampler.Start();
  job_services.sampler = &sampler;
  job_services.registries = registries;
  job_services.platform_registry = o.registry;
  job_services.grants_of = [dir = directory.get()](const std::string& tenant) -> Result<batch::JobGrants> {
    // A disabled tenant's jobs start no new attempt (queued, retried or restarted).
    BATON_ASSIGN_OR_RETURN(tenancy::Tenant t, dir->GetTenant(tenant));
    if (t.disabled) return PermissionDeniedError("tenant '" + tenant + "' is disabled: its jobs start no new attempt");
    BATON_ASSIGN_OR_RETURN(tenancy::TenantSettings settings, dir->GetSettings(tenant));
    return batch::JobGrants{settings.grants.host_network, settings.grants.capabilities,
                            settings.grants.image_prefixes};
  };

  Registry registry;
  RegisterSamples(registry);
  if (Status s = registry.AddEntity(batch::kSchedulerEntity, batch::SchedulerEntity); !s.ok()) {
    std::fprintf(stderr, "baton: %s\n", s.ToString().c_str());
    return 1;
  }
  WorkerOptions worker_options;
  worker_options.orchestration_threads = o.orchestration_threads;
  worker_options.activity_threads = o.activity_threads;
  Client client(**store);
  // GET /readyz (declared before the router, whose handler uses it).
  std::vector<api::ReadinessCheck> readiness_checks = {
      api::StoreCheck(**store, o.data_dir), api::DiskCheck(o.data_dir, static_cast<uint64_t>(o.min_free_disk_mb) << 20),
      api::RuntimeCheck(docker, std::chrono::seconds(3))};
  if (!job_services.registries.empty()) {
    readiness_checks.push_back(api::RegistryCheck(docker, job_services.registries[0], std::chrono::seconds(3)));
  }
  api::ReadinessProbe readiness(std::move(readiness_checks));
  api::ManagementApiOptions api_options;
  // Known: registered here, or run by an SDK worker over the sidecar since the
  // start. Platform functions ("baton.Job", …) are started by the platform only.
  sidecar::Sidecar* sdk_workers = nullptr;
  api_options.is_known_orchestrator = [&registry, &sdk_workers](std::string_view name) {
    if (Registry::IsPlatformName(name)) return false;
    return registry.FindOrchestrator(name) != nullptr || (sdk_workers != nullptr && sdk_workers->HasRunOrchestrator(name));
  };
  tenancy::Admission admission(*directory);
  admission.SetTotalWaits(std::max(1, o.handler_threads / 4));
  api_options.admission = &admission;
  api_options.default_quota = *default_quota;
  // The job monitor, once it runs: a terminate, suspend or resume through
  // either API nudges it (batch::JobMonitor::Nudge).
  auto job_monitor = std::make_shared<std::atomic<batch::JobMonitor*>>(nullptr);
  api_options.on_instance_control = [job_monitor] {
    if (batch::JobMonitor* m = job_monitor->load()) m->Nudge();
  };
  api::AddManagementApi(router, client, *directory, api_options);
  api::JobApiServices job_api;
  job_api.client = &client;
  job_api.directory = directory.get();
  job_api.vault = vault->get();
  job_api.logs = job_logs.get();
  job_api.tokens = &*tokens;
  job_api.runtime = &docker;
  job_api.admission = &admission;
  job_api.platform_registry = o.registry;
  job_api.registries = registries;
  api::AddJobApi(router, job_api);
  api::InsightApiServices insight{&client, directory.get(), &admission, &*receipt_signer};
  insight.registry = &registry;
  insight.runtime = &docker;
  insight.sdk_workers = [&sdk_workers](std::string_view hub_prefix) -> std::optional<int> {
    if (sdk_workers == nullptr) return std::nullopt;
    return sdk_workers->ConnectedWorkers(hub_prefix);
  };
  api::AddInsightApi(router, insight);
  // Nodes and connected SDK workers (admin key): docs/http-api.md.
  api::AdminApiServices admin_api{store->get(), directory.get(), &admission, ThisNodeId()};
  admin_api.worker_streams = [&sdk_workers]() -> Json { return SdkWorkerStreamsJson(sdk_workers); };
  api::AddAdminApi(router, admin_api);
  api::AddDashboard(router);
  api::AddReadinessRoute(router, readiness, *directory);
  api::AddMetricsRoute(router, util::metrics::Default(), *directory);
  // Scrape-time figures: queues per hub, jobs, quotas (docs/metrics.md).
  std::optional<batch::PlatformMetrics> platform_metrics;
  if (util::metrics::Enabled()) platform_metrics.emplace(util::metrics::Default(), **store, client);
  if (Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "baton: %s\n", s.ToString().c_str());
    return 1;
  }
  // Jobs call back over a unix socket in <data-dir>/callback, a directory
  // mounted into callback-mode containers: no network is needed to reach
  // Baton, and none is opened to the API (docs/job-protocol.md).
  const std::string callback_dir = std::filesystem::absolute(o.data_dir + "/callback").lexically_normal().string();
  std::filesystem::create_directories(callback_dir, ec);
  if (ec || ::chmod(callback_dir.c_str(), 0755) != 0) {
    std::fprintf(stderr, "baton: cannot create %s\n", callback_dir.c_str());
    server.Stop();
    return 1;
  }
  api::Router callback_router;
  api::AddJobCallbackRoute(callback_router, job_api);
  api::HttpServerOptions callback_options = http_options;
  callback_options.unix_socket = callback_dir + "/callback.sock";
  callback_options.io_threads = 1;
  callback_options.handler_threads = 8;
  // Reports are small and quick: a job gets a few connections at once, and
  // a connection that idles or trickles is closed soon.
  callback_options.max_connections = 1024;
  callback_options.max_connections_per_peer = 8;
  callback_options.idle_timeout = std::chrono::seconds(10);
  callback_options.read_timeout = std::chrono::seconds(10);
  callback_options.public_url.clear();
  callback_options.name = "callback";
  api::HttpServer callback_server(callback_options, callback_router);
  if (callback_options.unix_socket.size() >= sizeof(sockaddr_un{}.sun_path)) {
    std::fprintf(stderr, "baton: the callback socket path %s is too long for a unix socket; use a shorter --data-dir\n",
                 callback_options.unix_socket.c_str());
    server.Stop();
    return 1;
  }
  if (Status s = callback_server.Start(); !s.ok()) {
    std::fprintf(stderr, "baton: %s\n", s.ToString().c_str());
    server.Stop();
    return 1;
  }
  job_services.client = &client;
  job_services.callback_base = "http://localhost";
  job_services.callback_dir = callback_dir;
  if (Status s = batch::RegisterJobFunctions(registry, job_services); !s.ok()) {
    std::fprintf(stderr, "baton: %s\n", s.ToString().c_str());
    server.Stop();
    return 1;
  }
  // "baton.Job" as a sub-orchestration of a tenant's orchestration: a job
  // with every check of a submit (batch/job_orchestration.h).
  if (Status s = batch::RegisterTenantJobEntryPoint(registry, api::JobStartActivity(job_api)); !s.ok()) {
    std::fprintf(stderr, "baton: %s\n", s.ToString().c_str());
    server.Stop();
    return 1;
  }
  // The Durable Task sidecar: SDK workers connected over gRPC run what the
  // registry does not know.
  sidecar::SidecarOptions sidecar_options;
  sidecar_options.address = o.listen;
  sidecar_options.port = o.grpc_port;
  sidecar_options.allow_anonymous = o.grpc_allow_anonymous;
  sidecar_options.admission = &admission;
  sidecar_options.max_message_bytes = o.grpc_max_message_bytes > 0 ? o.grpc_max_message_bytes : o.max_body_bytes;
  sidecar_options.max_waits_per_hub = o.grpc_max_waits_per_hub;
  // Another node sharing the store may hold the hub's SDK worker: give
  // parked work back soon, so that node fetches it (sidecar.h park_for).
  if (IsPostgresUrl(o.store)) sidecar_options.park_for = std::chrono::milliseconds(1000);
  sidecar_options.on_instance_control = api_options.on_instance_control;
  sidecar::Sidecar grpc_sidecar(client, **store, *directory, sidecar_options);
  if (o.grpc_port >= 0) {
    worker_options.external = grpc_sidecar.dispatcher();
    sdk_workers = &grpc_sidecar;
  }
  Worker worker(**store, registry, worker_options);
  if (Status s = worker.Start(); !s.ok()) {
    std::fprintf(stderr, "baton: %s\n", s.ToString().c_str());
    server.Stop();
    return 1;
  }
  // The capacity for jobs: a cluster's from its ready nodes, refreshed; a
  // node's from the flags.
  std::unique_ptr<batch::ClusterCapacityRefresher> capacity;
  if (o.runtime == "swarm") {
    capacity = std::make_unique<batch::ClusterCapacityRefresher>(docker, client,
                                                                 std::chrono::seconds(o.capacity_refresh_s));
    capacity->Start();
  }
  const double job_cpu = o.job_cpu > 0 ? o.job_cpu : static_cast<double>(std::thread::hardware_concurrency());
  const int64_t job_memory = o.job_memory_mb > 0 ? o.job_memory_mb : MachineMemoryMb() * 8 / 10;
  if (Status s = capacity ? Status::Ok()
                          : client.SignalEntity(EntityId(batch::kSchedulerEntity, batch::kSchedulerKey), "setCapacity",
                                                Json{{"cpu", job_cpu}, {"memoryMb", job_memory}});
      !s.ok()) {
    std::fprintf(stderr, "baton: %s\n", s.ToString().c_str());
  }
  if (!o.sample_tenant.empty()) {
    if (Status s = EnsureSampleTenant(*directory, client, o.data_dir, o.sample_tenant, o.registry); !s.ok()) {
      std::fprintf(stderr, "baton: sample tenant: %s\n", s.ToString().c_str());
    }
  }
  if (o.grpc_port >= 0) {
    grpc_port.Release();
    if (Status s = grpc_sidecar.Start(); !s.ok()) {
      std::fprintf(stderr, "baton: %s (--grpc-port / BATON_GRPC_PORT)\n", s.ToString().c_str());
      server.Stop();
      worker.Stop();
      return 1;
    }
  }
  batch::JobMonitorOptions monitor_options;
  monitor_options.node_id = job_services.node_id;
  monitor_options.deployment_id = job_services.deployment_id;
  monitor_options.leases = platform->leases.get();
  monitor_options.vault = vault->get();
  monitor_options.reconcile_interval = std::chrono::seconds(o.reconcile_interval_s);
  batch::JobMonitor monitor(docker, client, monitor_options);
  monitor.Start();
  job_monitor->store(&monitor);
  // Forgotten before the monitor goes, on every way out of here.
  std::unique_ptr<void, std::function<void(void*)>> forget_monitor(&monitor, [&](void*) { job_monitor->store(nullptr); });
  // What this node tells the others at each heartbeat (docs/postgres.md#nodes).
  // Cleared before `monitor` and the sidecar go (the store outlives them).
  (*store)->SetNodeReporter([&o, &sdk_workers, &monitor, &server, &grpc_sidecar, container_node = job_services.node_id] {
    return NodeReport{BATON_VERSION, ThisNodeDetails(o, server.port(), sdk_workers ? grpc_sidecar.port() : -1,
                                                     monitor.Reconciling(), container_node, sdk_workers)
                                         .dump()};
  });
  // Retention: finished instances and jobs older than their age go, in the
  // background (batch/retention.h).
  batch::RetentionOptions retention_options;
  retention_options.global_age = retention;
  retention_options.tenant_ages = [dir = directory.get()]() -> Result<std::map<std::string, std::chrono::seconds>> {
    std::map<std::string, std::chrono::seconds> ages;
    BATON_ASSIGN_OR_RETURN(std::vector<tenancy::Tenant> tenants, dir->ListTenants());
    for (const tenancy::Tenant& t : tenants) {
      BATON_ASSIGN_OR_RETURN(tenancy::TenantSettings settings, dir->GetSettings(t.id));
      if (settings.retention) ages[t.id] = *settings.retention;
    }
    return ages;
  };
  batch::RetentionPurger retention_purger(client, vault->get(), job_logs.get(), retention_options);
  retention_purger.Start();
  std::printf("baton: data dir %s\n", o.data_dir.c_str());
  if (o.grpc_port >= 0) std::printf("gRPC sidecar on %s:%d\n", o.listen.c_str(), grpc_sidecar.port());
  std::printf("listening on http://%s:%u\n", o.listen.c_str(), server.port());
  std::printf("dashboard: http://%s:%u/dashboard\n", o.listen.c_str(), server.port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  std::printf("baton: signal %d: draining requests and in-flight work...\n", sig);
  std::fflush(stdout);
  (*store)->SetNodeReporter(nullptr);
  server.Stop(std::chrono::seconds(10));
  callback_server.Stop(std::chrono::seconds(1));
  grpc_sidecar.Stop();
  retention_purger.Stop();
  forget_monitor.reset();
  monitor.Stop();
  if (capacity) capacity->Stop();
  worker.Stop();
  sampler.Stop();
  std::printf("baton: stopped\n");
  return 0;
}

}  // namespace

// Environment variables override the config file but not flags: CLI11 ranks
// a config file above the environment, so the environment is applied here,
// for every setting not given as a flag. False (after a message) on a bad value.
bool ApplyEnvironment(int argc, char** argv, ServeOptions& o) {
  auto on_command_line = [&](std::string_view flag) {
    for (int i = 1; i < argc; ++i) {
      std::string_view a = argv[i];
      if (a == flag || (a.size() > flag.size() && a.substr(0, flag.size()) == flag && a[flag.size()] == '=')) {
        return true;
      }
    }
    return false;
  };
  bool ok = true;
  auto number = [&](const char* env, std::string_view flag, long min, long max, auto* target) {
    const char* v = std::getenv(env);
    if (v == nullptr || on_command_line(flag)) return;
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < min || n > max) {
      std::fprintf(stderr, "baton: %s=%s: expected an integer from %ld to %ld\n", env, v, min, max);
      ok = false;
      return;
    }
    *target = static_cast<std::remove_pointer_t<decltype(target)>>(n);
  };
  auto text = [&](const char* env, std::string_view flag, std::string* target) {
    const char* v = std::getenv(env);
    if (v != nullptr && !on_command_line(flag)) *target = v;
  };
  text("BATON_DATA_DIR", "--data-dir", &o.data_dir);
  text("BATON_STORE", "--store", &o.store);
  text("BATON_SECRETS_KEY_DIR", "--secrets-key-dir", &o.secrets_key_dir);
  text("BATON_LISTEN", "--listen", &o.listen);
  number("BATON_PORT", "--port", 0, 65535, &o.port);
  number("BATON_MAX_BODY_BYTES", "--max-body-bytes", 1, 1L << 30, &o.max_body_bytes);
  number("BATON_HTTP_THREADS", "--http-threads", 1, 64, &o.http_threads);
  number("BATON_HANDLER_THREADS", "--handler-threads", 1, 1024, &o.handler_threads);
  number("BATON_ORCHESTRATION_THREADS", "--orchestration-threads", 1, 64, &o.orchestration_threads);
  number("BATON_ACTIVITY_THREADS", "--activity-threads", 1, 1024, &o.activity_threads);
  number("BATON_READ_TIMEOUT", "--read-timeout", 1, 3600, &o.read_timeout_s);
  text("BATON_DOCKER_SOCKET", "--docker-socket", &o.docker_socket);
  text("BATON_RUNTIME", "--runtime", &o.runtime);
  text("BATON_SWARM_MANAGER", "--swarm-manager", &o.swarm_manager);
  if (const char* v = std::getenv("BATON_SWARM_NODES"); v != nullptr && !on_command_line("--swarm-node")) {
    o.swarm_nodes.clear();
    for (std::string_view rest = v; !rest.empty();) {  // comma-separated
      const size_t comma = std::min(rest.find(','), rest.size());
      if (comma > 0) o.swarm_nodes.emplace_back(rest.substr(0, comma));
      rest.remove_prefix(std::min(comma + 1, rest.size()));
    }
  }
  number("BATON_CAPACITY_REFRESH", "--capacity-refresh", 1, 3600, &o.capacity_refresh_s);
  text("BATON_SECRETS_DIR", "--secrets-dir", &o.secrets_dir);
  number("BATON_JOB_MEMORY_MB", "--job-memory-mb", 0, 1L << 40, &o.job_memory_mb);
  text("BATON_REGISTRY", "--registry", &o.registry);
  text("BATON_REGISTRY_USER", "--registry-user", &o.registry_user);
  text("BATON_REGISTRY_PASSWORD_FILE", "--registry-password-file", &o.registry_password_file);
  number("BATON_RECONCILE_INTERVAL", "--reconcile-interval", 1, 86400, &o.reconcile_interval_s);
  number("BATON_MIN_FREE_DISK_MB", "--min-free-disk-mb", 0, 1L << 40, &o.min_free_disk_mb);
  text("BATON_SAMPLE_TENANT", "--sample-tenant", &o.sample_tenant);
  text("BATON_RETENTION", "--retention", &o.retention);
  text("BATON_DEFAULT_QUOTA", "--default-quota", &o.default_quota);
  number("BATON_GRPC_PORT", "--grpc-port", -1, 65535, &o.grpc_port);
  text("BATON_PUBLIC_URL", "--public-url", &o.public_url);
  number("BATON_GRPC_MAX_MESSAGE_BYTES", "--grpc-max-message-bytes", 0, 1L << 30, &o.grpc_max_message_bytes);
  number("BATON_GRPC_MAX_WAITS_PER_HUB", "--grpc-max-waits-per-hub", 1, 1024, &o.grpc_max_waits_per_hub);
  text("BATON_METRICS", "--metrics", &o.metrics);
  text("BATON_LOG_FORMAT", "--log-format", &o.log_format);
  text("BATON_LOG_LEVEL", "--log-level", &o.log_level);
  if (const char* v = std::getenv("BATON_JOB_CPU"); v != nullptr && !on_command_line("--job-cpu")) {
    char* end = nullptr;
    double cpu = std::strtod(v, &end);
    if (*v == '\0' || *end != '\0' || cpu < 0 || cpu > 4096) {
      std::fprintf(stderr, "baton: BATON_JOB_CPU=%s: expected cores from 0 to 4096\n", v);
      ok = false;
    } else {
      o.job_cpu = cpu;
    }
  }
  return ok;
}

}  // namespace baton::app

int main(int argc, char** argv) {
  CLI::App app{"Baton: durable functions and serverless batch jobs"};
  app.require_subcommand(1);
  app.set_config("--config", "", "Read settings from a TOML/INI file (flags and environment override it)");

  std::string db;
  auto* demo = app.add_subcommand("demo", "Run the sample orchestration on an embedded task hub and print its history");
  demo->add_option("--db", db, "SQLite task hub file to keep (default: a temporary one, removed at exit)");

  baton::app::ServeOptions serve_options;
  auto* serve = app.add_subcommand("serve", "Run the HTTP API and a worker until SIGINT/SIGTERM");
  serve->footer(
      "Each --flag has an environment variable BATON_<FLAG> (BATON_DATA_DIR, BATON_PORT, ...).\n"
      "Precedence: flag > environment > config file (--config FILE, a [serve] section).");
  // `baton serve --config FILE` as well as `baton --config FILE serve`.
  serve->fallthrough();
  // A flag given twice takes the last value: scripts/run puts the caller's
  // flags after its defaults.
  serve->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  serve->add_option("--data-dir", serve_options.data_dir, "Directory of the task hub and the tenant directory")
      ->capture_default_str();
  serve->add_option("--secrets-key-dir", serve_options.secrets_key_dir,
                    "With a PostgreSQL store: keep the key that seals job secrets in DIR/secrets.key (the same "
                    "file on every node) instead of in the database beside the secrets");
  serve->add_option("--store", serve_options.store,
                    "Task hub: postgresql://… (many nodes on one PostgreSQL) or sqlite:PATH "
                    "(default: SQLite in --data-dir)");
  serve->add_option("--listen", serve_options.listen, "Address to listen on")
      ->capture_default_str();
  serve->add_option("--port", serve_options.port, "Port to listen on (0 = any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  serve->add_option("--max-body-bytes", serve_options.max_body_bytes, "Largest accepted request body")
      ->capture_default_str();
  serve->add_option("--http-threads", serve_options.http_threads, "Threads serving connections")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  serve->add_option("--handler-threads", serve_options.handler_threads, "Threads running API requests")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  serve->add_option("--orchestration-threads", serve_options.orchestration_threads, "Orchestration episode threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  serve->add_option("--activity-threads", serve_options.activity_threads, "Activity threads")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  serve->add_option("--read-timeout", serve_options.read_timeout_s, "Seconds a client has to send a request")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve->add_option("--docker-socket", serve_options.docker_socket, "Docker Engine API socket (batch jobs)")
      ->capture_default_str();
  serve->add_option("--runtime", serve_options.runtime,
                    "Where jobs run: docker (this machine's dockerd, --docker-socket) or swarm (a Docker Swarm "
                    "cluster through a manager, --swarm-manager; docs/cluster.md)")
      ->check(CLI::IsMember({"docker", "swarm"}))
      ->capture_default_str();
  serve->add_option("--swarm-manager", serve_options.swarm_manager,
                    "--runtime swarm: a swarm manager's Engine API (socket path, unix:///path or "
                    "tcp://127.0.0.1:PORT)")
      ->capture_default_str();
  serve->add_option("--swarm-node", serve_options.swarm_nodes,
                    "--runtime swarm: NODE=ENDPOINT, a node's own Engine API by node id or hostname (repeatable); "
                    "lets Baton confirm OOM kills and stop jobs on it keeping their exit codes")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  serve->add_option("--capacity-refresh", serve_options.capacity_refresh_s,
                    "--runtime swarm: seconds between reads of the ready nodes' capacity")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve->add_option("--secrets-dir", serve_options.secrets_dir,
                    "Directory (on a tmpfs) where running jobs' secret files live; mounted into their containers")
      ->capture_default_str();
  serve->add_option("--job-cpu", serve_options.job_cpu, "Cores jobs may use on this node (0 = all)")
      ->check(CLI::Range(0.0, 4096.0))
      ->capture_default_str();
  serve->add_option("--job-memory-mb", serve_options.job_memory_mb, "Memory jobs may use, MiB (0 = 80% of the machine)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  serve->add_option("--registry", serve_options.registry, "Registry host:port whose credentials follow");
  serve->add_option("--registry-user", serve_options.registry_user, "User name for --registry");
  serve->add_option("--registry-password-file", serve_options.registry_password_file,
                    "File holding the password for --registry");
  serve->add_option("--reconcile-interval", serve_options.reconcile_interval_s,
                    "Seconds between passes of the job reconciler")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  serve->add_option("--min-free-disk-mb", serve_options.min_free_disk_mb,
                    "/readyz reports not ready while the data dir's file system has less free, MiB")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();
  serve->add_option("--sample-tenant", serve_options.sample_tenant,
                    "Create this tenant at start, with a key in <data-dir>/<tenant>.key and a small quota");
  serve->add_option("--retention", serve_options.retention,
                    "Delete finished instances and jobs (with their logs and secrets) this long after they "
                    "finished, e.g. 7d, 36h, 90m (default: keep; a tenant's settings may override it)");
  serve->add_option("--default-quota", serve_options.default_quota,
                    "The job quota a new tenant starts with: cpu=C,memory=MB,jobs=N[,weight=W], or none (no limit "
                    "until an admin sets one with `baton tenant quota`)")
      ->capture_default_str();
  serve->add_option("--grpc-port", serve_options.grpc_port,
                    "Port of the Durable Task sidecar (gRPC) on --listen (0 = any free port, -1 = off)")
      ->check(CLI::Range(-1, 65535))
      ->capture_default_str();
  serve->add_flag("--grpc-allow-anonymous", serve_options.grpc_allow_anonymous,
                  "Let gRPC calls without an API key act on the task hub their 'taskhub' metadata names");
  std::string secrets_data_dir = "baton-data";
  std::string secrets_store;
  std::string secrets_key_dir;
  auto* secrets = app.add_subcommand("secrets", "Manage the key that seals job secrets at rest");
  secrets->require_subcommand(1);
  auto* rotate = secrets->add_subcommand(
      "rotate-key", "Seal every stored job secret with a new key and drop the old ones (stop the server first)");
  rotate->add_option("--data-dir", secrets_data_dir, "The server's data dir")->capture_default_str();
  rotate->add_option("--store", secrets_store, "The task hub (as for serve; env BATON_STORE)");
  rotate->add_option("--secrets-key-dir", secrets_key_dir, "As for serve (env BATON_SECRETS_KEY_DIR)");
  serve->add_option("--public-url", serve_options.public_url,
                    "Base URL of the status URIs in answers, e.g. https://baton.example.com (default "
                    "http://<listen>:<port>; never the request's Host header)");
  serve->add_option("--grpc-max-message-bytes", serve_options.grpc_max_message_bytes,
                    "Largest gRPC message accepted (0 = --max-body-bytes)")
      ->check(CLI::Range(static_cast<size_t>(0), static_cast<size_t>(1) << 30))
      ->capture_default_str();
  serve->add_option("--grpc-max-waits-per-hub", serve_options.grpc_max_waits_per_hub,
                    "WaitForInstance… calls one task hub may have open at once (each holds a server thread)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  serve->add_option("--metrics", serve_options.metrics,
                    "GET /metrics (admin key) and the recording behind it: on or off (docs/metrics.md)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  serve->add_option("--log-format", serve_options.log_format,
                    "Log lines on stderr: text, or json (one object per line: ts, level, msg or event and fields)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  serve->add_option("--log-level", serve_options.log_level,
                    "trace, debug, info, warn, error, critical or off (default: BATON_LOG_LEVEL, else info)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  std::string migrate_store;
  std::string migrate_data_dir = "baton-data";
  auto* migrate = app.add_subcommand("migrate", "Apply the task hub's schema migrations and exit");
  migrate->add_option("--store", migrate_store, "Task hub (as for serve; env BATON_STORE)");
  migrate->add_option("--data-dir", migrate_data_dir, "Data dir of the default SQLite task hub (env BATON_DATA_DIR)")
      ->capture_default_str();
  std::string backup_file, backup_data_dir = "baton-data", backup_store;
  auto* backup = app.add_subcommand(
      "backup", "Copy every database and key of a SQLite data dir into FILE, also while the server runs");
  backup->add_option("file", backup_file, "The archive to write (a tar file; keep it as private as the data dir)")
      ->required();
  backup->add_option("--data-dir", backup_data_dir, "The server's data dir (env BATON_DATA_DIR)")
      ->capture_default_str();
  backup->add_option("--store", backup_store, "The task hub, as for serve: sqlite:PATH (env BATON_STORE); "
                                              "PostgreSQL is backed up with pg_dump (docs/postgres.md)");
  std::string restore_file, restore_data_dir = "baton-data", restore_store;
  bool restore_force = false;
  auto* restore = app.add_subcommand("restore", "Restore a data dir from a `baton backup` archive (server stopped)");
  restore->add_option("file", restore_file, "The archive `baton backup` wrote")->required();
  restore->add_option("--data-dir", restore_data_dir, "The data dir to restore into (env BATON_DATA_DIR)")
      ->capture_default_str();
  restore->add_option("--store", restore_store, "The task hub, as for serve: sqlite:PATH (env BATON_STORE)");
  restore->add_flag("--force", restore_force, "Replace the task hub and stores the data dir already holds");
  app.add_subcommand("version", "Print the version");
  baton::app::PreflightCommandOptions preflight_options;
  auto* preflight = baton::app::AddPreflightCommand(app, &preflight_options);

  int exit_code = 0;
  baton::cli::ClientCommands client = baton::cli::AddClientCommands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return baton::cli::ExitForParseError(app, e);
  }
  if (client.parsed()) return exit_code;
  if (demo->parsed()) return baton::app::Demo(db);
  if (preflight->parsed()) {
    if (const char* v = std::getenv("BATON_STORE"); v != nullptr && preflight->count("--store") == 0) {
      preflight_options.store = v;
    }
    return baton::app::RunPreflight(preflight_options);
  }
  if (rotate->parsed()) {
    auto env = [&](const char* name, const char* flag, std::string* target) {
      const char* v = std::getenv(name);
      if (v != nullptr && rotate->count(flag) == 0) *target = v;
    };
    env("BATON_STORE", "--store", &secrets_store);
    env("BATON_SECRETS_KEY_DIR", "--secrets-key-dir", &secrets_key_dir);
    env("BATON_DATA_DIR", "--data-dir", &secrets_data_dir);
    return baton::app::RotateSecretsKey(secrets_data_dir, secrets_store, secrets_key_dir);
  }
  if (migrate->parsed()) {
    auto env = [&](const char* name, const char* flag, std::string* target) {
      const char* v = std::getenv(name);
      if (v != nullptr && migrate->count(flag) == 0) *target = v;
    };
    env("BATON_STORE", "--store", &migrate_store);
    env("BATON_DATA_DIR", "--data-dir", &migrate_data_dir);
    return baton::app::Migrate(migrate_store, migrate_data_dir);
  }
  if (backup->parsed() || restore->parsed()) {
    CLI::App* sub = backup->parsed() ? backup : restore;
    std::string& data_dir = backup->parsed() ? backup_data_dir : restore_data_dir;
    std::string& store = backup->parsed() ? backup_store : restore_store;
    if (const char* v = std::getenv("BATON_DATA_DIR"); v != nullptr && sub->count("--data-dir") == 0) data_dir = v;
    if (const char* v = std::getenv("BATON_STORE"); v != nullptr && sub->count("--store") == 0) store = v;
    return backup->parsed() ? baton::app::RunBackup(backup_file, data_dir, store)
                            : baton::app::RunRestore(restore_file, data_dir, store, restore_force);
  }
  if (serve->parsed()) {
    if (!baton::app::ApplyEnvironment(argc, argv, serve_options)) return 2;
    return baton::app::Serve(serve_options);
  }
  std::printf("baton 0.1.0\n");
  return 0;
}
