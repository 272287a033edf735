// A Docker Swarm of the tests' own (docs/test-images.md, "The private
// swarm"): a manager and a worker, two PrivateDockerd in one PrivateNetns,
// and a PrivateRegistry beside them in that namespace. Nothing of it touches
// the host's network or the shared dockerd; everything is ended by PID and
// removed with it.
//
// Both daemons live in one namespace, so they are told apart by address: the
// manager's swarm listens on 127.0.0.1:2377 and gossips on 127.0.0.1:7946, the
// worker gossips on 127.0.0.2:7946. Two overlay endpoints of one network in
// one namespace would clash (each node makes the network's VXLAN device
// there: "file exists"), so the default "ingress" network is removed before
// the worker joins (Baton attaches no overlay network: docs/cluster.md).
// Both nodes reach the registry at the namespace's 127.0.0.1, which dockerd
// trusts without TLS by default.
//
// scripts/swarm-up runs one, held by baton_private_swarm
// (private_swarm_main.cc), and writes where it is to
// $BATON_RUN_DIR/swarm/state.json, which SwarmState reads.
#pragma once

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "testing/private_daemons.h"
#include "testing/test_image.h"

namespace baton::testing {

// Where a running private swarm is (state.json).
struct SwarmState {
  std::string manager_socket;
  std::string worker_socket;  // "" when it has no worker
  std::string manager_node;   // swarm node ids
  std::string worker_node;
  std::string registry;       // "127.0.0.1:PORT" (in the swarm's namespace)
  std::string registry_password_file;
  int holder_pid = 0;

  nlohmann::json ToJson() const {
    return {{"managerSocket", manager_socket}, {"workerSocket", worker_socket}, {"managerNode", manager_node},
            {"workerNode", worker_node},       {"registry", registry},          {"registryPasswordFile", registry_password_file},
            {"pid", holder_pid}};
  }
  // NotFound when there is no state file: scripts/swarm-up starts the swarm.
  static Result<SwarmState> Read(const std::string& run_dir) {
    const std::string path = run_dir + "/swarm/state.json";
    std::ifstream in(path);
    if (!in) return NotFoundError("no private swarm: " + path + " is missing (scripts/swarm-up starts one)");
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_object()) return InternalError(path + " is not JSON");
    SwarmState s;
    s.manager_socket = j.value("managerSocket", "");
    s.worker_socket = j.value("workerSocket", "");
    s.manager_node = j.value("managerNode", "");
    s.worker_node = j.value("workerNode", "");
    s.registry = j.value("registry", "");
    s.registry_password_file = j.value("registryPasswordFile", "");
    s.holder_pid = j.value("pid", 0);
    return s;
  }
  runtime::RegistryCredentials Credentials() const {
    std::ifstream in(registry_password_file);
    std::string password;
    std::getline(in, password);
    return {registry, "baton", password};
  }
};

// What a swarm test suite shares: the running private swarm (state.json)
// and the FROM-scratch test image built on its manager and pushed to its
// registry (the worker pulls it when a task lands there). A failure fails
// every test of the suite in SetUp, never skips it. Prepare() in
// SetUpTestSuite, Release() in TearDownTestSuite.
struct SwarmSuite {
  SwarmState* state = nullptr;
  TestImage* image = nullptr;
  Status* setup = nullptr;

  void Prepare(const std::string& run_dir, const std::string& testjob_path) {
    auto read = SwarmState::Read(run_dir);
    if (!read.ok()) {
      setup = new Status(read.status());
      return;
    }
    state = new SwarmState(*read);
    runtime::docker::DockerRuntime manager(state->manager_socket);
    auto built = BuildAndPushTestImage(manager, testjob_path,
                                       state->registry + "/baton-test/testjob:" + std::to_string(getpid()),
                                       state->Credentials());
    setup = new Status(built.ok() ? Status::Ok() : built.status());
    if (built.ok()) image = new TestImage(*built);
  }
  void Release() {
    if (image != nullptr && state != nullptr) {
      // Off both nodes; the build's intermediate images off the manager.
      for (const std::string& socket : {state->manager_socket, state->worker_socket}) {
        if (socket.empty()) continue;
        runtime::docker::DockerClient client(socket);
        for (const std::string& ref : {image->digest, image->tag}) {
          client.Request("DELETE", "/images/" + ref).status().IgnoreError();
        }
        nlohmann::json filters = {{"label", {"baton.test.owner=" + std::to_string(getpid())}}};
        auto ours = client.Request("GET", "/images/json?all=1&filters=" + runtime::docker::QueryEscape(filters.dump()));
        if (!ours.ok() || ours->status != 200) continue;
        for (const auto& i : nlohmann::json::parse(ours->body, nullptr, false)) {
          client.Request("DELETE", "/images/" + i.value("Id", "") + "?force=1").status().IgnoreError();
        }
      }
    }
    delete image;
    delete setup;
    delete state;
    image = nullptr;
    setup = nullptr;
    state = nullptr;
  }
};

class PrivateSwarm {
 public:
  PrivateSwarm() = default;
  ~PrivateSwarm() { Remove(); }
  PrivateSwarm(const PrivateSwarm&) = delete;
  PrivateSwarm& operator=(const PrivateSwarm&) = delete;

  // Starts the namespace, the registry, the manager (swarm init) and, with
  // `worker`, the worker (swarm join); waits until every node is ready.
  Status Start(bool worker = true) {
    netns_ = std::make_unique<PrivateNetns>();
    if (!netns_->ok()) return InternalError("cannot make a network namespace");
    registry_ = std::make_unique<PrivateRegistry>(netns_.get());
    BATON_RETURN_IF_ERROR(registry_->Start());
    manager_ = std::make_unique<PrivateDockerd>(*netns_, PrivateDockerd::Options{.live_restore = false});
    BATON_RETURN_IF_ERROR(manager_->Start());
    runtime::docker::DockerClient manager(manager_->socket());
    BATON_RETURN_IF_ERROR(
        Expect(manager.Request("POST", "/swarm/init",
                               nlohmann::json{{"ListenAddr", "127.0.0.1:2377"}, {"AdvertiseAddr", "127.0.0.1:2377"}}.dump()),
               200, "swarm init"));
    // See the header: no ingress network, whose VXLAN device both nodes would make in this one namespace.
    BATON_ASSIGN_OR_RETURN(auto ingress, manager.Request("DELETE", "/networks/ingress"));
    if (ingress.status != 204 && ingress.status != 404) {
      return InternalError("removing the ingress network: HTTP " + std::to_string(ingress.status) + " " + ingress.body);
    }
    BATON_ASSIGN_OR_RETURN(state_.manager_node, NodeId(manager));
    state_.manager_socket = manager_->socket();
    if (worker) {
      BATON_ASSIGN_OR_RETURN(auto swarm, manager.Request("GET", "/swarm"));
      const std::string token = nlohmann::json::parse(swarm.body, nullptr, false)["JoinTokens"].value("Worker", "");
      worker_ = std::make_unique<PrivateDockerd>(*netns_, PrivateDockerd::Options{.live_restore = false});
      BATON_RETURN_IF_ERROR(worker_->Start());
      runtime::docker::DockerClient w(worker_->socket());
      BATON_RETURN_IF_ERROR(Expect(w.Request("POST", "/swarm/join",
                                             nlohmann::json{{"ListenAddr", "127.0.0.2:2377"},
                                                            {"AdvertiseAddr", "127.0.0.2:2377"},
                                                            {"RemoteAddrs", {"127.0.0.1:2377"}},
                                                            {"JoinToken", token}}
                                                 .dump(),
                                             {}, std::chrono::seconds(60)),
                                   200, "swarm join"));
      BATON_ASSIGN_OR_RETURN(state_.worker_node, NodeId(w));
      state_.worker_socket = worker_->socket();
    }
    const size_t want = worker ? 2 : 1;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      auto nodes = manager.Request("GET", "/nodes");
      size_t ready = 0;
      if (nodes.ok() && nodes->status == 200) {
        for (const auto& n : nlohmann::json::parse(nodes->body, nullptr, false)) {
          if (n.contains("Status") && n["Status"].value("State", "") == "ready") ++ready;
        }
      }
      if (ready >= want) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        return UnavailableError("the swarm's nodes did not become ready: " + std::to_string(ready) + " of " +
                                std::to_string(want));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    state_.registry = registry_->host();
    state_.registry_password_file = registry_->password_file();
    return Status::Ok();
  }

  // Everything goes, worker first. Idempotent.
  void Remove() {
    if (worker_) worker_->Remove().IgnoreError();
    if (manager_) manager_->Remove().IgnoreError();
    worker_.reset();
    manager_.reset();
    registry_.reset();
    netns_.reset();
  }

  const SwarmState& state() const { return state_; }
  PrivateDockerd* manager() { return manager_.get(); }
  PrivateDockerd* worker() { return worker_.get(); }
  PrivateRegistry* registry() { return registry_.get(); }

 private:
  static Status Expect(const Result<runtime::docker::DockerResponse>& r, int status, const std::string& what) {
    if (!r.ok()) return r.status();
    if (r->status != status) return InternalError(what + ": HTTP " + std::to_string(r->status) + " " + r->body);
    return Status::Ok();
  }
  static Result<std::string> NodeId(runtime::docker::DockerClient& client) {
    BATON_ASSIGN_OR_RETURN(auto info, client.Request("GET", "/info"));
    nlohmann::json j = nlohmann::json::parse(info.body, nullptr, false);
    std::string id = j.is_object() && j.contains("Swarm") ? j["Swarm"].value("NodeID", "") : "";
    if (id.empty()) return InternalError("the daemon is not in the swarm: " + info.body.substr(0, 300));
    return id;
  }

  std::unique_ptr<PrivateNetns> netns_;
  std::unique_ptr<PrivateRegistry> registry_;
  std::unique_ptr<PrivateDockerd> manager_;
  std::unique_ptr<PrivateDockerd> worker_;
  SwarmState state_;
};

}  // namespace baton::testing
