// Real outages against a real `baton serve` child process: a dockerd the test
// starts itself (in a network namespace of its own, with a registry of its
// own beside it), stopped for 30 s while jobs are queued, running and newly
// submitted; and a registry of its own, stopped for 30 s while jobs are
// submitted to the shared dockerd. Every job waits (its view says on what) and completes once the
// daemon is back; none fails; each attempt's container starts once and none
// is left. The shared dockerd and the shared registry on 127.0.0.1:5000 are
// never stopped (tests/testing/private_daemons.h).
//
// Slow (two 30-second outages): labelled `slow`, with a COST that makes ctest
// start them first. No assertion is about timing: every wait is a liveness
// bound, and the figures measured are printed for the ctest log.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "baton/clock.h"
#include "baton/json.h"
#include "runtime/container_runtime.h"
#include "runtime/docker/docker_runtime.h"
#include "testing/http_client.h"
#include "testing/private_daemons.h"
#include "testing/server_process.h"
#include "testing/test_image.h"
#include "testing/test_util.h"

namespace baton {
namespace {

using namespace std::chrono_literals;
using testing::HttpResult;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kOutage = 30s;

double SecondsSince(SteadyClock::time_point t) { return std::chrono::duration<double>(SteadyClock::now() - t).count(); }

bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = 250ms) {
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(interval);
  }
  return condition();
}

Json ParseOrNull(const std::string& body) {
  Json j = Json::parse(body, nullptr, false);
  return j.is_discarded() ? Json() : j;
}

bool IsEnded(const std::string& status) {
  return status == "Completed" || status == "Failed" || status == "Canceled";
}

// The /readyz entry named `name` (null when absent).
Json ReadyzCheck(const Json& readyz, const std::string& name) {
  for (const Json& c : readyz.value("checks", Json::array())) {
    if (c.value("name", "") == name) return c;
  }
  return Json();
}

// Counts Docker "start" events by container on a runtime, from a thread that
// reconnects after every failure (its daemon goes away on purpose) and
// replays from the last event seen (repeats are told apart by their time).
class StartCounter {
 public:
  StartCounter(runtime::ContainerRuntime& runtime, std::map<std::string, std::string> selector)
      : runtime_(runtime), selector_(std::move(selector)), from_(std::chrono::system_clock::now() - 1s) {
    thread_ = std::thread([this] { Run(); });
  }
  ~StartCounter() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::map<std::string, int> starts() {
    std::lock_guard lock(mu_);
    return starts_;
  }
  int errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  void Run() {
    const auto deadline = SteadyClock::now() + 600s;
    while (!stop_ && SteadyClock::now() < deadline) {
      Status s = runtime_.WatchEvents(
          selector_,
          [&](const runtime::ContainerEvent& e) {
            std::lock_guard lock(mu_);
            if (seen_.insert(e.container_id + "/" + e.action + "/" + std::to_string(ToUnixMicros(e.time))).second &&
                e.action == "start") {
              ++starts_[e.container_id];
            }
            from_ = std::max(from_, e.time);
            return !stop_;
          },
          1s, from_);
      if (!s.ok()) {
        {
          std::lock_guard lock(mu_);
          ++errors_;
        }
        std::this_thread::sleep_for(200ms);
      }
    }
  }

  runtime::ContainerRuntime& runtime_;
  std::map<std::string, std::string> selector_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  TimePoint from_;
  std::set<std::string> seen_;
  std::map<std::string, int> starts_;
  int errors_ = 0;
  std::thread thread_;
};

class TransientFaultE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    server_.reset();  // SIGKILL, before the daemons (declared first) go
  }

  std::string DataDir() const { return dir_.File("data"); }

  void StartServer(std::vector<std::string> args) {
    args.insert(args.end(), {"--reconcile-interval", "2"});
    server_ = std::make_unique<testing::ServerProcess>(BATON_BINARY, DataDir(), args);
    admin_ = server_->admin_key();
    ASSERT_FALSE(admin_.empty());
    std::ifstream in(DataDir() + "/node-id");
    in >> node_;
    ASSERT_FALSE(node_.empty());
  }

  HttpResult Call(const std::string& bearer, const std::string& method, const std::string& target,
                  const std::string& body = "") {
    std::map<std::string, std::string> headers;
    if (!bearer.empty()) headers["Authorization"] = "Bearer " + bearer;
    if (!body.empty()) headers["Content-Type"] = "application/json";
    return testing::HttpCall(server_->port(), method, target, body, headers);
  }

  std::string CreateTenant(const std::string& id, const Json& quota) {
    EXPECT_EQ(Call(admin_, "POST", "/api/v1/admin/tenants", Json{{"id", id}}.dump()).status, 201);
    EXPECT_EQ(Call(admin_, "PUT", "/api/v1/admin/tenants/" + id + "/quota", quota.dump()).status, 200);
    // The test images live under <registry>/baton-test/, not the tenant's own namespace.
    Json grant = {{"grants", {{"imagePrefixes", {registry_->host() + "/baton-test/"}}}}};
    EXPECT_EQ(Call(admin_, "PATCH", "/api/v1/admin/tenants/" + id + "/settings", grant.dump()).status, 200);
    HttpResult k = Call(admin_, "POST", "/api/v1/admin/tenants/" + id + "/keys", R"({"name":"e2e"})");
    EXPECT_EQ(k.status, 201) << k.body;
    Json j = ParseOrNull(k.body);
    return j.is_object() ? j.value("key", "") : "";
  }

  static Json Spec(const std::string& name, const std::string& image, const std::vector<std::string>& args) {
    return Json{{"name", name}, {"image", image}, {"args", args}, {"cpu", 0.5}, {"memoryMb", 32}};
  }

  std::string Submit(const Json& spec) {
    HttpResult r = Call(key_, "POST", "/api/v1/jobs", spec.dump());
    EXPECT_EQ(r.status, 202) << r.body;
    Json j = ParseOrNull(r.body);
    return r.status == 202 && j.is_object() ? j.value("id", "") : "";
  }

  Json GetJob(const std::string& id) {
    HttpResult r = Call(key_, "GET", "/api/v1/jobs/" + id);
    return r.status == 200 ? ParseOrNull(r.body) : Json();
  }

  Json AwaitJob(const std::string& id, const std::function<bool(const Json&)>& done,
                std::chrono::milliseconds timeout) {
    Json view;
    PollUntil(
        [&] {
          view = GetJob(id);
          return view.is_object() && done(view);
        },
        timeout);
    return view;
  }

  std::string WaitingOn(const Json& view) {
    return view.is_object() && view["waitingOn"].is_object() ? view["waitingOn"].value("reason", "") : "";
  }

  // Polls every job until it ended; their last views by id.
  std::map<std::string, Json> AwaitAllEnded(const std::vector<std::string>& ids, std::chrono::milliseconds timeout) {
    std::map<std::string, Json> ended;
    PollUntil(
        [&] {
          for (const std::string& id : ids) {
            if (ended.count(id)) continue;
            Json v = GetJob(id);
            if (v.is_object() && IsEnded(v.value("status", ""))) ended[id] = v;
          }
          return ended.size() == ids.size();
        },
        timeout, 500ms);
    return ended;
  }

  // Until `until`, reads every job once a second; the ids of those that failed.
  std::set<std::string> FailedDuring(const std::vector<std::string>& ids, SteadyClock::time_point until) {
    std::set<std::string> failed;
    while (SteadyClock::now() < until) {
      for (const std::string& id : ids) {
        if (GetJob(id).value("status", "") == "Failed") failed.insert(id);
      }
      std::this_thread::sleep_for(1s);
    }
    return failed;
  }

  Json Readyz(const std::string& bearer = "") { return ParseOrNull(Call(bearer, "GET", "/readyz").body); }

  // Declared before server_, so that they outlive it (and the namespace them).
  std::unique_ptr<testing::PrivateNetns> netns_;
  std::unique_ptr<testing::PrivateRegistry> registry_;
  std::unique_ptr<testing::PrivateDockerd> dockerd_;
  testing::TempDir dir_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::string admin_;
  std::string node_;
  std::string key_;
};

TEST_F(TransientFaultE2eTest, DockerdStoppedFor30sQueuedRunningAndNewJobsWaitThenComplete) {
  // dockerd and its registry in a network namespace of their own: a dockerd
  // changes the network of the namespace it runs in.
  netns_ = std::make_unique<testing::PrivateNetns>();
  ASSERT_TRUE(netns_->ok());
  registry_ = std::make_unique<testing::PrivateRegistry>(netns_.get());
  BATON_ASSERT_OK(registry_->Start());
  dockerd_ = std::make_unique<testing::PrivateDockerd>(*netns_);
  BATON_ASSERT_OK(dockerd_->Start());
  runtime::docker::DockerRuntime docker(dockerd_->socket());
  // FROM scratch, built on the private daemon, pushed to the private registry
  // and pulled back: the node holds it by digest, so no job needs a pull.
  auto image = testing::BuildAndPushTestImage(docker, BATON_TESTJOB,
                                              registry_->host() + "/baton-test/testjob:" + std::to_string(getpid()),
                                              registry_->credentials());
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  StartServer({"--docker-socket", dockerd_->socket(), "--registry", registry_->host(), "--registry-user", "baton",
               "--registry-password-file", registry_->password_file(), "--job-cpu", "1", "--job-memory-mb", "1024"});
  key_ = CreateTenant("acme", Json{{"cpu", 1}});
  StartCounter counter(docker, {{"baton.node", node_}});

  // Two jobs that run through the outage (their containers outlive dockerd:
  // live restore), and three queued behind them (the node has 1 core).
  std::vector<std::string> running, queued, fresh;
  for (int i = 0; i < 2; ++i) running.push_back(Submit(Spec("running-" + std::to_string(i), image->digest, {"sleep", "12"})));
  for (const std::string& id : running) {
    ASSERT_FALSE(id.empty());
    Json v = AwaitJob(id, [](const Json& v) { return v.value("status", "") == "Running"; }, 120s);
    ASSERT_EQ(v.value("status", ""), "Running") << v.dump();
  }
  for (int i = 0; i < 3; ++i) queued.push_back(Submit(Spec("queued-" + std::to_string(i), image->digest, {"sleep", "1"})));
  for (const std::string& id : queued) {
    Json v = AwaitJob(id, [](const Json& v) { return v.value("status", "") == "Queued"; }, 60s);
    ASSERT_EQ(v.value("status", ""), "Queued") << v.dump();
  }
  Json ready = Readyz();
  EXPECT_EQ(ready.value("status", ""), "ready") << ready.dump();

  // The outage.
  const auto stopped_at = SteadyClock::now();
  BATON_ASSERT_OK(dockerd_->Stop());
  const double stop_took = SecondsSince(stopped_at);
  for (int i = 0; i < 3; ++i) fresh.push_back(Submit(Spec("new-" + std::to_string(i), image->digest, {"sleep", "1"})));
  double first_wait_seen = -1;
  for (const std::string& id : fresh) {
    ASSERT_FALSE(id.empty());
    Json v = AwaitJob(id, [&](const Json& v) { return WaitingOn(v) == "runtime"; }, 20s);
    EXPECT_EQ(WaitingOn(v), "runtime") << v.dump();
    EXPECT_EQ(v.value("status", ""), "Pending") << v.dump();
    EXPECT_FALSE(v["waitingOn"].value("lastError", "").empty()) << v.dump();
    EXPECT_TRUE(v["waitingOn"].contains("retryAt")) << v.dump();
    if (first_wait_seen < 0) first_wait_seen = SecondsSince(stopped_at);
  }
  Json not_ready;
  PollUntil([&] { return (not_ready = Readyz()).value("status", "") == "notReady"; }, 15s);
  EXPECT_EQ(not_ready.value("status", ""), "notReady") << not_ready.dump();
  EXPECT_EQ(ReadyzCheck(not_ready, "dockerd").value("ok", true), false) << not_ready.dump();
  EXPECT_EQ(ReadyzCheck(not_ready, "dockerd").value("reason", ""), "UNAVAILABLE") << not_ready.dump();
  EXPECT_EQ(ReadyzCheck(not_ready, "store").value("ok", false), true) << not_ready.dump();
  EXPECT_EQ(Call("", "GET", "/healthz").status, 200);  // alive, only not ready

  std::vector<std::string> all = running;
  all.insert(all.end(), queued.begin(), queued.end());
  all.insert(all.end(), fresh.begin(), fresh.end());
  std::set<std::string> failed_during = FailedDuring(all, stopped_at + kOutage);
  EXPECT_TRUE(failed_during.empty()) << failed_during.size() << " jobs failed during the outage";
  const double outage = SecondsSince(stopped_at);

  const auto back_at = SteadyClock::now();
  BATON_ASSERT_OK(dockerd_->Start());
  const double start_took = SecondsSince(back_at);
  std::map<std::string, Json> ended = AwaitAllEnded(all, 240s);
  const double all_ended = SecondsSince(back_at);
  ASSERT_EQ(ended.size(), all.size()) << "not every job ended within the bound";
  int completed = 0;
  for (const std::string& id : all) {
    const Json& v = ended[id];
    EXPECT_EQ(v.value("status", ""), "Completed")
        << id << ": " << v.dump() << "\ntimeline: " << Call(key_, "GET", "/api/v1/jobs/" + id + "/events").body;
    completed += v.value("status", "") == "Completed";
    EXPECT_EQ(v["result"].value("attempts", 0), 1) << v.dump();
    EXPECT_EQ(v["result"].value("exitCode", -1), 0) << v.dump();
  }
  // A new job's timeline tells of the wait.
  Json timeline = ParseOrNull(Call(key_, "GET", "/api/v1/jobs/" + fresh[0] + "/events").body);
  int waits = 0;
  for (const Json& e : timeline.value("events", Json::array())) {
    if (e.value("type", "") == "Waiting") {
      ++waits;
      EXPECT_EQ(e.value("waitingOn", ""), "runtime") << e.dump();
    }
  }
  EXPECT_GE(waits, 1) << timeline.dump();

  // Each attempt's container started once (8 jobs, 1 attempt each); none left.
  runtime::docker::DockerRuntime after(dockerd_->socket());
  const bool none_left = PollUntil(
      [&] {
        auto list = after.ListByLabels({{"baton.node", node_}});
        return list.ok() && list->empty();
      },
      60s, 500ms);
  EXPECT_TRUE(none_left);
  counter.Stop();
  std::map<std::string, int> starts = counter.starts();
  int twice = 0;
  for (const auto& [id, n] : starts) {
    if (n > 1) {
      ++twice;
      ADD_FAILURE() << "container " << id << " started " << n << " times";
    }
  }
  EXPECT_EQ(starts.size(), all.size());
  Json ready_again;
  PollUntil([&] { return (ready_again = Readyz()).value("status", "") == "ready"; }, 30s);
  EXPECT_EQ(ready_again.value("status", ""), "ready") << ready_again.dump();
  std::printf(
      "dockerd outage: stop took %.1f s; new jobs showed waitingOn runtime %.1f s after the stop; outage %.1f s; "
      "dockerd answered %.1f s after its start; all %zu jobs (2 running, 3 queued, 3 new) ended %.1f s after the "
      "start, %d Completed; %zu containers started, %d more than once; %d watch errors\n",
      stop_took, first_wait_seen, outage, start_took, all.size(), all_ended, completed, starts.size(), twice,
      counter.errors());
}

TEST_F(TransientFaultE2eTest, RegistryStoppedFor30sNewJobsWaitThenComplete) {
  registry_ = std::make_unique<testing::PrivateRegistry>();
  BATON_ASSERT_OK(registry_->Start());
  runtime::docker::DockerRuntime docker;  // the shared dockerd, with images of this test only
  const std::string pid = std::to_string(getpid());
  const std::string repo = registry_->host() + "/baton-test/transient";
  // Two FROM-scratch images on the private registry: one stays on this node,
  // the other is removed from it (a job needs the registry for it).
  auto present = testing::BuildAndPushTestImage(docker, BATON_TESTJOB, repo + ":present-" + pid,
                                                registry_->credentials(), "present");
  ASSERT_TRUE(present.ok()) << present.status().ToString();
  auto absent = testing::BuildAndPushTestImage(docker, BATON_TESTJOB, repo + ":absent-" + pid,
                                               registry_->credentials(), "absent");
  ASSERT_TRUE(absent.ok()) << absent.status().ToString();
  BATON_ASSERT_OK(docker.RemoveImage(absent->tag));
  BATON_ASSERT_OK(docker.RemoveImage(absent->digest));
  ASSERT_EQ(docker.LocalImageDigest(absent->digest).status().code(), StatusCode::kNotFound);
  struct Cleanup {
    runtime::docker::DockerRuntime& docker;
    std::vector<std::string> refs;
    ~Cleanup() {
      for (const std::string& r : refs) docker.RemoveImage(r).IgnoreError();
    }
  } cleanup{docker, {present->tag, present->digest, absent->tag, absent->digest}};

  StartServer({"--registry", registry_->host(), "--registry-user", "baton", "--registry-password-file",
               registry_->password_file(), "--job-cpu", "2", "--job-memory-mb", "1024"});
  key_ = CreateTenant("acme", Json{{"cpu", 2}});
  Json ready;
  PollUntil([&] { return (ready = Readyz()).value("status", "") == "ready"; }, 15s);
  EXPECT_EQ(ReadyzCheck(ready, "registry").value("ok", false), true) << ready.dump();

  const auto stopped_at = SteadyClock::now();
  BATON_ASSERT_OK(registry_->Stop());
  // Need the registry: the absent image, by digest and by tag.
  const std::string by_digest = Submit(Spec("absent-digest", absent->digest, {"exit", "0"}));
  const std::string by_tag = Submit(Spec("absent-tag", absent->tag, {"exit", "0"}));
  // Need no registry: the present image, by digest (on the node) and by tag
  // (the registry is away: the tag as this node has it).
  const std::string local_digest = Submit(Spec("present-digest", present->digest, {"exit", "0"}));
  const std::string local_tag = Submit(Spec("present-tag", present->tag, {"exit", "0"}));
  for (const std::string& id : {by_digest, by_tag}) {
    ASSERT_FALSE(id.empty());
    Json v = AwaitJob(id, [&](const Json& v) { return WaitingOn(v) == "registry"; }, 20s);
    EXPECT_EQ(WaitingOn(v), "registry") << v.dump();
    EXPECT_NE(v["waitingOn"].value("lastError", "").find("RegistryUnavailable"), std::string::npos) << v.dump();
  }
  const double waits_seen = SecondsSince(stopped_at);
  std::map<std::string, Json> local = AwaitAllEnded({local_digest, local_tag}, 20s);
  const double local_done = SecondsSince(stopped_at);
  EXPECT_TRUE(SecondsSince(stopped_at) < std::chrono::duration<double>(kOutage).count())
      << "the outage bound was reached before the local images' jobs were checked";
  for (const std::string& id : {local_digest, local_tag}) {
    EXPECT_EQ(local[id].value("status", ""), "Completed") << local[id].dump();
    Json events = ParseOrNull(Call(key_, "GET", "/api/v1/jobs/" + id + "/events").body);
    std::string source;
    for (const Json& e : events.value("events", Json::array())) {
      if (e.value("type", "") == "ImageResolved") source = e.value("source", "");
    }
    EXPECT_EQ(source, "node") << events.dump();
  }
  Json not_ready;
  PollUntil([&] { return (not_ready = Readyz()).value("status", "") == "notReady"; }, 15s);
  EXPECT_EQ(ReadyzCheck(not_ready, "registry").value("ok", true), false) << not_ready.dump();
  EXPECT_EQ(ReadyzCheck(not_ready, "dockerd").value("ok", false), true) << not_ready.dump();
  EXPECT_EQ(Call("", "GET", "/healthz").status, 200);

  std::set<std::string> failed_during = FailedDuring({by_digest, by_tag}, stopped_at + kOutage);
  EXPECT_TRUE(failed_during.empty()) << failed_during.size() << " jobs failed during the outage";
  const double outage = SecondsSince(stopped_at);
  const auto back_at = SteadyClock::now();
  BATON_ASSERT_OK(registry_->Start());
  std::map<std::string, Json> ended = AwaitAllEnded({by_digest, by_tag}, 120s);
  const double all_ended = SecondsSince(back_at);
  for (const std::string& id : {by_digest, by_tag}) {
    EXPECT_EQ(ended[id].value("status", ""), "Completed")
        << ended[id].dump() << "\ntimeline: " << Call(key_, "GET", "/api/v1/jobs/" + id + "/events").body;
  }
  // Back, the registry's word that will not change fails a job at once.
  const auto missing_at = SteadyClock::now();
  const std::string missing = Submit(Spec("missing", repo + ":none-" + pid, {"exit", "0"}));
  Json m = AwaitJob(missing, [](const Json& v) { return IsEnded(v.value("status", "")); }, 60s);
  const double missing_s = SecondsSince(missing_at);
  EXPECT_EQ(m.value("status", ""), "Failed") << m.dump();
  EXPECT_EQ(m["result"].value("error", "").rfind("NotFound", 0), 0u) << m.dump();
  EXPECT_TRUE(WaitingOn(m).empty());
  Json ready_again;
  PollUntil([&] { return (ready_again = Readyz()).value("status", "") == "ready"; }, 30s);
  EXPECT_EQ(ready_again.value("status", ""), "ready") << ready_again.dump();
  std::printf(
      "registry outage: jobs needing it showed waitingOn registry %.1f s after the stop; jobs with images on the "
      "node completed %.1f s after it; outage %.1f s; the waiting jobs ended %.1f s after the restart; a missing "
      "image failed in %.1f s\n",
      waits_seen, local_done, outage, all_ended, missing_s);
}

}  // namespace
}  // namespace baton
