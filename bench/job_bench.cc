#include "job_bench.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "baton/clock.h"
#include "baton/json.h"
#include "bench_util.h"
#include "batch/job_orchestration.h"
#include "batch/job_view.h"
#include "runtime/docker/docker_client.h"
#include "runtime/docker/docker_runtime.h"
#include "runtime/swarm/swarm_runtime.h"
#include "testing/private_swarm.h"
#include "testing/server_process.h"
#include "testing/test_image.h"

namespace baton::bench {
namespace {

namespace http = boost::beast::http;
using namespace std::chrono_literals;
using SysClock = std::chrono::system_clock;

constexpr char kRegistry[] = "127.0.0.1:5000";

// Set by SIGINT/SIGTERM; every loop checks it, so the bench ends early but
// still stops what it started.
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "read from a signal handler");

void OnSignal(int) { g_stop = true; }

// Installs OnSignal for SIGINT and SIGTERM for its lifetime.
class StopOnSignals {
 public:
  StopOnSignals() {
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopOnSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// Sleeps `d`, or less once a stop was asked for.
void Nap(std::chrono::milliseconds d) {
  const auto until = Clock_::now() + d;
  while (!g_stop && Clock_::now() < until) {
    std::this_thread::sleep_for(std::min<Clock_::duration>(d, 20ms));
  }
}

std::string RunDir() {
  const char* d = std::getenv("BATON_RUN_DIR");
  return d != nullptr && *d != '\0' ? d : BATON_SOURCE_DIR "/.baton-run";
}

TimePoint ParseTime(const Json& j) {
  TimePoint t{};
  if (!j.is_string() || !ParseIso8601(j.get<std::string>(), &t)) {
    throw std::runtime_error("not a timestamp: " + j.dump());
  }
  return t;
}

// Where the jobs run (job_bench.h): what the server is given, the sample
// image, the runtime's own record of when a job's container or service was
// made, the job containers existing and running now, and the clean-up.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual std::string image() const = 0;
  virtual std::vector<std::string> ServerArgs() const = 0;
  // When the runtime made job `id`'s first attempt (Docker: its container's
  // `create` event, found by the job's labels; Swarm: its service's `create`
  // event, found by the service's name); nullopt when not seen.
  virtual std::optional<TimePoint> CreatedAt(const std::string& run, int seq, const std::string& id,
                                             TimePoint since) = 0;
  // Removes what the server of `node` left (a bench ended early).
  virtual void CleanUp(const std::string& node) = 0;
};

class DockerBackend final : public Backend {
 public:
  DockerBackend() {
    if (!std::filesystem::exists(RunDir() + "/registry/password")) {
      throw std::runtime_error(RunDir() + "/registry/password is missing: run scripts/docker-up (scripts/bench does)");
    }
    if (Status s = docker_.Ping(); !s.ok()) throw std::runtime_error(s.ToString() + " (run scripts/docker-up)");
  }
  const char* name() const override { return "docker"; }
  std::string image() const override { return "127.0.0.1:5000/samples/hello:1"; }
  std::vector<std::string> ServerArgs() const override {
    return {"--registry", kRegistry, "--registry-user", "baton", "--registry-password-file",
            RunDir() + "/registry/password"};
  }
  std::optional<TimePoint> CreatedAt(const std::string& run, int seq, const std::string&, TimePoint since) override {
    std::optional<TimePoint> created;
    docker_
        .WatchEvents(
            {{"job.bench", run}, {"job.seq", std::to_string(seq)}},
            [&](const runtime::ContainerEvent& e) {
              if (e.action == "create") created = e.time;
              return !created;
            },
            3s, since)
        .IgnoreError();
    return created;
  }
  void CleanUp(const std::string& node) override {
    runtime::docker::DockerClient docker;
    Json filters = {{"label", {"baton.node=" + node}}};
    auto list = docker.Request("GET", "/containers/json?all=1&filters=" + runtime::docker::QueryEscape(filters.dump()));
    Json containers = list.ok() && list->status == 200 ? Json::parse(list->body, nullptr, false) : Json();
    for (const Json& c : containers.is_array() ? containers : Json::array()) {
      docker.Request("DELETE", "/containers/" + c.value("Id", "") + "?force=1").status().IgnoreError();
    }
  }

 private:
  runtime::docker::DockerRuntime docker_;
};

// The private swarm of scripts/swarm-up (scripts/bench starts it); the sample
// image is built on its manager and pushed to its registry as
// <registry>/samples/hello:1 (the static testjob program).
class SwarmBackend final : public Backend {
 public:
  SwarmBackend() {
    auto state = testing::SwarmState::Read(RunDir());
    if (!state.ok()) throw std::runtime_error(state.status().ToString());
    state_ = *state;
    runtime::docker::DockerRuntime manager(state_.manager_socket);
    auto built = testing::BuildAndPushTestImage(manager, BATON_TESTJOB, state_.registry + "/samples/hello:1",
                                                state_.Credentials(), "bench");
    if (!built.ok()) throw std::runtime_error("the swarm's sample image: " + built.status().ToString());
    image_ = built->tag;
  }
  const char* name() const override { return "swarm"; }
  std::string image() const override { return image_; }
  std::vector<std::string> ServerArgs() const override {
    return {"--runtime", "swarm", "--swarm-manager", state_.manager_socket, "--swarm-node",
            state_.worker_node + "=" + state_.worker_socket, "--registry", state_.registry, "--registry-user",
            "baton", "--registry-password-file", state_.registry_password_file, "--capacity-refresh", "2"};
  }
  std::optional<TimePoint> CreatedAt(const std::string&, int, const std::string& id, TimePoint since) override {
    const std::string service =
        runtime::swarm::SwarmRuntime::ServiceName(batch::JobGroupName(batch::JobInstanceId("bench", id), 1));
    Json filters = {{"type", {"service"}}, {"event", {"create"}}, {"service", {service}}};
    auto r = runtime::docker::DockerClient(state_.manager_socket)
                 .Request("GET", "/events?since=" + std::to_string(ToUnixMicros(since) / 1000000) + "&until=" +
                                     std::to_string(ToUnixMicros(SysClock::now()) / 1000000 + 1) +
                                     "&filters=" + runtime::docker::QueryEscape(filters.dump()));
    if (!r.ok()) return std::nullopt;
    std::istringstream lines(r->body);
    for (std::string line; std::getline(lines, line);) {
      Json e = Json::parse(line, nullptr, false);
      if (e.is_object() && e["Actor"]["Attributes"].value("name", "") == service) {
        return FromUnixMicros(e.value("timeNano", int64_t{0}) / 1000);
      }
    }
    return std::nullopt;
  }
  void CleanUp(const std::string& node) override {
    const std::string filter = runtime::docker::QueryEscape(Json{{"label", {"baton.node=" + node}}}.dump());
    runtime::docker::DockerClient manager(state_.manager_socket);
    auto services = manager.Request("GET", "/services?filters=" + filter);
    Json list = services.ok() && services->status == 200 ? Json::parse(services->body, nullptr, false) : Json();
    for (const Json& s : list.is_array() ? list : Json::array()) {
      manager.Request("DELETE", "/services/" + s.value("ID", "")).status().IgnoreError();
    }
    for (const std::string& socket : {state_.manager_socket, state_.worker_socket}) {
      runtime::docker::DockerClient node_docker(socket);
      auto containers = node_docker.Request("GET", "/containers/json?all=1&filters=" + filter);
      Json c = containers.ok() && containers->status == 200 ? Json::parse(containers->body, nullptr, false) : Json();
      for (const Json& x : c.is_array() ? c : Json::array()) {
        node_docker.Request("DELETE", "/containers/" + x.value("Id", "") + "?force=1").status().IgnoreError();
      }
    }
  }
  const testing::SwarmState& state() const { return state_; }

 private:
  testing::SwarmState state_;
  std::string image_;
};

std::unique_ptr<Backend> MakeBackend(const std::string& runtime) {
  if (runtime == "swarm") return std::make_unique<SwarmBackend>();
  if (runtime == "docker") return std::make_unique<DockerBackend>();
  throw std::runtime_error("--runtime " + runtime + ": expected docker, swarm or both");
}

// A `baton serve` for the job benchmarks, with the tenant "bench" (a key and
// `quota`). See job_bench.h for what the destructor cleans up.
class JobBenchServer {
 public:
  // Throws std::runtime_error when the server, the tenant or the quota cannot
  // be set up.
  JobBenchServer(Backend& backend, std::vector<std::string> extra_args, const Json& quota) : backend_(backend) {
    try {
      Setup(std::move(extra_args), quota);
    } catch (...) {
      CleanUp();
      throw;
    }
  }
  ~JobBenchServer() { CleanUp(); }

  // SIGTERM, then SIGKILL if the server has not exited 30 s later; reaps it.
  // Returns its exit code, or -1 when it had to be killed or died of a
  // signal. Idempotent.
  int Stop() {
    if (!server_ || server_->pid() <= 0) return 0;
    const pid_t pid = server_->pid();
    kill(pid, SIGTERM);
    siginfo_t info{};
    for (int i = 0; i < 300; ++i) {
      info.si_pid = 0;
      // WNOWAIT leaves the child a zombie, so its pid cannot be reused before
      // ServerProcess::Kill reaps it.
      if (waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) break;
      std::this_thread::sleep_for(100ms);
    }
    const bool exited = info.si_pid == pid && info.si_code == CLD_EXITED;
    if (info.si_pid != pid) {
      std::fprintf(stderr, "baton serve (pid %d) ignored SIGTERM for 30 s: killed\n", pid);
    }
    server_->Kill();
    return exited ? info.si_status : -1;
  }

  unsigned short port() const { return server_->port(); }
  const std::string& admin_key() const { return server_->admin_key(); }
  const std::string& key() const { return key_; }

 private:
  void Setup(std::vector<std::string> extra_args, const Json& quota) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "baton-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    std::vector<std::string> args = backend_.ServerArgs();
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    server_ = std::make_unique<testing::ServerProcess>(BATON_BINARY, dir_ + "/data", args);
    std::ifstream(dir_ + "/data/node-id") >> node_id_;
    if (node_id_.empty()) throw std::runtime_error("the server wrote no node-id");
    HttpConnection admin(server_->port());
    key_ = BenchTenantKey(admin, server_->admin_key());
    std::string body;
    int status = admin.Call(http::verb::put, "/api/v1/admin/tenants/bench/quota",
                            server_->admin_key(), quota.dump(), &body);
    if (status != 200) {
      throw std::runtime_error("setting the quota answered " + std::to_string(status) + ": " +
                               body);
    }
    // The sample image's namespace (scripts/sample-image; the swarm's registry).
    const std::string image = backend_.image();
    const std::string prefix = image.substr(0, image.rfind('/') + 1);
    status = admin.Call(http::verb::patch, "/api/v1/admin/tenants/bench/settings", server_->admin_key(),
                        Json{{"grants", {{"imagePrefixes", {prefix}}}}}.dump(), &body);
    if (status != 200) {
      throw std::runtime_error("granting " + prefix + " answered " + std::to_string(status) + ": " + body);
    }
  }

  // Stops the server, removes the containers of its node (jobs still running
  // when the bench ended early) and the data dir.
  void CleanUp() {
    Stop();
    if (!node_id_.empty()) backend_.CleanUp(node_id_);
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  Backend& backend_;
  std::string dir_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::string node_id_;
  std::string key_;
};

// The spec of a benchmark job, labelled so its container can be found in
// Docker's events (the spec's labels become container labels "job.<key>").
std::string JobSpec(const std::string& image, const std::string& name, double cpu, int memory_mb,
                    const std::string& run, int seq) {
  return Json{{"name", name},          {"image", image},
              {"args", {"exit", "0"}}, {"cpu", cpu},
              {"memoryMb", memory_mb}, {"labels", {{"bench", run}, {"seq", std::to_string(seq)}}}}
      .dump();
}

// Submits a job; returns its id. Throws on any answer but 202.
std::string Submit(HttpConnection& conn, const std::string& key, const std::string& spec) {
  std::string body;
  int status = conn.Call(http::verb::post, "/api/v1/jobs", key, spec, &body);
  if (status != 202) {
    throw std::runtime_error("POST /api/v1/jobs answered " + std::to_string(status) + ": " + body);
  }
  return Json::parse(body)["id"];
}

Json GetJson(HttpConnection& conn, const std::string& key, const std::string& target) {
  std::string body;
  int status = conn.Call(http::verb::get, target, key, "", &body);
  if (status != 200) {
    throw std::runtime_error("GET " + target + " answered " + std::to_string(status) + ": " + body);
  }
  return Json::parse(body);
}

bool Ended(const Json& job) {
  const std::string s = job.value("status", "");
  return s == "Completed" || s == "Failed" || s == "Canceled";
}

// One job's phases, in ms (see JobLatency); create and start are nullopt
// when Docker's events did not show the container's `create`.
struct Phases {
  double pull = 0, queue = 0, create_start = 0, total = 0, recorded = 0;
  std::optional<double> create, start;
};

// Runs job `seq` to its end and reads its phases; nullopt (after a message)
// when it failed or did not end within 60 s.
std::optional<Phases> MeasureOne(HttpConnection& conn, const std::string& key, Backend& backend,
                                 const std::string& run, int seq) {
  const TimePoint since = SysClock::now() - 1s;
  const std::string id = Submit(conn, key, JobSpec(backend.image(), "bench-latency", 0.25, 32, run, seq));
  Json job;
  const auto deadline = Clock_::now() + 60s;
  for (;;) {
    job = GetJson(conn, key, "/api/v1/jobs/" + id);
    if (Ended(job) || g_stop || Clock_::now() > deadline) break;
    Nap(50ms);
  }
  if (job.value("status", "") != "Completed") {
    std::fprintf(stderr, "job %s (#%d): %s %s\n", id.c_str(), seq, job.value("status", "").c_str(),
                 job["result"].is_object() ? job["result"].value("error", "").c_str()
                                           : "(did not end within 60 s)");
    return std::nullopt;
  }
  std::map<std::string, TimePoint> at;  // first event of each type
  const Json timeline = GetJson(conn, key, "/api/v1/jobs/" + id + "/events");
  for (const Json& e : timeline["events"]) {
    at.emplace(e.value("type", ""), ParseTime(e["time"]));
  }
  for (const char* type : {"Submitted", "ImageResolved", "QuotaGranted", "AttemptStarted"}) {
    if (!at.count(type)) {
      std::fprintf(stderr, "job %s: no %s event in its timeline\n", id.c_str(), type);
      return std::nullopt;
    }
  }
  const TimePoint started = ParseTime(job["result"]["attemptResults"][0]["startedAt"]);
  // Without the event, create and start are not split.
  const std::optional<TimePoint> created = backend.CreatedAt(run, seq, id, since);
  Phases p;
  p.pull = Ms(at["ImageResolved"] - at["Submitted"]);
  p.queue = Ms(at["QuotaGranted"] - at["ImageResolved"]);
  p.create_start = Ms(started - at["QuotaGranted"]);
  p.total = Ms(started - at["Submitted"]);
  p.recorded = Ms(at["AttemptStarted"] - started);
  if (created) {
    p.create = Ms(*created - at["QuotaGranted"]);
    p.start = Ms(started - *created);
  }
  return p;
}

// Threads that run until `done` is set; Join (or the destructor) sets it and
// joins them.
class Background {
 public:
  explicit Background(std::atomic<bool>& done) : done_(done) {}
  ~Background() { Join(); }
  void Run(std::function<void()> f) { threads_.emplace_back(std::move(f)); }
  void Join() {
    done_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  std::atomic<bool>& done_;
  std::vector<std::thread> threads_;
};

// The most containers between an `up` and a `down` event at once, from
// Docker's events ("<action> <container id>" -> time). At equal times a `down`
// counts first.
int MaxAtOnce(const std::map<std::string, TimePoint>& events, const std::string& up,
              const std::string& down) {
  std::vector<std::pair<TimePoint, int>> sweep;
  for (const auto& [k, t] : events) {
    const std::string action = k.substr(0, k.find(' '));
    if (action == up) sweep.emplace_back(t, 1);
    if (action == down) sweep.emplace_back(t, -1);
  }
  std::sort(sweep.begin(), sweep.end());
  int now = 0, most = 0;
  for (const auto& [t, delta] : sweep) {
    now += delta;
    most = std::max(most, now);
  }
  return most;
}

}  // namespace

int JobLatency(int n, const std::string& runtime) {
  if (runtime == "both") {
    const int docker = JobLatency(n, "docker");  // one after the other, docker first
    return std::max(docker, JobLatency(n, "swarm"));
  }
  StopOnSignals trap;
  int rc = 0;
  try {
    std::unique_ptr<Backend> backend = MakeBackend(runtime);
    JobBenchServer server(*backend, {}, Json{{"cpu", 2}, {"memoryMb", 1024}, {"jobs", 2}});
    HttpConnection conn(server.port());
    const std::string run = "latency-" + std::to_string(getpid()) + "-" + runtime;
    std::vector<Phases> all;
    for (int seq = 0; seq <= n && !g_stop; ++seq) {  // job 0 is the first, reported apart
      std::optional<Phases> p = MeasureOne(conn, server.key(), *backend, run, seq);
      if (!p) break;
      all.push_back(*p);
    }
    if (static_cast<int>(all.size()) != n + 1) {
      rc = 1;
    } else {
      std::vector<double> total, pull, queue, create_start, create, start, recorded;
      for (size_t i = 1; i < all.size(); ++i) {
        total.push_back(all[i].total);
        pull.push_back(all[i].pull);
        queue.push_back(all[i].queue);
        create_start.push_back(all[i].create_start);
        recorded.push_back(all[i].recorded);
        if (all[i].create) {
          create.push_back(*all[i].create);
          start.push_back(*all[i].start);
        }
      }
      if (create.size() != total.size()) {
        std::fprintf(stderr, "the runtime's create event was seen for %zu of %d jobs\n", create.size(),
                     n);
      }
      std::printf(
          "baton job-latency: runtime=%s N=%d total_p50=%.1fms total_p95=%.1fms pull_p50=%.1fms "
          "pull_p95=%.1fms "
          "queue_p50=%.1fms queue_p95=%.1fms create_start_p50=%.1fms create_start_p95=%.1fms "
          "create_p50=%.1fms "
          "create_p95=%.1fms start_p50=%.1fms start_p95=%.1fms recorded_p50=%.1fms "
          "first_total=%.1fms "
          "first_pull=%.1fms first_create_start=%.1fms\n",
          runtime.c_str(), n, Percentile(total, 0.5), Percentile(total, 0.95), Percentile(pull, 0.5),
          Percentile(pull, 0.95), Percentile(queue, 0.5), Percentile(queue, 0.95),
          Percentile(create_start, 0.5), Percentile(create_start, 0.95), Percentile(create, 0.5),
          Percentile(create, 0.95), Percentile(start, 0.5), Percentile(start, 0.95),
          Percentile(recorded, 0.5), all[0].total, all[0].pull, all[0].create_start);
      std::fflush(stdout);
    }
    if (server.Stop() != 0) rc = 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "job-latency: %s\n", e.what());
    rc = 1;
  }
  if (g_stop) std::fprintf(stderr, "job-latency: stopped by a signal\n");
  return g_stop ? 1 : rc;
}

int JobThroughput(int n, int q, const std::string& runtime) {
  if (runtime == "both") {
    const int docker = JobThroughput(n, q, "docker");
    return std::max(docker, JobThroughput(n, q, "swarm"));
  }
  StopOnSignals trap;
  constexpr int kClients = 4;
  constexpr double kCpu = 0.1;
  constexpr int kMemoryMb = 16;
  int rc = 0;
  try {
    if (n < 1 || q < 1) throw std::runtime_error("N and Q must be at least 1");
    // Jobs are the binding limit: cpu and memory leave room for twice Q.
    const double quota_cpu = std::max(1.0, 2 * q * kCpu);
    const int quota_memory = std::max(256, 2 * q * kMemoryMb);
    std::unique_ptr<Backend> backend = MakeBackend(runtime);
    auto* swarm = dynamic_cast<SwarmBackend*>(backend.get());
    // A swarm's capacity is its nodes' (a node's, the flags').
    std::vector<std::string> capacity_args;
    if (swarm == nullptr) {
      capacity_args = {"--job-cpu", std::to_string(quota_cpu + 1), "--job-memory-mb",
                       std::to_string(std::max(1024, 2 * quota_memory))};
    }
    JobBenchServer server(*backend, capacity_args,
                          Json{{"cpu", quota_cpu}, {"memoryMb", quota_memory}, {"jobs", q}});
    const std::string run = "throughput-" + std::to_string(getpid()) + "-" + runtime;
    const auto deadline = Clock_::now() + 60s + n * 2s;
    std::atomic<bool> done{false};

    // Docker's create/start/die/destroy events of our containers, watched in
    // 500 ms rounds (each resumes where the last ended) so that the watch ends
    // soon after `done`; Docker replays only its last 256 events, so a single
    // watch after the run could miss some.
    std::map<std::string, TimePoint>
        transitions;         // "<action> <container id>" -> time; read after Join
    size_t max_granted = 0;  // jobs holding quota, in samples of the scheduler's state
    // Swarm has no task events: its tasks are sampled every 100 ms instead
    // (placed and not ended: existing; running: running).
    int swarm_existing = 0, swarm_running = 0;
    Background background(done);
    if (swarm != nullptr) {
      background.Run([&] {
        runtime::docker::DockerClient manager(swarm->state().manager_socket);
        const std::string filter = runtime::docker::QueryEscape(Json{{"label", {"job.bench=" + run}}}.dump());
        while (!done && !g_stop && Clock_::now() < deadline) {
          auto services = manager.Request("GET", "/services?filters=" + filter);
          Json ids = Json::array();
          Json list = services.ok() && services->status == 200 ? Json::parse(services->body, nullptr, false) : Json();
          for (const Json& s : list.is_array() ? list : Json::array()) ids.push_back(s.value("ID", ""));
          if (!ids.empty()) {
            auto tasks = manager.Request(
                "GET", "/tasks?filters=" + runtime::docker::QueryEscape(Json{{"service", ids}}.dump()));
            Json t = tasks.ok() && tasks->status == 200 ? Json::parse(tasks->body, nullptr, false) : Json();
            int existing = 0, running = 0;
            for (const Json& task : t.is_array() ? t : Json::array()) {
              const std::string state = task["Status"].value("State", "");
              if (state == "running") ++running;
              if (state == "assigned" || state == "accepted" || state == "preparing" || state == "ready" ||
                  state == "starting" || state == "running") {
                ++existing;
              }
            }
            swarm_existing = std::max(swarm_existing, existing);
            swarm_running = std::max(swarm_running, running);
          }
          Nap(100ms);
        }
      });
    }
    background.Run([&] {
      if (swarm != nullptr) return;
      runtime::docker::DockerRuntime docker;
      TimePoint since = SysClock::now() - 1s;
      while (!done && !g_stop && Clock_::now() < deadline) {
        docker
            .WatchEvents(
                {{"job.bench", run}},
                [&](const runtime::ContainerEvent& e) {
                  if (e.action == "create" || e.action == "start" || e.action == "die" ||
                      e.action == "destroy") {
                    transitions.emplace(e.action + " " + e.container_id, e.time);
                  }
                  since = std::max(since, e.time);
                  return true;
                },
                500ms, since)
            .IgnoreError();
      }
    });
    background.Run([&] {
      try {
        HttpConnection admin(server.port());
        while (!done && !g_stop && Clock_::now() < deadline) {
          Json s = GetJson(admin, server.admin_key(), "/api/v1/admin/scheduler");
          if (s.contains("running") && s["running"].is_object())
            max_granted = std::max(max_granted, s["running"].size());
          Nap(100ms);
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "scheduler sampler: %s\n", e.what());
      }
    });

    // Submit from kClients threads.
    const TimePoint t0 = SysClock::now();
    std::atomic<int> next{0};
    std::atomic<bool> submit_failed{false};
    std::vector<std::string> ids(n);
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&] {
        try {
          HttpConnection conn(server.port());
          for (int i; !g_stop && !submit_failed && (i = next.fetch_add(1)) < n;) {
            ids[i] = Submit(conn, server.key(),
                            JobSpec(backend->image(), "bench-throughput", kCpu, kMemoryMb, run, i));
          }
        } catch (const std::exception& e) {
          std::fprintf(stderr, "submit: %s\n", e.what());
          submit_failed = true;
        }
      });
    }
    for (auto& t : clients) t.join();
    const double submit_s = Ms(SysClock::now() - t0) / 1000;
    if (submit_failed) throw std::runtime_error("a submit failed");

    // Wait for every job to end: count the ended ones (the tenant has no others).
    HttpConnection conn(server.port());
    int ended = 0;
    while (!g_stop && Clock_::now() < deadline) {
      ended = 0;
      std::string token;
      for (int page = 0; page < 1000; ++page) {
        std::string target = "/api/v1/jobs?status=Completed,Failed,Canceled&pageSize=500";
        if (!token.empty()) target += "&continuationToken=" + runtime::docker::QueryEscape(token);
        Json list = GetJson(conn, server.key(), target);
        ended += static_cast<int>(list["jobs"].size());
        token = list.value("continuationToken", "");
        if (token.empty()) break;
      }
      if (ended >= n) break;
      Nap(250ms);
    }
    if (ended < n) {
      throw std::runtime_error(std::to_string(n - ended) + " jobs had not ended" +
                               (g_stop ? "" : " by the deadline"));
    }

    // Each job's life and slot, and the last finish.
    std::vector<double> life, slot;
    TimePoint last = t0;
    int failed = 0;
    for (const std::string& id : ids) {
      Json job = GetJson(conn, server.key(), "/api/v1/jobs/" + id);
      if (job.value("status", "") != "Completed") {
        if (failed++ < 3) {
          std::fprintf(stderr, "job %s: %s %s\n", id.c_str(), job.value("status", "").c_str(),
                       job["result"].is_object() ? job["result"].value("error", "").c_str() : "");
        }
      }
      const Json& d = job["result"]["durations"];
      const TimePoint finished = ParseTime(d["finished"]);
      life.push_back(Ms(finished - ParseTime(d["submitted"])));
      if (d.contains("granted")) slot.push_back(Ms(finished - ParseTime(d["granted"])));
      last = std::max(last, finished);
    }
    const double wall = Ms(last - t0) / 1000;

    background.Join();  // the jobs ended: no more events will come
    const int existing = swarm != nullptr ? swarm_existing : MaxAtOnce(transitions, "create", "destroy");
    const int running = swarm != nullptr ? swarm_running : MaxAtOnce(transitions, "start", "die");
    int starts = 0;
    for (const auto& [k, t] : transitions) starts += k.rfind("start ", 0) == 0;
    if (swarm == nullptr && starts != n)
      std::fprintf(stderr, "Docker's events showed %d container starts for %d jobs\n", starts, n);
    std::printf(
        "baton job-throughput: runtime=%s N=%d Q=%d jobs_per_s=%.2f wall=%.1fs max_concurrent_observed=%d "
        "p50_job_ms=%.0f "
        "p95_job_ms=%.0f p50_slot_ms=%.0f p95_slot_ms=%.0f max_running_observed=%d "
        "max_granted_sampled=%zu "
        "submit=%.2fs failed=%d\n",
        runtime.c_str(), n, q, n / wall, wall, existing, Percentile(life, 0.5), Percentile(life, 0.95),
        Percentile(slot, 0.5), Percentile(slot, 0.95), running, max_granted, submit_s, failed);
    std::fflush(stdout);
    if (existing > q || static_cast<int>(max_granted) > q) {
      std::fprintf(stderr, "job-throughput: more than Q=%d jobs ran at once\n", q);
      rc = 1;
    }
    if (failed > 0) rc = 1;
    if (server.Stop() != 0) rc = 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "job-throughput: %s\n", e.what());
    rc = 1;
  }
  if (g_stop) std::fprintf(stderr, "job-throughput: stopped by a signal\n");
  return g_stop ? 1 : rc;
}

}  // namespace baton::bench
