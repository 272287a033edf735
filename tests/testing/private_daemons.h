// A dockerd and a registry of a test's own, which the test may stop and start
// again at will (docs/test-images.md, "Private daemons"). The shared dockerd
// (/var/run/docker.sock) and the shared registry (127.0.0.1:5000) serve every
// suite at once and are never stopped; these are for the tests of outages.
//
// Each keeps everything under a fresh directory of its own in /tmp, talks only
// over a unix socket or 127.0.0.1, and is ended by the PID it was started with
// (never by name). Its destructor removes what it made, daemon state included.
#pragma once

#include <crypt.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "baton/status.h"
#include "runtime/docker/docker_client.h"
#include "runtime/docker/docker_runtime.h"
#include "testing/http_client.h"
#include "testing/test_util.h"

namespace baton::testing {

namespace private_daemons {

// A fresh directory /tmp/<prefix>-XXXXXX (short: dockerd's containerd puts
// unix sockets under it, and those paths are limited to 108 bytes).
inline std::string MakeDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

// Starts `args` (args[0] the binary) with stdout and stderr appended to
// `log`, in a process that gets SIGTERM if the test process dies first (so a
// test killed by a timeout leaves no daemon behind). Returns its PID, or -1.
// In the network namespace `netns` (a /proc/<pid>/ns/net path) when not empty.
inline pid_t Spawn(const std::vector<std::string>& args, const std::string& log, const std::string& netns = "") {
  // Everything allocated before fork(): the child of a threaded process may
  // only make async-signal-safe calls.
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const char* log_path = log.c_str();
  const char* netns_path = netns.empty() ? nullptr : netns.c_str();
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(1);
  // A daemon starts with no signal blocked, whatever its parent blocks
  // (baton_private_swarm waits for SIGTERM with sigwait).
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (netns_path != nullptr) {
    int ns = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) _exit(125);
    close(ns);
  }
  int in = open("/dev/null", O_RDONLY);
  int out = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (in < 0 || out < 0) _exit(126);
  dup2(in, STDIN_FILENO);
  dup2(out, STDOUT_FILENO);
  dup2(out, STDERR_FILENO);
  for (int fd = 3; fd < 1024; ++fd) close(fd);  // nothing of the test leaks into the daemon
  execv(argv[0], argv.data());
  _exit(127);
}

// Sends SIGTERM to `pid` (our child) and reaps it; SIGKILL after `grace`.
// True when it exited within the grace period.
inline bool Terminate(pid_t pid, std::chrono::seconds grace) {
  if (pid <= 0) return true;
  kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return false;
}

inline std::string Tail(const std::string& path, size_t bytes) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

// The mount points at or under `dir`, deepest first (from /proc/self/mountinfo,
// whose fifth field is the mount point with " ", "\t", "\n", "\\" escaped as octal).
inline std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string f, point;
    for (int i = 0; i < 5 && fields >> f; ++i) point = f;
    std::string decoded;
    for (size_t i = 0; i < point.size(); ++i) {
      if (point[i] == '\\' && i + 3 < point.size()) {
        decoded.push_back(static_cast<char>(std::stoi(point.substr(i + 1, 3), nullptr, 8)));
        i += 3;
      } else {
        decoded.push_back(point[i]);
      }
    }
    if (decoded == dir || decoded.rfind(dir + "/", 0) == 0) out.push_back(decoded);
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

// Unmounts everything under `dir` (lazily: a daemon that died may leave busy
// mounts), then removes `dir` — only if nothing is mounted under it any more,
// so that the removal never reaches into a mounted file system.
inline Status RemoveDaemonDir(const std::string& dir) {
  if (dir.empty() || dir.rfind("/tmp/", 0) != 0) return InvalidArgumentError("refusing to remove '" + dir + "'");
  for (int pass = 0; pass < 5; ++pass) {
    std::vector<std::string> mounts = MountsUnder(dir);
    if (mounts.empty()) break;
    for (const std::string& m : mounts) umount2(m.c_str(), MNT_DETACH);
  }
  std::vector<std::string> left = MountsUnder(dir);
  if (!left.empty()) return FailedPreconditionError(dir + " still has " + std::to_string(left.size()) + " mounts; kept");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) return InternalError("removing " + dir + ": " + ec.message());
  return Status::Ok();
}

// What a private dockerd started under its own directory and left behind:
// the processes whose command line mentions `dir` (containerd, the shims),
// their children (the containers' first processes) first.
inline std::vector<pid_t> ProcessesLeftUnder(const std::string& dir) {
  std::vector<pid_t> mentioning;
  std::vector<std::pair<pid_t, pid_t>> parent_of;  // (pid, ppid)
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stoi(name));
    std::string cmdline = Tail(entry.path().string() + "/cmdline", 1 << 16);
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(dir + "/") != std::string::npos) mentioning.push_back(pid);
    std::string stat = Tail(entry.path().string() + "/stat", 4096);  // "pid (comm) state ppid …"
    size_t close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(close_paren + 1));
    std::string state;
    pid_t ppid = 0;
    if (rest >> state >> ppid) parent_of.emplace_back(pid, ppid);
  }
  std::vector<pid_t> out;
  for (const auto& [pid, ppid] : parent_of) {
    if (std::find(mentioning.begin(), mentioning.end(), ppid) != mentioning.end()) out.push_back(pid);
  }
  out.insert(out.end(), mentioning.begin(), mentioning.end());
  return out;
}

}  // namespace private_daemons

// A network namespace of the test's own, with only a loopback interface,
// held by a process that does nothing else (so the namespace outlives the
// daemons stopped and started in it). A private dockerd runs in one: dockerd
// changes the network of the namespace it starts in — with --bridge=none it
// even deletes an interface named docker0, the shared daemon's bridge — so it
// must never start in the host's. What runs in it reaches 127.0.0.1 of the
// namespace (a private registry started in it), not the host's.
class PrivateNetns {
 public:
  PrivateNetns() {
    int ready[2];
    if (pipe(ready) != 0) return;
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      close(ready[0]);
      char ok = 0;
      if (unshare(CLONE_NEWNET) == 0) {
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr {};
        std::memcpy(ifr.ifr_name, "lo", 3);
        if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
          ifr.ifr_flags |= IFF_UP;
          ok = ioctl(s, SIOCSIFFLAGS, &ifr) == 0 ? 1 : 0;
        }
      }
      if (write(ready[1], &ok, 1) != 1 || !ok) _exit(1);
      close(ready[1]);
      for (;;) pause();
    }
    close(ready[1]);
    char ok = 0;
    if (pid_ < 0 || read(ready[0], &ok, 1) != 1 || !ok) {
      if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
      pid_ = -1;
    }
    close(ready[0]);
  }
  ~PrivateNetns() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  PrivateNetns(const PrivateNetns&) = delete;
  PrivateNetns& operator=(const PrivateNetns&) = delete;

  bool ok() const { return pid_ > 0; }
  // What Spawn and setns(2) take.
  std::string path() const { return "/proc/" + std::to_string(pid_) + "/ns/net"; }

  // Runs `fn` on a thread of this process that has joined the namespace
  // (setns changes the calling thread only); false if it could not join.
  bool Run(const std::function<void()>& fn) const {
    bool joined = false;
    std::thread t([&] {
      int ns = open(path().c_str(), O_RDONLY | O_CLOEXEC);
      joined = ns >= 0 && setns(ns, CLONE_NEWNET) == 0;
      if (ns >= 0) close(ns);
      if (joined) fn();
    });
    t.join();
    return joined;
  }

 private:
  pid_t pid_ = -1;
};

// A dockerd with its own --data-root, --exec-root, --pidfile and unix socket
// under its directory, in a network namespace of its own (PrivateNetns), with
// no bridge network and no iptables or forwarding changes (containers use
// network "none", or "host" — the namespace's); --live-restore (unless
// Options say otherwise: a swarm node), so that its containers keep running
// while it is stopped, as production nodes should be configured
// (docs/job-protocol.md). It starts its own containerd under its
// exec root. Insecure registries: dockerd's default, 127.0.0.0/8 (of its
// namespace: a PrivateRegistry started there). Baton reaches it through its
// unix socket, which works across network namespaces.
class PrivateDockerd {
 public:
  struct Options {
    // Off for a swarm node: dockerd refuses swarm mode with live restore.
    bool live_restore = true;
  };

  // Runs dockerd in `netns` (never the host's: see PrivateNetns).
  explicit PrivateDockerd(const PrivateNetns& netns) : PrivateDockerd(netns, Options{}) {}
  PrivateDockerd(const PrivateNetns& netns, Options options)
      : dir_(private_daemons::MakeDir("baton-dockerd")), netns_(netns.ok() ? netns.path() : ""), options_(options) {
    if (!dir_.empty()) std::ofstream(dir_ + "/daemon.json") << "{}\n";  // not /etc/docker/daemon.json
  }
  ~PrivateDockerd() { Remove().IgnoreError(); }
  PrivateDockerd(const PrivateDockerd&) = delete;
  PrivateDockerd& operator=(const PrivateDockerd&) = delete;

  // Starts dockerd and waits (up to `timeout`) until its socket answers /_ping.
  Status Start(std::chrono::seconds timeout = std::chrono::seconds(60)) {
    if (dir_.empty()) return InternalError("no directory for the private dockerd");
    if (netns_.empty()) return InternalError("no network namespace for the private dockerd");
    if (pid_ > 0) return FailedPreconditionError("the private dockerd already runs (pid " + std::to_string(pid_) + ")");
    std::vector<std::string> args = {"/usr/sbin/dockerd", "--data-root", dir_ + "/data", "--exec-root", dir_ + "/exec",
                                     "--pidfile", dir_ + "/dockerd.pid", "--host", "unix://" + socket(),
                                     "--config-file", dir_ + "/daemon.json", "--bridge=none", "--iptables=false",
                                     "--ip-forward=false", "--ip-masq=false"};
    if (options_.live_restore) args.push_back("--live-restore");
    pid_ = private_daemons::Spawn(args, log(), netns_);
    if (pid_ < 0) return InternalError("fork failed");
    runtime::docker::DockerRuntime docker(socket());
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (docker.Ping(std::chrono::seconds(2)).ok()) return Status::Ok();
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return UnavailableError("the private dockerd exited at start:\n" + private_daemons::Tail(log(), 3000));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return UnavailableError("the private dockerd did not answer within " + std::to_string(timeout.count()) + " s:\n" +
                            private_daemons::Tail(log(), 3000));
  }

  // SIGTERM to dockerd's PID and wait for its exit (SIGKILL after `grace`).
  // Its containers keep running (live restore); its containerd goes with it.
  Status Stop(std::chrono::seconds grace = std::chrono::seconds(60)) {
    if (pid_ <= 0) return Status::Ok();
    const bool clean = private_daemons::Terminate(pid_, grace);
    pid_ = -1;
    return clean ? Status::Ok() : DeadlineExceededError("the private dockerd needed SIGKILL");
  }

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }
  std::string socket() const { return dir_ + "/docker.sock"; }
  std::string log() const { return dir_ + "/dockerd.log"; }

  // Everything goes: its containers (through its API, started again for it
  // if it was stopped), the daemon, processes it left under its directory,
  // its mounts, the directory. Idempotent.
  Status Remove() {
    if (dir_.empty()) return Status::Ok();
    if (pid_ <= 0 && std::filesystem::exists(dir_ + "/data")) Start(std::chrono::seconds(30)).IgnoreError();
    if (pid_ > 0) {
      runtime::docker::DockerClient client(socket());
      auto list = client.Request("GET", "/containers/json?all=1");
      if (list.ok() && list->status == 200) {
        nlohmann::json containers = nlohmann::json::parse(list->body, nullptr, false);
        if (containers.is_array()) {
          for (const auto& c : containers) {
            client.Request("DELETE", "/containers/" + c.value("Id", "") + "?force=1&v=1").status().IgnoreError();
          }
        }
      }
      Stop(std::chrono::seconds(30)).IgnoreError();
    }
    // containerd and shims are its children's: started under this directory.
    for (pid_t p : private_daemons::ProcessesLeftUnder(dir_)) kill(p, SIGKILL);
    Status removed = private_daemons::RemoveDaemonDir(dir_);
    if (removed.ok()) dir_.clear();
    return removed;
  }

 private:
  std::string dir_;
  std::string netns_;
  Options options_;
  pid_t pid_ = -1;
};

// Debian's registry (/usr/bin/docker-registry, distribution 2.8) on a free
// 127.0.0.1 port, with htpasswd (bcrypt) auth for user "baton" and a random
// password, storage under its directory — configured as scripts/docker-up
// configures the shared one. Stop() and Start() keep its port and content.
class PrivateRegistry {
 public:
  // In the host's network namespace, or in `netns` (then it is reached only
  // from there: a private dockerd in the same namespace).
  explicit PrivateRegistry(const PrivateNetns* netns = nullptr)
      : dir_(private_daemons::MakeDir("baton-registry")), netns_(netns), port_(FreeLoopbackPort()) {
    if (dir_.empty()) return;
    unsigned char random[18];
    std::ifstream("/dev/urandom", std::ios::binary).read(reinterpret_cast<char*>(random), sizeof random);
    static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (unsigned char c : random) password_.push_back(kAlphabet[c % 62]);
    {
      std::ofstream out(password_file());
      out << password_;
    }
    std::filesystem::permissions(password_file(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    // bcrypt, as `htpasswd -B` writes it (its default cost, 5: the registry
    // checks it on every request); crypt(3) from libxcrypt.
    char* setting = crypt_gensalt_ra("$2b$", 5, nullptr, 0);
    const char* hash = setting ? crypt(password_.c_str(), setting) : nullptr;
    if (hash != nullptr && hash[0] == '$') std::ofstream(dir_ + "/htpasswd") << "baton:" << hash << "\n";
    free(setting);
    std::ofstream(dir_ + "/config.yml") << "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n"
                                        << "    rootdirectory: " << dir_ << "/data\n  delete:\n    enabled: true\n"
                                        << "http:\n  addr: 127.0.0.1:" << port_ << "\n"
                                        << "auth:\n  htpasswd:\n    realm: baton-test\n    path: " << dir_
                                        << "/htpasswd\n";
  }
  ~PrivateRegistry() {
    Stop(std::chrono::seconds(20)).IgnoreError();
    if (!dir_.empty()) private_daemons::RemoveDaemonDir(dir_).IgnoreError();
  }
  PrivateRegistry(const PrivateRegistry&) = delete;
  PrivateRegistry& operator=(const PrivateRegistry&) = delete;

  // Starts it and waits (up to `timeout`) until GET /v2/ answers 401.
  Status Start(std::chrono::seconds timeout = std::chrono::seconds(30)) {
    if (dir_.empty() || port_ == 0) return InternalError("no directory or port for the private registry");
    if (!std::filesystem::exists(dir_ + "/htpasswd")) return InternalError("bcrypt (crypt_gensalt_ra) failed");
    if (pid_ > 0) return FailedPreconditionError("the private registry already runs");
    pid_ = private_daemons::Spawn({"/usr/bin/docker-registry", "serve", dir_ + "/config.yml"}, log(),
                                  netns_ != nullptr ? netns_->path() : "");
    if (pid_ < 0) return InternalError("fork failed");
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      auto ask = [&] { status = HttpCall(port_, "GET", "/v2/").status; };
      if (netns_ != nullptr) {
        netns_->Run(ask);
      } else {
        ask();
      }
      if (status == 401) return Status::Ok();
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return UnavailableError("the private registry exited at start:\n" + private_daemons::Tail(log(), 3000));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return UnavailableError("the private registry did not answer 401 on /v2/ within " +
                            std::to_string(timeout.count()) + " s:\n" + private_daemons::Tail(log(), 3000));
  }
  // SIGTERM to its PID and wait for its exit (SIGKILL after `grace`).
  Status Stop(std::chrono::seconds grace = std::chrono::seconds(20)) {
    if (pid_ <= 0) return Status::Ok();
    const bool clean = private_daemons::Terminate(pid_, grace);
    pid_ = -1;
    return clean ? Status::Ok() : DeadlineExceededError("the private registry needed SIGKILL");
  }

  bool running() const { return pid_ > 0; }
  uint16_t port() const { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  runtime::RegistryCredentials credentials() const { return {host(), "baton", password_}; }
  std::string password_file() const { return dir_ + "/password"; }
  std::string log() const { return dir_ + "/registry.log"; }

 private:
  std::string dir_;
  const PrivateNetns* netns_;
  uint16_t port_ = 0;
  std::string password_;
  pid_t pid_ = -1;
};

}  // namespace baton::testing
