// The HTTP target runs the server's request reader and its real route table
// in process. The services behind the routes are real too (SQLite store,
// tenant directory, vault, kept logs, job tokens, a worker that runs the
// scheduler entity) over a temp dir made once per process; the container
// runtime points at a socket that does not exist, so a route that needs
// Docker gets its 503 at once.
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "api/http/admin_api.h"
#include "api/http/job_api.h"
#include "api/http/management_api.h"
#include "api/http/request_reader.h"
#include "baton/client.h"
#include "baton/registry.h"
#include "baton/sqlite_store.h"
#include "baton/worker.h"
#include "batch/job_logs.h"
#include "batch/job_token.h"
#include "batch/scheduler.h"
#include "batch/secret_vault.h"
#include "fuzz/targets.h"
#include "runtime/docker/docker_runtime.h"
#include "tenancy/tenant_directory.h"
#include "testing/platform_stores.h"

namespace baton::fuzz {
namespace {

struct Environment {
  std::string dir;
  std::unique_ptr<Store> store;
  Registry registry;
  std::unique_ptr<Worker> worker;
  std::unique_ptr<Client> client;
  testing::SqlitePlatform platform;  // tenants, logs, secrets, keys
  std::unique_ptr<tenancy::TenantDirectory> directory;
  std::unique_ptr<batch::JobTokens> tokens;
  std::unique_ptr<runtime::docker::DockerRuntime> docker;
  api::Router router;
  std::string admin_key, tenant_key;

  static void Must(const Status& s) {
    if (!s.ok()) {
      std::fprintf(stderr, "fuzz http environment: %s\n", s.ToString().c_str());
      std::abort();
    }
  }

  Environment() {
    // tmpfs when there is one: the store fsyncs every acknowledged write.
    std::string base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path().string();
    // The pid in the name lets scripts/fuzz remove what a crashed run left.
    std::string tmpl = base + "/baton-fuzz-http-" + std::to_string(getpid()) + "-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir = tmpl;
    SqliteStoreOptions options;
    options.path = dir + "/baton.db";
    options.durability = Durability::kAcknowledged;
    auto opened = OpenSqliteStore(options);
    Must(opened.status());
    store = std::move(*opened);
    Must(registry.AddEntity(batch::kSchedulerEntity, batch::SchedulerEntity));
    Must(registry.AddOrchestrator("Hello", [](OrchestrationContext& ctx) -> Task<Json> { co_return ctx.GetInput<Json>(); }));
    WorkerOptions worker_options;
    worker_options.orchestration_threads = 1;
    worker_options.activity_threads = 1;
    worker = std::make_unique<Worker>(*store, registry, worker_options);
    Must(worker->Start());
    client = std::make_unique<Client>(*store);
    Must(platform.Open(dir));
    directory = std::make_unique<tenancy::TenantDirectory>(*platform.tenants);
    auto admin = directory->CreateKey("", "fuzz");
    Must(admin.status());
    admin_key = admin->second;
    Must(directory->CreateTenant("acme", "Acme").status());
    auto tenant = directory->CreateKey("acme", "fuzz");
    Must(tenant.status());
    tenant_key = tenant->second;
    auto t = batch::JobTokens::FromKeyStore(*platform.keys);
    Must(t.status());
    tokens = std::make_unique<batch::JobTokens>(std::move(*t));
    docker = std::make_unique<runtime::docker::DockerRuntime>(dir + "/no-docker.sock", dir + "/secrets");
    api::ManagementApiOptions api_options;
    api_options.is_known_orchestrator = [](std::string_view name) { return name == "Hello"; };
    api_options.max_wait = std::chrono::seconds(0);  // start-and-wait returns at once
    api::AddManagementApi(router, *client, *directory, api_options);
    api::JobApiServices jobs;
    jobs.client = client.get();
    jobs.directory = directory.get();
    jobs.vault = platform.vault.get();
    jobs.logs = platform.logs.get();
    jobs.tokens = tokens.get();
    jobs.runtime = docker.get();
    jobs.max_follow = std::chrono::seconds(1);
    jobs.platform_registry = "127.0.0.1:5000";
    api::AddJobApi(router, jobs);
    api::AddAdminApi(router, api::AdminApiServices{store.get(), directory.get(), nullptr, "fuzz-node"});
  }
  // Process exit tears the rest down; the worker must stop before its store.
  ~Environment() {
    worker->Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

Environment& Env() {
  static Environment* env = new Environment();
  static struct Cleanup {
    ~Cleanup() {
      delete env;
    }
  } cleanup;
  return *env;
}

void ReplaceAll(std::string& s, std::string_view from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

void CheckAnswer(const api::HttpResponse& res) {
  FUZZ_CHECK(res.result_int() >= 200 && res.result_int() != 500);
  if (res.result_int() >= 400) {
    Json body;
    FUZZ_CHECK(ParseJson(res.body(), &body).ok());
    FUZZ_CHECK(body.is_object() && body.contains("error"));
  }
}

}  // namespace

int FuzzHttp(const uint8_t* data, size_t size) {
  Environment& env = Env();
  std::string bytes(reinterpret_cast<const char*>(data), size);
  ReplaceAll(bytes, "@ADMIN@", env.admin_key);
  ReplaceAll(bytes, "@TENANT@", env.tenant_key);
  // The server's limits, scaled down so the fuzzer reaches them.
  const api::RequestLimits limits{4096, 8192};
  auto parsed = api::ParseRequest(bytes, limits);
  if (auto* refused = std::get_if<api::HttpResponse>(&parsed)) {
    FUZZ_CHECK(refused->result_int() == 400 || refused->result_int() == 413 || refused->result_int() == 431 ||
               refused->result_int() == 501);
    CheckAnswer(*refused);
    return 0;
  }
  const api::HttpRequest& request = std::get<api::HttpRequest>(parsed);
  // Handlers that would block a real client for long (a log follow, a wait)
  // are bounded by the options above; anything they throw is a finding.
  api::HttpResponse res = env.router.Dispatch(request, "http://127.0.0.1:8080");
  CheckAnswer(res);
  return 0;
}

}  // namespace baton::fuzz
