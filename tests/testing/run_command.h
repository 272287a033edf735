// Runs a shell command line to its end and keeps what it printed, stdout
// and stderr together: for the tests that drive the `baton` binary (or any
// other program) as a user would.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace baton::testing {

struct CommandRun {
  int exit_code = -1;  // -1: it could not start, or did not exit normally
  std::string out;     // stdout and stderr, interleaved
};

inline CommandRun RunCommand(const std::string& command_line) {
  CommandRun r;
  const std::string cmd = command_line + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace baton::testing
