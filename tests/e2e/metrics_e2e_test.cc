// GET /metrics and the structured log against a real `baton serve`.
//
// MetricsE2eTest: /metrics is valid Prometheus text (read back by the strict
// reader of tests/testing/prometheus_text.h) and its counters move with the
// work done — ten orchestrations started over HTTP are ten starts, ten
// completions, ten 202s of the start route, fifty activities; only an admin
// key reads it (a tenant key gets 403, no key 401, and hostile requests
// change nothing); with --metrics off it answers 404; the figures of a
// tenant (quota) appear under its name.
//
// MetricsStructuredLogE2eTest: with --log-format json every line of the server's
// stderr is one JSON object with ts and level; each HTTP request is one
// "http_request" line (method, route pattern, status, tenant, ms) (gRPC
// calls: MetricsE2eTest.GrpcCalls…); no line ever holds an API key, a
// job's secret or a client's password, at debug level either.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "baton/json.h"
#include "orchestrator_service.grpc.pb.h"
#include "testing/http_client.h"
#include "testing/prometheus_text.h"
#include "testing/server_process.h"
#include "testing/test_util.h"

namespace baton {
namespace {

using namespace std::chrono_literals;
using testing::HttpResult;
using testing::PromText;

Json ParseOrNull(const std::string& body) {
  Json j = Json::parse(body, nullptr, false);
  return j.is_discarded() ? Json() : j;
}

bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return condition();
}

class ServerFixture : public ::testing::Test {
 protected:
  void TearDown() override { server_.reset(); }

  void Start(std::vector<std::string> args = {}) {
    log_path_ = dir_.File("stderr.log");
    server_ = std::make_unique<testing::ServerProcess>(BATON_BINARY, dir_.File("data"), args, log_path_);
    admin_ = server_->admin_key();
    ASSERT_FALSE(admin_.empty());
  }
  HttpResult Call(const std::string& bearer, const std::string& method, const std::string& target,
                  const std::string& body = "") {
    std::map<std::string, std::string> headers;
    if (!bearer.empty()) headers["Authorization"] = "Bearer " + bearer;
    if (!body.empty()) headers["Content-Type"] = "application/json";
    return testing::HttpCall(server_->port(), method, target, body, headers);
  }
  PromText Scrape() {
    HttpResult r = Call(admin_, "GET", "/metrics");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["content-type"].rfind("text/plain; version=0.0.4", 0), 0u) << r.headers["content-type"];
    PromText parsed = testing::ParsePromText(r.body);
    EXPECT_EQ(parsed.error, "") << r.body;
    return parsed;
  }
  // A tenant with a key; returns the key.
  std::string CreateTenant(const std::string& id) {
    EXPECT_EQ(Call(admin_, "POST", "/api/v1/admin/tenants", Json{{"id", id}}.dump()).status, 201);
    HttpResult key = Call(admin_, "POST", "/api/v1/admin/tenants/" + id + "/keys", R"({"name":"k"})");
    EXPECT_EQ(key.status, 201) << key.body;
    return ParseOrNull(key.body).value("key", "");
  }
  // Starts `name` (a sample orchestrator); its instance id.
  std::string StartOrchestration(const std::string& bearer, const std::string& name, const Json& input = nullptr) {
    HttpResult r = Call(bearer, "POST", "/runtime/webhooks/durabletask/orchestrators/" + name, input.dump());
    EXPECT_EQ(r.status, 202) << r.body;
    return ParseOrNull(r.body).value("id", "");
  }
  std::string AwaitEnd(const std::string& bearer, const std::string& id) {
    std::string status;
    PollUntil(
        [&] {
          status = ParseOrNull(Call(bearer, "GET", "/runtime/webhooks/durabletask/instances/" + id).body)
                       .value("runtimeStatus", "");
          return status == "Completed" || status == "Failed" || status == "Terminated";
        },
        60s);
    return status;
  }
  std::vector<std::string> LogLines() {
    std::ifstream in(log_path_);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  testing::TempDir dir_;
  std::string log_path_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::string admin_;
};

class MetricsE2eTest : public ServerFixture {};

TEST_F(MetricsE2eTest, ParsesAsPrometheusTextAndCountsTenOrchestrations) {
  Start();
  // Let the start-up work (the scheduler entity's first signals) settle.
  PromText before;
  double episodes = -1;
  PollUntil(
      [&] {
        before = Scrape();
        const double now = before.Sum("baton_episodes_total");
        const bool settled = now == episodes;
        episodes = now;
        return settled;
      },
      10s);
  for (const char* family :
       {"baton_work_items_fetched_total", "baton_work_item_fetch_seconds", "baton_work_item_commit_seconds",
        "baton_episodes_total", "baton_replays_total", "baton_orchestration_cache_hits_total",
        "baton_orchestration_cache_evictions_total", "baton_store_commit_seconds", "baton_store_sync_seconds",
        "baton_activity_runs_total", "baton_entity_messages_total", "baton_http_requests_total",
        "baton_orchestrations_started_total", "baton_sdk_workers_connected"}) {
    EXPECT_TRUE(before.types.count(family)) << family << " is missing";
  }
  const std::string start_route = "/runtime/webhooks/durabletask/orchestrators/{name}/{instanceId?}";

  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(StartOrchestration(admin_, "Hello5"));
  for (const std::string& id : ids) {
    ASSERT_FALSE(id.empty());
    ASSERT_EQ(AwaitEnd(admin_, id), "Completed") << id;
  }
  PromText after = Scrape();
  auto delta = [&](const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    return after.Sum(name, labels) - before.Sum(name, labels);
  };
  EXPECT_EQ(delta("baton_orchestrations_started_total"), 10);
  EXPECT_EQ(delta("baton_orchestrations_completed_total", {{"status", "Completed"}}), 10);
  EXPECT_EQ(delta("baton_orchestrations_completed_total"), 10);
  EXPECT_EQ(delta("baton_http_requests_total", {{"method", "POST"}, {"route", start_route}, {"code", "202"}}), 10);
  EXPECT_EQ(delta("baton_activity_runs_total", {{"result", "completed"}}), 50);
  EXPECT_EQ(delta("baton_activity_runs_total", {{"result", "failed"}}), 0);
  EXPECT_EQ(delta("baton_work_items_fetched_total", {{"kind", "activity"}}), 50);
  EXPECT_EQ(delta("baton_activity_duration_seconds_count"), 50);
  // Six episodes each (start, then one per activity result), maybe more when
  // results arrive together; every one fetched and committed.
  EXPECT_GE(delta("baton_episodes_total"), 10);
  EXPECT_LE(delta("baton_episodes_total"), 60);
  EXPECT_EQ(delta("baton_work_items_fetched_total", {{"kind", "orchestration"}}), delta("baton_episodes_total"));
  EXPECT_EQ(delta("baton_work_item_commit_seconds_count", {{"kind", "orchestration"}}), delta("baton_episodes_total"));
  EXPECT_EQ(delta("baton_orchestration_cache_hits_total") + delta("baton_orchestration_cache_misses_total"),
            delta("baton_episodes_total"));
  EXPECT_GT(delta("baton_store_commit_seconds_count", {{"store", "sqlite"}}), 0);
  EXPECT_GT(delta("baton_store_sync_seconds_count", {{"store", "sqlite"}, {"sync", "full"}}), 0);
  EXPECT_GT(delta("baton_store_writes_total", {{"store", "sqlite"}}), 10);
  EXPECT_EQ(after.Sum("baton_metrics_source_up", {{"source", "queues"}}), 1);
  EXPECT_EQ(after.Sum("baton_metrics_source_up", {{"source", "jobs"}}), 1);
  // Request latencies: ten starts observed under their route.
  EXPECT_GE(delta("baton_http_request_duration_seconds_count", {{"server", "api"}, {"route", start_route}}), 10);
}

TEST_F(MetricsE2eTest, OnlyAnAdminKeyReadsMetricsAndHostileRequestsChangeNothing) {
  Start();
  const std::string acme = CreateTenant("acme");
  ASSERT_FALSE(acme.empty());
  EXPECT_EQ(Call("", "GET", "/metrics").status, 401);
  EXPECT_EQ(Call("bk_forged_0000", "GET", "/metrics").status, 401);
  EXPECT_EQ(Call(std::string(5000, 'x'), "GET", "/metrics").status, 401);
  HttpResult tenant = Call(acme, "GET", "/metrics");
  EXPECT_EQ(tenant.status, 403) << tenant.body;
  EXPECT_EQ(tenant.body.find("baton_"), std::string::npos) << tenant.body;
  EXPECT_EQ(Call(admin_, "POST", "/metrics", "{}").status, 405);
  EXPECT_EQ(Call(admin_, "DELETE", "/metrics").status, 405);

  // Client-chosen paths and verbs never become labels: a thousand distinct
  // unknown paths add one series, "unmatched".
  for (int i = 0; i < 50; ++i) Call("", "GET", "/no/such/path/" + std::to_string(i) + "?token=" + acme);
  HttpResult r = Call(admin_, "GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  PromText parsed = testing::ParsePromText(r.body);
  ASSERT_EQ(parsed.error, "");
  EXPECT_EQ(parsed.Sum("baton_http_requests_total", {{"route", "unmatched"}, {"code", "404"}}), 50);
  EXPECT_EQ(r.body.find("/no/such/path"), std::string::npos);
  EXPECT_EQ(r.body.find(acme), std::string::npos) << "a key in the metrics";
  EXPECT_EQ(r.body.find(admin_), std::string::npos) << "a key in the metrics";
  // The refused scrapes are counted, by status, under the metrics route.
  EXPECT_EQ(parsed.Sum("baton_http_requests_total", {{"route", "/metrics"}, {"code", "403"}}), 1);
  EXPECT_EQ(parsed.Sum("baton_http_requests_total", {{"route", "/metrics"}, {"code", "401"}}), 3);
  EXPECT_EQ(Call("", "GET", "/healthz").status, 200);
}

TEST_F(MetricsE2eTest, OffAnswersNotFoundAndTheServerStillWorks) {
  Start({"--metrics", "off"});
  EXPECT_EQ(Call(admin_, "GET", "/metrics").status, 404);
  const std::string id = StartOrchestration(admin_, "Hello5");
  EXPECT_EQ(AwaitEnd(admin_, id), "Completed");
}

TEST_F(MetricsE2eTest, ATenantsQuotaAppearsUnderItsName) {
  Start();
  CreateTenant("acme");
  HttpResult q = Call(admin_, "PUT", "/api/v1/admin/tenants/acme/quota",
                      R"({"cpu": 3, "memoryMb": 4096, "jobs": 5, "weight": 1})");
  ASSERT_EQ(q.status, 200) << q.body;
  PromText m;
  PollUntil(
      [&] {
        m = Scrape();
        return m.Sum("baton_tenant_quota", {{"tenant", "acme"}, {"resource", "jobs"}}) == 5;
      },
      20s);
  EXPECT_EQ(m.Sum("baton_tenant_quota", {{"tenant", "acme"}, {"resource", "cpu"}}), 3);
  EXPECT_EQ(m.Sum("baton_tenant_quota", {{"tenant", "acme"}, {"resource", "memoryMb"}}), 4096);
  EXPECT_EQ(m.Sum("baton_tenant_quota", {{"tenant", "acme"}, {"resource", "jobs"}}), 5);
  EXPECT_EQ(m.Sum("baton_tenant_used", {{"tenant", "acme"}}), 0);
  EXPECT_EQ(m.Sum("baton_tenant_queued_jobs", {{"tenant", "acme"}}), 0);
  EXPECT_GT(m.Sum("baton_node_capacity", {{"resource", "cpu"}}), 0);
  EXPECT_EQ(m.Sum("baton_metrics_source_up", {{"source", "scheduler"}}), 1);
}

// Sidecar calls: counted by method and gRPC status, one log line each,
// with the caller's tenant; a method no client may invent a label for.
TEST_F(MetricsE2eTest, GrpcCallsAreCountedByMethodAndCodeAndLogged) {
  Start({"--log-format", "json"});
  const std::string acme = CreateTenant("acme");
  ASSERT_NE(server_->grpc_port(), 0);
  auto channel = ::grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                       ::grpc::InsecureChannelCredentials());
  auto stub = ::TaskHubSidecarService::NewStub(channel);
  for (int i = 0; i < 2; ++i) {  // no key: refused
    ::grpc::ClientContext ctx;
    ::CreateInstanceRequest req;
    req.set_name("Hello5");
    ::CreateInstanceResponse resp;
    EXPECT_EQ(stub->StartInstance(&ctx, req, &resp).error_code(), ::grpc::StatusCode::UNAUTHENTICATED);
  }
  std::string id;
  for (int i = 0; i < 3; ++i) {
    ::grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + acme);
    ::CreateInstanceRequest req;
    req.set_name("Hello5");
    ::CreateInstanceResponse resp;
    ::grpc::Status s = stub->StartInstance(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    id = resp.instanceid();
  }
  // A method the service does not have, by a raw call.
  {
    ::grpc::GenericStub generic(channel);
    ::grpc::ClientContext ctx;
    ::grpc::Slice empty("");
    ::grpc::ByteBuffer request(&empty, 1), response;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    ::grpc::Status status;
    generic.UnaryCall(&ctx, "/TaskHubSidecarService/NoSuchMethod" + std::to_string(getpid()), {}, &request, &response,
                      [&](::grpc::Status s) {
                        std::lock_guard lock(mu);
                        status = s;
                        done = true;
                        cv.notify_all();
                      });
    std::unique_lock lock(mu);
    cv.wait_for(lock, 10s, [&] { return done; });
    EXPECT_EQ(status.error_code(), ::grpc::StatusCode::UNIMPLEMENTED);
  }
  EXPECT_EQ(AwaitEnd(acme, id), "Completed");
  PromText m = Scrape();
  EXPECT_EQ(m.Sum("baton_grpc_requests_total", {{"method", "StartInstance"}, {"code", "UNAUTHENTICATED"}}), 2);
  EXPECT_EQ(m.Sum("baton_grpc_requests_total", {{"method", "StartInstance"}, {"code", "OK"}}), 3);
  EXPECT_EQ(m.Sum("baton_grpc_request_duration_seconds_count", {{"method", "StartInstance"}}), 5);
  for (const testing::PromSample& s : m.samples) {
    auto method = s.labels.find("method");
    if (method != s.labels.end()) {
      EXPECT_EQ(method->second.find("NoSuchMethod"), std::string::npos);
    }
  }
  server_->Terminate();
  int started = 0;
  for (const std::string& line : LogLines()) {
    Json j = Json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    if (j.value("event", "") == "grpc_request" && j.value("method", "") == "StartInstance" &&
        j.value("code", "") == "OK") {
      EXPECT_EQ(j.value("tenant", ""), "acme") << line;
      EXPECT_TRUE(j["ms"].is_number()) << line;
      ++started;
    }
  }
  EXPECT_EQ(started, 3);
}

class MetricsStructuredLogE2eTest : public ServerFixture {};

TEST_F(MetricsStructuredLogE2eTest, JsonLinesParseAndNameEveryRequest) {
  Start({"--log-format", "json"});
  const std::string acme = CreateTenant("acme");
  const std::string id = StartOrchestration(acme, "Hello5");
  ASSERT_EQ(AwaitEnd(acme, id), "Completed");
  EXPECT_EQ(Call("", "GET", "/no/such/path?x=1").status, 404);
  server_->Terminate();

  std::vector<std::string> lines = LogLines();
  ASSERT_FALSE(lines.empty());
  int requests = 0;
  bool saw_tenant_start = false, saw_unmatched = false;
  for (const std::string& line : lines) {
    Json j = Json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_TRUE(j.contains("ts") && j["ts"].is_string()) << line;
    EXPECT_TRUE(j.contains("level") && j["level"].is_string()) << line;
    EXPECT_TRUE(j.contains("msg") || j.contains("event")) << line;
    if (j.value("event", "") != "http_request") continue;
    ++requests;
    for (const char* field : {"method", "route", "tenant", "server"}) {
      EXPECT_TRUE(j.contains(field) && j[field].is_string()) << field << " in " << line;
    }
    EXPECT_TRUE(j["status"].is_number_integer()) << line;
    EXPECT_TRUE(j["ms"].is_number()) << line;
    if (j["method"] == "POST" && j["route"].get<std::string>().find("/orchestrators/{name}") != std::string::npos) {
      EXPECT_EQ(j["tenant"], "acme") << line;
      EXPECT_EQ(j["status"], 202) << line;
      saw_tenant_start = true;
    }
    if (j["route"] == "unmatched") {
      EXPECT_EQ(j["status"], 404);
      saw_unmatched = true;
    }
    EXPECT_EQ(line.find("/no/such/path"), std::string::npos) << "a raw path in the log: " << line;
  }
  EXPECT_GE(requests, 5);
  EXPECT_TRUE(saw_tenant_start);
  EXPECT_TRUE(saw_unmatched);
}

TEST_F(MetricsStructuredLogE2eTest, NoKeyOrSecretReachesTheLogAtDebugLevel) {
  const std::string password_file = std::string(BATON_RUN_DIR) + "/registry/password";
  std::string password;
  std::getline(std::ifstream(password_file), password);
  ASSERT_FALSE(password.empty()) << "scripts/docker-up starts the registry";
  Start({"--log-format", "json", "--log-level", "debug", "--registry", "127.0.0.1:5000", "--registry-user", "baton",
         "--registry-password-file", password_file});
  const std::string acme = CreateTenant("acme");
  HttpResult second = Call(admin_, "POST", "/api/v1/admin/tenants/acme/keys", R"({"name":"second"})");
  ASSERT_EQ(second.status, 201);
  const std::string second_key = ParseOrNull(second.body).value("key", "");
  // A job with a secret, accepted (its image, which does not exist, in the
  // tenant's namespace): it lives and fails; its secret is never logged.
  const std::string secret = "s3cr3t-" + std::to_string(getpid()) + "-value";
  Json spec = {{"name", "leaky"},
               {"image", "127.0.0.1:5000/acme/nothing-" + std::to_string(getpid()) + ":latest"},
               {"command", {"true"}},
               {"secretEnv", {{"PASSWORD", secret}}}};
  HttpResult job = Call(acme, "POST", "/api/v1/jobs", spec.dump());
  ASSERT_EQ(job.status, 202) << job.body;  // the 400 answers of a bad spec are tested elsewhere
  const std::string job_id = ParseOrNull(job.body).value("id", "");
  std::string job_status;
  PollUntil(
      [&] {
        job_status = ParseOrNull(Call(acme, "GET", "/api/v1/jobs/" + job_id).body).value("status", "");
        return job_status == "Failed" || job_status == "Completed" || job_status == "Canceled";
      },
      90s);
  EXPECT_EQ(job_status, "Failed");
  // Keys sent in every place a client can put them.
  Call(acme, "GET", "/api/v1/jobs?token=" + acme);
  Call(second_key + "x", "GET", "/api/v1/jobs");
  Call("", "GET", "/runtime/webhooks/durabletask/instances?code=" + admin_);
  const std::string id = StartOrchestration(acme, "Hello5", Json{{"password", secret}});
  AwaitEnd(acme, id);
  server_->Terminate();

  std::vector<std::string> lines = LogLines();
  ASSERT_GT(lines.size(), 10u);
  std::set<std::string> job_phases;
  for (const std::string& line : lines) {
    Json j = Json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << line;
    if (j.is_object() && j.value("event", "") == "job" && j.value("job", "") == job_id) {
      EXPECT_EQ(j.value("tenant", ""), "acme") << line;
      job_phases.insert(j.value("phase", ""));
    }
    for (const std::string& s : {admin_, acme, second_key, secret, password}) {
      ASSERT_FALSE(s.empty());
      EXPECT_EQ(line.find(s), std::string::npos) << "a key or secret in the log: " << line;
    }
    // Nor any fragment of a key (the secret part after its id).
    for (const std::string& key : {admin_, acme, second_key}) {
      EXPECT_EQ(line.find(key.substr(key.size() - 24)), std::string::npos) << line;
    }
    EXPECT_EQ(line.find("Bearer"), std::string::npos) << line;
  }
  // The job's life, one line per step: it was pulled for, then ended.
  EXPECT_TRUE(job_phases.count("pulling")) << "no job lines for " << job_id;
  EXPECT_TRUE(job_phases.count("done"));
}

TEST_F(MetricsStructuredLogE2eTest, ABadLogFormatOrLevelIsRefusedAtStart) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--log-format", "xml"}, {"--log-level", "chatty"}, {"--metrics", "maybe"}}) {
    EXPECT_THROW(testing::ServerProcess(BATON_BINARY, dir_.File("bad"), args, dir_.File("bad.log")),
                 std::runtime_error)
        << args[0];
  }
  // The environment variable is checked the same way.
  setenv("BATON_LOG_LEVEL", "chatty", 1);
  EXPECT_THROW(testing::ServerProcess(BATON_BINARY, dir_.File("bad"), {}, dir_.File("bad.log")), std::runtime_error);
  unsetenv("BATON_LOG_LEVEL");
}

}  // namespace
}  // namespace baton
