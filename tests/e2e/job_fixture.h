// What the end-to-end job tests share: a real `baton serve` child process
// per test (its own data dir), the FROM-scratch test image of the suite, and
// helpers to call the API and wait for jobs. Every wait is a liveness bound,
// never a timing assertion.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "batch/job_token.h"
#include "batch/job_view.h"
#include "baton/clock.h"
#include "baton/json.h"
#include "runtime/container_runtime.h"
#include "runtime/docker/docker_runtime.h"
#include "testing/http_client.h"
#include "testing/server_process.h"
#include "testing/test_image.h"
#include "testing/test_util.h"

namespace baton {
namespace e2e {

using namespace std::chrono_literals;
using testing::HttpResult;
using SteadyClock = std::chrono::steady_clock;

inline constexpr char kMainIndex[] = "1000";  // the "baton.index" label of a group's main container

inline bool IsEnded(const std::string& status) {
  return status == "Completed" || status == "Failed" || status == "Canceled";
}

inline double SecondsSince(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

// Re-checks `condition` every `interval` until it holds or `timeout` passes;
// returns whether it held. Unlike testing::Eventually it paces itself for
// conditions that cost an HTTP or Docker round trip.
inline bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = 200ms) {
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(interval);
  }
  return condition();
}

inline Json ParseOrNull(const std::string& body) {
  Json j = Json::parse(body, nullptr, false);
  return j.is_discarded() ? Json() : j;
}

inline std::string ErrorField(const HttpResult& r) {
  Json j = ParseOrNull(r.body);
  return j.is_object() && j.contains("error") ? j["error"].value("field", "?") : "?";
}

inline std::string ErrorCode(const HttpResult& r) {
  Json j = ParseOrNull(r.body);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "?") : "?";
}

inline std::string Label(const runtime::ContainerState& c, const std::string& name) {
  auto it = c.labels.find(name);
  return it == c.labels.end() ? "" : it->second;
}

// Seconds from `from` to the ISO 8601 time `to` (as the API writes them); -1
// when `to` is missing or malformed.
inline double SecondsBetween(TimePoint from, const Json& to) {
  TimePoint t;
  if (!to.is_string() || !ParseIso8601(to.get<std::string>(), &t)) return -1;
  return std::chrono::duration<double>(t - from).count();
}

// The job API of the `baton serve` under test, for a fixture that says
// which port it listens on.
class JobApi {
 protected:
  virtual ~JobApi() = default;
  virtual int ApiPort() const = 0;

  HttpResult Call(const std::string& bearer, const std::string& method, const std::string& target,
                  const std::string& body = "") {
    std::map<std::string, std::string> headers;
    if (!bearer.empty()) headers["Authorization"] = "Bearer " + bearer;
    if (!body.empty()) headers["Content-Type"] = "application/json";
    return testing::HttpCall(ApiPort(), method, target, body, headers);
  }

  // Submits `spec`; returns the job id ("", and a test failure, when refused).
  std::string Submit(const std::string& key, const Json& spec) {
    HttpResult r = Call(key, "POST", "/api/v1/jobs", spec.dump());
    EXPECT_EQ(r.status, 202) << r.body;
    Json j = ParseOrNull(r.body);
    return r.status == 202 && j.is_object() ? j.value("id", "") : "";
  }

  // The job's view; null when the server did not answer 200.
  Json GetJob(const std::string& key, const std::string& id) {
    HttpResult r = Call(key, "GET", "/api/v1/jobs/" + id);
    return r.status == 200 ? ParseOrNull(r.body) : Json();
  }

  // Polls the job until `done(view)`; returns the last view read.
  Json AwaitJob(const std::string& key, const std::string& id,
                const std::function<bool(const Json&)>& done,
                std::chrono::milliseconds timeout = 120s) {
    Json view;
    PollUntil(
        [&] {
          view = GetJob(key, id);
          return view.is_object() && done(view);
        },
        timeout);
    return view;
  }
  Json AwaitEnd(const std::string& key, const std::string& id,
                std::chrono::milliseconds timeout = 120s) {
    return AwaitJob(
        key, id, [](const Json& v) { return IsEnded(v.value("status", "")); }, timeout);
  }
};

class JobServerTest : public ::testing::Test, protected JobApi {
 protected:
  int ApiPort() const override { return server_->port(); }
  static void SetUpTestSuite() { suite_.Prepare(BATON_TESTJOB, BATON_RUN_DIR); }
  static void TearDownTestSuite() { suite_.Release(); }

  void SetUp() override { ASSERT_TRUE(suite_.setup->ok()) << suite_.setup->ToString(); }

  void TearDown() override {
    server_.reset();  // SIGKILL
    // Whatever a test left behind goes with its server.
    if (!node_.empty()) {
      runtime::RemoveOrphanGroups(*suite_.docker, {{"baton.node", node_}},
                                  [](const std::string&) { return false; })
          .status()
          .IgnoreError();
    }
  }

  std::string DataDir() const { return dir_.File("data"); }

  // Starts this test's server with `cpu` cores and `memory_mb` MiB for jobs.
  void StartServer(double cpu, int memory_mb, const std::vector<std::string>& extra_args = {}) {
    char cpu_text[32];
    std::snprintf(cpu_text, sizeof cpu_text, "%g", cpu);
    args_ = {"--registry",
             "127.0.0.1:5000",
             "--registry-user",
             "baton",
             "--registry-password-file",
             std::string(BATON_RUN_DIR) + "/registry/password",
             "--job-cpu",
             cpu_text,
             "--job-memory-mb",
             std::to_string(memory_mb),
             "--reconcile-interval",
             "2"};
    if (std::find(extra_args.begin(), extra_args.end(), "--reconcile-interval") != extra_args.end()) {
      args_.resize(args_.size() - 2);  // the test's own
    }
    args_.insert(args_.end(), extra_args.begin(), extra_args.end());
    server_ = std::make_unique<testing::ServerProcess>(BATON_BINARY, DataDir(), args_);
    admin_ = server_->admin_key();
    ASSERT_FALSE(admin_.empty());
    std::ifstream in(DataDir() + "/node-id");
    in >> node_;
    ASSERT_FALSE(node_.empty());
  }

  // SIGKILLs the server and starts it again on the same data dir (its port
  // may change; Call always uses the current one).
  void KillAndRestart() {
    server_->Kill();
    server_.reset();
    server_ = std::make_unique<testing::ServerProcess>(BATON_BINARY, DataDir(), args_);
  }


  // Creates tenant `id` with `quota` and returns a key of it.
  std::string CreateTenant(const std::string& id, const Json& quota) {
    HttpResult t = Call(admin_, "POST", "/api/v1/admin/tenants", Json{{"id", id}}.dump());
    EXPECT_EQ(t.status, 201) << t.body;
    HttpResult q = Call(admin_, "PUT", "/api/v1/admin/tenants/" + id + "/quota", quota.dump());
    EXPECT_EQ(q.status, 200) << q.body;
    // The test images live under 127.0.0.1:5000/baton-test/, not the tenant's own namespace.
    HttpResult g = Call(admin_, "PATCH", "/api/v1/admin/tenants/" + id + "/settings",
                        R"({"grants":{"imagePrefixes":["127.0.0.1:5000/baton-test/"]}})");
    EXPECT_EQ(g.status, 200) << g.body;
    HttpResult k =
        Call(admin_, "POST", "/api/v1/admin/tenants/" + id + "/keys", R"({"name":"e2e"})");
    EXPECT_EQ(k.status, 201) << k.body;
    Json j = ParseOrNull(k.body);
    return j.is_object() ? j.value("key", "") : "";
  }

  // A small job running the test image with `args`.
  static Json Spec(const std::string& name, const std::vector<std::string>& args,
                   const Json& extra = Json::object()) {
    Json j = {
        {"name", name}, {"image", suite_.image->digest}, {"args", args}, {"cpu", 0.5}, {"memoryMb", 32}};
    for (const auto& [k, v] : extra.items()) j[k] = v;
    return j;
  }


  struct Submitted {
    std::string tenant;
    std::string id;
  };

  // Polls every job until it ended (or `timeout`); their last views by id.
  std::map<std::string, Json> AwaitAllEnded(const std::vector<Submitted>& jobs,
                                            std::map<std::string, std::string>& keys,
                                            std::chrono::milliseconds timeout) {
    std::map<std::string, Json> ended;
    PollUntil(
        [&] {
          for (const Submitted& j : jobs) {
            if (ended.count(j.id)) continue;
            Json v = GetJob(keys[j.tenant], j.id);
            if (v.is_object() && IsEnded(v.value("status", ""))) ended[j.id] = v;
          }
          return ended.size() == jobs.size();
        },
        timeout, 250ms);
    return ended;
  }

  Json AwaitStatus(const std::string& key, const std::string& id, const std::string& status,
                   std::chrono::milliseconds timeout = 120s) {
    return AwaitJob(
        key, id, [&](const Json& v) { return v.value("status", "") == status; }, timeout);
  }

  // How many containers of this test's server exist (any state); 999 when
  // Docker cannot answer, so that a wait for none keeps waiting.
  size_t NodeContainers() {
    auto list = suite_.docker->ListByLabels({{"baton.node", node_}});
    return list.ok() ? list->size() : 999;
  }
  size_t JobContainers(const std::string& tenant, const std::string& id) {
    auto list = suite_.docker->ListByLabels(
        {{"baton.node", node_}, {"baton.job", batch::JobInstanceId(tenant, id)}});
    return list.ok() ? list->size() : 999;
  }

  static testing::SuiteImage suite_;
  testing::TempDir dir_;
  std::vector<std::string> args_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::string admin_;
  std::string node_;
};

inline testing::SuiteImage JobServerTest::suite_;

}  // namespace e2e
}  // namespace baton
