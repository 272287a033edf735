// baton_private_swarm RUN_DIR [--no-worker]: starts a PrivateSwarm
// (private_swarm.h), writes RUN_DIR/swarm/state.json (where its sockets and
// registry are) and the links manager.sock, worker.sock and
// registry-password beside it, prints "ready", and holds it until SIGTERM or
// SIGINT, when it removes everything it started and the state file.
// scripts/swarm-up starts it in a session of its own; scripts/swarm-down ends
// it by its PID. Its daemons get SIGTERM if it dies (PR_SET_PDEATHSIG), so
// nothing outlives it.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "testing/private_swarm.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: baton_private_swarm RUN_DIR [--no-worker]\n");
    return 2;
  }
  const std::string dir = std::string(argv[1]) + "/swarm";
  const bool worker = !(argc > 2 && std::string(argv[2]) == "--no-worker");
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);

  baton::testing::PrivateSwarm swarm;
  baton::Status started = swarm.Start(worker);
  if (!started.ok()) {
    std::fprintf(stderr, "baton_private_swarm: %s\n", started.ToString().c_str());
    swarm.Remove();
    return 1;
  }
  baton::testing::SwarmState state = swarm.state();
  state.holder_pid = static_cast<int>(getpid());
  auto link = [&](const std::string& target, const std::string& name) {
    std::filesystem::remove(dir + "/" + name, ec);
    if (!target.empty()) std::filesystem::create_symlink(target, dir + "/" + name, ec);
  };
  link(state.manager_socket, "manager.sock");
  link(state.worker_socket, "worker.sock");
  link(state.registry_password_file, "registry-password");
  {
    std::ofstream out(dir + "/state.json.tmp");
    out << state.ToJson().dump(2) << "\n";
  }
  std::filesystem::rename(dir + "/state.json.tmp", dir + "/state.json", ec);
  std::printf("ready: manager %s (node %s), worker %s (node %s), registry %s\n", state.manager_socket.c_str(),
              state.manager_node.c_str(), state.worker_socket.c_str(), state.worker_node.c_str(),
              state.registry.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  std::printf("signal %d: removing the swarm\n", sig);
  std::fflush(stdout);
  std::filesystem::remove(dir + "/state.json", ec);
  for (const char* name : {"manager.sock", "worker.sock", "registry-password"}) std::filesystem::remove(dir + "/" + name, ec);
  swarm.Remove();
  std::printf("removed\n");
  return 0;
}
