// Starts `baton serve` as a child process on a random loopback port, for
// tests that need the real server (and can SIGKILL it).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace baton::testing {

class ServerProcess {
 public:
  // Starts the server on `data_dir` and waits (up to 60 s) for "listening on".
  // The first start of a data dir prints the admin key, kept in admin_key().
  // `stderr_path`: when set, the server's stderr (its log) goes to that file.
  ServerProcess(const std::string& binary, const std::string& data_dir,
                std::vector<std::string> extra_args = {}, const std::string& stderr_path = "") {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      if (!stderr_path.empty()) {
        int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (err >= 0) dup2(err, STDERR_FILENO);
      }
      close(out[0]);
      close(out[1]);
      std::vector<std::string> args = {binary, "serve", "--data-dir", data_dir, "--port", "0", "--grpc-port", "0"};
      args.insert(args.end(), extra_args.begin(), extra_args.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    stdout_ = fdopen(out[0], "r");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    char line[512];
    while (std::chrono::steady_clock::now() < deadline && std::fgets(line, sizeof line, stdout_)) {
      std::string l(line);
      if (l.rfind("admin key: ", 0) == 0) admin_key_ = l.substr(11, l.find_last_not_of("\r\n") - 10);
      if (auto g = l.find("gRPC sidecar on 127.0.0.1:"); g != std::string::npos) {
        grpc_port_ = static_cast<unsigned short>(std::stoi(l.substr(g + 26)));
      }
      auto pos = l.find("listening on http://127.0.0.1:");
      if (pos != std::string::npos) {
        port_ = static_cast<unsigned short>(std::stoi(l.substr(pos + 30)));
        break;
      }
    }
    if (port_ == 0) {
      Kill();
      throw std::runtime_error("baton serve did not start");
    }
  }
  ~ServerProcess() { Kill(); }

  unsigned short port() const { return port_; }
  // The gRPC sidecar's port (0 when it is off).
  unsigned short grpc_port() const { return grpc_port_; }
  const std::string& admin_key() const { return admin_key_; }
  pid_t pid() const { return pid_; }

  // SIGKILL, and reap.
  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (stdout_) {
      std::fclose(stdout_);
      stdout_ = nullptr;
    }
  }
  // SIGTERM and wait for a clean exit; returns the exit status.
  int Terminate() {
    int status = -1;
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    return status;
  }

 private:
  pid_t pid_ = -1;
  FILE* stdout_ = nullptr;
  unsigned short port_ = 0;
  unsigned short grpc_port_ = 0;
  std::string admin_key_;
};

}  // namespace baton::testing
