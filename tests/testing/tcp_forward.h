// TcpToUnix: a loopback TCP port that forwards each connection to a unix
// socket — a dockerd's Engine API over tcp://, as a swarm manager's socket
// forwarded to Baton's machine is in a deployment (dockerd's own TCP listener
// would be in the private swarm's namespace, out of the tests' reach).
// SetReachable(false) cuts it like a network partition or a manager that went
// away: the open connections are shut down and new ones are closed as soon as
// they are accepted, until SetReachable(true). The port stays the same.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace baton::testing {

class TcpToUnix {
 public:
  explicit TcpToUnix(std::string socket_path) : path_(std::move(socket_path)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listener_, 64);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TcpToUnix() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
    std::unique_lock lock(mu_);
    for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    done_.wait(lock, [this] { return pipes_ == 0; });
  }
  TcpToUnix(const TcpToUnix&) = delete;
  TcpToUnix& operator=(const TcpToUnix&) = delete;

  uint16_t port() const { return port_; }
  std::string endpoint() const { return "tcp://127.0.0.1:" + std::to_string(port_); }

  void SetReachable(bool reachable) {
    std::lock_guard lock(mu_);
    reachable_ = reachable;
    if (!reachable) {
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    }
  }

 private:
  void Serve() {
    while (!stop_) {
      int c = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      {
        std::lock_guard lock(mu_);
        if (!reachable_) {
          ::close(c);
          continue;
        }
      }
      int u = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
      if (::connect(u, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(c);
        ::close(u);
        continue;
      }
      {
        std::lock_guard lock(mu_);
        open_.insert(c);
        open_.insert(u);
        ++pipes_;
      }
      std::thread([this, c, u] {
        std::thread back([c, u] { Pump(u, c); });
        Pump(c, u);
        back.join();
        std::lock_guard lock(mu_);
        open_.erase(c);
        open_.erase(u);
        ::close(c);
        ::close(u);
        if (--pipes_ == 0) done_.notify_all();
      }).detach();
    }
  }
  static void Pump(int from, int to) {
    char buf[16384];
    for (ssize_t n; (n = ::read(from, buf, sizeof buf)) > 0;) {
      if (::write(to, buf, static_cast<size_t>(n)) != n) break;
    }
    ::shutdown(to, SHUT_WR);
    ::shutdown(from, SHUT_RD);
  }

  std::string path_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable done_;
  std::set<int> open_;  // both ends of every open pipe; mu_
  int pipes_ = 0;       // mu_
  bool reachable_ = true;  // mu_
};

}  // namespace baton::testing
